"""Optimizer factory (decay grouping) and per-iteration schedules against their formulas."""

import math

import pytest
import torch
from torch import nn

from cvlib.train import create_optimizer, create_scheduler, param_groups


def _net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LayerNorm(4), nn.Linear(4, 2)
    )


def test_weight_decay_skips_norms_and_biases():
    net = _net()
    decay, no_decay = param_groups(net, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[5].weight)}
    expect = {
        id(p) for p in (net[0].bias, net[1].weight, net[1].bias, net[4].weight, net[4].bias, net[5].bias)
    }
    assert {id(p) for p in no_decay["params"]} == expect


def test_sgd_decay_effect():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    opt = create_optimizer(net, "sgd", lr=1.0, weight_decay=0.5, momentum=0.0)
    w0, bn0 = net[0].weight.detach().clone(), net[1].weight.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(net[0].weight.detach(), w0 * 0.5)  # w - lr * wd * w
    torch.testing.assert_close(net[1].weight.detach(), bn0)  # norm weight not decayed


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)])
def test_optimizer_names(name, cls):
    assert isinstance(create_optimizer(_net(), name, lr=1e-3), cls)
    with pytest.raises(ValueError, match=r"optimizer must be one of \('sgd', 'adamw', 'adam'\).*got 'lamb'"):
        create_optimizer(_net(), "lamb")


def _lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_with_warmup_formula():
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    sched = create_scheduler(opt, "cosine", total_steps=14, warmup_steps=4)
    lrs = _lrs(sched, opt, 14)
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:]))


def test_onecycle_peaks_at_lr_and_none_is_constant():
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.4, momentum=0.9)
    lrs = _lrs(create_scheduler(opt, "onecycle", total_steps=20, warmup_steps=5), opt, 20)
    assert max(lrs) == pytest.approx(0.4) and lrs.index(max(lrs)) in (4, 5)
    assert lrs[0] < 0.05 and lrs[-1] < 1e-3
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.3)
    assert _lrs(create_scheduler(opt, None, total_steps=5), opt, 5) == pytest.approx([0.3] * 5)
    with pytest.raises(ValueError, match=r"schedule must be one of \('cosine', 'onecycle', None\)"):
        create_scheduler(opt, "linear", total_steps=5)


def test_scheduler_state_round_trip():
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    sched = create_scheduler(opt, "cosine", total_steps=10, warmup_steps=2)
    _lrs(sched, opt, 3)
    opt2 = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    sched2 = create_scheduler(opt2, "cosine", total_steps=10, warmup_steps=2)
    opt2.load_state_dict(opt.state_dict())  # the current lr lives in the optimizer state
    sched2.load_state_dict(sched.state_dict())
    assert _lrs(sched2, opt2, 4) == pytest.approx(_lrs(sched, opt, 4))
