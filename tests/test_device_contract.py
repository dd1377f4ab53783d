"""The device contract, checked on a virtual accelerator (tests/device_harness.py): no GPU needed.

``fit`` trains on ``cvlib.get_device()`` and gives the model back on its own device; ``evaluate`` and
``predict`` run on the accelerator, move the inputs there and leave the model where (and in the mode)
they found it; ``predict`` answers on the inputs' device; the profiling functions restore device and
mode. A mismatch raises inside the harness exactly where CUDA would.
"""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import cvlib
from cvlib.ops.profile import measure_latency, peak_memory
from cvlib.train import evaluate, fit, predict, run_on
from tests.device_harness import VIRTUAL, virtual_accelerator


def _data(n=48):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


class _Where:
    """Records, per forward call of ``model``, where its input and its first weight are."""

    def __init__(self, acc, model):
        self.calls = []
        model.register_forward_pre_hook(lambda m, a: self.calls.append((acc.where(a[0]), acc.where(m))))


def test_harness_catches_a_mismatch(monkeypatch):
    with virtual_accelerator(monkeypatch) as acc:
        assert cvlib.get_device() == torch.device(VIRTUAL)
        model, (x, _) = acc.cpu(_net()), acc.cpu(_data())
        model.to(acc.device)
        assert acc.where(model) == VIRTUAL and model[0].weight.device == acc.device
        with pytest.raises(RuntimeError, match="same device"):
            model(x)  # the bug class: a CPU tensor into a model left on the GPU
        out = model(x.to(acc.device))
        assert out.device == acc.device and acc.where(x) == "cpu"  # moving made a copy
        with pytest.raises(TypeError, match="numpy"):
            out.detach().numpy()
        assert acc.where(out.cpu()) == "cpu"
        idx = acc.cpu(torch.tensor([0, 2]))
        assert acc.where(out[idx]) == VIRTUAL  # GPU tensors accept CPU indices, as in torch
        with pytest.raises(RuntimeError, match="same device"):
            torch.index_select(out, 0, idx)  # ... but not CPU index tensors in most ops
        model.to("cpu")
        assert model(x).shape == (48, 2)


def test_a_buggy_predict_is_caught(monkeypatch):
    def predict_without_moving(model, x):  # what the contract forbids
        model.to(cvlib.get_device())
        return model(x)

    with virtual_accelerator(monkeypatch) as acc:
        with pytest.raises(RuntimeError, match="same device"):
            predict_without_moving(acc.cpu(_net()), acc.cpu(_data()[0]))


@pytest.mark.parametrize("loader", [False, True])
def test_fit_trains_on_the_accelerator_and_gives_the_model_back(monkeypatch, loader):
    with virtual_accelerator(monkeypatch) as acc:
        model, (x, y) = acc.cpu(_net()), acc.cpu(_data())
        before = model[0].weight.detach().clone()
        where = _Where(acc, model)
        train = DataLoader(TensorDataset(x, y), batch_size=16) if loader else (x, y)
        hist = fit(model, train, (x, y), epochs=2, batch_size=16, progress=False)
        assert where.calls and all(c == (VIRTUAL, VIRTUAL) for c in where.calls)
        assert acc.where(model) == "cpu" and not model.training
        assert model[0].weight.device == torch.device("cpu")
        assert not torch.equal(model[0].weight.detach(), before)  # it trained
        assert model(x).shape == (48, 2)  # the reader's next line works
        assert len(hist["train_loss"]) == 2


def test_fit_gives_the_model_back_after_an_error(monkeypatch):
    def bad_loss(out, y):
        raise KeyError("boom")

    with virtual_accelerator(monkeypatch) as acc:
        model, (x, y) = acc.cpu(_net()), acc.cpu(_data())
        with pytest.raises(KeyError):
            fit(model, (x, y), loss_fn=bad_loss, progress=False)
        assert acc.where(model) == "cpu"


def test_evaluate_and_predict_run_on_the_accelerator_and_leave_the_model(monkeypatch):
    with virtual_accelerator(monkeypatch) as acc:
        model, (x, y) = acc.cpu(_net()), acc.cpu(_data())
        model.train()
        where = _Where(acc, model)
        res = evaluate(model, (x, y), metrics=("accuracy",))
        assert set(res) == {"loss", "accuracy"} and all(isinstance(v, float) for v in res.values())
        out = predict(model, x, batch_size=20)
        assert len(where.calls) == 1 + 3 and all(c == (VIRTUAL, VIRTUAL) for c in where.calls)
        assert acc.where(model) == "cpu" and model.training  # device and mode as found
        assert acc.where(out) == "cpu" and out.device == torch.device("cpu") and out.shape == (48, 2)
        assert torch.allclose(out, model.eval()(x))


def test_predict_answers_on_the_inputs_device_for_a_model_on_the_accelerator(monkeypatch):
    with virtual_accelerator(monkeypatch) as acc:
        model, (x, _) = acc.cpu(_net()).eval(), acc.cpu(_data())
        model.to(acc.device)
        out = predict(model, x)
        assert acc.where(out) == "cpu" and acc.where(model) == VIRTUAL
        out_dev = predict(model, x.to(acc.device))
        assert acc.where(out_dev) == VIRTUAL


def test_run_on_restores_device_and_mode(monkeypatch):
    with virtual_accelerator(monkeypatch) as acc:
        model = acc.cpu(_net()).train()
        with run_on(model, train=False) as dev:
            assert dev == acc.device and acc.where(model) == VIRTUAL and not model.training
        assert acc.where(model) == "cpu" and model.training
        with pytest.raises(ValueError, match="inside"), run_on(model, "cpu"):
            raise ValueError("inside")
        assert acc.where(model) == "cpu"


def test_profiling_restores_device_and_mode(monkeypatch):
    with virtual_accelerator(monkeypatch) as acc:
        model = acc.cpu(_net()).train()
        assert measure_latency(model, (4, 4), device=acc.device, warmup=0, repeats=1) > 0
        assert acc.where(model) == "cpu" and model.training
        model.eval()
        assert peak_memory(model, (4, 4), training=True, device=acc.device) > 0
        assert acc.where(model) == "cpu" and not model.training


def test_fit_returns_channels_last_models_in_the_default_format(monkeypatch):
    with virtual_accelerator(monkeypatch) as acc:
        torch.manual_seed(0)
        model = acc.cpu(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 2)))
        x, y = acc.cpu(torch.rand(8, 3, 6, 6)), acc.cpu(torch.randint(0, 2, (8,)))
        seen = []
        model.register_forward_pre_hook(
            lambda m, a: seen.append(a[0].is_contiguous(memory_format=torch.channels_last))
        )
        fit(model, (x, y), epochs=1, batch_size=4, channels_last=True, progress=False)
        assert seen and all(seen)  # trained in channels_last on the accelerator
        assert acc.where(model) == "cpu" and model[0].weight.is_contiguous()
