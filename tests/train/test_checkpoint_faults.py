"""Fault injection on checkpoints: corrupt files, interrupted saves, extras a safe load refuses."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from cvlib.train import History, load_or_train
from cvlib.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def _corrupt_files(tmp_path, good):
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    cases = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "random": rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "text": b"this is not a checkpoint\n" * 20,
        "no_end": data[:-30],  # the zip directory cut off
    }
    out = {}
    for name, blob in cases.items():
        p = tmp_path / f"{name}.pt"
        p.write_bytes(blob)
        out[name] = p
    return out


def test_corrupt_checkpoints_raise_one_clear_error(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", _net(), epoch=1)
    for name, p in _corrupt_files(tmp_path, good).items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(p, _net())
        msg = str(info.value)
        assert str(p) in msg, name
        assert "Errno" not in msg and "weights_only" not in msg, (name, msg)
        assert info.value.__cause__ is None and info.value.__suppress_context__, name
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a cvlib checkpoint"):
        read_checkpoint(tmp_path / "foreign.pt")
    torch.save({"model": History()}, tmp_path / "unsafe.pt")  # an arbitrary Python object
    with pytest.raises(CheckpointError, match="refused for safety"):
        read_checkpoint(tmp_path / "unsafe.pt")
    assert issubclass(CheckpointError, ValueError)


def test_load_or_train_retrains_over_a_corrupt_file(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(b"\x00" * 100)  # e.g. a copy that was cut short
    calls = []

    def train_fn(model):
        calls.append(1)
        with torch.no_grad():
            model[0].weight.fill_(0.5)
        return History({"train_loss": [1.0]})

    with pytest.warns(RuntimeWarning, match=r"cannot load checkpoint .*m\.pt.*training again"):
        hist = load_or_train(p, _net(), train_fn)
    assert calls == [1] and hist["train_loss"] == [1.0]
    fresh = _net(5)
    hist2 = load_or_train(p, fresh, train_fn)  # now loads, does not train
    assert calls == [1] and hist2["train_loss"] == [1.0]
    assert torch.all(fresh[0].weight == 0.5)
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]


def test_extras_are_checked_before_writing(tmp_path):
    p = tmp_path / "m.pt"
    with pytest.raises(ValueError, match=r"\['arch', 'rng'\] are reserved"):
        save_checkpoint(p, _net(), **{"rng": 1, "epoch_": 2, "arch": 3})
    with pytest.raises(TypeError, match=r"extra value 'note'.*got function"):
        save_checkpoint(p, _net(), note=lambda: 0)
    with pytest.raises(TypeError, match=r"extra value 'arr'.*ndarray.*torch.from_numpy"):
        save_checkpoint(p, _net(), arr=np.zeros(3))
    with pytest.raises(TypeError, match=r"extra value 'cfg'\['opt'\]\[1\].*set"):
        save_checkpoint(p, _net(), cfg={"opt": [1, {2}]})
    assert not p.exists()
    extras = dict(
        note="x", n=np.int64(3), f=np.float32(0.5), t=torch.ones(2), cfg={"a": [1, 2.0, None, (3, "b")]}
    )
    save_checkpoint(p, _net(), **extras)
    state = load_checkpoint(p, _net())  # everything that was accepted loads safely
    assert state["note"] == "x" and state["n"] == 3 and isinstance(state["n"], int)
    assert state["f"] == 0.5 and torch.equal(state["t"], torch.ones(2))
    assert state["cfg"] == {"a": [1, 2.0, None, (3, "b")]}


def test_ctrl_c_during_save_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    p = save_checkpoint(tmp_path / "m.pt", _net(0), epoch=1)
    before = p.read_bytes()
    real_save = torch.save

    class Interrupting:
        """A file wrapper whose third write is interrupted by Ctrl-C, inside torch's zip writer."""

        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, b):
            self.n += 1
            if self.n == 3:
                raise KeyboardInterrupt
            return self.f.write(b)

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: real_save(obj, Interrupting(f), *a, **k))
    with pytest.raises(KeyboardInterrupt):  # not torch's "unexpected pos" RuntimeError
        save_checkpoint(p, _net(1), epoch=2)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.pt"]


def test_orphan_temp_files_are_cleaned(tmp_path):
    p = save_checkpoint(tmp_path / "m.pt", _net(), epoch=1)
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(done.stdout)  # a process that has exited
    orphan = tmp_path / f"m.pt.{dead_pid}.abc123.tmp"
    orphan.write_bytes(b"half")
    old = tmp_path / "m.pt.k3j4h5.tmp"  # the earlier naming, without a pid: removed once stale
    old.write_bytes(b"half")
    os.utime(old, (0, 0))
    mine = tmp_path / f"m.pt.{os.getpid()}.live.tmp"  # a save in progress in this process: kept
    mine.write_bytes(b"busy")
    other = tmp_path / "n.pt.1.x.tmp"  # another checkpoint's file: not ours to touch
    other.write_bytes(b"x")
    save_checkpoint(p, _net(), epoch=2)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.pt", mine.name, other.name])
    assert load_checkpoint(p, _net())["epoch"] == 2


def test_load_checkpoint_refuses_another_optimizer_kind(tmp_path):
    net = _net()
    sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(4, 3)).sum().backward()
    sgd.step()
    p = save_checkpoint(tmp_path / "m.pt", net, sgd)
    adam = torch.optim.Adam(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"another optimizer \(other param groups\) than the Adam"):
        load_checkpoint(p, net, adam)  # torch would load it and fail at adam.step() with KeyError 'step'
    load_checkpoint(p, net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
