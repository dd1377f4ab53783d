"""Contract tests for every registered classification model (parametrized over the registry).

Each model is built once (7 classes; with ``small_input=True`` where the standard stem cannot take 32x32
inputs or the small variant is much smaller, e.g. VGG's classifier) and checked for:
forward + backward at 32x32, output shapes, channels_last and bf16 autocast agreement with fp32,
and ``feature_info`` against ``forward_features``.
"""

import copy
import functools
import inspect

import pytest
import torch

from cvlib.models import create_model, list_models
from cvlib.models._registry import _REGISTRY

NAMES = list_models(task="classification")
K = 7


def _params(name):
    return inspect.signature(_REGISTRY[name][1]).parameters


def _accepts(name, arg):
    ps = _params(name)
    return arg in ps or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ps.values())


def _input(name, batch=2):
    ps = _params(name)
    c = ps["in_channels"].default if "in_channels" in ps else 3
    return torch.randn(batch, c, 32, 32, generator=torch.Generator().manual_seed(1))


def _numel(model):
    return sum(
        p.numel() for p in model.parameters() if not isinstance(p, torch.nn.parameter.UninitializedParameter)
    )


def _runs_at_32(model, name):
    try:
        with torch.no_grad():
            model.eval()(_input(name, batch=1).to("meta"))
        return True
    except (RuntimeError, ValueError):
        return False


@functools.cache
def _kwargs(name):
    """Cheapest configuration that runs at 32x32, decided on the meta device (no memory, no compute)."""
    kw = {"num_classes": K}
    if not _accepts(name, "small_input"):
        return kw
    with torch.device("meta"):
        std = create_model(name, **kw)
        small = create_model(name, small_input=True, **kw)
    n_std, n_small = _numel(std), _numel(small)
    if not _runs_at_32(std, name) or n_std > 1.5 * n_small:
        kw["small_input"] = True
    return kw


def _cases():
    """NAMES as pytest params; models over 30M parameters (in the tested configuration) are marked slow."""
    cases = []
    for name in NAMES:
        with torch.device("meta"):
            n = _numel(create_model(name, **_kwargs(name)))
        cases.append(pytest.param(name, marks=pytest.mark.slow) if n > 30e6 else name)
    return cases


CASES = _cases()


@functools.lru_cache(maxsize=4)
def _model(name):
    torch.manual_seed(0)
    return create_model(name, **_kwargs(name))


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", ["resnet18", "alexnet", "vgg11"])
def test_small_input_variant_runs_at_32(name):
    model = create_model(name, num_classes=K, small_input=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, K)


def test_registry_has_the_families():
    for name in (
        "lenet5",
        "alexnet",
        "vgg16_bn",
        "googlenet",
        "resnet18",
        "resnet50",
        "resnet20",
        "plain56",
        "se_resnet50",
    ):
        assert name in NAMES


@pytest.mark.parametrize("name", CASES)
def test_forward_backward(name):
    model = _model(name).train()
    x = _input(name).requires_grad_(True)
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert o.shape == (2, K)
    sum(o.square().mean() for o in outs).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", CASES)
def test_eval_shape_channels_last_and_autocast(name):
    model = _model(name).eval()
    x = _input(name, batch=1)
    with torch.no_grad():
        ref = model(x)
        assert isinstance(ref, torch.Tensor) and ref.shape == (1, K)  # aux heads only in training
        assert torch.isfinite(ref).all()
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        out_cl = cl(x.to(memory_format=torch.channels_last))
        # fp32 reduction order differs between layouts: compare relative to the logits' scale
        # (deep untrained nets such as ResNet-152 give logits in the hundreds).
        torch.testing.assert_close(out_cl, ref, rtol=1e-4, atol=1e-5 * max(1.0, ref.abs().max().item()))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf = _logits(model(x)).float()
    scale = ref.abs().max()
    assert (out_bf - ref).abs().max() <= 0.1 * scale + 1e-6
    a, b = (out_bf / scale).double().flatten(), (ref / scale).double().flatten()
    assert a @ b / (a.norm() * b.norm()) > 0.99  # same direction in logit space


@pytest.mark.parametrize("name", CASES)
def test_feature_info_matches_forward_features(name):
    model = _model(name).eval()
    if not hasattr(model, "feature_info"):
        pytest.skip(f"{name} is not a backbone (no feature_info)")
    x = _input(name, batch=1)
    with torch.no_grad():
        feats = model.forward_features(x)
    assert len(feats) == len(model.feature_info)
    modules = dict(model.named_modules())
    for f, info in zip(feats, model.feature_info):
        assert f.shape[1] == info["channels"], info
        # the map is input / reduction, a little smaller for unpadded convolutions (LeNet: 32 -> 14 at 2)
        assert x.shape[-1] / (2 * info["reduction"]) < f.shape[-1] <= x.shape[-1] / info["reduction"], info
        assert info["module"] in modules, info
    with torch.no_grad():  # the head applied to the last map gives the model's output
        torch.testing.assert_close(model.forward_head(feats[-1]), _logits(model(x)))
