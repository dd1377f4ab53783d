"""Detector contract: train-mode loss dicts (finite, backward), eval-mode outputs, empty targets, input
validation, a few steps overfitting one image, and the matching/sampling helpers."""

import pytest
import torch

from cvlib.models import create_model, list_models
from cvlib.models.detection._common import TinyBackbone, match_by_iou, prepare_images, sample_balanced
from cvlib.models.detection.fcos import FCOS

SMALL = ["faster_rcnn_small", "fcos_small"]
LOSS_KEYS = {
    "faster_rcnn_small": {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"},
    "fcos_small": {"loss_cls", "loss_box_reg", "loss_ctrness"},
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


def test_registry_lists_both_families():
    names = list_models(task="detection")
    assert set(SMALL + ["faster_rcnn_resnet50_fpn", "fcos_resnet50_fpn"]) <= set(names)


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
