"""Local connectivity and parameter sharing: fully connected vs locally connected vs convolutional.

A *locally connected* layer looks at the same k x k windows as a convolution but learns a separate
kernel for every output position (no weight sharing), as in DeepFace (Taigman et al. 2014) and
the "unshared convolution" of Goodfellow, Bengio & Courville, *Deep Learning* (2016), sec. 9.5.
A convolution shares one kernel across positions (LeCun et al. 1998); a fully connected layer
connects every input value to every output value. The counting functions below give the number
of parameters of the three layers for the same input and output shapes, and the tests check them
against the modules' actual parameter counts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib._validate import check_int
from cvlib.ops.conv_arith import conv_output_size

__all__ = [
    "LocallyConnected2d",
    "fc_params",
    "locally_connected_params",
    "conv_params",
    "compare_layer_params",
]


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(v, bool) or not isinstance(v, (int, tuple, list)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {type(v).__name__}")
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(p, int) and not isinstance(p, bool) for p in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return pair  # type: ignore[return-value]


def _positive_pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    a, b = _pair(v, name)
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be >= 1, got {v!r}")
    return a, b


def _check_bias(bias: object) -> None:
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {bias!r}")


def _output_size(
    in_size: tuple[int, int], kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> tuple[int, int]:
    """(H_out, W_out) of a sliding window, from :func:`cvlib.ops.conv_arith.conv_output_size` per axis."""
    if min(in_size + kernel_size + stride) <= 0 or min(padding) < 0:
        raise ValueError(
            f"sizes must be positive and padding >= 0, got in_size={in_size}, kernel_size={kernel_size}, "
            f"stride={stride}, padding={padding}"
        )
    return tuple(
        conv_output_size(in_size[i], [(kernel_size[i], stride[i], padding[i])])[-1] for i in range(2)
    )


class LocallyConnected2d(nn.Module):
    """2D locally connected layer: a convolution with a different kernel at every output position.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        in_size: input (H, W); the layer has one kernel per output position, so the size is fixed.
        kernel_size, stride, padding: as in :class:`torch.nn.Conv2d` (zero padding).
        bias: learn one bias per output channel *and position* (unshared, like the weights).

    Attributes:
        weight (Tensor[L, C_out, C_in * kh * kw]): one kernel per output position, L = H_out * W_out
            in row-major order.
        bias (Tensor[C_out, H_out, W_out] | None).

    Shapes:
        input ``[B, C_in, H, W]`` -> output ``[B, C_out, H_out, W_out]`` with H_out, W_out from
        :func:`cvlib.ops.conv_arith.conv_output_size`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        in_size: int | tuple[int, int],
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", min=1)
        check_int(out_channels, "out_channels", min=1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size = _pair(in_size, "in_size")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.out_size = _output_size(self.in_size, self.kernel_size, self.stride, self.padding)
        positions = self.out_size[0] * self.out_size[1]
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = nn.Parameter(torch.empty(positions, out_channels, fan_in))
        self.bias = nn.Parameter(torch.empty(out_channels, *self.out_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) ranges as ``nn.Conv2d``'s default init."""
        bound = 1.0 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, in_size: int | tuple[int, int]) -> LocallyConnected2d:
        """A locally connected layer whose kernels all equal ``conv``'s (so it computes the same map).

        Raises:
            ValueError: for a conv with groups, dilation or a non-zero padding mode.
        """
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
            raise ValueError("from_conv needs groups=1, dilation=1 and padding_mode='zeros'")
        if isinstance(conv.padding, str):
            raise ValueError(f"from_conv needs an integer padding, got {conv.padding!r}")
        layer = cls(
            conv.in_channels,
            conv.out_channels,
            in_size,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=conv.bias is not None,
        )
        layer = layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(conv.weight.reshape(1, conv.out_channels, -1).expand_as(layer.weight))
            if conv.bias is not None:
                layer.bias.copy_(conv.bias[:, None, None].expand_as(layer.bias))
        return layer

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.in_size:
            raise ValueError(
                f"x must be [B, {self.in_channels}, {self.in_size[0]}, {self.in_size[1]}], "
                f"got {tuple(x.shape)}"
            )
        # cols: [B, C_in*kh*kw, L], one column per output position
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        out = torch.einsum("bfl,lof->bol", cols, self.weight)  # [B, C_out, L]
        out = out.reshape(x.shape[0], self.out_channels, *self.out_size)  # [B, C_out, H_out, W_out]
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, in_size={self.in_size}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"bias={self.bias is not None}"
        )


def fc_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: ``in * out (+ out)``."""
    check_int(in_features, "in_features", min=1)
    check_int(out_features, "out_features", min=1)
    _check_bias(bias)
    return in_features * out_features + (out_features if bias else 0)


def locally_connected_params(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    out_size: int | tuple[int, int],
    bias: bool = True,
) -> int:
    """Parameters of :class:`LocallyConnected2d`: ``H_out * W_out * (C_out * C_in * kh * kw + C_out)``."""
    check_int(in_channels, "in_channels", min=1)
    check_int(out_channels, "out_channels", min=1)
    _check_bias(bias)
    kh, kw = _positive_pair(kernel_size, "kernel_size")
    oh, ow = _positive_pair(out_size, "out_size")
    return oh * ow * (out_channels * in_channels * kh * kw + (out_channels if bias else 0))


def conv_params(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    bias: bool = True,
    groups: int = 1,
) -> int:
    """Parameters of ``nn.Conv2d``: ``C_out * (C_in / groups) * kh * kw (+ C_out)`` (any input size)."""
    check_int(in_channels, "in_channels", min=1)
    check_int(out_channels, "out_channels", min=1)
    check_int(groups, "groups", min=1)
    _check_bias(bias)
    kh, kw = _positive_pair(kernel_size, "kernel_size")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"channels ({in_channels}, {out_channels}) must be divisible by groups={groups}")
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


def compare_layer_params(
    in_shape: tuple[int, int, int],
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    bias: bool = True,
) -> dict[str, int]:
    """Parameter counts of the three layers mapping ``in_shape = (C, H, W)`` to the same output shape.

    Returns:
        ``{"fully_connected": ..., "locally_connected": ..., "convolution": ...}``, where the output
        shape ``(out_channels, H_out, W_out)`` is that of the convolution.
    """
    if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
        raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}")
    c, h, w = (check_int(v, f"in_shape[{i}]", min=1) for i, v in enumerate(in_shape))
    check_int(out_channels, "out_channels", min=1)
    oh, ow = _output_size(
        (h, w), _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(padding, "padding")
    )
    return {
        "fully_connected": fc_params(c * h * w, out_channels * oh * ow, bias),
        "locally_connected": locally_connected_params(c, out_channels, kernel_size, (oh, ow), bias),
        "convolution": conv_params(c, out_channels, kernel_size, bias),
    }
