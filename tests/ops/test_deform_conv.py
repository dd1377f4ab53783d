"""Tests for cvlib.ops.deform_conv: against nn.Conv2d, shifted inputs, a brute-force bilinear reference,
gradcheck, and torchvision.ops.deform_conv2d where torchvision imports."""

import math

import pytest
import torch
import torch.nn.functional as F

from cvlib.ops.deform_conv import DeformConv2d, deform_conv2d, sampling_locations


def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def bilinear(img, y, x):
    """Brute-force bilinear sample of img [C, H, W] at (y, x); neighbours outside the image count 0."""
    c, h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    val = torch.zeros(c, dtype=img.dtype)
    for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
        if 0 <= yy < h and 0 <= xx < w:
            val += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[:, yy, xx]
    return val


def brute_force(x, offset, weight, bias, stride, padding, dilation, mask=None):
    """y[b, o, i, j] = sum_{c, k} w[o, c, k] * m_k * x_c(p0 + p_k + dp_k), one output pixel at a time."""
    b, c_in, h, w = x.shape
    c_out, cpg, kh, kw = weight.shape
    groups = c_in // cpg
    g_off = offset.shape[1] // (2 * kh * kw)
    ho, wo = offset.shape[2:]
    out = torch.zeros(b, c_out, ho, wo, dtype=x.dtype)
    for n in range(b):
        for i in range(ho):
            for j in range(wo):
                cols = torch.zeros(c_in, kh * kw, dtype=x.dtype)
                for g in range(g_off):
                    chans = slice(g * c_in // g_off, (g + 1) * c_in // g_off)
                    for ki in range(kh):
                        for kj in range(kw):
                            k = ki * kw + kj
                            dy = offset[n, 2 * (g * kh * kw + k), i, j].item()
                            dx = offset[n, 2 * (g * kh * kw + k) + 1, i, j].item()
                            y = i * stride - padding + ki * dilation + dy
                            xx = j * stride - padding + kj * dilation + dx
                            v = bilinear(x[n, chans], y, xx)
                            if mask is not None:
                                v = v * mask[n, g * kh * kw + k, i, j]
                            cols[chans, k] = v
                for o in range(c_out):
                    grp = o // (c_out // groups)
                    out[n, o, i, j] = (weight[o].reshape(cpg, -1) * cols[grp * cpg : (grp + 1) * cpg]).sum()
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


@pytest.mark.parametrize(
    "stride,padding,dilation,groups", [(1, 0, 1, 1), (1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, 0, 1, 2)]
)
def test_zero_offsets_equal_conv2d(stride, padding, dilation, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 8)
    conv = torch.nn.Conv2d(4, 6, 3, stride, padding, dilation, groups)
    ho, wo = out_size(9, 3, stride, padding, dilation), out_size(8, 3, stride, padding, dilation)
    offset = torch.zeros(2, 2 * 9, ho, wo)
    got = deform_conv2d(x, offset, conv.weight, conv.bias, stride, padding, dilation)
    torch.testing.assert_close(got, conv(x), atol=1e-5, rtol=1e-5)


def test_module_with_zero_offsets_equals_conv2d():
    torch.manual_seed(0)
    dcn = DeformConv2d(3, 5, (3, 5), stride=(1, 2), padding=(1, 2))
    x = torch.randn(1, 3, 7, 10)
    ref = F.conv2d(x, dcn.weight, dcn.bias, (1, 2), (1, 2))
    offset = torch.zeros(1, 2 * 15, *ref.shape[2:])
    torch.testing.assert_close(dcn(x, offset), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dy,dx", [(1, 0), (0, -2), (2, 1), (-1, -1)])
def test_integer_offsets_equal_conv_on_shifted_input(dy, dx):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    offset = torch.zeros(1, 18, 8, 8, dtype=torch.float64)
    offset[:, 0::2], offset[:, 1::2] = dy, dx  # every tap moves by (dy, dx)
    got = deform_conv2d(x, offset, weight, padding=1)
    # reading at p + (dy, dx) is a convolution of the zero-padded input shifted by (-dy, -dx),
    # with zeros coming in where the shift runs past the padded border
    padded = F.pad(x, (1, 1, 1, 1))
    shifted = torch.zeros_like(padded)
    h, w = padded.shape[2:]
    shifted[..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = padded[
        ..., max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    torch.testing.assert_close(got, F.conv2d(shifted, weight))


@pytest.mark.parametrize(
    "stride,padding,dilation,groups,offset_groups,use_mask",
    [(1, 1, 1, 1, 1, False), (2, 1, 1, 1, 1, True), (1, 0, 2, 2, 1, False), (1, 1, 1, 1, 2, True)],
)
def test_random_fractional_offsets_match_brute_force(
    stride, padding, dilation, groups, offset_groups, use_mask
):
    torch.manual_seed(1)
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    weight = torch.randn(4, 4 // groups, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    ho, wo = out_size(6, 3, stride, padding, dilation), out_size(5, 3, stride, padding, dilation)
    offset = torch.randn(2, 2 * offset_groups * 9, ho, wo, dtype=torch.float64) * 2.5  # some land outside
    mask = torch.rand(2, offset_groups * 9, ho, wo, dtype=torch.float64) if use_mask else None
    got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask=mask)
    ref = brute_force(x, offset, weight, bias, stride, padding, dilation, mask)
    torch.testing.assert_close(got, ref)


def test_samples_far_outside_are_zero():
    x = torch.randn(1, 1, 4, 4)
    weight = torch.ones(1, 1, 1, 1)
    offset = torch.full((1, 2, 4, 4), 10.0)  # every sample 10 pixels below/right of the image
    assert torch.equal(deform_conv2d(x, offset, weight), torch.zeros(1, 1, 4, 4))


def test_mask_of_ones_equals_no_mask_and_zero_mask_gives_bias():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    weight, bias = torch.randn(4, 3, 3, 3), torch.randn(4)
    offset = torch.randn(2, 18, 4, 4)
    no_mask = deform_conv2d(x, offset, weight, bias)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, bias, mask=torch.ones(2, 9, 4, 4)), no_mask)
    zero = deform_conv2d(x, offset, weight, bias, mask=torch.zeros(2, 9, 4, 4))
    torch.testing.assert_close(zero, bias.view(1, 4, 1, 1).expand(2, 4, 4, 4))


def test_gradcheck_input_offset_mask_weight():
    torch.manual_seed(0)
    dt = torch.float64
    x = torch.randn(1, 2, 4, 4, dtype=dt, requires_grad=True)
    weight = torch.randn(2, 2, 2, 2, dtype=dt, requires_grad=True)
    bias = torch.randn(2, dtype=dt, requires_grad=True)
    # fractional offsets away from integers (the bilinear kernel has kinks at integer positions)
    offset = torch.randint(-2, 2, (1, 8, 3, 3)).to(dt) + 0.2 + 0.6 * torch.rand(1, 8, 3, 3, dtype=dt)
    offset.requires_grad_(True)
    mask = torch.rand(1, 4, 3, 3, dtype=dt, requires_grad=True)

    def f(x, offset, weight, bias, mask):
        return deform_conv2d(x, offset, weight, bias, padding=0, mask=mask)

    assert torch.autograd.gradcheck(f, (x, offset, weight, bias, mask))


def test_gradient_reaches_offsets():
    dcn = DeformConv2d(2, 2, 3, padding=1)
    x = torch.randn(1, 2, 5, 5)
    offset = torch.full((1, 18, 5, 5), 0.3, requires_grad=True)
    dcn(x, offset).square().sum().backward()
    assert offset.grad is not None and offset.grad.abs().sum() > 0


def test_sampling_locations_layout():
    offset = torch.zeros(1, 2 * 9, 2, 2)
    offset[0, 2 * 4] = 0.5  # dy of the centre tap (k = 4)
    offset[0, 2 * 4 + 1] = -1.0  # dx of the centre tap
    loc = sampling_locations(offset, 3, stride=2, padding=1)
    assert loc.shape == (1, 1, 9, 2, 2, 2)
    assert loc[0, 0, 0, 0, 0].tolist() == [-1.0, -1.0]  # top-left tap of output (0, 0)
    assert loc[0, 0, 2, 1, 1].tolist() == [1.0, 3.0]  # top-right tap of output (1, 1): (2 - 1, 2 - 1 + 2)
    assert loc[0, 0, 4, 1, 0].tolist() == [2.5, -1.0]  # centre tap (2, 0) moved by (0.5, -1)


def test_follows_input_dtype():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    y = deform_conv2d(
        x, torch.zeros(1, 18, 3, 3, dtype=torch.float64), torch.randn(2, 2, 3, 3, dtype=torch.float64)
    )
    assert y.dtype == torch.float64


def test_validation_errors():
    x, w = torch.randn(1, 4, 6, 6), torch.randn(4, 4, 3, 3)
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d(x, torch.zeros(1, 17, 4, 4), w)
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d(x, torch.zeros(1, 18, 5, 5), w)  # wrong output size
    with pytest.raises(ValueError, match="offset_groups"):
        deform_conv2d(x, torch.zeros(1, 54, 4, 4), w)  # 3 offset groups do not divide 4 channels
    with pytest.raises(ValueError, match="mask must be"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), w, mask=torch.ones(1, 18, 4, 4))
    with pytest.raises(ValueError, match="input must be"):
        deform_conv2d(x[0], torch.zeros(1, 18, 4, 4), w)
    with pytest.raises(ValueError, match="multiple of weight.shape"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), torch.randn(4, 3, 3, 3))
    with pytest.raises(ValueError, match="bias must be"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), w, torch.zeros(3))
    with pytest.raises(TypeError, match="stride"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), w, stride="2")
    with pytest.raises(ValueError, match="divisible by groups"):
        DeformConv2d(4, 6, 3, groups=4)


@pytest.mark.parametrize("offset_groups,use_mask,groups", [(1, False, 1), (2, True, 2)])
def test_matches_torchvision_when_available(offset_groups, use_mask, groups):
    tvops = pytest.importorskip("torchvision.ops")
    torch.manual_seed(0)
    x = torch.randn(2, 4, 7, 6)
    weight, bias = torch.randn(6, 4 // groups, 3, 3), torch.randn(6)
    offset = torch.randn(2, 2 * offset_groups * 9, 4, 3) * 2
    mask = torch.rand(2, offset_groups * 9, 4, 3) if use_mask else None
    got = deform_conv2d(x, offset, weight, bias, stride=2, padding=1, dilation=1, mask=mask)
    ref = tvops.deform_conv2d(x, offset, weight, bias, stride=2, padding=1, dilation=1, mask=mask)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_empty_batch_gives_empty_output():
    y = deform_conv2d(torch.randn(0, 4, 6, 6), torch.zeros(0, 18, 4, 4), torch.randn(2, 4, 3, 3))
    assert y.shape == (0, 2, 4, 4)
