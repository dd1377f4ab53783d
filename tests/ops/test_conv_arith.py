"""Output-size and receptive-field calculators against real stacks and a brute-force gradient answer."""

import pytest
import torch
from torch import nn

from cvlib.ops.conv_arith import LayerSpec, conv_output_size, layer_specs, receptive_field, rf_span

# (kernel, stride, padding, dilation, ceil_mode) stacks; "pool" entries become AvgPool2d (same geometry
# as max-pool, but every input in the window gets gradient).
STACKS = {
    "vgg_block": [("conv", 3, 1, 1, 1), ("conv", 3, 1, 1, 1), ("pool", 2, 2, 0, 1)],
    "alexnet_stem": [("conv", 11, 4, 2, 1), ("pool", 3, 2, 0, 1), ("conv", 5, 1, 2, 1), ("pool", 3, 2, 0, 1)],
    "resnet_stem": [("conv", 7, 2, 3, 1), ("pool", 3, 2, 1, 1), ("conv", 3, 1, 1, 1), ("conv", 3, 2, 1, 1)],
    "even_kernels": [("conv", 4, 2, 1, 1), ("conv", 2, 1, 0, 1), ("pool", 2, 2, 0, 1)],
    "dilated": [("conv", 3, 1, 2, 2), ("conv", 3, 1, 4, 4), ("conv", 3, 1, 1, 1)],
    "ceil_pool": [("conv", 3, 1, 1, 1), ("pool3", 3, 2, 0, 1)],
}


def _build(stack):
    layers = []
    for kind, k, s, p, d in stack:
        if kind == "conv":
            conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
            nn.init.ones_(conv.weight)
            layers += [conv, nn.ReLU()]
        else:
            layers.append(nn.AvgPool2d(k, s, p, ceil_mode=kind == "pool3"))
    return nn.Sequential(*layers)


def _brute_force_rows(net, size, i):
    """Rows of the input with non-zero gradient for output unit (i, i)."""
    x = torch.rand(1, 1, size, size, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = net.double()(x)
    y[0, 0, i, i].backward()
    g = x.grad[0, 0]
    rows = torch.nonzero(g.abs().sum(1) > 0).flatten().tolist()
    cols = torch.nonzero(g.abs().sum(0) > 0).flatten().tolist()
    assert rows == cols  # square geometry
    return rows


@pytest.mark.parametrize("name", list(STACKS))
def test_output_size_matches_real_stack(name):
    net = _build(STACKS[name])
    for size in (37, 64):
        sizes = conv_output_size(size, net)
        out = net(torch.zeros(1, 1, size, size))
        assert sizes[-1] == out.shape[-1]
        assert len(sizes) == len(STACKS[name])


@pytest.mark.parametrize("name", list(STACKS))
def test_receptive_field_matches_gradient(name):
    net, size = _build(STACKS[name]), 64
    rf, jump, start = receptive_field(net)[-1]
    n_out = conv_output_size(size, net)[-1]
    for i in (0, n_out // 2, n_out - 1):
        rows = _brute_force_rows(net, size, i)
        lo, hi = rf_span(rf, jump, start, i, in_size=size)
        assert (rows[0], rows[-1]) == (lo, hi)
        if name != "dilated":  # dense receptive fields: every pixel in the span contributes
            assert rows == list(range(lo, hi + 1))


def test_known_values():
    # two stacked 3x3 = one 5x5; three stacked 3x3 = one 7x7 (VGG, section 2.3)
    assert receptive_field([(3, 1, 1)] * 2)[-1][0] == 5
    assert receptive_field([(3, 1, 1)] * 3)[-1][0] == 7
    # LeNet-5 on 32x32: C1 28, S2 14, C3 10, S4 5, C5 1 and C5 sees the whole 32x32 input
    lenet = [(5, 1, 0), (2, 2, 0), (5, 1, 0), (2, 2, 0), (5, 1, 0)]
    assert conv_output_size(32, lenet) == [28, 14, 10, 5, 1]
    assert receptive_field(lenet)[-1][:2] == (32, 4)
    # ResNet stem: 7x7/2 then 3x3/2 max-pool, 224 -> 112 -> 56, RF 11, jump 4
    assert conv_output_size(224, [(7, 2, 3), (3, 2, 1)]) == [112, 56]
    assert receptive_field([(7, 2, 3), (3, 2, 1)])[-1][:2] == (11, 4)


def test_module_parsing_skips_size_preserving_layers():
    net = nn.Sequential(
        nn.Conv2d(3, 8, (3, 5), padding=(1, 2)),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(),
        nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)),
        nn.Identity(),
    )
    assert layer_specs(net) == [LayerSpec(3, 1, 1, 1), LayerSpec(2, 2, 0, 1, True)]
    assert layer_specs(net, axis=1)[0] == LayerSpec(5, 1, 2, 1)


def test_errors():
    with pytest.raises(ValueError, match="got Flatten"):
        layer_specs(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="kernel, stride, dilation >= 1"):
        receptive_field([(3, 0, 1)])
    with pytest.raises(ValueError, match=r"layers\[1\] must be"):
        layer_specs([(3, 1, 1), 3])
    with pytest.raises(TypeError, match="layers must be"):
        layer_specs(5)
    with pytest.raises(ValueError, match=r"layer 2 .* gets size 3 and would output -1"):
        conv_output_size(8, [(3, 1, 0), (2, 2, 0), (5, 1, 0)])
    with pytest.raises(ValueError, match="in_size must be an int >= 1"):
        conv_output_size(0, [(3, 1, 1)])
