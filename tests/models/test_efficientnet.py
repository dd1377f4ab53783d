"""Tests for EfficientNet-B0..B7 (cvlib.models.classification.efficientnet)."""

import math

import pytest
import torch

from cvlib.models import create_model
from cvlib.models._layers import SqueezeExcite
from cvlib.models.classification import efficientnet as eff
from cvlib.models.classification.efficientnet import (
    EFFICIENTNET_B0_STAGES,
    EFFICIENTNET_SCALING,
    EfficientNet,
    MBConv,
    MBConvConfig,
    scale_stages,
    scaling_table,
)
from cvlib.ops.profile import count_macs

# torchvision's model cards (num_params), which these variants must equal exactly.
PUBLISHED_PARAMS = {
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_param_counts_match_published(name):
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS[name]


def test_b0_macs_match_published():
    macs = count_macs(create_model("efficientnet_b0"), (1, 3, 224, 224))
    assert abs(macs / 1e9 - 0.386) / 0.386 < 0.02  # torchvision's "GFLOPS" column (= GMACs)


def test_scaling_table_rows():
    rows = {r["name"]: r for r in scaling_table()}
    assert list(rows) == [f"efficientnet_b{i}" for i in range(8)]
    # B0 is the paper's Table 1: 16 MBConv blocks, 32-channel stem, 1280-channel head
    assert (rows["efficientnet_b0"]["blocks"], rows["efficientnet_b0"]["stem_channels"]) == (16, 32)
    assert rows["efficientnet_b0"]["head_channels"] == 1280
    # B7 (width 2.0, depth 3.1): repeats ceil(3.1 * n) = 4+7+7+10+10+13+4 = 55; 64 stem, 4 * 640 head
    assert (rows["efficientnet_b7"]["blocks"], rows["efficientnet_b7"]["stem_channels"]) == (55, 64)
    assert rows["efficientnet_b7"]["head_channels"] == 2560
    assert rows["efficientnet_b4"]["stem_channels"] == 48  # 44.8 rounded to a multiple of 8
    for key in ("width", "depth", "resolution", "blocks"):
        values = [r[key] for r in rows.values()]
        assert values == sorted(values), key  # every coefficient grows from B0 to B7


def test_scale_stages_rounding():
    scaled = scale_stages(EFFICIENTNET_B0_STAGES, width=1.1, depth=1.2)
    assert [c.num_layers for c in scaled] == [math.ceil(c.num_layers * 1.2) for c in EFFICIENTNET_B0_STAGES]
    assert all(c.out_channels % 8 == 0 for c in scaled)
    assert scaled[-1].out_channels == 352  # 320 * 1.1 = 352
    assert [c.kernel for c in scaled] == [c.kernel for c in EFFICIENTNET_B0_STAGES]


def test_built_model_follows_the_table():
    model = create_model("efficientnet_b2")
    stages = scale_stages(
        EFFICIENTNET_B0_STAGES, EFFICIENTNET_SCALING["b2"].width, EFFICIENTNET_SCALING["b2"].depth
    )
    assert [len(model.features[i + 1]) for i in range(7)] == [c.num_layers for c in stages]
    assert model.classifier[0].p == EFFICIENTNET_SCALING["b2"].dropout == 0.3


def test_stochastic_depth_grows_linearly():
    model = create_model("efficientnet_b0")
    probs = [m.stochastic_depth.p for m in model.modules() if isinstance(m, MBConv)]
    assert len(probs) == 16
    assert probs == pytest.approx([0.2 * i / 16 for i in range(16)])


def test_mbconv_structure_and_residual():
    torch.manual_seed(0)
    block = MBConv(MBConvConfig(6, 5, 1, 24, 24, 1), stochastic_depth_prob=0.5).eval()
    se = block.block[2]
    assert isinstance(se, SqueezeExcite) and se.fc1.out_channels == 24 // 4 and se.fc1.in_channels == 144
    assert block.block[1][0].groups == 144 and block.block[1][0].kernel_size == (5, 5)
    assert len(block.block[3]) == 2  # projection: conv + BN, no activation (linear bottleneck)
    x = torch.randn(2, 24, 7, 7)
    torch.testing.assert_close(block(x), x + block.block(x))  # eval: stochastic depth is the identity
    down = MBConv(MBConvConfig(1, 3, 2, 16, 24, 1), 0.0)
    assert not down.use_res_connect and len(down.block) == 3  # ratio 1: no expansion conv


def test_feature_info_matches_forward_features():
    model = create_model("efficientnet_b0", num_classes=5).eval()
    feats = model.forward_features(torch.randn(1, 3, 64, 64))
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    for f, t in zip(model.feature_info, feats, strict=True):
        assert t.shape[1] == f["channels"] and t.shape[-1] == 64 // f["reduction"]


def test_small_input_variant():
    model = create_model("efficientnet_b0", num_classes=10, small_input=True).eval()
    assert model.feature_info[-1]["reduction"] == 8
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_b5_to_b7_use_tf_batchnorm_eps():
    bn = next(m for m in create_model("efficientnet_b5").modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)
    bn0 = next(m for m in create_model("efficientnet_b0").modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn0.eps == 1e-5


def test_stage_table_validated_before_building(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a layer was built before the stage table was checked")

    monkeypatch.setattr(eff, "ConvNormAct", fail)
    with pytest.raises(ValueError, match="stages must not be empty"):
        EfficientNet([], dropout=0.2)
    with pytest.raises(TypeError, match=r"stages\[1\] must be an MBConvConfig"):
        EfficientNet([EFFICIENTNET_B0_STAGES[0], (6, 3, 2, 16, 24, 2)], dropout=0.2)
    with pytest.raises(TypeError, match="list or tuple"):
        EfficientNet(EFFICIENTNET_B0_STAGES[0], dropout=0.2)
    with pytest.raises(ValueError, match="stride in"):
        EfficientNet([MBConvConfig(6, 3, 3, 16, 24, 2)], dropout=0.2)


def test_weights_argument_validation():
    with pytest.raises(ValueError, match="weights must be one of"):
        create_model("efficientnet_b0", weights="cifar")
    with pytest.raises(ValueError, match="classes"):
        create_model("efficientnet_b0", weights="imagenet", num_classes=10)


def test_matches_torchvision_when_available():
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    ref = tvm.efficientnet_b0().eval()
    ours = create_model("efficientnet_b0").eval()
    assert [(k, v.shape) for k, v in ref.state_dict().items()] == [
        (k, v.shape) for k, v in ours.state_dict().items()
    ]
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
