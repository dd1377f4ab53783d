import pytest
import torch
from torch import nn

from cvlib.models import create_model, list_models
from cvlib.models.classification.simple import SimpleCNN
from cvlib.ops.profile import count_parameters as num_params


def test_registered():
    assert {"linear_classifier", "mlp", "simple_cnn"} <= set(list_models(task="classification"))


@pytest.mark.parametrize("name", ["linear_classifier", "mlp", "simple_cnn"])
def test_contract_with_lazy_input_size(name):
    model = create_model(name, num_classes=7).eval()
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 7)
    y.sum().backward()
    assert x.grad is not None


def test_linear_classifier_scores_are_template_dot_products():
    torch.manual_seed(0)
    model = create_model("linear_classifier", num_classes=4, in_shape=(1, 6, 5))
    x = torch.rand(3, 1, 6, 5)
    t = model.templates()
    assert t.shape == (4, 1, 6, 5)
    expected = torch.einsum("kchw,bchw->bk", t, x) + model.fc.bias
    torch.testing.assert_close(model(x), expected)
    assert num_params(model) == 6 * 5 * 4 + 4


def test_linear_classifier_templates_need_a_shape():
    model = create_model("linear_classifier", num_classes=3)
    with pytest.raises(RuntimeError, match="in_shape is unknown"):
        model.templates()
    model(torch.rand(1, 1, 4, 4))
    assert model.templates().shape == (3, 1, 4, 4)


def test_mlp_parameter_count_and_validation():
    model = create_model("mlp", num_classes=10, in_shape=(1, 8, 8), hidden=(32, 16))
    assert num_params(model) == (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 3
    with pytest.raises(ValueError, match="hidden must be a sequence of positive ints"):
        create_model("mlp", hidden=(0,))
    with pytest.raises(ValueError, match=r"in_shape must be \(C, H, W\)"):
        create_model("mlp", in_shape=(8, 8))


@pytest.mark.parametrize("head", ["gap", "flatten"])
def test_simple_cnn_features_match_feature_info(head):
    model = create_model("simple_cnn", in_channels=1, channels=(4, 8, 16), head=head, in_size=24).eval()
    x = torch.randn(2, 1, 24, 24)
    feats = model.forward_features(x)
    assert len(feats) == len(model.feature_info) == 3
    for f, info in zip(feats, model.feature_info):
        assert f.shape == (2, info["channels"], 24 // info["reduction"], 24 // info["reduction"])
        assert isinstance(model.get_submodule(info["module"]), nn.Module)
    torch.testing.assert_close(model(x), model.forward_head(feats[-1]))


def test_gap_vs_flatten_head_parameter_counts():
    gap = create_model("simple_cnn", in_channels=1, channels=(8, 16), head="gap", num_classes=10)
    flat = create_model(
        "simple_cnn", in_channels=1, channels=(8, 16), head="flatten", in_size=28, num_classes=10
    )
    assert num_params(gap.fc) == 16 * 10 + 10
    assert num_params(flat.fc) == 16 * 7 * 7 * 10 + 10
    assert num_params(flat) - num_params(gap) == 16 * 48 * 10
    # the GAP head accepts any input size; the flatten head only the one it was built for
    assert gap(torch.randn(1, 1, 40, 36)).shape == (1, 10)
    with pytest.raises(RuntimeError):
        flat(torch.randn(1, 1, 40, 36))


def test_simple_cnn_without_norm_has_conv_bias():
    model = SimpleCNN(in_channels=1, channels=(4,), norm_layer=None)
    conv = model.stages[0][0]
    assert conv.bias is not None and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_simple_cnn_validation():
    with pytest.raises(ValueError, match="head must be one of"):
        create_model("simple_cnn", head="mean")
    with pytest.raises(ValueError, match="too small for 3 pooling stages"):
        create_model("simple_cnn", head="flatten", in_size=4)
    with pytest.raises(ValueError, match=r"x must be \[B, 3, H, W\]"):
        create_model("simple_cnn")(torch.randn(3, 8, 8))
