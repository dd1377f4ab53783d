"""Tests for DenseNet-121/169/201 and MobileNetV2."""

import re

import pytest
import torch

from cvlib.models import create_model
from cvlib.models.classification.densenet import DenseBlock, DenseNet
from cvlib.models.classification.mobilenet import MOBILENET_V2_STAGES, InvertedResidual, MobileNetV2
from cvlib.ops.profile import count_macs

# torchvision's model cards: num_params and "GFLOPS" (which are GMACs at 224x224).
PUBLISHED_PARAMS = {
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "mobilenet_v2": 3_504_872,
}
PUBLISHED_GMACS = {"densenet121": 2.834, "mobilenet_v2": 0.301}


def tiny_densenet(**kw):
    """A DenseNet small enough for fast behavioural tests (same code path as the real ones)."""
    return DenseNet(growth_rate=4, block_config=(2, 2, 2, 2), num_init_features=8, **kw)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_param_counts_match_published(name):
    assert n_params(create_model(name)) == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_macs_match_published(name):
    macs = count_macs(create_model(name), (1, 3, 224, 224))
    assert abs(macs / 1e9 - PUBLISHED_GMACS[name]) / PUBLISHED_GMACS[name] < 0.02


# --- DenseNet -------------------------------------------------------------------------------------


def test_dense_block_concatenates_growth():
    torch.manual_seed(0)
    block = DenseBlock(3, 16, growth_rate=8, bn_size=4, drop_rate=0.0, memory_efficient=False).eval()
    x = torch.randn(2, 16, 6, 6)
    y = block(x)
    assert y.shape == (2, 16 + 3 * 8, 6, 6)
    assert torch.equal(y[:, :16], x)  # the input is passed on unchanged (feature reuse)
    assert block.denselayer3.conv1.in_channels == 16 + 2 * 8  # each layer sees all earlier maps


def test_densenet_keys_follow_torchvision_layout():
    keys = list(create_model("densenet121").state_dict())
    assert keys[0] == "features.conv0.weight"
    assert "features.denseblock1.denselayer1.norm1.weight" in keys
    assert "features.transition3.conv.weight" in keys and "features.transition4.conv.weight" not in keys
    assert "features.denseblock4.denselayer16.conv2.weight" in keys
    assert keys[-2:] == ["classifier.weight", "classifier.bias"]


def test_densenet_loads_legacy_checkpoint_keys():
    model = tiny_densenet(num_classes=3)
    sd = {k: v.clone() + 1 for k, v in model.state_dict().items() if "num_batches" not in k}
    # the published files spell "denselayer1.norm1.weight" as "denselayer1.norm.1.weight"
    legacy = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v for k, v in sd.items()}
    # 8 dense layers, each with norm1/norm2 (weight, bias, running_mean, running_var) and conv1/conv2
    assert sum(a != b for a, b in zip(sd, legacy, strict=True)) == 8 * (2 * 4 + 2)
    fresh = tiny_densenet(num_classes=3)
    fresh.load_state_dict(legacy, strict=True)
    for k, v in sd.items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_densenet_memory_efficient_same_outputs_and_grads():
    torch.manual_seed(0)
    a = tiny_densenet(num_classes=4, small_input=True).train()
    b = tiny_densenet(num_classes=4, small_input=True, memory_efficient=True).train()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 16, 16)
    ya, yb = a(x), b(x)
    torch.testing.assert_close(ya, yb)
    ya.sum().backward()
    yb.sum().backward()
    torch.testing.assert_close(a.features.conv0.weight.grad, b.features.conv0.weight.grad)


def test_densenet_feature_info_and_small_input():
    assert [(f["channels"], f["reduction"]) for f in create_model("densenet121").feature_info] == [
        (256, 4), (512, 8), (1024, 16), (1024, 32),
    ]  # fmt: skip
    model = tiny_densenet(num_classes=10).eval()
    feats = model.forward_features(torch.randn(1, 3, 64, 64))
    assert [f["channels"] for f in model.feature_info] == [16, 16, 16, 16]  # 8 + 2 * 4 per block, halved
    for f, t in zip(model.feature_info, feats, strict=True):
        assert t.shape[1] == f["channels"] and t.shape[-1] == 64 // f["reduction"]
    small = tiny_densenet(num_classes=10, small_input=True).eval()
    assert small.features.conv0.kernel_size == (3, 3) and small.feature_info[-1]["reduction"] == 8
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert create_model("densenet121", small_input=True).features.conv0.kernel_size == (3, 3)


def test_densenet_validation():
    with pytest.raises(ValueError, match="block_config"):
        DenseNet(block_config=())
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        tiny_densenet(num_classes=2)(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="small_input"):
        create_model("densenet121", weights="imagenet", small_input=True)
    with pytest.raises(ValueError, match="weights must be one of"):
        create_model("densenet169", weights="cifar10")


# --- MobileNetV2 -----------------------------------------------------------------------------------


def test_mobilenet_keys_follow_torchvision_layout():
    keys = list(create_model("mobilenet_v2").state_dict())
    assert keys[0] == "features.0.0.weight"
    assert "features.1.conv.1.weight" in keys and "features.1.conv.3.weight" not in keys  # t=1: no expand
    assert "features.2.conv.0.0.weight" in keys and "features.2.conv.3.weight" in keys
    assert "features.18.0.weight" in keys and keys[-2:] == ["classifier.1.weight", "classifier.1.bias"]


def test_inverted_residual_is_linear_bottleneck():
    torch.manual_seed(0)
    block = InvertedResidual(16, 16, 1, expand_ratio=6).eval()
    assert block.use_res_connect and block.conv[0][0].out_channels == 96
    assert isinstance(block.conv[0][2], torch.nn.ReLU6) and isinstance(block.conv[-1], torch.nn.BatchNorm2d)
    x = torch.randn(2, 16, 5, 5)
    branch = block.conv(x)
    assert bool((branch < 0).any())  # no activation after the projection: negative values survive
    torch.testing.assert_close(block(x), x + branch)
    assert not InvertedResidual(16, 24, 2, 6).use_res_connect


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.0, 1.4])
def test_mobilenet_width_mult(width):
    model = MobileNetV2(width_mult=width)
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w % 8 == 0 for w in widths)
    assert model.last_channel == (1280 if width <= 1.0 else 1792)  # the head only grows (paper Sec. 5.1)


def test_mobilenet_params_grow_with_width():
    counts = [n_params(MobileNetV2(width_mult=w, num_classes=10)) for w in (0.5, 0.75, 1.0, 1.4)]
    assert counts == sorted(counts) and len(set(counts)) == 4


def test_mobilenet_feature_info_and_small_input():
    model = create_model("mobilenet_v2", num_classes=10).eval()
    feats = model.forward_features(torch.randn(1, 3, 64, 64))
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    for f, t in zip(model.feature_info, feats, strict=True):
        assert t.shape[1] == f["channels"] and t.shape[-1] == 64 // f["reduction"]
    assert len(model.features) == 2 + sum(n for _, _, n, _ in MOBILENET_V2_STAGES)
    small = create_model("mobilenet_v2", num_classes=10, small_input=True).eval()
    assert small.features[0][0].stride == (1, 1) and small.feature_info[-1]["reduction"] == 8
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_mobilenet_validation():
    with pytest.raises(ValueError, match="width_mult"):
        create_model("mobilenet_v2", width_mult=0)
    with pytest.raises(ValueError, match="stages"):
        MobileNetV2(stages=())
    with pytest.raises(ValueError, match=r"stages\[0\]"):
        MobileNetV2(stages=((1, 16, 1, 3),))
    with pytest.raises(ValueError, match="width_mult=1.0"):
        create_model("mobilenet_v2", weights="imagenet", width_mult=0.5)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        InvertedResidual(8, 8, 3, 6)


@pytest.mark.parametrize("name", ["densenet121", "mobilenet_v2"])
def test_matches_torchvision_when_available(name):
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    ref = getattr(tvm, name)().eval()
    ours = create_model(name).eval()
    assert [(k, v.shape) for k, v in ref.state_dict().items()] == [
        (k, v.shape) for k, v in ours.state_dict().items()
    ]
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
