import pytest
import torch
from torch import nn

from cvlib.ops.connectivity import (
    LocallyConnected2d,
    compare_layer_params,
    conv_params,
    fc_params,
    locally_connected_params,
)
from cvlib.ops.profile import count_parameters as num_params


def _brute_force_lc(layer: LocallyConnected2d, x: torch.Tensor) -> torch.Tensor:
    """Reference: loop over output positions, each with its own kernel."""
    kh, kw = layer.kernel_size
    sh, sw = layer.stride
    ph, pw = layer.padding
    xp = nn.functional.pad(x, (pw, pw, ph, ph))
    oh, ow = layer.out_size
    out = torch.zeros(x.shape[0], layer.out_channels, oh, ow, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].reshape(x.shape[0], -1)
            w = layer.weight[i * ow + j]  # [C_out, C_in*kh*kw]
            out[:, :, i, j] = patch @ w.T
    if layer.bias is not None:
        out = out + layer.bias
    return out


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), (0, 1))])
def test_locally_connected_matches_brute_force(stride, padding):
    torch.manual_seed(0)
    layer = LocallyConnected2d(2, 3, (7, 6), 3, stride=stride, padding=padding)
    x = torch.randn(2, 2, 7, 6)
    torch.testing.assert_close(layer(x), _brute_force_lc(layer, x))


@pytest.mark.parametrize("stride,padding,bias", [(1, 1, True), (2, 0, False), (1, 0, True)])
def test_locally_connected_with_equal_kernels_is_a_convolution(stride, padding, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, bias=bias)
    lc = LocallyConnected2d.from_conv(conv, (9, 8))
    x = torch.randn(2, 3, 9, 8)
    torch.testing.assert_close(lc(x), conv(x))
    # perturbing a single position's kernel changes the output at that position only
    with torch.no_grad():
        lc.weight[0] += 1.0
    diff = (lc(x) - conv(x)).abs().sum(dim=(0, 1))
    assert diff[0, 0] > 1.0 and diff.flatten()[1:].max() < 1e-5


def test_locally_connected_gradients_flow_to_every_position():
    lc = LocallyConnected2d(1, 2, 5, 3, padding=1)
    lc(torch.randn(1, 1, 5, 5)).sum().backward()
    assert (lc.weight.grad.abs().sum(dim=(1, 2)) > 0).all()


def test_locally_connected_rejects_wrong_input_size():
    lc = LocallyConnected2d(1, 2, 5, 3)
    with pytest.raises(ValueError, match=r"x must be \[B, 1, 5, 5\], got \(1, 1, 6, 5\)"):
        lc(torch.randn(1, 1, 6, 5))


def test_from_conv_rejects_grouped_conv():
    with pytest.raises(ValueError, match="groups=1"):
        LocallyConnected2d.from_conv(nn.Conv2d(4, 4, 3, groups=2), 8)


@pytest.mark.parametrize("n,k,s,p", [(32, 5, 1, 0), (16, 7, 2, 3), (9, 3, 1, 1), (7, 3, 2, 0)])
def test_output_size_matches_conv2d(n, k, s, p):
    lc = LocallyConnected2d(1, 2, (n, n + 1), k, stride=s, padding=p)
    conv = nn.Conv2d(1, 2, k, s, p)
    assert lc(torch.zeros(1, 1, n, n + 1)).shape == conv(torch.zeros(1, 1, n, n + 1)).shape


def test_kernel_larger_than_input_is_rejected():
    with pytest.raises(ValueError, match="too small"):
        LocallyConnected2d(1, 1, 3, 5)
    with pytest.raises(ValueError, match="sizes must be positive"):
        compare_layer_params((1, 8, 8), 4, 3, stride=0)


@pytest.mark.parametrize("bias", [True, False])
def test_param_formulas_match_modules(bias):
    c, h, w, c_out, k = 3, 10, 9, 5, 3
    counts = compare_layer_params((c, h, w), c_out, k, stride=1, padding=1, bias=bias)
    conv = nn.Conv2d(c, c_out, k, padding=1, bias=bias)
    lc = LocallyConnected2d(c, c_out, (h, w), k, padding=1, bias=bias)
    oh, ow = lc.out_size
    fc = nn.Linear(c * h * w, c_out * oh * ow, bias=bias)
    assert counts == {
        "fully_connected": num_params(fc),
        "locally_connected": num_params(lc),
        "convolution": num_params(conv),
    }
    # the ratios the chapter states: conv shares one kernel over all H_out * W_out positions
    assert counts["locally_connected"] == oh * ow * counts["convolution"]
    assert counts["convolution"] < counts["locally_connected"] < counts["fully_connected"]


def test_param_formulas_hand_worked():
    # 28x28 grey image -> 32 maps of 26x26 with 3x3 kernels
    assert conv_params(1, 32, 3) == 32 * 9 + 32 == 320
    assert locally_connected_params(1, 32, 3, 26) == 26 * 26 * 320 == 216_320
    assert fc_params(784, 32 * 26 * 26) == 784 * 21_632 + 21_632
    assert conv_params(8, 8, 3, groups=8, bias=False) == num_params(nn.Conv2d(8, 8, 3, groups=8, bias=False))
