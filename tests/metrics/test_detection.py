"""Detection mAP: equal to pycocotools on random data; VOC AP on a case computed by hand."""

import contextlib
import io

import numpy as np
import pytest
import torch

from cvlib.metrics.detection import MeanAveragePrecision, average_precision_voc, coco_map, pr_curves, voc_ap

STAT_KEYS = [
    "map",
    "map_50",
    "map_75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
]


def random_scene(seed, n_img=10, n_cls=3, crowd=False):
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for i in range(n_img):
        g = 0 if i == 0 else int(rng.integers(0, 7))  # image 0 has no ground truth
        xy = rng.uniform(0, 200, (g, 2))
        wh = np.exp(rng.uniform(np.log(4), np.log(300), (g, 2)))  # spans small / medium / large
        gb = np.concatenate([xy, xy + wh], 1)
        gl = rng.integers(1, n_cls + 1, g)
        t = {"boxes": torch.tensor(gb), "labels": torch.tensor(gl)}
        if crowd:
            t["iscrowd"] = torch.tensor(rng.random(g) < 0.2)
        targets.append(t)
        if i == 1:  # image 1 has no detections
            preds.append({"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)})
            continue
        jit = gb + rng.normal(0, 1, gb.shape) * np.concatenate([wh, wh], 1) * 0.06
        nd = int(rng.integers(0, 25))
        xy = rng.uniform(0, 200, (nd, 2))
        rb = np.concatenate([xy, xy + np.exp(rng.uniform(np.log(4), np.log(300), (nd, 2)))], 1)
        db = np.concatenate([jit, rb])
        db = np.concatenate([np.minimum(db[:, :2], db[:, 2:]), np.maximum(db[:, :2], db[:, 2:])], 1)
        dl = np.concatenate(
            [
                np.where(rng.random(g) < 0.85, gl, rng.integers(1, n_cls + 1, g)),
                rng.integers(1, n_cls + 1, nd),
            ]
        )
        preds.append(
            {
                "boxes": torch.tensor(db),
                "scores": torch.tensor(rng.random(len(db))),
                "labels": torch.tensor(dl),
            }
        )
    return preds, targets


def pycoco(preds, targets, n_cls, *, max_dets=None, areas=None, iou_thrs=None, summarize=True):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, res = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i + 1, "width": 400, "height": 400})
        area = t["area"].tolist() if "area" in t else [None] * len(t["boxes"])
        crowd = t.get("iscrowd", torch.zeros(len(t["boxes"]), dtype=torch.bool))
        for b, lab, c, ar in zip(t["boxes"].tolist(), t["labels"].tolist(), crowd.tolist(), area):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": lab,
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h if ar is None else ar,
                    "iscrowd": int(c),
                }
            )
        for b, s, lab in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()):
            res.append(
                {
                    "image_id": i + 1,
                    "category_id": int(lab),
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": s,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": c} for c in range(1, n_cls + 1)],
        }
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(res), "bbox")
        if max_dets is not None:
            ev.params.maxDets = list(max_dets)
        if areas is not None:
            ev.params.areaRng = [list(v) for v in areas.values()]
            ev.params.areaRngLbl = list(areas)
        if iou_thrs is not None:
            ev.params.iouThrs = np.asarray(iou_thrs)
        ev.evaluate()
        ev.accumulate()
        if summarize:
            ev.summarize()
    return ev


@pytest.mark.parametrize("seed,crowd", [(0, False), (1, False), (2, True), (3, True), (4, False)])
def test_coco_map_equals_pycocotools(seed, crowd):
    pytest.importorskip("pycocotools")
    preds, targets = random_scene(seed, crowd=crowd)
    ev = pycoco(preds, targets, 3)
    ours = coco_map(preds, targets, class_ids=[1, 2, 3])
    np.testing.assert_allclose([ours[k] for k in STAT_KEYS], ev.stats, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours["precision"], ev.eval["precision"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours["recall"], ev.eval["recall"], atol=1e-6, rtol=0)


def test_coco_map_equals_pycocotools_many_images_and_max_dets():
    # many (image, class) pairs and detection lists longer than max_dets: exercises the flat,
    # rank-by-rank matching and the per-class cumulative sums
    pytest.importorskip("pycocotools")
    preds, targets = random_scene(7, n_img=60, n_cls=6, crowd=True)
    for p in preds[2:5]:  # 3 images with many duplicated (tied-score) detections
        p["boxes"], p["labels"] = p["boxes"].repeat(6, 1), p["labels"].repeat(6)
        p["scores"] = p["scores"].repeat(6).round(decimals=1)
    ev = pycoco(preds, targets, 6)
    ours = coco_map(preds, targets, class_ids=range(1, 7))
    np.testing.assert_allclose([ours[k] for k in STAT_KEYS], ev.stats, atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours["precision"], ev.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours["recall"], ev.eval["recall"], atol=1e-12, rtol=0)


def test_coco_map_perfect_and_streaming():
    _, targets = random_scene(5)
    perfect = [
        {"boxes": t["boxes"], "scores": torch.ones(len(t["boxes"])), "labels": t["labels"]} for t in targets
    ]
    out = coco_map(perfect, targets)
    assert out["map"] == pytest.approx(1.0) and out["mar_100"] == pytest.approx(1.0)
    m = MeanAveragePrecision(key="map_50")
    m.update(perfect[:4], targets[:4])
    m.update(perfect[4:], targets[4:])
    assert m.compute() == pytest.approx(1.0)
    m.reset()
    assert m.preds == []


def test_voc_hand_computed():
    # one class, 3 ground-truth boxes in two images; 4 detections with scores .9 .8 .7 .6
    t = [
        {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), "labels": torch.tensor([1, 1])},
        {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])},
    ]
    p = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]]),
            "scores": torch.tensor([0.9, 0.7, 0.6]),
            "labels": torch.tensor([1, 1, 1]),
        },
        {
            "boxes": torch.tensor([[1.0, 0, 10, 10]]),
            "scores": torch.tensor([0.8]),
            "labels": torch.tensor([1]),
        },
    ]
    # by score: .9 TP, .8 TP (IoU .9), .7 FP (duplicate), .6 FP
    # -> recall 1/3 2/3 2/3 2/3, precision 1 1 2/3 1/2
    c = pr_curves(p, t)[1]
    np.testing.assert_allclose(c["recall"], [1 / 3, 2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(c["precision"], [1, 1, 2 / 3, 1 / 2])
    assert voc_ap(p, t)["map"] == pytest.approx(2 / 3)  # all-point: precision 1 up to recall 2/3
    # 11-point: recall >= 0, .1, ..., .6 reach precision 1 (7 points), .7 ... 1 reach nothing
    assert voc_ap(p, t, use_07_metric=True)["map"] == pytest.approx(7 / 11)
    # a difficult ground truth is neither TP nor FN
    t[0]["difficult"] = torch.tensor([False, True])
    assert voc_ap(p, t)["map"] == pytest.approx(1.0)
    assert average_precision_voc(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)


def test_empty_and_errors():
    empty = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}]
    tgt = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}]
    assert coco_map(empty, tgt)["map"] == -1.0
    assert voc_ap(empty, tgt)["map"] == -1.0
    with pytest.raises(ValueError, match="one entry per image, got 1 and 2"):
        coco_map(empty, tgt * 2)
    bad = [{"boxes": torch.tensor([[0.0, 0, 1, 1], [5, 5, 1, 1]]), "labels": torch.tensor([1, 1])}]
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\]\[1\] is non-finite or inverted"):
        coco_map(empty, bad)
    with pytest.raises(ValueError, match=r"preds\[0\] is missing key\(s\) \['scores'\]"):
        coco_map([{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}], tgt)


class _Oracle(torch.nn.Module):
    """Returns stored predictions for the images it is given (looked up by their first pixel)."""

    def __init__(self, preds):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.preds = preds

    def forward(self, images):
        return [self.preds[int(im[0, 0, 0])] for im in images]


def test_evaluate_detector_both_inputs():
    from cvlib.metrics.detection import evaluate_detector

    preds, targets = random_scene(6, n_img=5)
    images = torch.arange(5.0)[:, None, None, None].expand(5, 3, 4, 4).clone()
    model = _Oracle(preds).train()
    res = evaluate_detector(model, (images, targets), batch_size=2, repeats=2)
    assert model.training  # mode restored
    ref = coco_map(preds, targets)
    assert res["map"] == ref["map"] and res["voc_map_50"] == voc_ap(preds, targets)["map"]
    assert res["images_per_s"] > 0 and len(res["preds"]) == 5
    ds = list(zip(images, targets))  # a "Dataset" of (image, target) pairs
    assert evaluate_detector(model, ds, batch_size=3)["map"] == ref["map"]
    with pytest.raises(ValueError, match="same length"):
        evaluate_detector(model, (images[:2], targets))
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        evaluate_detector(model, (images, targets), repeats=0)


@pytest.mark.parametrize("n", [1, 2])
def test_evaluate_detector_under_fast_dev_run_runs_n_batches_once(monkeypatch, n):
    from cvlib.metrics.detection import evaluate_detector

    preds, targets = random_scene(7, n_img=7)
    images = torch.arange(7.0)[:, None, None, None].expand(7, 3, 4, 4).clone()
    model = _Oracle(preds)
    batches = []
    model.register_forward_pre_hook(lambda m, a: batches.append(len(a[0])))
    evaluate_detector(model, (images, targets), batch_size=2, warmup=1, repeats=2)
    assert batches == [2] + [2, 2, 2, 1] * 2  # warm-up batch, then two timed passes
    batches.clear()
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", str(n))
    res = evaluate_detector(model, (images, targets), batch_size=2, warmup=1, repeats=2)
    assert batches == [2] * n  # n batches, one pass, no warm-up
    assert res["map"] == coco_map(preds[: 2 * n], targets[: 2 * n])["map"]  # scored on the images run
    assert len(res["preds"]) == 7 and all(len(p["boxes"]) == 0 for p in res["preds"][2 * n :])
    assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(res["preds"][: 2 * n], preds))
    assert res["images_per_s"] > 0
    batches.clear()
    evaluate_detector(model, (images, targets), batch_size=5)
    assert batches == [2] * n  # batches of at most two images (cvlib.runtime.FAST_DEV_BATCH)
    batches.clear()
    loaded = []

    class _DS:
        def __len__(self):
            return 7

        def __getitem__(self, i):
            loaded.append(i)
            return images[i], targets[i]

    evaluate_detector(model, _DS(), batch_size=3)
    assert batches == [2] * n and loaded == list(range(2 * n))  # nothing past the n batches is loaded


def test_voc_difficult_objects_are_ignored_hand_computed():
    # one image, one class: GT A (normal), B (difficult), C (normal); detections by score:
    # .9 on A (TP), .8 on B (ignored: its best match is difficult), .7 again on B (ignored, not a
    # duplicate FP), .6 on nothing (FP), .5 on C (TP)
    t = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]),
            "labels": torch.tensor([1, 1, 1]),
            "difficult": torch.tensor([False, True, False]),
        }
    ]
    p = [
        {
            "boxes": torch.tensor(
                [[0.0, 0, 10, 10], [20, 0, 30, 10], [21, 0, 30, 10], [60, 0, 70, 10], [40, 0, 50, 10]]
            ),
            "scores": torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5]),
            "labels": torch.tensor([1, 1, 1, 1, 1]),
        }
    ]
    c = pr_curves(p, t)[1]
    # n_gt = 2 (B left out); ignored detections repeat the previous point (as in the devkit's cumsum)
    assert c["n_gt"] == 2
    np.testing.assert_allclose(c["recall"], [1 / 2, 1 / 2, 1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(c["precision"], [1, 1, 1, 1 / 2, 2 / 3])
    # all-point AP: precision 1 up to recall 1/2, then 2/3 up to recall 1 -> 1/2 + 1/3
    assert voc_ap(p, t)["map"] == pytest.approx(1 / 2 + 1 / 3)
    # counted as ordinary objects: TP TP FP FP TP over 3 GT -> precision 1 1 2/3 1/2 3/5
    c2 = pr_curves(p, t, ignore_difficult=False)[1]
    np.testing.assert_allclose(c2["precision"], [1, 1, 2 / 3, 1 / 2, 3 / 5])
    assert voc_ap(p, t, ignore_difficult=False)["map"] == pytest.approx(2 / 3 + 1 / 3 * 3 / 5)


def test_detection_inputs_are_validated_at_entry():
    tgt = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])}]
    good = {
        "boxes": torch.tensor([[0.0, 0, 10, 10]]),
        "scores": torch.tensor([0.5]),
        "labels": torch.tensor([1]),
    }
    with pytest.raises(ValueError, match=r"preds\[0\]\['scores'\]\[0\] is nan; scores must be finite"):
        coco_map([dict(good, scores=torch.tensor([float("nan")]))], tgt)
    with pytest.raises(ValueError, match="scores must be finite"):
        voc_ap([dict(good, scores=torch.tensor([float("nan")]))], tgt)
    for bad in ([0.5, 1.2], [-0.1], []):
        with pytest.raises(ValueError, match=r"iou_thresholds must be non-empty values in \[0, 1\]"):
            coco_map([good], tgt, iou_thresholds=bad)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        voc_ap([good], tgt, iou_threshold=1.5)
    # transposed [4, N] boxes used to be reshaped silently
    with pytest.raises(ValueError, match=r"preds\[0\]\['boxes'\] must be \[N, 4\] xyxy, got \(4, 2\)"):
        coco_map([dict(good, boxes=torch.zeros(4, 2), scores=torch.zeros(2), labels=torch.ones(2))], tgt)
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\] must be \[N, 4\] xyxy, got \(8,\)"):
        coco_map([good], [{"boxes": torch.zeros(8), "labels": torch.ones(2)}])
    # a square [4, 4] array in the wrong layout is caught by the coordinate order
    sq = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [1, 2, 3, 4], [2, 3, 4, 5]]).T.contiguous()
    with pytest.raises(ValueError, match="non-finite or inverted"):
        coco_map([dict(good, boxes=sq, scores=torch.ones(4), labels=torch.ones(4))], tgt)
    with pytest.raises(ValueError, match=r"preds\[0\]\['labels'\] must be \[1\] \(one per box\), got \(2,\)"):
        coco_map([dict(good, labels=torch.tensor([1, 1]))], tgt)
    with pytest.raises(TypeError, match="integer class ids"):
        coco_map([dict(good, labels=torch.tensor([1.5]))], tgt)
    with pytest.raises(ValueError, match=r"missing key\(s\) \['boxes'\]; it has \['bbox', 'labels'\]"):
        coco_map([good], [{"bbox": torch.zeros(1, 4), "labels": torch.ones(1)}])
    with pytest.raises(TypeError, match=r"preds\[0\] must be a dict"):
        coco_map([[1, 2]], tgt)
    # the streaming metric: a bad key fails at construction, bad inputs at update(), not at compute()
    with pytest.raises(ValueError, match="key must be one of"):
        MeanAveragePrecision(key="mAP")
    with pytest.raises(ValueError, match="key must be one of"):
        MeanAveragePrecision(key="mar_100", max_dets=(1, 10, 50))
    assert MeanAveragePrecision(key="mar_50", max_dets=(1, 10, 50)).key == "mar_50"
    m = MeanAveragePrecision()
    with pytest.raises(ValueError, match="scores must be finite"):
        m.update([dict(good, scores=torch.tensor([float("nan")]))], tgt)
    assert m.preds == []
    m.update([good], tgt)
    assert m.compute() == pytest.approx(1.0)
