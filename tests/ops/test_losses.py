"""Focal loss and GIoU loss against their formulas written out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from cvlib.ops.boxes import generalized_box_iou
from cvlib.ops.losses import giou_loss, sigmoid_focal_loss


def test_focal_reduces_to_bce_and_matches_formula():
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(50, generator=g, dtype=torch.float64), (torch.rand(50, generator=g) > 0.7).double()
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(x, t, alpha=-1, gamma=0), bce)
    # one positive with p = sigmoid(2): -alpha (1 - p)^gamma log p
    p = 1 / (1 + math.exp(-2.0))
    want = -0.25 * (1 - p) ** 2 * math.log(p)
    assert sigmoid_focal_loss(torch.tensor([2.0]), torch.tensor([1.0])).item() == pytest.approx(
        want, rel=1e-6
    )
    # one negative: -(1 - alpha) p^gamma log(1 - p)
    want = -0.75 * p**2 * math.log(1 - p)
    assert sigmoid_focal_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(
        want, rel=1e-6
    )
    # easy examples are down-weighted much more than hard ones
    easy = sigmoid_focal_loss(torch.tensor([-5.0]), torch.tensor([0.0])) / F.binary_cross_entropy_with_logits(
        torch.tensor([-5.0]), torch.tensor([0.0])
    )
    assert easy.item() < 1e-4
    assert sigmoid_focal_loss(x, t, reduction="sum").item() == pytest.approx(
        sigmoid_focal_loss(x, t).sum().item()
    )


def test_giou_loss_and_errors():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 4, 4]])
    b = torch.tensor([[5.0, 0, 15, 10], [6, 6, 8, 8]])
    torch.testing.assert_close(giou_loss(a, b), 1 - torch.diagonal(generalized_box_iou(a, b)))
    assert giou_loss(a, a, reduction="mean").item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        giou_loss(a, b, reduction="avg")
    with pytest.raises(ValueError, match="inputs and targets must have the same shape"):
        sigmoid_focal_loss(torch.zeros(3), torch.zeros(4))
