"""Small input checks shared by cvlib's public entry points.

Every helper raises ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong rank, shape, range or
non-finite values) whose message names the argument, what was expected and what arrived, e.g.
``"images must be a float tensor [B, C, H, W], got torch.uint8 [2, 3, 8, 8]; convert with x.float() / 255"``.
Checks stay vectorised: a range or finiteness test is one reduction on the device (one synchronisation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "check_tensor",
    "check_int",
    "check_float",
    "check_choice",
    "check_class_ids",
    "check_image",
    "describe",
]

_KINDS = {
    "float": lambda t: t.is_floating_point(),
    "int": lambda t: not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool,
    "bool": lambda t: t.dtype == torch.bool,
    "complex": lambda t: t.is_complex(),
}


def describe(x: object) -> str:
    """A short description of ``x`` for error messages: dtype and shape of a tensor, else its type."""
    if isinstance(x, Tensor):
        return f"{x.dtype} {list(x.shape)}"
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"{type(x).__name__} of shape {tuple(shape)}"
    return type(x).__name__


def check_tensor(
    x: object,
    name: str,
    *,
    ndim: int | Iterable[int] | None = None,
    dtype: str | Sequence[str] | None = None,
    finite: bool = False,
    nonempty: bool = False,
    shape: str = "",
) -> Tensor:
    """Check that ``x`` is a tensor of the given rank(s), dtype kind(s) and (optionally) finite.

    Args:
        x: the argument.
        name: its name in messages.
        ndim: allowed rank(s).
        dtype: allowed kind(s): ``"float"``, ``"int"`` (any integer dtype, not bool), ``"bool"``,
            ``"complex"``.
        finite: reject NaN/inf (float tensors only; one reduction).
        nonempty: reject tensors with no element.
        shape: the expected layout for messages, e.g. ``"[B, C, H, W]"``.

    Returns:
        ``x`` unchanged.
    """
    layout = f" {shape}" if shape else ""
    if not isinstance(x, Tensor):
        hint = " (convert with torch.as_tensor)" if hasattr(x, "__len__") or hasattr(x, "shape") else ""
        raise TypeError(f"{name} must be a torch.Tensor{layout}, got {describe(x)}{hint}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            ranks = " or ".join(str(r) for r in allowed)
            what = f"{shape} ({ranks} dimensions)" if shape else f"a tensor with {ranks} dimensions"
            raise ValueError(f"{name} must be {what}, got shape {tuple(x.shape)}")
    if dtype is not None:
        kinds = (dtype,) if isinstance(dtype, str) else tuple(dtype)
        if not any(_KINDS[k](x) for k in kinds):
            raise TypeError(f"{name} must be a {' or '.join(kinds)} tensor{layout}, got dtype {x.dtype}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if finite and x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise ValueError(f"{name} must be finite, got {n_nan} NaN and {n_inf} inf of {x.numel()} values")
    return x


def check_int(x: object, name: str, *, min: int | None = None, max: int | None = None) -> int:
    """Check that ``x`` is an int (not bool) in ``[min, max]``; returns it as int."""
    if isinstance(x, bool) or not isinstance(x, int):
        if isinstance(x, Tensor) and x.numel() == 1 and not x.is_floating_point() and x.dtype != torch.bool:
            x = int(x)
        else:
            raise TypeError(f"{name} must be an int, got {describe(x)} {x!r}")
    if (min is not None and x < min) or (max is not None and x > max):
        if max is None:
            raise ValueError(f"{name} must be an int >= {min}, got {x}")
        if min is None:
            raise ValueError(f"{name} must be an int <= {max}, got {x}")
        raise ValueError(f"{name} must be an int in [{min}, {max}], got {x}")
    return int(x)


def check_float(
    x: object,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
) -> float:
    """Check that ``x`` is a finite real number in ``[min, max]`` (open ends optional)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{name} must be a number, got {describe(x)} {x!r}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    low = min is not None and (x <= min if min_open else x < min)
    high = max is not None and (x >= max if max_open else x > max)
    if low or high:
        lo = "-inf" if min is None else min
        hi = "inf" if max is None else max
        left, right = "(" if min_open else "[", ")" if max_open else "]"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {x}")
    return x


def check_choice(x: object, name: str, choices: Iterable[Any]) -> Any:
    """Check that ``x`` is one of ``choices`` (the message lists them)."""
    choices = tuple(choices)
    try:
        ok = x in choices
    except TypeError:  # unhashable / uncomparable
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {choices}, got {x!r}")
    return x


def check_class_ids(ids: Tensor, name: str, num_classes: int, *, ignore_index: int | None = None) -> None:
    """Check that integer class ids lie in ``[0, num_classes)`` (or equal ``ignore_index``).

    One min/max reduction on the device; the offending value is named.
    """
    if ids.numel() == 0:
        return
    valid = ids if ignore_index is None else ids[ids != ignore_index]
    if valid.numel() == 0:
        return
    lo, hi = (int(v) for v in torch.stack([valid.min(), valid.max()]).cpu())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(f"{name} holds class id {bad}, outside [0, {num_classes}){extra}")


def check_image(
    x: object, name: str = "x", *, ndim: int | Iterable[int] = 4, shape: str = "[B, C, H, W]"
) -> Tensor:
    """Check a float image batch; uint8/integer images get a TypeError telling how to convert.

    cvlib's models never rescale silently: a ``uint8`` image in [0, 255] must be converted by the
    caller (``x.float() / 255``), so that a float image already in [0, 1] is never divided twice.
    """
    if isinstance(x, Tensor) and not x.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor {shape}, got dtype {x.dtype} {list(x.shape)}; "
            "convert an image in [0, 255] with x.float() / 255"
        )
    return check_tensor(x, name, ndim=ndim, dtype="float", shape=shape)
