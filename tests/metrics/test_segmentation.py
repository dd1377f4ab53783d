"""Segmentation metrics against torchmetrics, a NumPy brute force and hand-worked cases."""

import pytest
import torch

from cvlib.metrics.segmentation import (
    MeanIoU,
    PixelAccuracy,
    boundary_f1,
    boundary_map,
    confusion_matrix,
    frequency_weighted_iou,
    iou_per_class,
    mean_iou,
    miou_near_boundary,
    pixel_accuracy,
)

tm = pytest.importorskip("torchmetrics")
from torchmetrics.classification import (  # noqa: E402
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
)

K = 5


def _random(seed=0, b=2, h=17, w=13, ignore_frac=0.1):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, K, h, w, generator=g)
    target = torch.randint(0, K, (b, h, w), generator=g)
    target[torch.rand(b, h, w, generator=g) < ignore_frac] = 255
    return logits, target


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_torchmetrics(seed):
    logits, target = _random(seed)
    cm_ref = MulticlassConfusionMatrix(K, ignore_index=255)(logits, target)
    assert torch.equal(confusion_matrix(logits, target, K), cm_ref.long())
    iou_ref = MulticlassJaccardIndex(K, average="none", ignore_index=255)(logits, target)
    torch.testing.assert_close(iou_per_class(logits, target, K).float(), iou_ref)
    miou_ref = MulticlassJaccardIndex(K, average="macro", ignore_index=255)(logits, target)
    assert mean_iou(logits, target, K) == pytest.approx(float(miou_ref), abs=1e-6)
    acc_ref = MulticlassAccuracy(K, average="micro", ignore_index=255)(logits, target)
    assert pixel_accuracy(logits, target, K) == pytest.approx(float(acc_ref), abs=1e-6)


def test_fwiou_brute_force():
    logits, target = _random(3)
    p, t = logits.argmax(1).numpy().ravel(), target.numpy().ravel()
    keep = t != 255
    p, t = p[keep], t[keep]
    ref = sum(
        (t == c).sum() / len(t) * ((p == c) & (t == c)).sum() / ((p == c) | (t == c)).sum() for c in range(K)
    )
    assert frequency_weighted_iou(logits, target, K) == pytest.approx(ref)


def test_hand_worked_and_absent_class():
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 1, 1, 1]]])
    # class 0: inter 1, union 2; class 1: inter 2, union 3; class 2 absent -> nan, skipped by the mean
    iou = iou_per_class(pred, target, 3)
    assert iou[0] == 0.5 and iou[1] == pytest.approx(2 / 3) and torch.isnan(iou[2])
    assert mean_iou(pred, target, 3) == pytest.approx((0.5 + 2 / 3) / 2)
    assert pixel_accuracy(pred, target, 3) == 0.75


def test_stateful_equals_functional_over_batches():
    logits, target = _random(4, b=4)
    m, a = MeanIoU(K), PixelAccuracy(K)
    for i in range(4):
        m.update(logits[i : i + 1], target[i : i + 1])
        a.update(logits[i : i + 1].argmax(1), target[i : i + 1])
    assert m.compute() == pytest.approx(mean_iou(logits, target, K))
    assert a.compute() == pytest.approx(pixel_accuracy(logits, target, K))
    inferred = MeanIoU()  # K taken from the logits
    inferred.update(logits, target)
    assert inferred.compute() == pytest.approx(m.compute())
    m.reset()
    assert m.confmat.sum() == 0


def test_bad_inputs():
    logits, target = _random(0)
    with pytest.raises(ValueError, match="does not match target"):
        confusion_matrix(logits[:, :, :-1], target, K)
    with pytest.raises(ValueError, match="channels"):
        confusion_matrix(logits, target, K + 1)
    bad = target.clone()
    bad[0, 0, 0] = K
    with pytest.raises(ValueError, match=f"class id {K} outside"):
        mean_iou(logits, bad, K)
    with pytest.raises(TypeError, match="integer"):
        mean_iou(logits, target.float(), K)
    with pytest.raises(ValueError, match="num_classes=None needs logits"):
        MeanIoU().update(logits.argmax(1), target)


def test_boundary_scores():
    target = torch.zeros(1, 16, 16, dtype=torch.long)
    target[:, 4:12, 4:12] = 1
    # both sides of the edge: the square's inner ring (28 pixels) + its 4-neighbour outer ring (32)
    assert int(boundary_map(target).sum()) == 28 + 32
    assert boundary_f1(target, target) == 1.0
    shifted = torch.roll(target, 1, dims=2)
    assert boundary_f1(shifted, target, tolerance=0) < 0.8  # one pixel off is wrong at tolerance 0
    assert boundary_f1(shifted, target, tolerance=1) == 1.0  # ... and right at tolerance 1
    # a blocky (upsampled 4x) prediction loses near-edge IoU much more than overall IoU
    blocky = torch.zeros_like(target)
    blocky[:, 4:12, 4:12] = 1
    blocky[:, 4:6, 4:6] = 0
    assert miou_near_boundary(blocky, target, 2, width=1) < mean_iou(blocky, target, 2)


def test_segmentation_metrics_validate_inputs():
    from cvlib.metrics.segmentation import MeanIoU, confusion_matrix, mean_iou, pixel_accuracy

    logits = torch.randn(2, 3, 5, 5)
    y = torch.randint(0, 3, (2, 5, 5))
    with pytest.raises(ValueError, match=r"target holds class id 4"):
        mean_iou(logits, torch.full_like(y, 4), 3)
    with pytest.raises(ValueError, match=r"pred holds class id 3"):
        pixel_accuracy(torch.full_like(y, 3), y, 3)
    with pytest.raises(ValueError, match="NaN logits"):
        mean_iou(torch.full_like(logits, float("nan")), y, 3)
    with pytest.raises(TypeError, match=r"target.long\(\)"):
        mean_iou(logits, y.float(), 3)
    with pytest.raises(TypeError, match="integer class ids"):
        mean_iou(logits, y.bool(), 3)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(logits, y, 0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        confusion_matrix(logits, y, 3.0)
    with pytest.raises(ValueError, match="4 channels"):
        mean_iou(torch.randn(2, 4, 5, 5), y, 3)
    m = MeanIoU(3)
    with pytest.raises(TypeError, match="target must be an? int"):
        m.update(logits, y.float())
    assert mean_iou(logits, y.int(), 3) == pytest.approx(mean_iou(logits, y, 3))
