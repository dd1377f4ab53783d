"""Tests for the shared blocks in cvlib.models._layers."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cvlib.models._layers import ConvNormAct, SqueezeExcite, StochasticDepth, make_divisible, stochastic_depth


@pytest.mark.parametrize(
    "k,s,d,size", [(3, 1, 1, 9), (3, 2, 1, 9), (5, 2, 1, 10), (3, 1, 2, 8), (1, 2, 1, 7)]
)
def test_conv_norm_act_same_padding(k, s, d, size):
    m = ConvNormAct(4, 6, k, stride=s, dilation=d).eval()
    y = m(torch.randn(2, 4, size, size))
    assert y.shape == (2, 6, -(-size // s), -(-size // s))  # "same" padding: ceil(size / stride)


def test_conv_norm_act_matches_manual_composition():
    torch.manual_seed(0)
    m = ConvNormAct(3, 5, 3, stride=2, groups=1).eval()
    nn.init.normal_(m[1].running_mean)
    m[1].running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 8, 8)
    conv, bn = m[0], m[1]
    ref = F.conv2d(x, conv.weight, None, 2, 1)
    ref = (ref - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    ref = torch.relu(ref * bn.weight[:, None, None] + bn.bias[:, None, None])
    torch.testing.assert_close(m(x), ref)


def test_conv_norm_act_keys_and_bias():
    assert list(ConvNormAct(3, 8, 3).state_dict())[:2] == ["0.weight", "1.weight"]
    assert ConvNormAct(3, 8, 3)[0].bias is None  # a norm follows: no bias
    plain = ConvNormAct(3, 8, 3, norm_layer=None, activation=None)
    assert len(plain) == 1 and plain[0].bias is not None
    assert isinstance(ConvNormAct(3, 8, 1, activation=nn.SiLU)[2], nn.SiLU)
    assert isinstance(ConvNormAct(3, 8, 1, activation=nn.GELU)[2], nn.GELU)  # no `inplace` argument
    dw = ConvNormAct(8, 8, 3, groups=8)
    assert dw[0].weight.shape == (8, 1, 3, 3)


def test_conv_norm_act_rejects_bad_groups():
    with pytest.raises(ValueError, match="divisible by groups"):
        ConvNormAct(6, 8, 3, groups=4)


def test_squeeze_excite_keys_and_formula():
    torch.manual_seed(0)
    se = SqueezeExcite(8, 2)
    assert list(se.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    x = torch.randn(3, 8, 5, 4)
    pooled = x.mean(dim=(2, 3))  # [B, C]
    hidden = torch.relu(pooled @ se.fc1.weight[:, :, 0, 0].T + se.fc1.bias)
    gate = torch.sigmoid(hidden @ se.fc2.weight[:, :, 0, 0].T + se.fc2.bias)  # [B, C]
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])
    s = se.scale(x)
    assert s.shape == (3, 8, 1, 1) and bool(((s > 0) & (s < 1)).all())


def test_squeeze_excite_custom_activation_and_validation():
    se = SqueezeExcite(8, 2, activation=nn.SiLU, gate=nn.Hardsigmoid)
    assert isinstance(se.act, nn.SiLU) and isinstance(se.gate, nn.Hardsigmoid)
    with pytest.raises(ValueError, match="squeeze_channels"):
        SqueezeExcite(8, 0)


@pytest.mark.parametrize(
    "v,divisor,min_value,expected",
    [
        (32 * 0.35, 8, None, 16),  # 11.2 -> 8 would lose > 10%, so one step up
        (32 * 0.75, 8, None, 24),
        (1280 * 1.4, 8, None, 1792),
        (3, 8, None, 8),  # never below min_value (= divisor)
        (17, 8, None, 16),  # 16 >= 0.9 * 17
        (13, 8, None, 16),  # rounds to nearest
        (20, 8, 32, 32),
        (44.8, 8, None, 48),
    ],
)
def test_make_divisible(v, divisor, min_value, expected):
    got = make_divisible(v, divisor, min_value)
    assert got == expected and got % divisor == 0 and got >= 0.9 * v


def test_make_divisible_rejects_bad_divisor():
    with pytest.raises(ValueError, match="divisor"):
        make_divisible(10, 0)


def test_stochastic_depth_row_mode():
    torch.manual_seed(0)
    x = torch.ones(4000, 3, 2, 2)
    sd = StochasticDepth(0.25, "row").train()
    y = sd(x)
    per_sample = y.flatten(1)
    # each sample is dropped (0) or kept and rescaled by 1 / (1 - p), all of its elements together
    assert bool(((per_sample == 0) | (per_sample == 1 / 0.75)).all())
    assert bool((per_sample.amin(1) == per_sample.amax(1)).all())
    dropped = (per_sample[:, 0] == 0).float().mean().item()
    assert abs(dropped - 0.25) < 0.03
    assert abs(y.mean().item() - 1.0) < 0.05  # unbiased in expectation
    assert torch.equal(sd.eval()(x), x)


def test_stochastic_depth_batch_mode_and_edges():
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    outs = {stochastic_depth(x, 0.5, "batch").abs().sum().item() == 0 for _ in range(50)}
    assert outs == {True, False}  # the whole batch is dropped, or none of it
    assert torch.equal(stochastic_depth(x, 1.0, "row"), torch.zeros_like(x))
    assert torch.equal(stochastic_depth(x, 0.0, "row"), x)
    assert torch.equal(stochastic_depth(x, 0.9, "row", training=False), x)


def test_stochastic_depth_validation():
    with pytest.raises(ValueError, match="p must be in"):
        StochasticDepth(1.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        StochasticDepth(0.1, "col")
    with pytest.raises(ValueError, match="mode must be one of"):
        stochastic_depth(torch.ones(2), 0.1, "col")
