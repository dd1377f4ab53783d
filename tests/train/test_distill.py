"""The distillation loss against a hand computation, and the Distiller wrapper inside fit."""

import math

import pytest
import torch
from torch import nn

from cvlib.train import fit
from cvlib.train.distill import Distiller, kd_loss


def test_kd_loss_by_hand():
    s = torch.tensor([[1.0, 2.0, 0.0]])
    t = torch.tensor([[3.0, 1.0, 0.5]])
    T, alpha = 2.0, 0.7

    def softmax(v):
        e = [math.exp(a / T) for a in v]
        return [a / sum(e) for a in e]

    ps, pt = softmax(s[0].tolist()), softmax(t[0].tolist())
    kl = sum(q * math.log(q / p) for p, q in zip(ps, pt))
    z = [math.exp(a) for a in s[0].tolist()]
    ce = -math.log(z[2] / sum(z))  # label 2
    expect = alpha * T * T * kl + (1 - alpha) * ce
    got = kd_loss(s, t, torch.tensor([2]), temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(expect, rel=1e-6)
    assert kd_loss(s, s, temperature=3.0).item() == pytest.approx(0.0, abs=1e-7)  # equal logits: no soft loss


def test_kd_loss_errors_and_gradients():
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5, requires_grad=True)
    kd_loss(s, t, torch.zeros(4, dtype=torch.long)).backward()
    assert s.grad is not None and t.grad is None  # the teacher gets no gradient
    with pytest.raises(ValueError, match=r"temperature must be in \(0"):
        kd_loss(s, t, temperature=0)
    with pytest.raises(ValueError, match="target holds class id 7"):
        kd_loss(s, t, torch.tensor([0, 1, 7, 2]))
    with pytest.raises(ValueError, match="student_logits must be finite"):
        kd_loss(torch.full((4, 5), float("nan")), t)
    with pytest.raises(ValueError, match=r"must both be \[B, K\]"):
        kd_loss(s, t[:, :3])


def test_distiller_in_fit_trains_student_only():
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = (x[:, 0] > 0).long()
    teacher = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    student = nn.Linear(2, 2)
    t0 = [p.clone() for p in teacher.state_dict().values()]
    d = Distiller(student, teacher, temperature=2.0, alpha=0.5)
    h = fit(d, (x, y), (x, y), epochs=2, batch_size=16, device="cpu", progress=False)
    assert {"train_soft", "train_hard", "val_accuracy"} <= set(h.history)
    assert all(torch.equal(a, b) for a, b in zip(t0, teacher.state_dict().values()))  # incl. BN stats
    assert d.training is False and teacher.training is False
