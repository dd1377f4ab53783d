"""Detector contract: train-mode loss dicts (finite, backward), eval-mode outputs, empty targets, input
validation and conversion (uint8 images, integer boxes), in-model normalisation, ImageNet backbone weights
in torchvision's layout, a few steps overfitting one image, and the matching/sampling helpers."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cvlib.models import create_model, list_models
from cvlib.models.detection._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FrozenBatchNorm2d,
    TinyBackbone,
    match_by_iou,
    prepare_images,
    sample_balanced,
)
from cvlib.models.detection.fcos import FCOS

SMALL = ["faster_rcnn_small", "fcos_small", "yolo_small"]
FULL = ["faster_rcnn_resnet50_fpn", "fcos_resnet50_fpn", "yolo_resnet50"]
LOSS_KEYS = {
    "faster_rcnn_small": {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"},
    "fcos_small": {"loss_cls", "loss_box_reg", "loss_ctrness"},
    "yolo_small": {"loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_cls"},
}


def scene(seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 64, 64, generator=g) * 0.2
    images[0, :, 10:30, 12:28] = 0.9  # one bright square per image, boxed by its target
    images[1, 0, 30:50, 20:60] = 1.0
    targets = [
        {"boxes": torch.tensor([[12.0, 10, 28, 30]]), "labels": torch.tensor([2])},
        {"boxes": torch.tensor([[20.0, 30, 60, 50], [2, 2, 12, 14]]), "labels": torch.tensor([1, 3])},
    ]
    return images, targets


def test_registry_lists_the_families():
    names = list_models(task="detection")
    assert set(SMALL + FULL) <= set(names)


@pytest.mark.parametrize("name", SMALL)
def test_train_mode_losses_and_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).train()
    assert model.takes_targets is True
    images, targets = scene()
    images.requires_grad_(True)
    losses = model(images, targets)
    assert set(losses) == LOSS_KEYS[name]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    # images without objects are valid targets
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    losses = model(images.detach(), empty)
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("name", SMALL)
def test_eval_mode_output_format(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).eval()
    images = [torch.rand(3, 64, 64), torch.rand(3, 48, 56)]  # different sizes are padded
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for d, (h, w) in zip(out, [(64, 64), (48, 56)]):
        assert set(d) == {"boxes", "scores", "labels"}
        n = len(d["boxes"])
        assert d["boxes"].shape == (n, 4) and d["scores"].shape == (n,) and d["labels"].dtype == torch.int64
        assert n <= model.detections_per_img
        if n:
            assert d["labels"].min() >= 1 and d["labels"].max() <= 3
            assert (d["boxes"][:, 2] <= w).all() and (d["boxes"][:, 3] <= h).all() and (d["boxes"] >= 0).all()
            assert (d["scores"][:-1] >= d["scores"][1:]).all()


@pytest.mark.parametrize("name", SMALL)
def test_overfit_one_image_lowers_loss(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).train()
    images, targets = scene()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(12):
        loss = sum(model(images[:1], targets[:1]).values())
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


@pytest.mark.parametrize("name", SMALL)
def test_validation_errors(name):
    model = create_model(name, num_classes=3).train()
    images, targets = scene()
    targets[1]["boxes"] = torch.tensor([[20.0, 30, 60, 50], [5, 2, 5, 14]])
    with pytest.raises(ValueError, match=r"targets\[1\]\['boxes'\]\[1\] is degenerate .* in image 1"):
        model(images, targets)
    _, targets = scene()
    targets[0]["labels"] = torch.tensor([0])
    with pytest.raises(ValueError, match=r"targets\[0\]\['labels'\]\[0\] = 0 is outside 1..3"):
        model(images, targets)
    with pytest.raises(ValueError, match="targets are required in training mode"):
        model(images)
    with pytest.raises(ValueError, match=r"targets must be a list of 2 dicts"):
        model(images, targets[:1])
    with pytest.raises(ValueError, match=r"images must be \[B, 3, H, W\], got \(2, 1, 64, 64\)"):
        model(images[:, :1], targets)


def test_backbone_checks_and_feature_info():
    bb = TinyBackbone((8, 16, 24, 32))
    feats = bb.forward_features(torch.rand(1, 3, 64, 64))
    assert [(f.shape[1], 64 // f.shape[-1]) for f in feats] == [
        (i["channels"], i["reduction"]) for i in bb.feature_info
    ]
    with pytest.raises(TypeError, match="backbone must expose feature_info"):
        FCOS(torch.nn.Conv2d(3, 3, 1), 3)
    with pytest.raises(ValueError, match="levels must be increasing stage indices"):
        FCOS(bb, 3, levels=(2, 1))
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        FCOS(bb, 0)


def test_prepare_images_pads():
    batch, sizes = prepare_images([torch.ones(3, 4, 6), torch.ones(3, 5, 2)])
    assert batch.shape == (2, 3, 5, 6) and sizes == [(4, 6), (5, 2)]
    assert batch[0, :, 4:].abs().sum() == 0 and batch[1, :, :, 2:].abs().sum() == 0


def test_match_by_iou_and_sampling():
    iou = torch.tensor([[0.9, 0.5, 0.1, 0.2], [0.1, 0.6, 0.2, 0.25]])
    assert match_by_iou(iou, 0.7, 0.3, False).tolist() == [0, -2, -1, -1]
    # the second ground truth's best prediction (column 1, IoU 0.6) becomes foreground
    assert match_by_iou(iou, 0.7, 0.3, True).tolist() == [0, 1, -1, -1]
    assert match_by_iou(torch.zeros(0, 3), 0.5, 0.5, False).tolist() == [-1, -1, -1]
    m = torch.tensor([0] * 10 + [-1] * 100 + [-2] * 5)
    pos, neg = sample_balanced(m, 16, 0.25)
    assert len(pos) == 4 and len(neg) == 12 and (m[pos] >= 0).all() and (m[neg] == -1).all()
    pos, neg = sample_balanced(torch.tensor([0, -1, -1]), 16, 0.5)
    assert len(pos) == 1 and len(neg) == 2


@pytest.mark.parametrize("name", SMALL)
def test_bf16_autocast_keeps_box_maths_in_float32(name):
    # cvlib.train.fit runs CUDA models under bf16 autocast; the CPU autocast exercises the same casts
    torch.manual_seed(0)
    model = create_model(name, num_classes=3)
    images, targets = scene()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(images, targets)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        out = model(images)
    assert out[0]["boxes"].dtype == torch.float32


def eval_out(model, images):
    with torch.no_grad():
        return model.eval()(images)


@pytest.mark.parametrize("name", SMALL)
def test_uint8_images_are_divided_by_255(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).eval()
    u8 = [
        torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8),
        torch.randint(0, 256, (3, 48, 56), dtype=torch.uint8),
    ]
    got, want = eval_out(model, u8), eval_out(model, [im.float() / 255 for im in u8])
    assert len(got[0]["boxes"]) > 0
    for g, w in zip(got, want):
        for k in ("boxes", "scores", "labels"):
            torch.testing.assert_close(g[k], w[k])
    batch = torch.stack([u8[0], u8[0]])
    torch.testing.assert_close(eval_out(model, batch)[1]["scores"], want[0]["scores"])
    # other float dtypes are cast to the model's: float64 and float16 images reach a float32 model
    for dtype in (torch.float64, torch.float16):
        x = [(im.float() / 255).to(dtype) for im in u8]
        out = eval_out(model, x)
        assert out[0]["boxes"].dtype == torch.float32 and len(out) == 2
    torch.testing.assert_close(
        eval_out(model, [(im.float() / 255).double() for im in u8])[0]["scores"], want[0]["scores"]
    )


@pytest.mark.parametrize("name", ["fcos_small", "yolo_small"])  # deterministic losses (no sampling)
def test_integer_boxes_train_like_float_boxes(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).train()
    images, targets = scene()
    as_int = [{"boxes": t["boxes"].long(), "labels": t["labels"].int()} for t in targets]
    for (k, a), b in zip(model(images, targets).items(), model(images, as_int).values()):
        torch.testing.assert_close(a, b, msg=k)


@pytest.mark.parametrize("name", SMALL)
def test_normalisation_inside_the_model(name):
    torch.manual_seed(0)
    plain = create_model(name, num_classes=3).eval()
    normed = create_model(name, num_classes=3, normalize=True).eval()
    normed.load_state_dict(plain.state_dict())
    assert (
        plain.image_mean is None and normed.image_mean == IMAGENET_MEAN and normed.image_std == IMAGENET_STD
    )
    x = torch.rand(2, 3, 64, 64)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    got, want, raw = eval_out(normed, x), eval_out(plain, (x - mean) / std), eval_out(plain, x)
    torch.testing.assert_close(got[0]["scores"], want[0]["scores"])
    torch.testing.assert_close(got[0]["boxes"], want[0]["boxes"])
    assert not torch.equal(got[0]["scores"][:5], raw[0]["scores"][:5])  # the transform changes the output


def test_prepare_images_normalises_before_padding():
    mean, std = (0.5, 0.25, 0.0), (0.5, 0.25, 2.0)
    batch, sizes = prepare_images(
        [torch.ones(3, 2, 3), torch.full((3, 3, 1), 255, dtype=torch.uint8)], mean, std
    )
    assert sizes == [(2, 3), (3, 1)] and batch.dtype == torch.float32
    # (1 - mean) / std per channel inside each image, zeros (the mean colour) in the padding
    want0 = torch.tensor([1.0, 3.0, 0.5])[:, None, None].expand(3, 2, 3)
    torch.testing.assert_close(batch[0, :, :2], want0)
    torch.testing.assert_close(batch[1, :, :, :1], want0[:, :1, :1].expand(3, 3, 1))
    assert batch[0, :, 2:].abs().sum() == 0 and batch[1, :, :, 1:].abs().sum() == 0
    with pytest.raises(ValueError, match="image_mean and image_std must be given together"):
        create_model("fcos_small", image_mean=IMAGENET_MEAN)
    with pytest.raises(ValueError, match="image_std must be positive"):
        create_model("yolo_small", image_mean=IMAGENET_MEAN, image_std=(1.0, 0.0, 1.0))


@pytest.mark.parametrize("name", SMALL)
def test_input_type_errors_say_how_to_convert(name):
    model = create_model(name, num_classes=3).train()
    images, targets = scene()
    with pytest.raises(
        TypeError, match=r"images must be float in \[0, 1\] or uint8.*got torch.int64.*\.float\(\) / 255"
    ):
        model((images * 255).long(), targets)
    with pytest.raises(TypeError, match=r"images\[1\] must be a Tensor\[3, H, W\], got ndarray.*from_numpy"):
        model([images[0], np.zeros((64, 64, 3), np.uint8)], targets)
    with pytest.raises(
        ValueError, match=r"got \(2, 64, 64, 3\); channels last\? use images.permute\(0, 3, 1, 2\)"
    ):
        model(images.permute(0, 2, 3, 1), targets)
    with pytest.raises(ValueError, match=r"images\[1\] is empty: \(3, 0, 5\)"):
        model([images[0], torch.rand(3, 0, 5)], targets)
    with pytest.raises(
        ValueError, match="training on one 32 x 32 image leaves a 1 x 1 map at the backbone's stride 32"
    ):
        model(images[:1, :, :32, :32], targets[:1])
    bad = images.clone()
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="images contains NaN or inf"):
        model(bad, targets)
    with pytest.raises(
        TypeError,
        match=r"targets\[1\]\['labels'\] must be an integer tensor .* got torch.float32; convert with \.long",
    ):
        model(images, [targets[0], {**targets[1], "labels": targets[1]["labels"].float()}])
    with pytest.raises(
        ValueError, match=r"targets\[0\]\['labels'\] must be \[N\] with N = 1, got \(1, 1\); flatten"
    ):
        model(images, [{**targets[0], "labels": targets[0]["labels"][:, None]}, targets[1]])
    with pytest.raises(TypeError, match=r"targets\[0\]\['boxes'\] must be a torch.Tensor, got list"):
        model(images, [{**targets[0], "boxes": [[12.0, 10, 28, 30]]}, targets[1]])
    with pytest.raises(ValueError, match="cvlib publishes no trained detector weights; use weights_backbone"):
        create_model(name, weights="imagenet")


def test_frozen_batch_norm_keeps_statistics_in_training():
    bn = torch.nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    frozen = FrozenBatchNorm2d(4)
    frozen.load_state_dict(bn.state_dict())
    x = torch.randn(2, 4, 5, 5) * 3 + 1
    torch.testing.assert_close(frozen.train()(x), bn.eval()(x))
    torch.testing.assert_close(frozen.running_mean, bn.running_mean)  # unchanged by the training pass
    assert not any(p.requires_grad for p in frozen.parameters())
    assert set(frozen.state_dict()) == set(bn.state_dict())


@pytest.fixture(scope="module")
def imagenet_resnet50(tmp_path_factory):
    """A ResNet-50 weight file with random values in torchvision's layout (keys and shapes from
    tests/data/torchvision_manifest.json), in a temporary weight cache with a table entry for it."""
    from cvlib.models.classification import _weights, resnet

    manifest = json.loads((Path(__file__).parents[1] / "data" / "torchvision_manifest.json").read_text())
    layout = manifest["models"]["resnet50"]
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in layout.items():
        size = [int(d) for d in shape.split("x")] if shape else []
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(size, generator=g) + 0.5
        else:
            state[key] = torch.randn(size, generator=g) * 0.02
    root = tmp_path_factory.mktemp("cache")
    dest = root / "weights" / "resnet50-fixture.pth"
    dest.parent.mkdir()
    torch.save(state, dest)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_weights, "_cache_dir", lambda: root)
        mp.setitem(
            resnet.WEIGHTS,
            "resnet50",
            {"imagenet": _weights.WeightSpec("https://example.invalid/resnet50-fixture.pth", digest[:8])},
        )
        yield state


@pytest.mark.parametrize("name", FULL)
def test_weights_backbone_loads_torchvision_layout(name, imagenet_resnet50):
    model = create_model(name, num_classes=5, weights_backbone="imagenet")
    body = model.backbone if name.startswith("yolo") else model.features.body
    got = body.state_dict()
    assert set(got) == {k for k in imagenet_resnet50 if not k.startswith("fc.")}
    for key in ("conv1.weight", "layer1.0.bn1.running_var", "layer3.5.conv2.weight", "layer4.2.bn3.bias"):
        torch.testing.assert_close(got[key], imagenet_resnet50[key])
    # torchvision's fine-tuning recipe: frozen BN everywhere, conv1 and layer1 frozen, layer2-4 trained
    assert isinstance(body.bn1, FrozenBatchNorm2d) and isinstance(body.layer4[0].bn1, FrozenBatchNorm2d)
    trains = {k.split(".")[0] for k, p in body.named_parameters() if p.requires_grad}
    assert trains == {"layer2", "layer3", "layer4"}
    assert model.image_mean == IMAGENET_MEAN and model.image_std == IMAGENET_STD
    all_trains = create_model(name, weights_backbone="imagenet", trainable_backbone_layers=5)
    body = all_trains.backbone if name.startswith("yolo") else all_trains.features.body
    assert all(
        p.requires_grad for k, p in body.named_parameters() if "bn" not in k and "downsample.1" not in k
    )
    with pytest.raises(ValueError, match="trainable_layers must be an int in 0..5"):
        create_model(name, weights_backbone="imagenet", trainable_backbone_layers=6)
    with pytest.raises(ValueError, match="weights must be one of"):
        create_model(name, weights_backbone="cifar10")
