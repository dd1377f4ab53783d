"""Checkpoints: exact resumption through fit, atomic writes, architecture mismatch, load_or_train."""

import os
import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from cvlib.train import History, fit, load_checkpoint, load_or_train, save_checkpoint
from cvlib.train.checkpoint import rng_state, set_rng_state


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 2, generator=g)
    return x, (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()


def _mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))


def _params(m):
    return torch.cat([t.detach().flatten().float() for t in m.state_dict().values()])


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "cosine"), ("adamw", "onecycle")])
def test_resume_is_exact(tmp_path, optimizer, schedule):
    x, y = _data()
    kw = dict(
        epochs=2, batch_size=32, optimizer=optimizer, lr=0.05, schedule=schedule, device="cpu", progress=False
    )
    straight = _mlp(0)
    h_straight = fit(straight, (x, y), (x, y), **kw)

    ckpt = tmp_path / "run.pt"
    first = _mlp(0)
    h1 = fit(first, (x, y), (x, y), checkpoint=ckpt, callbacks=[lambda e, logs, m: True], **kw)
    assert len(h1.history["train_loss"]) == 1 and ckpt.is_file()
    torch.manual_seed(123)  # disturb the global RNG: resume must restore it
    resumed = _mlp(7)  # different initial weights: resume must overwrite them
    h2 = fit(resumed, (x, y), (x, y), checkpoint=ckpt, resume=True, **kw)
    assert h2.history["train_loss"] == h_straight.history["train_loss"]
    assert h2.history["val_loss"] == h_straight.history["val_loss"]
    assert torch.equal(_params(resumed), _params(straight))


def test_save_is_atomic_and_weights_only(tmp_path, monkeypatch):
    m = _mlp(0)
    p = save_checkpoint(tmp_path / "sub" / "m.pt", m, epoch=3)
    assert os.listdir(tmp_path / "sub") == ["m.pt"]
    before = p.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *a, **k):  # writes part of the archive, then fails
        f.write(b"PK\x03\x04 half an archive")
        raise pickle.PicklingError("cannot pickle 'lambda'")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(pickle.PicklingError, match="lambda"):
        save_checkpoint(p, m, epoch=4)
    monkeypatch.setattr(torch, "save", real_save)
    assert p.read_bytes() == before  # the old file survives a failed save
    assert os.listdir(tmp_path / "sub") == ["m.pt"]  # no temporary left behind
    torch.load(p, weights_only=True)  # loadable without unpickling arbitrary objects
    m2 = _mlp(1)
    state = load_checkpoint(p, m2)
    assert state["epoch"] == 3 and torch.equal(_params(m2), _params(m))


def test_other_architecture_lists_keys(tmp_path):
    p = save_checkpoint(tmp_path / "m.pt", _mlp(0))
    other = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4), nn.Linear(4, 4))
    with pytest.raises(
        ValueError,
        match=r"another architecture.*missing keys: .*2\.weight.*unexpected keys: .*1\.running_mean",
    ):
        load_checkpoint(p, other)
    wider = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))
    with pytest.raises(ValueError, match=r"shape mismatches: 0\.weight: model \(8, 2\) vs \(16, 2\)"):
        load_checkpoint(p, wider)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", other)


def test_load_or_train(tmp_path):
    x, y = _data()
    calls = []

    def train_fn(model):
        calls.append(1)
        return fit(model, (x, y), epochs=2, batch_size=32, device="cpu", progress=False)

    m1 = _mlp(0)
    h1 = load_or_train(tmp_path / "m.pt", m1, train_fn)
    m2 = _mlp(5)
    h2 = load_or_train(tmp_path / "m.pt", m2, train_fn)
    assert calls == [1]
    assert isinstance(h2, History) and h2.history == h1.history
    assert torch.equal(_params(m1), _params(m2))


def test_rng_round_trip():
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
