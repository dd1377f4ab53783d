"""Up- and down-sampling operations of encoder-decoder segmentation networks, and cheap convolutions.

* Unpooling: nearest ("repeat") and bed-of-nails (value in one corner, zeros elsewhere), and max
  unpooling with the pooling switches of Zeiler & Fergus 2014 (arXiv:1311.2901) as reused by SegNet
  (Badrinarayanan et al. 2017, arXiv:1511.00561).
* Bilinear upsampling, and the bilinear kernel FCN uses to initialise its transposed convolutions
  (Long et al. 2015, arXiv:1411.4038).
* Transposed convolution: it is the adjoint (and so the input gradient) of a strided convolution
  (Dumoulin & Visin 2016, arXiv:1603.07285); :func:`adjoint_gap` measures that numerically, and
  :func:`checkerboard_overlap` shows the uneven overlap behind checkerboard artifacts when the kernel
  size is not a multiple of the stride (Odena et al. 2016, "Deconvolution and checkerboard artifacts").
* Dilated (atrous) convolution (Yu & Koltun 2016, arXiv:1511.07122; Chen et al., arXiv:1606.00915).
* Depthwise and depthwise-separable convolution (Chollet 2017, arXiv:1610.02357; Howard et al. 2017,
  arXiv:1704.04861) with closed-form parameter and multiply-accumulate (MAC) counts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib._validate import check_float, check_int, check_tensor

__all__ = [
    "nearest_unpool",
    "bed_of_nails_unpool",
    "max_pool_with_indices",
    "max_unpool",
    "bilinear_upsample",
    "bilinear_kernel",
    "BilinearUpsample2d",
    "adjoint_gap",
    "checkerboard_overlap",
    "effective_kernel_size",
    "conv2d_param_count",
    "conv2d_mac_count",
    "DilatedConv2d",
    "DepthwiseConv2d",
    "DepthwiseSeparableConv2d",
]


def _check_map(x: Tensor, name: str = "x", *, nonempty: bool = True) -> None:
    check_tensor(x, name, ndim=4, dtype="float", nonempty=nonempty, shape="[B, C, H, W]")


def _check_scale(scale: int, name: str = "scale") -> None:
    check_int(scale, name, min=1)


def _check_counts(**values: int) -> None:
    for name, v in values.items():
        check_int(v, name, min=1)


def nearest_unpool(x: Tensor, scale: int = 2) -> Tensor:
    """Nearest-neighbour unpooling: each value fills a ``scale x scale`` block.

    Args:
        x (Tensor[B, C, H, W]): feature map.
        scale: integer factor.

    Returns:
        Tensor[B, C, H*scale, W*scale].
    """
    _check_map(x)
    _check_scale(scale)
    return x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)


def bed_of_nails_unpool(x: Tensor, scale: int = 2) -> Tensor:
    """Bed-of-nails unpooling: each value goes to the top-left of its block, the rest are zeros.

    Args:
        x (Tensor[B, C, H, W]): feature map.
        scale: integer factor.

    Returns:
        Tensor[B, C, H*scale, W*scale].
    """
    _check_map(x)
    _check_scale(scale)
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, h * scale, w * scale)
    out[:, :, ::scale, ::scale] = x
    return out


def max_pool_with_indices(
    x: Tensor, kernel_size: int = 2, stride: int | None = None
) -> tuple[Tensor, Tensor]:
    """Max pooling that also returns the argmax "switches" (flat indices into each H x W plane).

    Returns:
        (Tensor[B, C, H', W'], Tensor[B, C, H', W'] int64).
    """
    _check_map(x)
    check_int(kernel_size, "kernel_size", min=1)
    if stride is not None:
        check_int(stride, "stride", min=1)
    if kernel_size > min(x.shape[-2:]):
        raise ValueError(f"kernel_size {kernel_size} is larger than the map {tuple(x.shape[-2:])}")
    return F.max_pool2d(x, kernel_size, stride, return_indices=True)


def max_unpool(
    x: Tensor,
    indices: Tensor,
    kernel_size: int = 2,
    stride: int | None = None,
    output_size: tuple[int, int] | None = None,
) -> Tensor:
    """Max unpooling: put each value back where the matching max pooling found its maximum.

    Args:
        x (Tensor[B, C, h, w]): values to place (e.g. decoder features).
        indices (Tensor[B, C, h, w]): int64 switches from :func:`max_pool_with_indices`.
        output_size: (H, W) of the map before pooling; needed when H or W was odd.

    Returns:
        Tensor[B, C, H, W], zero except at the switch positions.
    """
    _check_map(x)
    check_tensor(indices, "indices", dtype="int", shape="[B, C, h, w] int64 switches")
    if indices.shape != x.shape:
        raise ValueError(f"indices must have the shape of x {tuple(x.shape)}, got {tuple(indices.shape)}")
    check_int(kernel_size, "kernel_size", min=1)
    stride = kernel_size if stride is None else check_int(stride, "stride", min=1)
    if output_size is None:
        size = ((x.shape[-2] - 1) * stride + kernel_size, (x.shape[-1] - 1) * stride + kernel_size)
    else:
        if not isinstance(output_size, (tuple, list)) or len(output_size) < 2:
            raise TypeError(f"output_size must be (H, W), got {output_size!r}")
        size = (
            check_int(output_size[-2], "output_size[0]", min=1),
            check_int(output_size[-1], "output_size[1]", min=1),
        )
    if indices.numel():
        lo, hi = (int(v) for v in torch.stack([indices.min(), indices.max()]))
        if lo < 0 or hi >= size[0] * size[1]:
            raise ValueError(
                f"indices must lie in [0, {size[0] * size[1]}) (flat positions in the {size} map), "
                f"got values in [{lo}, {hi}]"
            )
    return F.max_unpool2d(x, indices.long(), kernel_size, stride, output_size=size)


def bilinear_upsample(
    x: Tensor, scale: float | None = None, size: tuple[int, int] | None = None, align_corners: bool = False
) -> Tensor:
    """Bilinear upsampling by ``scale`` or to ``size`` (exactly one of them).

    Returns:
        Tensor[B, C, H', W'].
    """
    _check_map(x)
    if (scale is None) == (size is None):
        raise ValueError(f"give exactly one of scale and size, got scale={scale!r}, size={size!r}")
    if scale is not None:
        check_float(scale, "scale", min=0, min_open=True)
    else:
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise TypeError(f"size must be (H, W), got {size!r}")
        size = (check_int(size[0], "size[0]", min=1), check_int(size[1], "size[1]", min=1))
    return F.interpolate(x, size=size, scale_factor=scale, mode="bilinear", align_corners=align_corners)


def bilinear_kernel(channels: int, kernel_size: int) -> Tensor:
    """Weights that make ``conv_transpose2d(..., stride=f, kernel_size=2f - f % 2)`` bilinear (FCN init).

    Each channel is upsampled on its own (a diagonal weight).

    Returns:
        Tensor[channels, channels, kernel_size, kernel_size].
    """
    _check_counts(channels=channels, kernel_size=kernel_size)
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt1d = 1 - (og - center).abs() / factor
    filt = (filt1d[:, None] * filt1d[None, :]).float()
    w = torch.zeros(channels, channels, kernel_size, kernel_size)
    w[range(channels), range(channels)] = filt
    return w


class BilinearUpsample2d(nn.ConvTranspose2d):
    """Transposed convolution by an integer ``factor``, initialised to bilinear interpolation (FCN).

    Kernel ``2 * factor - factor % 2``, stride ``factor``, padding ``(kernel - factor) // 2``, so
    ``H -> H * factor`` exactly.
    ``learnable=False`` freezes the weight (FCN's final upsampling is fixed bilinear).

    Shapes: Tensor[B, C, H, W] -> Tensor[B, C, H*factor, W*factor].
    """

    def __init__(self, channels: int, factor: int, learnable: bool = True) -> None:
        _check_counts(channels=channels)
        _check_scale(factor, "factor")
        k = 2 * factor - factor % 2
        super().__init__(channels, channels, k, stride=factor, padding=(k - factor) // 2, bias=False)
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, k))
        self.weight.requires_grad_(learnable)


def adjoint_gap(x: Tensor, y: Tensor, weight: Tensor, stride: int = 1, padding: int = 0) -> float:
    """``|<conv2d(x, w), y> - <x, conv_transpose2d(y, w)>|``: zero when the transposed conv is the adjoint.

    ``x`` and ``y`` must have shapes for which ``conv2d(x)`` has the shape of ``y`` and
    ``conv_transpose2d(y)`` the shape of ``x`` (pass ``H = (h - 1) * stride - 2 * padding + k``).

    Returns:
        float: the absolute gap, relative to ``|<conv2d(x, w), y>|`` + 1.
    """
    _check_map(x)
    _check_map(y, "y")
    check_tensor(weight, "weight", ndim=4, dtype="float", nonempty=True, shape="[C_out, C_in, k, k]")
    _check_counts(stride=stride)
    check_int(padding, "padding", min=0)
    for name, t in (("x", x), ("y", y), ("weight", weight)):
        check_tensor(t, name, finite=True)
    if weight.shape[1] != x.shape[1] or weight.shape[0] != y.shape[1]:
        raise ValueError(
            f"weight [C_out, C_in, k, k] {tuple(weight.shape)} must map x's {x.shape[1]} channels "
            f"to y's {y.shape[1]}"
        )
    if weight.shape[-1] > x.shape[-1] + 2 * padding or weight.shape[-2] > x.shape[-2] + 2 * padding:
        raise ValueError(f"weight {tuple(weight.shape)} is larger than the padded x {tuple(x.shape)}")
    cx = F.conv2d(x, weight, stride=stride, padding=padding)
    if cx.shape != y.shape:
        raise ValueError(f"conv2d(x) has shape {tuple(cx.shape)} but y is {tuple(y.shape)}")
    ty = F.conv_transpose2d(y, weight, stride=stride, padding=padding, output_padding=0)
    if ty.shape != x.shape:
        raise ValueError(f"conv_transpose2d(y) has shape {tuple(ty.shape)} but x is {tuple(x.shape)}")
    lhs = (cx.double() * y.double()).sum()
    rhs = (x.double() * ty.double()).sum()
    return float((lhs - rhs).abs() / (lhs.abs() + 1))


def checkerboard_overlap(kernel_size: int, stride: int, size: int = 8) -> Tensor:
    """How many kernel taps reach each output pixel of a transposed convolution (1D, outer product 2D).

    With an all-ones kernel and an all-ones input this is the output of ``conv_transpose2d``; it is
    uniform away from the border only when ``kernel_size`` is divisible by ``stride``. Otherwise the
    periodic unevenness is the checkerboard pattern (Odena et al. 2016).

    Returns:
        Tensor[H', W'] float with ``H' = (size - 1) * stride + kernel_size``.
    """
    _check_counts(kernel_size=kernel_size, stride=stride, size=size)
    ones = torch.ones(1, 1, size, size)
    return F.conv_transpose2d(ones, torch.ones(1, 1, kernel_size, kernel_size), stride=stride)[0, 0]


def effective_kernel_size(kernel_size: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``dilation * (kernel_size - 1) + 1``."""
    _check_counts(kernel_size=kernel_size, dilation=dilation)
    return dilation * (kernel_size - 1) + 1


def conv2d_param_count(
    in_channels: int, out_channels: int, kernel_size: int, groups: int = 1, bias: bool = True
) -> int:
    """Parameters of a Conv2d: ``C_out * (C_in / groups) * k^2 (+ C_out bias)``."""
    _check_counts(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, groups=groups)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {bias!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
        )
    return out_channels * (in_channels // groups) * kernel_size**2 + (out_channels if bias else 0)


def conv2d_mac_count(
    in_channels: int, out_channels: int, kernel_size: int, out_h: int, out_w: int, groups: int = 1
) -> int:
    """Multiply-accumulates of a Conv2d (bias ignored): ``H' W' C_out (C_in / groups) k^2``."""
    _check_counts(
        in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, out_h=out_h, out_w=out_w
    )
    _check_counts(groups=groups)
    return out_h * out_w * out_channels * (in_channels // groups) * kernel_size**2


def _out(n: int, k: int, stride: int, dilation: int) -> int:
    pad = dilation * (k - 1) // 2
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


class DilatedConv2d(nn.Conv2d):
    """Atrous convolution with "same" padding: kernel ``k`` spread over ``dilation * (k - 1) + 1`` pixels.

    Same parameter count as the undilated conv, larger receptive field, no resolution loss.
    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, C_out, H, W] (stride 1).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 2, bias: bool = True
    ):
        _check_counts(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size)
        _check_counts(dilation=dilation)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for same padding, got {kernel_size}")
        pad = dilation * (kernel_size - 1) // 2
        super().__init__(in_channels, out_channels, kernel_size, padding=pad, dilation=dilation, bias=bias)


class DepthwiseConv2d(nn.Conv2d):
    """One ``k x k`` filter per channel (``groups = channels``), "same" padding, optional dilation.

    Shapes: Tensor[B, C, H, W] -> Tensor[B, C, H', W'].
    """

    def __init__(
        self, channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1, bias: bool = False
    ):
        _check_counts(channels=channels, kernel_size=kernel_size, stride=stride, dilation=dilation)
        pad = dilation * (kernel_size - 1) // 2
        super().__init__(channels, channels, kernel_size, stride, pad, dilation, groups=channels, bias=bias)

    def param_count(self) -> int:
        """``C k^2 (+ C)``."""
        c, k = self.in_channels, self.kernel_size[0]
        return conv2d_param_count(c, c, k, self.groups, self.bias is not None)

    def mac_count(self, h: int, w: int) -> int:
        """MACs for an ``h x w`` input: ``H' W' C k^2``."""
        k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
        c = self.in_channels
        return conv2d_mac_count(c, c, k, _out(h, k, s, d), _out(w, k, s, d), self.groups)


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise ``k x k`` conv (optionally strided/atrous) then pointwise 1x1 conv (Chollet 2017).

    Each conv is followed by ``norm_layer`` and ``activation`` when given (DeepLab v3+'s "atrous
    separable convolution", arXiv:1802.02611, uses BN + ReLU after both). Replaces a ``k x k`` conv's
    ``C_in C_out k^2`` weights by ``C_in k^2 + C_in C_out``.

    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, C_out, H', W'].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
        activation: Callable[..., nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        _check_counts(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size)
        _check_counts(stride=stride, dilation=dilation)
        bias = norm_layer is None
        self.depthwise = DepthwiseConv2d(in_channels, kernel_size, stride, dilation, bias=bias)
        self.norm1 = norm_layer(in_channels) if norm_layer else nn.Identity()
        self.act1 = activation() if activation else nn.Identity()
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        self.norm2 = norm_layer(out_channels) if norm_layer else nn.Identity()
        self.act2 = activation() if activation else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        _check_map(x)
        if x.shape[1] != self.depthwise.in_channels:
            raise ValueError(f"x must have {self.depthwise.in_channels} channels, got {tuple(x.shape)}")
        x = self.act1(self.norm1(self.depthwise(x)))
        return self.act2(self.norm2(self.pointwise(x)))

    def param_count(self) -> int:
        """``C_in k^2 + C_in C_out`` (+ biases, or 2 affine parameters per channel for each norm)."""
        cin, cout, k = self.depthwise.in_channels, self.pointwise.out_channels, self.depthwise.kernel_size[0]
        bias = self.depthwise.bias is not None
        n = conv2d_param_count(cin, cin, k, cin, bias) + conv2d_param_count(cin, cout, 1, 1, bias)
        if isinstance(self.norm1, nn.BatchNorm2d | nn.GroupNorm | nn.LayerNorm):
            n += 2 * cin + 2 * cout
        return n

    def mac_count(self, h: int, w: int) -> int:
        """MACs for an ``h x w`` input: ``H' W' C_in (k^2 + C_out)`` (norms and activations not counted)."""
        k, s, d = self.depthwise.kernel_size[0], self.depthwise.stride[0], self.depthwise.dilation[0]
        ho, wo = _out(h, k, s, d), _out(w, k, s, d)
        cin, cout = self.depthwise.in_channels, self.pointwise.out_channels
        return conv2d_mac_count(cin, cin, k, ho, wo, cin) + conv2d_mac_count(cin, cout, 1, ho, wo)
