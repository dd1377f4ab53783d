"""Sampling ops against PyTorch references, the adjoint identity, and closed-form counts."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from cvlib.ops.sampling import (
    BilinearUpsample2d,
    DepthwiseConv2d,
    DepthwiseSeparableConv2d,
    DilatedConv2d,
    adjoint_gap,
    bed_of_nails_unpool,
    bilinear_upsample,
    checkerboard_overlap,
    conv2d_mac_count,
    conv2d_param_count,
    effective_kernel_size,
    max_pool_with_indices,
    max_unpool,
    nearest_unpool,
)


def _macs(module, x):
    with FlopCounterMode(display=False) as fc:
        module(x)
    return fc.get_total_flops() // 2  # the counter reports 2 FLOPs per multiply-accumulate


def test_unpooling():
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(nearest_unpool(x, 3), F.interpolate(x, scale_factor=3, mode="nearest"))
    b = bed_of_nails_unpool(x, 2)
    assert b.shape == (2, 3, 8, 10)
    torch.testing.assert_close(b[:, :, ::2, ::2], x)
    assert torch.count_nonzero(b) == x.numel()
    with pytest.raises(ValueError, match="scale must be an int >= 1"):
        nearest_unpool(x, 0)
    with pytest.raises(ValueError, match=r"x must be \[B, C, H, W\]"):
        bed_of_nails_unpool(x[0])


def test_max_unpool_restores_maxima():
    x = torch.randn(2, 3, 6, 7)  # odd width: output_size is needed
    y, idx = max_pool_with_indices(x, 2)
    u = max_unpool(y, idx, 2, output_size=x.shape[-2:])
    assert u.shape == x.shape
    is_max = u != 0
    torch.testing.assert_close(u[is_max], x[is_max])  # the maxima sit where they came from
    assert int(is_max.sum()) == y.numel()
    with pytest.raises(ValueError, match="indices must have the shape"):
        max_unpool(y, idx[:, :1])


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_bilinear_transposed_conv(factor):
    x = torch.randn(1, 2, 6, 6)
    up = BilinearUpsample2d(2, factor, learnable=False)
    y = up(x)
    assert y.shape == (1, 2, 6 * factor, 6 * factor) and not up.weight.requires_grad
    ref = bilinear_upsample(x, scale=factor)
    m = factor  # away from the zero-padded border both interpolate bilinearly
    torch.testing.assert_close(y[..., m:-m, m:-m], ref[..., m:-m, m:-m], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="exactly one of scale and size"):
        bilinear_upsample(x)


@pytest.mark.parametrize("stride,padding,k", [(1, 0, 3), (2, 1, 3), (2, 1, 4), (3, 0, 5)])
def test_transposed_conv_is_adjoint_and_gradient(stride, padding, k):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, k, k, generator=g)
    h = 5
    big = (h - 1) * stride - 2 * padding + k
    x = torch.randn(2, 3, big, big, generator=g, requires_grad=True)
    y = torch.randn(2, 4, h, h, generator=g)
    assert adjoint_gap(x.detach().double(), y.double(), w.double(), stride, padding) < 1e-12
    # "upsample then convolve" is not the adjoint of this convolution: the identity fails for it
    wt = w.transpose(0, 1).flip(-1, -2)
    up = F.conv2d(nearest_unpool(y.double(), stride), wt.double(), padding="same")[..., :big, :big]
    if up.shape == x.shape:
        lhs = (F.conv2d(x.detach().double(), w.double(), stride=stride, padding=padding) * y).sum()
        assert abs(float(lhs - (x.detach().double() * up).sum())) > 1e-3
    with pytest.raises(ValueError, match="conv2d\\(x\\) has shape"):
        adjoint_gap(x.detach(), y[..., :-1], w, stride, padding)
    (grad,) = torch.autograd.grad(F.conv2d(x, w, stride=stride, padding=padding), x, y)
    torch.testing.assert_close(grad, F.conv_transpose2d(y, w, stride=stride, padding=padding))


def test_checkerboard_only_when_kernel_not_divisible_by_stride():
    even = checkerboard_overlap(4, 2, size=8)[3:-3, 3:-3]
    odd = checkerboard_overlap(3, 2, size=8)[3:-3, 3:-3]
    assert torch.all(even == even[0, 0])  # uniform overlap: no artifact
    assert set(odd.unique().tolist()) == {1.0, 2.0, 4.0}  # 1/2/4 taps in a 2x2 period
    assert checkerboard_overlap(3, 2, size=8).shape == (17, 17)


def test_dilated_conv():
    conv = DilatedConv2d(1, 1, 3, dilation=4, bias=False)
    torch.nn.init.ones_(conv.weight)
    impulse = torch.zeros(1, 1, 21, 21)
    impulse[..., 10, 10] = 1
    out = conv(impulse)
    assert out.shape == impulse.shape
    rows = out[0, 0].abs().sum(1).nonzero().flatten()
    assert int(rows.max() - rows.min()) + 1 == effective_kernel_size(3, 4) == 9
    assert sum(p.numel() for p in conv.parameters()) == 9


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2)])
def test_depthwise_counts_match_module_and_flop_counter(stride, dilation):
    x = torch.randn(1, 16, 15, 15)
    dw = DepthwiseConv2d(16, 3, stride, dilation)
    assert dw.param_count() == sum(p.numel() for p in dw.parameters()) == 16 * 9
    assert dw.mac_count(15, 15) == _macs(dw, x)
    sep = DepthwiseSeparableConv2d(16, 32, 3, stride, dilation)
    assert sep.param_count() == sum(p.numel() for p in sep.parameters())
    assert sep.mac_count(15, 15) == _macs(sep, x)
    plain = DepthwiseSeparableConv2d(16, 32, norm_layer=None, activation=None)
    assert plain.param_count() == sum(p.numel() for p in plain.parameters()) == 16 * 9 + 16 + 16 * 32 + 32
    full = torch.nn.Conv2d(16, 32, 3, padding=1, bias=False)
    assert conv2d_mac_count(16, 32, 3, 15, 15) == _macs(full, x)
    assert conv2d_param_count(16, 32, 3, bias=False) == full.weight.numel()
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv2d_param_count(16, 32, 3, groups=3)
