"""Deformable convolution in pure PyTorch (Dai et al. 2017, "Deformable Convolutional Networks",
arXiv:1703.06211; the modulated form of Zhu et al. 2019, "Deformable ConvNets v2", arXiv:1811.11168).

A k x k convolution reads its input at the regular grid ``p0 + p_k`` (``p_k`` the kernel tap positions,
scaled by the dilation). A deformable convolution adds a learned, per-output-location offset ``dp_k`` and,
in v2, multiplies each sample by a modulation scalar ``m_k`` in [0, 1]:

    y(p0) = sum_k w_k * m_k * x(p0 + p_k + dp_k)

where ``x(.)`` at a fractional position is bilinear interpolation of the four neighbouring pixels, each
neighbour outside the image counting as zero.

Layout (the same as ``torchvision.ops.deform_conv2d``, so the two are interchangeable):

- ``offset`` is Tensor[B, 2 * offset_groups * kh * kw, H_out, W_out]; channel ``2 * (g * kh * kw + k)``
  holds dy and channel ``2 * (g * kh * kw + k) + 1`` holds dx for offset group ``g`` and kernel tap
  ``k = i * kw + j`` (row i, column j), in input pixels.
- ``mask`` is Tensor[B, offset_groups * kh * kw, H_out, W_out], channel ``g * kh * kw + k``.
- Input channel ``c`` belongs to offset group ``c // (C_in / offset_groups)``.

The implementation is im2col-style: all ``kh * kw`` samples are drawn at once with ``F.grid_sample``
(bilinear, zero padding, ``align_corners=False`` in pixel-centre coordinates) and contracted with the
weights by one batched matmul, so it runs on any device and dtype and is differentiable with respect to
input, offset, mask, weight and bias. Memory is that of an unfolded convolution:
B * C_in * kh * kw * H_out * W_out elements.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib._validate import check_int, check_tensor

__all__ = ["deform_conv2d", "DeformConv2d", "sampling_locations"]


def _pair(v: int | tuple[int, int], name: str, minimum: int = 1) -> tuple[int, int]:
    def ok(t: object) -> bool:
        return isinstance(t, int) and not isinstance(t, bool)

    if ok(v):
        pair = (int(v), int(v))  # type: ignore[arg-type]
    elif isinstance(v, tuple | list) and len(v) == 2 and all(ok(t) for t in v):
        pair = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return pair


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def sampling_locations(
    offset: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """Absolute input positions read by a deformable convolution.

    Args:
        offset (Tensor[B, 2 * G * kh * kw, H_out, W_out]): (dy, dx) pairs, layout as in the module docstring.
        kernel_size, stride, padding, dilation: as for the convolution.

    Returns:
        Tensor[B, G, kh * kw, H_out, W_out, 2]: (y, x) in input pixel coordinates (pixel centres at integers).
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding", 0)
    dh, dw = _pair(dilation, "dilation")
    check_tensor(
        offset, "offset", ndim=4, dtype="float", finite=True, shape="[B, 2 * G * kh * kw, H_out, W_out]"
    )
    if offset.ndim != 4 or offset.shape[1] % (2 * kh * kw) != 0:
        raise ValueError(
            f"offset must be [B, 2 * offset_groups * {kh * kw}, H_out, W_out], got {tuple(offset.shape)}"
        )
    b, _, ho, wo = offset.shape
    g = offset.shape[1] // (2 * kh * kw)
    off = offset.view(b, g, kh * kw, 2, ho, wo).movedim(3, -1)  # [B, G, K, Ho, Wo, 2]
    dev, dt = offset.device, offset.dtype
    oy = torch.arange(ho, device=dev, dtype=dt) * sh - ph  # [Ho]
    ox = torch.arange(wo, device=dev, dtype=dt) * sw - pw  # [Wo]
    ky = (torch.arange(kh, device=dev, dtype=dt) * dh).repeat_interleave(kw)  # [K] row offsets of the taps
    kx = (torch.arange(kw, device=dev, dtype=dt) * dw).repeat(kh)  # [K] column offsets of the taps
    base_y = ky[:, None, None] + oy[None, :, None]  # [K, Ho, 1]
    base_x = kx[:, None, None] + ox[None, None, :]  # [K, 1, Wo]
    base = torch.stack(torch.broadcast_tensors(base_y, base_x), dim=-1)  # [K, Ho, Wo, 2]
    return base + off


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """Deformable convolution (v1; v2 when ``mask`` is given), same signature as torchvision's.

    Args:
        input (Tensor[B, C_in, H, W]): input features (any float dtype, any device).
        offset (Tensor[B, 2 * G * kh * kw, H_out, W_out]): (dy, dx) per offset group G and kernel tap.
        weight (Tensor[C_out, C_in / groups, kh, kw]): convolution weights; ``groups`` is inferred.
        bias (Tensor[C_out] | None): optional bias.
        stride, padding, dilation (int | tuple[int, int]): as for ``nn.Conv2d``.
        mask (Tensor[B, G * kh * kw, H_out, W_out] | None): modulation scalars (DCN v2).

    Returns:
        Tensor[B, C_out, H_out, W_out].
    """
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding", 0)
    dh, dw = _pair(dilation, "dilation")
    check_tensor(input, "input", ndim=4, dtype="float", shape="[B, C_in, H, W]")
    check_tensor(
        offset, "offset", ndim=4, dtype="float", finite=True, shape="[B, 2 * G * kh * kw, H_out, W_out]"
    )
    check_tensor(
        weight, "weight", ndim=4, dtype="float", nonempty=True, shape="[C_out, C_in / groups, kh, kw]"
    )
    if bias is not None:
        check_tensor(bias, "bias", ndim=1, dtype="float", shape="[C_out]")
    if mask is not None:
        check_tensor(mask, "mask", ndim=4, dtype="float", shape="[B, G * kh * kw, H_out, W_out]")
    if input.ndim != 4:
        raise ValueError(f"input must be [B, C_in, H, W], got {tuple(input.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"weight must be [C_out, C_in / groups, kh, kw], got {tuple(weight.shape)}")
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(
            f"stride and dilation must be >= 1 and padding >= 0, got {(sh, sw)}, {(dh, dw)}, {(ph, pw)}"
        )
    b, c_in, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    if c_per_group == 0 or c_in % c_per_group != 0:
        raise ValueError(f"input channels ({c_in}) must be a multiple of weight.shape[1] ({c_per_group})")
    groups = c_in // c_per_group
    if c_out % groups != 0:
        raise ValueError(f"weight.shape[0] ({c_out}) must be divisible by groups ({groups})")
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"the output would be empty ({ho}x{wo}) for input {h}x{w} and kernel {kh}x{kw}")
    k = kh * kw
    if offset.ndim != 4 or offset.shape[0] != b or offset.shape[2:] != (ho, wo) or offset.shape[1] % (2 * k):
        raise ValueError(
            f"offset must be [{b}, 2 * offset_groups * {k}, {ho}, {wo}], got {tuple(offset.shape)}"
        )
    g = offset.shape[1] // (2 * k)
    if g == 0 or c_in % g != 0:
        raise ValueError(f"offset_groups ({g}, from offset.shape[1]) must be >= 1 and divide C_in ({c_in})")
    if mask is not None and tuple(mask.shape) != (b, g * k, ho, wo):
        raise ValueError(f"mask must be [{b}, {g * k}, {ho}, {wo}], got {tuple(mask.shape)}")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must be [{c_out}], got {tuple(bias.shape)}")

    loc = sampling_locations(offset, (kh, kw), (sh, sw), (ph, pw), (dh, dw))  # [B, G, K, Ho, Wo, 2] (y, x)
    # grid_sample wants (x, y) normalised so that pixel centre p maps to (2p + 1) / size - 1.
    scale = torch.tensor([2.0 / w, 2.0 / h], device=loc.device, dtype=loc.dtype)
    grid = (loc.flip(-1) * scale + (scale / 2 - 1)).reshape(b * g, k * ho, wo, 2)  # [B*G, K*Ho, Wo, 2]
    x = input.reshape(b * g, c_in // g, h, w)  # [B*G, C_in/G, H, W]
    cols = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = cols.view(b, g, c_in // g, k, ho, wo)  # [B, G, C_in/G, K, Ho, Wo]
    if mask is not None:
        cols = cols * mask.view(b, g, 1, k, ho, wo)
    cols = cols.reshape(b, groups, c_per_group * k, ho * wo)  # [B, groups, C_in/groups * K, L]
    wmat = weight.reshape(groups, c_out // groups, c_per_group * k)  # [groups, C_out/groups, C_in/groups * K]
    out = torch.matmul(wmat, cols).reshape(b, c_out, ho, wo)  # [B, C_out, Ho, Wo]
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """Deformable convolution layer (arXiv:1703.06211; modulated v2 with a mask, arXiv:1811.11168).

    Holds ``weight`` [C_out, C_in / groups, kh, kw] and ``bias`` [C_out] initialised like ``nn.Conv2d``;
    the offsets (and mask) are inputs to ``forward``, usually predicted by a plain convolution from the
    same features (initialised to zero, so training starts from the regular grid).

    Args:
        in_channels, out_channels (int): C_in, C_out.
        kernel_size, stride, padding, dilation (int | tuple[int, int]): as for ``nn.Conv2d``.
        groups (int): convolution groups.
        bias (bool): learn a bias.

    Shapes: ``forward(input Tensor[B, C_in, H, W], offset Tensor[B, 2 G kh kw, H_out, W_out],
    mask Tensor[B, G kh kw, H_out, W_out] | None) -> Tensor[B, C_out, H_out, W_out]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", min=1)
        check_int(out_channels, "out_channels", min=1)
        check_int(groups, "groups", min=1)
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by "
                f"groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's default initialisation (Kaiming-uniform with a = sqrt(5)).
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:
        return deform_conv2d(
            input, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask=mask
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )
