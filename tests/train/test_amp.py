"""Mixed-precision selection per device (CUDA types mocked on this CPU machine) and channels_last."""

import contextlib

import pytest
import torch
from torch import nn

from cvlib.train.amp import (
    autocast_for,
    grad_scaler_for,
    needs_grad_scaler,
    resolve_amp_dtype,
    use_channels_last,
)


def test_cpu_is_fp32():
    dtype, ctx = autocast_for("cpu")
    assert dtype is None and isinstance(ctx, contextlib.nullcontext)
    with ctx:
        assert nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.float32
    assert not grad_scaler_for("cpu", dtype).is_enabled()


@pytest.mark.parametrize("bf16, expect", [(True, torch.bfloat16), (False, torch.float16)])
def test_cuda_prefers_bf16_else_fp16(monkeypatch, bf16, expect):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert resolve_amp_dtype(torch.device("cuda")) == expect
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        dtype, ctx = autocast_for("cuda:0")
    assert dtype == expect and isinstance(ctx, torch.autocast)
    assert ctx.fast_dtype == expect and ctx.device == "cuda"
    assert needs_grad_scaler("cuda", dtype) is (expect == torch.float16)


def test_mps_is_fp32_and_forced_options():
    assert resolve_amp_dtype("mps") is None
    assert resolve_amp_dtype("cuda", "off") is None and resolve_amp_dtype("cuda", False) is None
    dtype, ctx = autocast_for("cpu", "bf16")
    assert dtype == torch.bfloat16
    with ctx:
        assert nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.bfloat16
    assert not needs_grad_scaler("cpu", torch.float16)
    with pytest.raises(ValueError, match=r"amp must be one of \('auto', 'off', 'bf16', 'fp16'\)"):
        autocast_for("cpu", "half")


def test_channels_last_only_for_cuda_conv_nets():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    mlp = nn.Linear(3, 4)
    assert use_channels_last(conv, "cuda") and not use_channels_last(mlp, "cuda")
    assert not use_channels_last(conv, "cpu")
    assert use_channels_last(mlp, "cpu", True) and not use_channels_last(conv, "cuda", False)
    with pytest.raises(ValueError, match="channels_last must be"):
        use_channels_last(conv, "cpu", "sometimes")
