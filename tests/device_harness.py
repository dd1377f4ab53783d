"""A virtual accelerator for CPU-only tests: catches device-mismatch bugs without a GPU.

With :func:`virtual_accelerator` active, the device ``"xpu"`` behaves like a GPU that happens to
compute on the CPU: tensors moved there (``.to("xpu")``, ``Module.to("xpu")``, factories with
``device="xpu"``) report ``.device == xpu``; the results of operations inherit it; and an operation
that mixes a tensor known to be on the CPU with one on the virtual device raises, as CUDA would::

    RuntimeError: Expected all tensors to be on the same device (virtual harness): cpu and xpu

So does ``.numpy()`` of a virtual-device tensor. ``CVLIB_DEVICE`` is set to ``xpu``, so
``cvlib.get_device()`` picks the accelerator, as it would on a GPU machine.

Tensors are "known to be on the CPU" when marked with :meth:`VirtualAccelerator.cpu` (the test's
data and models), moved with ``.to("cpu")``/``.cpu()``, made with ``device="cpu"``, or computed from
such tensors. Other tensors (autograd's gradients, factories without a device) match anything, so
the harness has no false alarms; it misses only mixes that involve none of the tracked tensors.

Example::

    def test_something(virtual_accel):      # the fixture in tests/conftest.py
        model = virtual_accel.cpu(nn.Linear(2, 2))
        x = virtual_accel.cpu(torch.randn(4, 2))
        fit(model, (x, y))
        model(x)                           # raises if fit left the model on the accelerator
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

VIRTUAL = "xpu"
_TAG = "_virtual_device"
_CPU = torch.device("cpu")
# Functions that mix devices legitimately (copies across devices) or only look at metadata.
_NO_CHECK = {"copy_", "_has_compatible_shallow_copy_type", "is_set_to", "__get__", "__set__", "_is_view"}


def _tag(t: Any) -> str | None:
    return getattr(t, _TAG, None) if isinstance(t, torch.Tensor) else None


def _set_tag(obj: Any, tag: str | None) -> None:
    for t in tree_flatten(obj)[0]:
        if isinstance(t, torch.Tensor) and tag is not None:
            setattr(t, _TAG, tag)


def _target_device(args: tuple, kwargs: dict) -> torch.device | None:
    dev = kwargs.get("device")
    if dev is None:
        for a in args[1:]:
            if isinstance(a, (str, torch.device)):
                dev = a
                break
            if isinstance(a, torch.Tensor):  # t.to(other): other's device
                return torch.device(VIRTUAL) if _tag(a) == VIRTUAL else a.device
    return torch.device(dev) if dev is not None else None


class _Mode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func == torch.Tensor.device.__get__:
            return torch.device(VIRTUAL) if _tag(args[0]) == VIRTUAL else func(*args)
        if func == torch.Tensor.data.__set__:
            func(*args)
            setattr(args[0], _TAG, _tag(args[1]))
            return None
        if func in (torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda):
            return self._move(func, args, kwargs)
        if getattr(func, "__name__", "") in _NO_CHECK:
            return func(*args, **kwargs)
        if getattr(func, "__name__", "") in ("__getitem__", "__setitem__") and _tag(args[0]) == VIRTUAL:
            out = func(*args, **kwargs)  # a GPU tensor may be indexed with CPU indices
            _set_tag(out, VIRTUAL)
            return out
        if func in (torch.Tensor.numpy,) and _tag(args[0]) == VIRTUAL:
            raise TypeError(f"can't convert {VIRTUAL} device type tensor to numpy (virtual harness)")
        strict, weak = set(), set()
        for t in tree_flatten((args, kwargs))[0]:
            tag = _tag(t)
            if tag is not None:
                weak.add(tag)
                if t.ndim > 0 or tag == VIRTUAL:  # torch lets 0-dim CPU tensors mix with GPU ones
                    strict.add(tag)
        if len(strict) > 1:
            raise RuntimeError(
                "Expected all tensors to be on the same device (virtual harness), but found at least two "
                f"devices, cpu and {VIRTUAL}! (in {getattr(func, '__name__', func)})"
            )
        tags = strict or ({VIRTUAL} if VIRTUAL in weak else weak)
        dev = kwargs.get("device")
        if dev is not None and torch.device(dev).type in (VIRTUAL, "cpu"):
            tags = {torch.device(dev).type}
            kwargs["device"] = _CPU
        out = func(*args, **kwargs)
        if tags:
            _set_tag(out, tags.pop())
        return out

    def _move(self, func, args: tuple, kwargs: dict) -> Any:
        src = args[0]
        if func is torch.Tensor.cpu:
            dev = _CPU
        elif func is torch.Tensor.cuda:
            raise RuntimeError("library code must not call .cuda() (virtual harness)")
        else:
            dev = _target_device(args, kwargs)
        if dev is None or dev.type not in (VIRTUAL, "cpu"):
            out = func(*args, **kwargs)
            setattr(out, _TAG, _tag(src)) if isinstance(out, torch.Tensor) and _tag(src) else None
            return out
        new = dev.type
        args = tuple(_CPU if isinstance(a, (str, torch.device)) else a for a in args)
        args = tuple(_CPU if (i > 0 and isinstance(a, torch.Tensor)) else a for i, a in enumerate(args))
        if "device" in kwargs:
            kwargs["device"] = _CPU
        out = func(*args, **kwargs) if func is not torch.Tensor.cpu else func(src)
        if (_tag(src) or "cpu") != new and out is src:
            out = src.clone()  # a real move makes a new tensor; the caller's one keeps its device
        if out is not src or _tag(src) is None:
            setattr(out, _TAG, new)
        return out


class VirtualAccelerator:
    """Handle returned by :func:`virtual_accelerator`."""

    device = torch.device(VIRTUAL)

    @staticmethod
    def cpu(obj: Any) -> Any:
        """Mark a tensor, a module (its parameters and buffers) or a nest of tensors as on the CPU."""
        if isinstance(obj, nn.Module):
            for t in list(obj.parameters()) + list(obj.buffers()):
                setattr(t, _TAG, "cpu")
            return obj
        _set_tag(obj, "cpu")
        return obj

    @staticmethod
    def where(obj: Any) -> str:
        """``"cpu"``, ``"xpu"`` or ``"unknown"``: where a tensor or a module's first parameter is."""
        if isinstance(obj, nn.Module):
            obj = next(iter(obj.parameters()))
        return _tag(obj) or "unknown"


@contextlib.contextmanager
def virtual_accelerator(monkeypatch: Any = None) -> Iterator[VirtualAccelerator]:
    """Activate the virtual accelerator (and ``CVLIB_DEVICE=xpu`` when given pytest's monkeypatch)."""
    if monkeypatch is not None:
        monkeypatch.setenv("CVLIB_DEVICE", VIRTUAL)
    with _Mode():
        yield VirtualAccelerator()
