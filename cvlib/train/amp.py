"""Mixed precision and memory format, chosen once per device.

Mixed-precision training (Micikevicius et al. 2018, arXiv:1710.03740) runs the forward pass in a
16-bit float type and keeps fp32 master weights. bfloat16 has fp32's exponent range, so it needs no
loss scaling; float16 does (a :class:`torch.amp.GradScaler`). The rule used by :func:`cvlib.train.fit`:

* CUDA with bf16 support (Ampere and newer): bfloat16, no scaler;
* other CUDA GPUs: float16 with a grad scaler;
* CPU and MPS: fp32 (autocast off) unless asked for explicitly.

``channels_last`` (NHWC) lets cuDNN use tensor-core convolution kernels without transposes; it helps
4-D convolutional nets on CUDA and is left off elsewhere.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

__all__ = [
    "AMP_OPTIONS",
    "autocast_for",
    "grad_scaler_for",
    "needs_grad_scaler",
    "use_channels_last",
    "resolve_amp_dtype",
]

AMP_OPTIONS = ("auto", "off", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _normalize(amp: Any) -> str:
    if amp is True:
        return "auto"
    if amp is False or amp is None:
        return "off"
    if not isinstance(amp, str) or amp not in AMP_OPTIONS:
        raise ValueError(f"amp must be one of {AMP_OPTIONS} (or True/False), got {amp!r}")
    return amp


def resolve_amp_dtype(device: torch.device | str, amp: str | bool = "auto") -> torch.dtype | None:
    """The autocast dtype for ``device`` under the ``amp`` option, or None for fp32.

    Args:
        device: where the model runs.
        amp: ``"auto"`` (the rule in the module docstring), ``"off"``/False (fp32), ``"bf16"`` or
            ``"fp16"`` (forced).
    """
    mode = _normalize(amp)
    dev = torch.device(device)
    if mode == "off":
        return None
    if mode in _DTYPES:
        return _DTYPES[mode]
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def autocast_for(
    device: torch.device | str, amp: str | bool = "auto"
) -> tuple[torch.dtype | None, contextlib.AbstractContextManager]:
    """Pick the mixed-precision dtype for ``device`` and return ``(dtype, autocast context)``.

    Returns:
        ``(torch.bfloat16 | torch.float16 | None, context manager)``; with None the context does
        nothing (fp32).

    Example:
        >>> dtype, ctx = autocast_for("cpu")
        >>> dtype is None
        True
    """
    dev = torch.device(device)
    dtype = resolve_amp_dtype(dev, amp)
    if dtype is None:
        return None, contextlib.nullcontext()
    return dtype, torch.autocast(device_type=dev.type, dtype=dtype)


def needs_grad_scaler(device: torch.device | str, dtype: torch.dtype | None) -> bool:
    """True for float16 autocast on CUDA: its 5-bit exponent underflows small gradients without loss
    scaling. bf16 (fp32's exponent range) and fp32 need none."""
    return dtype == torch.float16 and torch.device(device).type == "cuda"


def grad_scaler_for(device: torch.device | str, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A :class:`torch.amp.GradScaler`, enabled only when :func:`needs_grad_scaler` says so."""
    dev = torch.device(device)
    enabled = needs_grad_scaler(dev, dtype)
    return torch.amp.GradScaler(dev.type if dev.type == "cuda" else "cpu", enabled=enabled)


def use_channels_last(model: nn.Module, device: torch.device | str, option: str | bool = "auto") -> bool:
    """Whether to train ``model`` in channels_last memory format.

    Args:
        option: ``"auto"`` (CUDA and the model has a 2-D convolution), True or False.
    """
    if option is True or option is False:
        return option
    if option != "auto":
        raise ValueError(f"channels_last must be 'auto', True or False, got {option!r}")
    if torch.device(device).type != "cuda":
        return False
    return any(isinstance(m, nn.Conv2d) for m in model.modules())
