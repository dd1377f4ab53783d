"""Detection losses: sigmoid focal loss (Lin et al. 2017, RetinaNet, arXiv:1708.02002) and the
GIoU box loss (Rezatofighi et al. 2019, arXiv:1902.09630).

Focal loss down-weights the many easy negatives of a dense detector: with ``p_t`` the predicted
probability of the true label, ``FL = -alpha_t (1 - p_t)^gamma log(p_t)``; ``gamma = 0, alpha = -1``
is plain binary cross-entropy. The paper's defaults ``alpha = 0.25``, ``gamma = 2`` (its Table 1a/b)
are the arguments' defaults.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cvlib._validate import check_float, check_tensor
from cvlib.ops.boxes import generalized_box_iou

__all__ = ["sigmoid_focal_loss", "giou_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def sigmoid_focal_loss(
    inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Binary focal loss on logits.

    Args:
        inputs (Tensor[...]): logits.
        targets (Tensor[...]): same shape, 0/1 (or soft) float labels.
        alpha (float): weight of positives in [0, 1] (negatives get ``1 - alpha``); < 0 disables it.
        gamma (float): focusing exponent >= 0.
        reduction (str): ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        Tensor: the loss per element (``"none"``) or reduced to a scalar. Computed in float32 at least.
    """
    check_tensor(inputs, "inputs", dtype="float", finite=True, shape="[...] logits")
    check_tensor(targets, "targets", dtype=("float", "int", "bool"), finite=True, shape="[...] 0/1 labels")
    check_float(alpha, "alpha", max=1.0)
    check_float(gamma, "gamma", min=0.0)
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    targets = targets.to(inputs.device)
    if inputs.shape != targets.shape:
        raise ValueError(
            f"inputs and targets must have the same shape, got {tuple(inputs.shape)} and "
            f"{tuple(targets.shape)}"
        )
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    x = inputs.float() if inputs.dtype in (torch.float16, torch.bfloat16) else inputs
    t = targets.to(x.dtype)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return _reduce(loss, reduction)


def giou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none") -> Tensor:
    """``1 - GIoU`` of aligned pairs of xyxy boxes.

    Args:
        boxes1 (Tensor[N, 4]): predicted xyxy boxes.
        boxes2 (Tensor[N, 4]): target xyxy boxes.
        reduction (str): ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        Tensor[N] or scalar: values in [0, 2].
    """
    return _reduce(1 - generalized_box_iou(boxes1, boxes2, aligned=True), reduction)
