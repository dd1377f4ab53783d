"""Convolutionalization: fc_to_conv equals the linear layer; VGG-16 and AlexNet give the classifier's
logits at 224 x 224, a score map at larger sizes, and each score equals the classifier head on the
corresponding window of the feature map."""

import pytest
import torch
from torch import nn

from cvlib.models import ConvolutionalizedNet, convolutionalize, create_model, fc_to_conv


def scaled(model):
    """Random classifier weights large enough that the logits are O(1) (the default init gives ~0.1)."""
    torch.manual_seed(0)
    for m in model.classifier:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=2.0 / m.in_features**0.5)
            nn.init.normal_(m.bias, std=0.1)
    return model.eval()


def test_fc_to_conv_equals_the_linear_layer():
    torch.manual_seed(0)
    fc = nn.Linear(3 * 2 * 5, 4)  # non-square map: a transposed reshape would not match
    conv = fc_to_conv(fc, (3, 2, 5))
    assert conv.weight.shape == (4, 3, 2, 5) and conv.kernel_size == (2, 5)
    x = torch.randn(6, 3, 2, 5)
    torch.testing.assert_close(conv(x)[:, :, 0, 0], fc(x.flatten(1)), rtol=1e-5, atol=1e-5)
    # a larger map gives a map of outputs: position (i, j) is the layer applied to the window there
    big = torch.randn(1, 3, 4, 7)
    out = conv(big)
    assert out.shape == (1, 4, 3, 3)
    torch.testing.assert_close(out[0, :, 2, 1], fc(big[:, :, 2:4, 1:6].flatten(1))[0], rtol=1e-5, atol=1e-5)
    # copied, not shared
    with torch.no_grad():
        fc.weight.zero_()
    assert conv.weight.abs().sum() > 0
    one = fc_to_conv(nn.Linear(8, 2, bias=False), (8, 1, 1))
    assert one.kernel_size == (1, 1) and one.bias is None
    with pytest.raises(
        ValueError, match=r"in_shape \(3, 2, 2\) has 12 values but the layer reads in_features = 30"
    ):
        fc_to_conv(fc, (3, 2, 2))
    with pytest.raises(TypeError, match="linear must be an nn.Linear, got Conv2d"):
        fc_to_conv(conv, (3, 2, 5))


@pytest.fixture(scope="module")
def vgg16():
    model = scaled(create_model("vgg16"))
    return model, convolutionalize(model).eval()


def test_vgg16_logits_at_224(vgg16):
    model, net = vgg16
    assert isinstance(net, ConvolutionalizedNet)
    fc6, fc7, fc8 = (m for m in net.head if isinstance(m, nn.Conv2d))
    assert fc6.weight.shape == (4096, 512, 7, 7) and fc7.weight.shape == (4096, 4096, 1, 1)
    assert fc8.weight.shape == (1000, 4096, 1, 1)
    assert (net.window, net.stride, net.min_input_size) == (7, 32, 224)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        logits, scores = model(x), net(x)
    assert scores.shape == (2, 1000, 1, 1) and logits.abs().max() > 1
    torch.testing.assert_close(scores[:, :, 0, 0], logits, rtol=1e-5, atol=1e-5)


def test_vgg16_score_map_at_384_and_its_windows(vgg16):
    model, net = vgg16
    x = torch.rand(1, 3, 384, 384)
    with torch.no_grad():
        feats = net.features(x)  # [1, 512, 12, 12]
        scores = net.head(feats)
        assert torch.equal(scores, net(x))
        assert scores.shape == (1, 1000, 6, 6)  # 12 - 7 + 1; = 384 // 32 - 6
        # score (i, j) is the classifier (adaptive pool = identity at 7 x 7, then the FC layers) on the
        # 7 x 7 feature window at (i, j), i.e. on the input window of 224 px at (32 i, 32 j)
        for i, j in [(0, 0), (2, 5), (5, 3)]:
            window = model.forward_head(feats[:, :, i : i + 7, j : j + 7])
            torch.testing.assert_close(scores[:, :, i, j], window, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(scores[:, :, 0, 0], scores[:, :, 5, 3])
    with pytest.raises(ValueError, match=r"gives a \(6, 6\) feature map.*at least 224 x 224"):
        net(torch.rand(1, 3, 200, 200))
    with pytest.raises(TypeError, match=r"x must be a float image batch, got torch.uint8; convert with"):
        net(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))


def test_alexnet_and_the_original_is_untouched():
    model = scaled(create_model("alexnet"))
    net = convolutionalize(model).eval()
    assert net.window == 6 and net.stride == 32 and net.min_input_size == 223
    assert net.head[1].weight.shape == (4096, 256, 6, 6)  # fc6 after the first dropout
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x)[:, :, 0, 0], model(x), rtol=1e-5, atol=1e-5)
        big = net(torch.rand(1, 3, 320, 288))
        assert big.shape == (1, 1000, 4, 3)
        feats = net.features(x)
        before = net(x)
        nn.init.zeros_(model.classifier[1].weight)  # the converted net holds copies
        model.features[0].weight.data.zero_()
        torch.testing.assert_close(net(x), before)
    assert torch.equal(net.features(x), feats)


def test_small_input_vgg_and_unsupported_models():
    model = scaled(create_model("vgg11", num_classes=10, small_input=True))
    net = convolutionalize(model).eval()
    assert net.window == 1 and net.min_input_size == 32
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x)[:, :, 0, 0], model(x), rtol=1e-5, atol=1e-5)
        assert net(torch.rand(1, 3, 96, 64)).shape == (1, 10, 3, 2)
    with pytest.raises(TypeError, match="model must have `features` and an nn.Sequential `classifier`"):
        convolutionalize(create_model("resnet18"))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        convolutionalize("vgg16")
