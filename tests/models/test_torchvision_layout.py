"""State-dict layout against torchvision, and the ``weights=`` loading path (offline).

``tests/data/torchvision_manifest.json`` was generated with ``tools/compare_torchvision.py --manifest``
in an environment with torchvision (version recorded in the file); the CPU test compares cvlib's keys
and shapes with it, no torchvision needed. The live test runs only where torchvision imports.
"""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from cvlib.models import create_model, list_models
from cvlib.models.classification import _weights, resnet

MANIFEST = json.loads((Path(__file__).parents[1] / "data" / "torchvision_manifest.json").read_text())[
    "models"
]
REQUIRED = (
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg16",
    "vgg19_bn",
    "googlenet",
    "resnet18",
    "resnet50",
    "resnet152",
    "densenet121",
    "mobilenet_v2",
    "efficientnet_b0",
    "efficientnet_b7",
)


def test_manifest_covers_the_families():
    for name in REQUIRED:
        assert name in MANIFEST
        assert name in list_models(task="classification")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_state_dict_layout_matches_torchvision(name):
    with torch.device("meta"):
        model = create_model(name)
    ours = {k: "x".join(map(str, v.shape)) for k, v in model.state_dict().items()}
    theirs = MANIFEST[name]
    assert sorted(set(theirs) - set(ours)) == [], "keys missing in cvlib"
    assert sorted(set(ours) - set(theirs)) == [], "keys cvlib has and torchvision does not"
    wrong = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
    assert wrong == {}


def test_live_comparison_with_torchvision():
    pytest.importorskip("torchvision")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cmp", Path(__file__).parents[2] / "tools" / "compare_torchvision.py"
    )
    cmp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cmp)
    for name in ("alexnet", "vgg11_bn", "googlenet", "resnet18", "resnet50"):
        diff, _ = cmp.compare_one(name, 64)
        assert diff <= cmp.TOLERANCE, name


@pytest.fixture
def fake_weights(tmp_path, monkeypatch):
    """A resnet18 weight file in a temporary cache, with a table entry pointing at it (no network)."""
    monkeypatch.setenv("CVLIB_DATA", str(tmp_path))
    monkeypatch.setattr(_weights, "_cache_dir", lambda: tmp_path)
    torch.manual_seed(3)
    src = create_model("resnet18", num_classes=1000)
    url = "https://example.invalid/models/resnet18-test.pth"
    dest = tmp_path / "weights" / "resnet18-test.pth"
    dest.parent.mkdir(parents=True)
    torch.save(src.state_dict(), dest)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    table = {"imagenet": _weights.WeightSpec(url, digest[:8])}
    monkeypatch.setitem(resnet.WEIGHTS, "resnet18", table)
    return src, dest, table


def test_weights_load_from_cache_strict(fake_weights):
    src, dest, _ = fake_weights
    model = create_model("resnet18", weights="imagenet")
    for k, v in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)
    assert _weights.weights_path(resnet.WEIGHTS["resnet18"]["imagenet"]) == dest


def test_weights_hash_mismatch_and_bad_arguments(fake_weights, monkeypatch):
    _, dest, table = fake_weights
    with pytest.raises(ValueError, match="weights must be one of"):
        create_model("resnet18", weights="cifar10")
    with pytest.raises(ValueError, match="has 1000 classes but num_classes=10"):
        create_model("resnet18", weights="imagenet", num_classes=10)
    with pytest.raises(ValueError, match="small_input=True changes conv1"):
        create_model("resnet18", weights="imagenet", small_input=True)
    # a corrupted cache entry is re-fetched, and the fetched file is checked again
    dest.write_bytes(b"corrupt")
    calls = []

    def fake_fetch(url, path, sha256):
        calls.append(url)
        Path(path).write_bytes(b"still corrupt")

    monkeypatch.setattr(_weights, "_fetch", fake_fetch)
    with pytest.raises(ValueError, match="expected it to start with"):
        create_model("resnet18", weights="imagenet")
    assert calls == [table["imagenet"].url]
