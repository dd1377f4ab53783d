"""Contract tests for every registered classification model (parametrized over the registry).

Each model is built once (small-input variant where the factory has one, 7 classes) and checked for:
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


@functools.lru_cache(maxsize=4)
def _model(name):
    torch.manual_seed(0)
    kw = {"num_classes": K}
    if _accepts(name, "small_input"):
        kw["small_input"] = True
    return create_model(name, **kw)


def _input(name, batch=2):
    ps = _params(name)
    c = ps["in_channels"].default if "in_channels" in ps else 3
    return torch.randn(batch, c, 32, 32, generator=torch.Generator().manual_seed(1))


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def test_registry_has_the_families():
    for name in ("lenet5", "alexnet", "vgg16_bn", "googlenet", "resnet18", "resnet50", "resnet20", "plain56",
                 "se_resnet50"):
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
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


@pytest.mark.parametrize("name", NAMES)
def test_eval_shape_channels_last_and_autocast(name):
    model = _model(name).eval()
    x = _input(name, batch=1)
    with torch.no_grad():
        ref = model(x)
        assert isinstance(ref, torch.Tensor) and ref.shape == (1, K)  # aux heads only in training
        assert torch.isfinite(ref).all()
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        out_cl = cl(x.to(memory_format=torch.channels_last))
        torch.testing.assert_close(out_cl, ref, rtol=1e-4, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf = _logits(model(x)).float()
    scale = ref.abs().max().clamp_min(1e-3)
    assert (out_bf - ref).abs().max() / scale < 0.1
    assert torch.nn.functional.cosine_similarity(out_bf.flatten(), ref.flatten(), dim=0) > 0.99


@pytest.mark.parametrize("name", NAMES)
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
        assert x.shape[-1] / f.shape[-1] == info["reduction"], info
        assert info["module"] in modules, info
    with torch.no_grad():  # the head applied to the last map gives the model's output
        if hasattr(model, "forward_head"):
            torch.testing.assert_close(model.forward_head(feats[-1]), _logits(model(x)))
