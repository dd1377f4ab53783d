"""Classification metrics against scikit-learn and brute-force loops; stateful objects vs one-shot."""

import pytest
import torch
from sklearn.metrics import accuracy_score, top_k_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from cvlib.metrics.classification import (
    Accuracy,
    ConfusionMatrix,
    TopK,
    accuracy,
    confusion_matrix,
    get_metric,
    topk_accuracy,
)


def _scores(n=60, k=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g), torch.randint(0, k, (n,), generator=g)


def test_accuracy_and_topk_match_sklearn():
    out, y = _scores()
    assert accuracy(out, y) == pytest.approx(accuracy_score(y.numpy(), out.argmax(1).numpy()))
    for k in (1, 3, 5):
        ref = top_k_accuracy_score(y.numpy(), out.numpy(), k=k, labels=list(range(7)))
        assert topk_accuracy(out, y, k=k) == pytest.approx(ref)


def test_confusion_matrix_matches_sklearn_and_brute_force():
    out, y = _scores(200)
    cm = confusion_matrix(out, y)
    pred = out.argmax(1)
    ref = sk_confusion_matrix(y.numpy(), pred.numpy(), labels=list(range(7)))
    assert cm.dtype == torch.int64 and cm.tolist() == ref.tolist()
    brute = torch.zeros(7, 7, dtype=torch.int64)
    for t, p in zip(y.tolist(), pred.tolist()):
        brute[t, p] += 1
    assert torch.equal(cm, brute)
    assert torch.equal(confusion_matrix(pred, y, num_classes=7), cm)  # from class ids


def test_stateful_objects_equal_one_shot():
    out, y = _scores(100)
    acc, top, cmm = Accuracy(), TopK(3), ConfusionMatrix(7)
    for i in range(0, 100, 33):
        for m in (acc, top, cmm):
            m.update(out[i : i + 33], y[i : i + 33])
    assert acc.compute() == pytest.approx(accuracy(out, y))
    assert top.compute() == pytest.approx(topk_accuracy(out, y, k=3))
    assert torch.equal(cmm.compute(), confusion_matrix(out, y))
    acc.reset()
    acc.update(out[:10], y[:10])
    assert acc.compute() == pytest.approx(accuracy(out[:10], y[:10]))


def test_per_pixel_ignore_and_soft_labels():
    g = torch.Generator().manual_seed(1)
    out = torch.randn(2, 3, 4, 4, generator=g)
    t = torch.randint(0, 3, (2, 4, 4), generator=g)
    t[:, 0] = 255
    keep = t != 255
    expect = (out.argmax(1)[keep] == t[keep]).float().mean().item()
    assert accuracy(out, t) == pytest.approx(expect)
    assert confusion_matrix(out, t).sum() == keep.sum()
    # for one label per sample, class 255 is a real class (e.g. ImageNet) and is counted
    logits = torch.zeros(2, 300)
    logits[0, 255] = logits[1, 3] = 1
    assert accuracy(logits, torch.tensor([255, 4])) == 0.5
    soft = torch.softmax(torch.randn(6, 4, generator=g), 1)
    s_out = torch.randn(6, 4, generator=g)
    assert accuracy(s_out, soft) == pytest.approx(accuracy(s_out, soft.argmax(1)))


def test_registry_and_errors():
    assert isinstance(get_metric("accuracy"), Accuracy)
    assert get_metric("top5").k == 5 and get_metric("top5").name == "top5"
    assert get_metric("confusion_matrix", num_classes=3).num_classes == 3
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        get_metric("f1")
    with pytest.raises(ValueError, match="'miou' needs num_classes"):
        get_metric("miou")
    out, y = _scores()
    with pytest.raises(ValueError, match=r"k must be in \[1, 7\]"):
        topk_accuracy(out, y, k=8)
    with pytest.raises(ValueError, match=r"target must have shape \(60,\)"):
        accuracy(out, y[:5])
    with pytest.raises(ValueError, match=r"target holds class id 9, outside \[0, 7\)"):
        confusion_matrix(out, torch.full((60,), 9))


def test_segmentation_names_resolve_lazily():
    seg = pytest.importorskip("cvlib.metrics.segmentation")
    assert isinstance(get_metric("pixel_accuracy"), seg.PixelAccuracy)
    assert isinstance(get_metric("miou", num_classes=4), seg.MeanIoU)


def test_confusion_matrix_rejects_out_of_range_predictions():
    # Before: pred 5 with K=3 landed in cell (1, 2) and class 0 vanished.
    msg = r"output \(predicted class ids\) holds class id 5, outside \[0, 3\)"
    with pytest.raises(ValueError, match=msg):
        confusion_matrix(torch.tensor([5, 1]), torch.tensor([0, 1]), num_classes=3)
    with pytest.raises(ValueError, match=r"holds class id -1"):
        confusion_matrix(torch.tensor([-1, 1]), torch.tensor([0, 1]), num_classes=3)
    logits = torch.randn(4, 5)  # 5 classes scored, 3 declared
    with pytest.raises(ValueError, match=r"output has 5 classes .* num_classes=3"):
        confusion_matrix(logits, torch.tensor([0, 1, 2, 0]), num_classes=3)
    cm = confusion_matrix(torch.tensor([2, 1, 0]), torch.tensor([0, 1, 2]), num_classes=3)
    assert cm.sum() == 3 and cm[0, 2] == 1 and cm[2, 0] == 1


@pytest.mark.parametrize("fn", [accuracy, lambda o, t: topk_accuracy(o, t, k=2)])
def test_accuracy_validates_labels_and_scores(fn):
    out, y = _scores(10, 4)
    with pytest.raises(ValueError, match=r"target holds class id 4, outside \[0, 4\)"):
        fn(out, torch.full((10,), 4))
    with pytest.raises(ValueError, match="class id -2"):
        fn(out, torch.full((10,), -2))
    with pytest.raises(ValueError, match="NaN scores"):
        fn(torch.full((10, 4), float("nan")), y)  # before: accuracy 1.0
    nan_one = out.clone()
    nan_one[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fn(nan_one, y)
    with pytest.raises(TypeError, match="bool"):
        fn(out, y.bool())
    with pytest.raises(TypeError, match="complex"):
        fn(out, y.to(torch.complex64))
    with pytest.raises(TypeError, match=r"target.long\(\)"):
        fn(out, y.float())  # float class ids that are not soft labels
    with pytest.raises(ValueError, match="squeeze"):
        fn(out, y[:, None])
    with pytest.raises(TypeError, match="output must be a float"):
        fn(out.long(), y)
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(out, y.tolist())
    # int32 / int16 class ids are fine
    assert fn(out, y.int()) == fn(out, y.short()) == fn(out, y)


def test_per_pixel_ignore_index_is_not_out_of_range():
    out = torch.randn(2, 3, 4, 4)
    y = torch.randint(0, 3, (2, 4, 4))
    y[0, 0, 0] = 255
    assert 0 <= accuracy(out, y) <= 1
    y[0, 0, 1] = 7
    with pytest.raises(ValueError, match="class id 7.*ignore_index=255"):
        accuracy(out, y)
