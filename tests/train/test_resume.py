"""Resuming with more epochs, a new lr, another schedule or another optimizer (issue 12, item 1)."""

import warnings

import pytest
import torch
from torch import nn

from cvlib.train import fit


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)), x, (x[:, 0] > 0).long()


def _flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_resume_for_more_epochs_keeps_training(tmp_path, schedule):
    m, x, y = _setup()
    kw = dict(batch_size=16, lr=0.05, schedule=schedule, device="cpu", progress=False)
    ckpt = tmp_path / "c.pt"
    fit(m, (x, y), epochs=2, checkpoint=ckpt, **kw)
    w2 = _flat(m)
    h = fit(m, (x, y), epochs=4, checkpoint=ckpt, resume=True, **kw)  # onecycle raised "Tried to step"
    lrs = h["lr"]
    assert len(lrs) == 4 and all(lr > 0 for lr in lrs[2:3]), lrs  # not lr 0 over the new epochs
    assert (_flat(m) - w2).abs().max() > 1e-4  # the extra epochs trained
    # the rebuilt schedule is the 4-epoch schedule, continued from step 8 of 16
    fresh, _, _ = _setup()
    ref = fit(fresh, (x, y), epochs=4, **kw)
    assert lrs[2:] == pytest.approx(ref["lr"][2:])


def test_resume_applies_a_new_lr_without_schedule(tmp_path):
    m, x, y = _setup()
    kw = dict(batch_size=16, schedule=None, device="cpu", progress=False)
    fit(m, (x, y), epochs=2, lr=0.05, checkpoint=tmp_path / "c.pt", **kw)
    h = fit(m, (x, y), epochs=3, lr=0.01, checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert h["lr"] == pytest.approx([0.05, 0.05, 0.01])


def test_resume_with_another_optimizer_continues_with_a_warning(tmp_path):
    m, x, y = _setup()
    kw = dict(batch_size=16, lr=0.01, device="cpu", progress=False)
    fit(m, (x, y), epochs=1, optimizer="sgd", checkpoint=tmp_path / "c.pt", **kw)
    w1 = _flat(m)
    with pytest.warns(RuntimeWarning, match=r"another optimizer \(SGD\) than this run's Adam.*fresh"):
        h = fit(m, (x, y), epochs=2, optimizer="adam", checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert len(h["train_loss"]) == 2 and torch.isfinite(_flat(m)).all()
    assert (_flat(m) - w1).abs().max() > 0
    with warnings.catch_warnings():  # the checkpoint now holds Adam's state: no warning, state restored
        warnings.simplefilter("error")
        fit(m, (x, y), epochs=3, optimizer="adam", checkpoint=tmp_path / "c.pt", resume=True, **kw)


def test_resume_with_an_optimizer_instance_of_another_kind(tmp_path):
    m, x, y = _setup()
    kw = dict(batch_size=16, device="cpu", progress=False)
    fit(m, (x, y), epochs=1, optimizer="adamw", lr=0.01, checkpoint=tmp_path / "c.pt", **kw)
    opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.5)  # different param groups too
    with pytest.warns(RuntimeWarning, match="fresh optimizer state"):
        h = fit(m, (x, y), epochs=2, optimizer=opt, checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert len(h["lr"]) == 2 and h["lr"][1] < 0.02  # this optimizer's lr, under the cosine schedule


def test_resume_when_already_done_trains_nothing(tmp_path):
    m, x, y = _setup()
    kw = dict(batch_size=16, lr=0.05, device="cpu", progress=False)
    fit(m, (x, y), epochs=3, checkpoint=tmp_path / "c.pt", **kw)
    w = _flat(m)
    h = fit(m, (x, y), epochs=2, checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert len(h["lr"]) == 3 and torch.equal(_flat(m), w)
