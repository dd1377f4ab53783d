"""Convolution arithmetic: output sizes and receptive fields of a sequential stack of conv/pool layers.

Output size of one layer along one axis (Dumoulin and Visin 2016, arXiv:1603.07285):

    out = floor((n + 2p - d(k - 1) - 1) / s) + 1        (ceil instead of floor with ceil_mode)

Receptive field recursion (layer l, with effective kernel k' = d(k - 1) + 1):

    rf_l = rf_{l-1} + (k' - 1) * jump_{l-1}
    jump_l = jump_{l-1} * s
    start_l = start_{l-1} + ((k' - 1) / 2 - p) * jump_{l-1}

with rf_0 = 1, jump_0 = 1, start_0 = 0: ``start`` is the input coordinate of the centre of the first
output unit's receptive field (pixel i has centre i), ``jump`` the input distance between adjacent
output units. Output unit i of layer l sees input pixels ``start + i * jump -+ (rf - 1) / 2``, clipped
to the image (see :func:`rf_span`). With dilation, or strides larger than kernels, the span has holes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from torch import nn

from cvlib._validate import check_float, check_int

__all__ = ["LayerSpec", "layer_specs", "conv_output_size", "receptive_field", "rf_span"]

# Module types that keep the spatial size: skipped when a stack is read from an nn.Module.
_PASS_MODULES = ("activation", "batchnorm", "normalization", "dropout")  # torch.nn.modules.<name>
_PASS_TYPES = (nn.Identity,)


class LayerSpec(NamedTuple):
    """Geometry of one layer along one axis: kernel size, stride, padding, dilation, ceil_mode."""

    kernel_size: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    ceil_mode: bool = False


def _axis(v: int | Sequence[int], axis: int) -> int:
    return int(v[axis]) if isinstance(v, (tuple, list)) else int(v)


def _from_module(m: nn.Module, axis: int) -> list[LayerSpec]:
    if isinstance(m, nn.Sequential):
        return [s for child in m for s in _from_module(child, axis)]
    if isinstance(m, nn.modules.conv._ConvNd):
        if isinstance(m.padding, str):
            raise ValueError(f"padding={m.padding!r} is not supported; give integer padding ({m})")
        return [
            LayerSpec(
                _axis(m.kernel_size, axis),
                _axis(m.stride, axis),
                _axis(m.padding, axis),
                _axis(m.dilation, axis),
            )
        ]
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        return [
            LayerSpec(
                _axis(m.kernel_size, axis),
                _axis(m.stride, axis),
                _axis(m.padding, axis),
                _axis(m.dilation, axis),
                bool(m.ceil_mode),
            )
        ]
    if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        return [
            LayerSpec(
                _axis(m.kernel_size, axis),
                _axis(m.stride, axis),
                _axis(m.padding, axis),
                1,
                bool(m.ceil_mode),
            )
        ]
    kind = type(m).__module__.rsplit(".", 1)[-1]
    if isinstance(m, _PASS_TYPES) or (
        type(m).__module__.startswith("torch.nn.modules") and kind in _PASS_MODULES
    ):
        return []
    raise ValueError(
        f"layers may hold only nn.Sequential, convolutions, max/avg pooling and size-preserving layers "
        f"(activations, norms, dropout), got {type(m).__name__}; pass the conv/pool part or a list of specs"
    )


def layer_specs(layers: nn.Module | Iterable[LayerSpec | Sequence[int]], axis: int = 0) -> list[LayerSpec]:
    """Normalise a stack to a list of :class:`LayerSpec`.

    Args:
        layers: an ``nn.Sequential`` (nested Sequentials are flattened; activations, norms and dropout
            are skipped) or an iterable of ``(kernel, stride, padding, dilation[, ceil_mode])`` tuples
            (trailing entries may be left out: stride 1, padding 0, dilation 1).
        axis (int): for modules with per-axis sizes, 0 = height, 1 = width.

    Raises:
        ValueError: for a layer that is not conv/pool/size-preserving, or a spec with a non-positive
            kernel, stride or dilation, or negative padding.
        TypeError: if ``layers`` is neither a module nor an iterable.
    """
    check_int(axis, "axis", min=0, max=1)
    if isinstance(layers, nn.Module):
        specs = _from_module(layers, axis)
    else:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise TypeError(f"layers must be an nn.Module or a list of specs, got {type(layers).__name__}")
        specs = []
        for i, s in enumerate(layers):
            if not isinstance(s, (tuple, list)) or not 1 <= len(s) <= 5:
                raise ValueError(
                    f"layers[{i}] must be (kernel, stride, padding, dilation[, ceil_mode]), got {s!r}"
                )
            for j, v in enumerate(s):
                if isinstance(v, bool) and j < 4 or not isinstance(v, int):
                    raise TypeError(f"layers[{i}] must hold ints (bool ceil_mode last), got {s!r}")
            specs.append(LayerSpec(*s))
    for i, s in enumerate(specs):
        if s.kernel_size < 1 or s.stride < 1 or s.dilation < 1 or s.padding < 0:
            raise ValueError(
                f"layer {i} needs kernel, stride, dilation >= 1 and padding >= 0, got {tuple(s)}"
            )
    return specs


def _out(n: int, s: LayerSpec) -> int:
    num = n + 2 * s.padding - s.dilation * (s.kernel_size - 1) - 1
    if s.ceil_mode:
        out = math.ceil(num / s.stride) + 1
        if (out - 1) * s.stride >= n + s.padding:  # PyTorch: the last window must start inside the input
            out -= 1
        return out
    return num // s.stride + 1


def conv_output_size(
    in_size: int, layers: nn.Module | Iterable[LayerSpec | Sequence[int]], axis: int = 0
) -> list[int]:
    """Spatial size after each layer of a stack, along one axis.

    Args:
        in_size (int): input size along the axis (e.g. 224).
        layers: see :func:`layer_specs`.
        axis (int): 0 = height, 1 = width (for modules with non-square sizes).

    Returns:
        list[int]: one size per conv/pool layer; the last is the stack's output size.

    Raises:
        ValueError: if ``in_size < 1`` or a layer's output would be empty (naming the layer).

    Example:
        >>> conv_output_size(32, [(5, 1, 0), (2, 2, 0), (5, 1, 0), (2, 2, 0), (5, 1, 0)])  # LeNet-5
        [28, 14, 10, 5, 1]
    """
    check_int(in_size, "in_size", min=1)
    check_int(axis, "axis", min=0, max=1)
    sizes, n = [], in_size
    for i, s in enumerate(layer_specs(layers, axis)):
        n_new = _out(n, s)
        if n_new < 1:
            raise ValueError(
                f"layer {i} {tuple(s)} gets size {n} and would output {n_new} < 1; the input is too small"
            )
        sizes.append(n_new)
        n = n_new
    return sizes


def receptive_field(
    layers: nn.Module | Iterable[LayerSpec | Sequence[int]], axis: int = 0
) -> list[tuple[int, int, float]]:
    """Receptive field size, jump and start after each layer (see the module docstring).

    Returns:
        list[tuple[int, int, float]]: ``(rf, jump, start)`` per conv/pool layer, in input pixels.

    Example:
        >>> receptive_field([(3, 1, 1), (3, 1, 1)])[-1]  # two stacked 3x3 = one 5x5
        (5, 1, 0.0)
    """
    rf, jump, start = 1, 1, 0.0
    out = []
    for s in layer_specs(layers, axis):
        k = s.dilation * (s.kernel_size - 1) + 1
        start = start + ((k - 1) / 2 - s.padding) * jump
        rf = rf + (k - 1) * jump
        jump = jump * s.stride
        out.append((rf, jump, start))
    return out


def rf_span(rf: int, jump: int, start: float, index: int, in_size: int | None = None) -> tuple[int, int]:
    """Input pixel range ``(first, last)`` (inclusive) seen by output unit ``index``, clipped to
    ``[0, in_size - 1]`` when ``in_size`` is given."""
    check_int(rf, "rf", min=1)
    check_int(jump, "jump", min=1)
    check_float(start, "start")
    check_int(index, "index", min=0)
    if in_size is not None:
        check_int(in_size, "in_size", min=1)
    centre = start + index * jump
    lo, hi = round(centre - (rf - 1) / 2), round(centre + (rf - 1) / 2)
    if in_size is not None:
        lo, hi = max(lo, 0), min(hi, in_size - 1)
    return lo, hi
