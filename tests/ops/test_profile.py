"""Cost measurement: parameter and MAC counts against hand-computed values; latency/memory invariants."""

import pytest
import torch
from torch import nn

from cvlib.ops.profile import count_macs, count_parameters, measure_latency, measure_throughput, peak_memory


def _net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 4, 3, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 5),
    )


def test_count_parameters_hand_computed_and_shared():
    net = _net()
    assert count_parameters(net) == (3 * 9 * 8 + 8) + (8 * 9 * 4 + 4) + (256 * 5 + 5)
    shared = nn.Linear(4, 4)
    tied = nn.Sequential(shared, shared)
    assert count_parameters(tied) == 20  # counted once
    shared.bias.requires_grad_(False)
    assert count_parameters(tied, trainable_only=True) == 16


def test_count_macs_hand_computed():
    net = _net()
    expected = 8 * 3 * 9 * 16 * 16 + 4 * 8 * 9 * 8 * 8 + 256 * 5
    assert count_macs(net, (1, 3, 16, 16)) == expected
    assert count_macs(net, (3, 3, 16, 16)) == 3 * expected
    assert count_macs(net, (1, 3, 16, 16), on_meta=False) == expected
    per = count_macs(net, (1, 3, 16, 16), per_module=True)
    assert per[""] == expected and per["0"] == 8 * 3 * 9 * 16 * 16 and per["4"] == 256 * 5
    assert next(net.parameters()).device.type == "cpu"  # the model itself is untouched


def test_count_macs_grouped_conv_divides_by_groups():
    full = nn.Conv2d(8, 8, 3, padding=1)
    grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
    assert count_macs(grouped, (1, 8, 10, 10)) * 2 == count_macs(full, (1, 8, 10, 10))


def test_latency_throughput_and_memory():
    net = _net()
    ms = measure_latency(net, (2, 3, 16, 16), warmup=1, repeats=3)
    assert ms > 0
    assert measure_throughput(net, (4, 3, 16, 16), warmup=0, repeats=2) > 0
    params = count_parameters(net) * 4
    m1 = peak_memory(net, (2, 3, 16, 16))
    m2 = peak_memory(net, (8, 3, 16, 16))
    assert m1 > 2 * params  # parameters + gradients + saved activations
    assert m2 > m1  # activations grow with the batch
    # the first conv saves its input (2*3*16*16 floats) and the ReLU its output (2*8*16*16 floats)
    assert m1 - 2 * params >= 4 * (2 * 3 * 16 * 16 + 2 * 8 * 16 * 16)
    assert peak_memory(net, (2, 3, 16, 16), training=False) < m1


def test_errors():
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        count_parameters("resnet18")
    with pytest.raises(ValueError, match="input_shape must be positive"):
        count_macs(_net(), (0, 3, 16, 16))
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_latency(_net(), (1, 3, 16, 16), repeats=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_peak_memory_cuda():
    net = _net().cuda()
    assert peak_memory(net, (8, 3, 16, 16)) > 2 * count_parameters(net) * 4


def test_timing_restores_mode_and_fast_dev_run_times_once(monkeypatch):
    net = _net().train()
    calls = []
    net.register_forward_pre_hook(lambda m, a: calls.append(m.training))
    measure_latency(net, (1, 3, 16, 16), warmup=2, repeats=3)
    assert calls == [False] * 5 and net.training  # eval inside, the caller's mode afterwards
    net.eval()
    peak_memory(net, (2, 3, 16, 16), training=True)
    assert not net.training and all(p.grad is None for p in net.parameters())
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", "1")
    calls.clear()
    measure_throughput(net, (2, 3, 16, 16), warmup=2, repeats=5)
    assert len(calls) == 1


@pytest.mark.parametrize("n", [1, 2])
def test_fast_dev_run_caps_the_batch(monkeypatch, n):
    net = _net()
    batches = []
    net.register_forward_pre_hook(lambda m, a: batches.append(a[0].shape[0]))
    full = peak_memory(net, (32, 3, 16, 16))
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", str(n))
    batches.clear()
    capped = peak_memory(net, (32, 3, 16, 16))
    assert batches == [n] and capped < full  # only n images' activations are kept
    assert capped == peak_memory(net, (n, 3, 16, 16))
    batches.clear()
    measure_latency(net, (32, 3, 16, 16), warmup=3, repeats=4)
    assert batches == [n]  # no warm-up, one repetition, batch capped
    batches.clear()
    assert measure_throughput(net, (32, 3, 16, 16)) > 0
    assert batches == [n]
    batches.clear()
    peak_memory(net, (1, 3, 16, 16), training=False)  # a batch below the cap is left alone
    assert batches == [1]
