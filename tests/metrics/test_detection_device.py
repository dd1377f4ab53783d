"""coco_map's torch path: equal to pycocotools in every statistic and array, on the detections' device.

The device checks run on the virtual accelerator of tests/device_harness.py (no GPU needed): inputs
placed on ``xpu`` must be computed on ``xpu`` (no ``.numpy()`` of an accelerator tensor, no mixing
with CPU tensors, no tensor made without a device joining accelerator ones), and the answer must equal
the CPU one bit for bit. Where CUDA exists the same comparison runs on the GPU.
"""

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from cvlib.metrics.detection import MeanAveragePrecision, coco_map, evaluate_detector
from tests.device_harness import VIRTUAL, VirtualAccelerator, virtual_accelerator
from tests.metrics.test_detection import STAT_KEYS, _Oracle, random_scene
from tests.metrics.test_detection import pycoco as _pycoco

where = VirtualAccelerator.where  # "cpu", "xpu" or "unknown" (a tensor the harness cannot place)


def _scene(seed, n_img=40, n_cls=5):
    """random_scene with crowd boxes, empty images, tied scores, and class n_cls + 1 never detected."""
    preds, targets = random_scene(seed, n_img=n_img, n_cls=n_cls, crowd=True)
    rng = np.random.default_rng(seed + 100)
    for p in preds[3:6]:  # duplicated detections with tied scores: more than 10 per pair
        p["boxes"], p["labels"] = p["boxes"].repeat(5, 1), p["labels"].repeat(5)
        p["scores"] = p["scores"].repeat(5).round(decimals=1)
    for t in targets[6:9]:  # ground truth of a class no detection ever has
        xy = torch.tensor(rng.uniform(0, 200, (2, 2)))
        t["boxes"] = torch.cat([t["boxes"], torch.cat([xy, xy + 30], 1)])
        t["labels"] = torch.cat([t["labels"], torch.full((2,), n_cls + 1)])
        t["iscrowd"] = torch.cat([t["iscrowd"], torch.tensor([False, False])])
    targets[7] = {  # an image with crowd ground truth only
        "boxes": torch.tensor([[10.0, 10, 120, 90]]),
        "labels": torch.tensor([1]),
        "iscrowd": torch.tensor([True]),
    }
    preds[7] = {
        "boxes": torch.tensor([[12.0, 12, 60, 60], [14.0, 12, 118, 88]]),
        "scores": torch.tensor([0.9, 0.4], dtype=torch.float64),
        "labels": torch.tensor([1, 1]),
    }
    return preds, targets


def _assert_same(ours, ev, stats=True, atol=1e-12):
    if stats:
        np.testing.assert_allclose([ours[k] for k in STAT_KEYS], ev.stats, atol=atol, rtol=0)
    assert ours["precision"].shape == ev.eval["precision"].shape
    np.testing.assert_allclose(ours["precision"], ev.eval["precision"], atol=atol, rtol=0)
    np.testing.assert_allclose(ours["recall"], ev.eval["recall"], atol=atol, rtol=0)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_equals_pycocotools_crowd_empty_images_undetected_class(seed):
    pytest.importorskip("pycocotools")
    preds, targets = _scene(seed)
    ev = _pycoco(preds, targets, 6)
    ours = coco_map(preds, targets, class_ids=range(1, 7))
    _assert_same(ours, ev)
    # the never-detected class has ground truth: AP 0, recall 0 (not -1)
    assert ours["map_per_class"][5] == 0.0 and ours["mar_100_per_class"][5] == 0.0
    assert isinstance(ours["precision"], np.ndarray) and ours["precision"].dtype == np.float64
    assert all(type(ours[k]) is float for k in STAT_KEYS)


@pytest.mark.parametrize("max_dets", [(1, 10, 100), (1, 3, 5), (2, 4, 50)])
def test_equals_pycocotools_max_dets(max_dets):
    pytest.importorskip("pycocotools")
    preds, targets = _scene(21)
    ev = _pycoco(preds, targets, 6, max_dets=max_dets)
    ours = coco_map(preds, targets, class_ids=range(1, 7), max_dets=max_dets)
    # COCOeval.summarize reads maxDets[0..2] for mar_1 / mar_10 / mar_100 and maxDets[2] elsewhere,
    # except its first statistic, hard-wired to maxDets == 100 (-1 when 100 is not among them)
    names = [k for k in STAT_KEYS if not k.startswith("mar_") or not k[4:].isdigit()]
    ours_stats = (
        [ours[k] for k in names[:6]] + [ours[f"mar_{m}"] for m in max_dets] + [ours[k] for k in names[6:]]
    )
    np.testing.assert_allclose(ours_stats[1:], ev.stats[1:], atol=1e-12, rtol=0)
    p = ev.eval["precision"][..., 0, -1]  # area "all", the largest max_dets
    assert ours["map"] == pytest.approx(p[p > -1].mean(), abs=1e-12)
    _assert_same(ours, ev, stats=False)


def test_equals_pycocotools_custom_areas_and_thresholds():
    pytest.importorskip("pycocotools")
    preds, targets = _scene(31)
    areas = {"all": (0.0, 1e10), "tiny": (0.0, 20.0**2), "mid": (20.0**2, 150.0**2), "huge": (150.0**2, 1e10)}
    thrs = [0.3, 0.5, 0.62, 0.75, 0.9]
    ev = _pycoco(preds, targets, 6, areas=areas, iou_thrs=thrs, summarize=False)
    ours = coco_map(preds, targets, class_ids=range(1, 7), area_ranges=areas, iou_thresholds=thrs)
    _assert_same(ours, ev, stats=False)
    assert ours["map_small"] == -1.0  # no "small" range asked for


def test_given_areas_and_use_crowd_false_equal_pycocotools():
    pytest.importorskip("pycocotools")
    preds, targets = _scene(35)
    rng = np.random.default_rng(35)
    for t in targets[::2]:  # a segmentation-like area, unrelated to the box, for half of the images
        t["area"] = torch.tensor(rng.uniform(10, 200**2, len(t["boxes"])))
    _assert_same(coco_map(preds, targets, class_ids=range(1, 7)), _pycoco(preds, targets, 6))
    plain = [dict(t, iscrowd=torch.zeros_like(t["iscrowd"])) for t in targets]
    ev = _pycoco(preds, plain, 6)
    _assert_same(coco_map(preds, targets, class_ids=range(1, 7), use_crowd=False), ev)


def test_many_images_and_classes_equal_pycocotools():
    pytest.importorskip("pycocotools")
    preds, targets = random_scene(41, n_img=150, n_cls=12, crowd=True)
    ev = _pycoco(preds, targets, 12)
    _assert_same(coco_map(preds, targets, class_ids=range(1, 13)), ev)


def test_iou_ties_go_to_the_last_ground_truth_as_in_cocoeval():
    # the first detection overlaps A and B with IoU 1/2 each: COCOeval takes the last (B), which
    # leaves A for the second detection (IoU 1 with A, 1/3 with B): two true positives at IoU 0.5
    targets = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 20], [0.0, 0, 20, 10]]),
            "labels": torch.tensor([1, 1]),
            "iscrowd": torch.tensor([False, False]),
        }
    ]
    preds = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 20]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 1]),
        }
    ]
    ours = coco_map(preds, targets, iou_thresholds=[0.5])
    assert ours["recall"][0, 0, 0, -1] == 1.0 and ours["map"] == 1.0
    pytest.importorskip("pycocotools")
    _assert_same(ours, _pycoco(preds, targets, 1, iou_thrs=[0.5], summarize=False), stats=False)


def test_no_detections_and_mixed_label_dtypes():
    targets = [
        {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    none = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}] * 2
    out = coco_map(none, targets, class_ids=[1, 2])  # class 1: missed entirely; class 2: no ground truth
    assert out["map_per_class"] == [0.0, -1.0] and out["mar_100_per_class"] == [0.0, -1.0]
    one = {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "scores": torch.tensor([0.5])}
    # an integer batch, then a float one with a fractional id: concatenating must not truncate it
    preds = [dict(one, labels=torch.tensor([1])), dict(one, labels=torch.tensor([1.5]))]
    with pytest.raises(TypeError, match=r"preds\[1\]\['labels'\] must hold integer class ids"):
        coco_map(preds, targets)
    preds[1]["labels"] = torch.tensor([1.0])  # whole floats are accepted
    assert coco_map(preds, targets)["map_50"] == pytest.approx(1.0)


def test_blocked_iou_and_matching_give_the_same_answer(monkeypatch):
    import cvlib.metrics.detection as det

    preds, targets = _scene(61)
    ref = coco_map(preds, targets)
    monkeypatch.setattr(det, "_IOU_BLOCK", 7)  # a few detections per IoU chunk
    monkeypatch.setattr(det, "_MATCH_BLOCK", 1)  # one pair per matching block
    out = coco_map(preds, targets)
    assert np.array_equal(out["precision"], ref["precision"]) and np.array_equal(out["recall"], ref["recall"])
    assert [out[k] for k in STAT_KEYS] == [ref[k] for k in STAT_KEYS]


# ---------------------------------------------------------------------------------- device checks
class _Strict(TorchFunctionMode):
    """On top of the harness: fail when a tensor of unknown device (a factory call without ``device=``,
    ``torch.as_tensor`` of NumPy data) meets an accelerator tensor, and count ops per device."""

    def __init__(self):
        super().__init__()
        self.ops = {"cpu": 0, VIRTUAL: 0}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        tags = {where(t) for t in tensors}
        if name not in ("__get__", "__set__") and tensors:
            unknown = [t for t in tensors if where(t) == "unknown" and t.ndim > 0]
            if VIRTUAL in tags and unknown and name not in ("__getitem__", "__setitem__"):
                raise AssertionError(f"{name}: a tensor of unknown device met an {VIRTUAL} tensor")
            for tag in tags & set(self.ops):
                self.ops[tag] += 1
        return func(*args, **kwargs)


def _on(acc, dicts, device):
    return [{k: acc.cpu(v).to(device) for k, v in d.items()} for d in dicts]


def test_follows_the_detections_device_on_a_virtual_accelerator(monkeypatch):
    preds, targets = _scene(51)
    ref = coco_map(preds, targets, class_ids=range(1, 7))
    with virtual_accelerator(monkeypatch) as acc:
        p_x, t_x = _on(acc, preds, acc.device), _on(acc, targets, acc.device)
        assert acc.where(p_x[0]["boxes"]) == VIRTUAL
        with _Strict() as strict:
            out = coco_map(p_x, t_x, class_ids=range(1, 7))
        # the work ran on the accelerator: CPU tensors only for the two final arrays' copies
        assert strict.ops[VIRTUAL] > 200 and strict.ops["cpu"] <= 4, strict.ops
        # targets on the CPU, detections on the accelerator: the targets are moved, nothing mixes
        t_cpu = [{k: acc.cpu(v) for k, v in t.items()} for t in targets]
        mixed = coco_map(p_x, t_cpu, class_ids=range(1, 7))
        # device= moves CPU inputs to the accelerator
        p_cpu = [{k: acc.cpu(v) for k, v in p.items()} for p in preds]
        with _Strict() as strict:
            moved = coco_map(p_cpu, t_cpu, class_ids=range(1, 7), device=VIRTUAL)
        assert strict.ops[VIRTUAL] > 200, strict.ops  # (the CPU ops: per-image checks, one concatenation)
    for res in (out, mixed, moved):
        assert [res[k] for k in STAT_KEYS] == [ref[k] for k in STAT_KEYS]
        assert res["map_per_class"] == ref["map_per_class"]
        assert np.array_equal(res["precision"], ref["precision"])
        assert np.array_equal(res["recall"], ref["recall"])
        assert isinstance(res["precision"], np.ndarray)


def test_cpu_inputs_stay_on_the_cpu(monkeypatch):
    preds, targets = _scene(52, n_img=12)
    with virtual_accelerator(monkeypatch) as acc:
        p, t = _on(acc, preds, "cpu"), _on(acc, targets, "cpu")
        with _Strict() as strict:
            coco_map(p, t)
        assert strict.ops[VIRTUAL] == 0 and strict.ops["cpu"] > 200, strict.ops


def test_streaming_metric_and_evaluate_detector_keep_the_device(monkeypatch):
    preds, targets = _scene(53, n_img=12)
    ref = coco_map(preds, targets)
    images = torch.arange(12.0)[:, None, None, None].expand(12, 3, 4, 4).clone()
    with virtual_accelerator(monkeypatch) as acc:
        p_x = _on(acc, preds, acc.device)
        t_cpu = [{k: acc.cpu(v) for k, v in t.items()} for t in targets]
        m = MeanAveragePrecision()
        m.update(p_x[:5], t_cpu[:5])
        m.update(p_x[5:], t_cpu[5:])
        assert all(acc.where(d["boxes"]) == VIRTUAL for d in m.preds + m.targets)
        assert m.compute() == ref["map"]

        class _Moving(_Oracle):  # answers on the device of its input, as a real detector does
            def forward(self, x):
                return [{k: v.to(x.device) for k, v in d.items()} for d in super().forward(x)]

        model = _Moving(preds).to(acc.device)
        res = evaluate_detector(model, (acc.cpu(images), t_cpu), batch_size=5)
        assert acc.where(res["preds"][0]["boxes"]) == VIRTUAL
        assert res["map"] == ref["map"] and np.array_equal(res["precision"], ref["precision"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    preds, targets = _scene(54, n_img=200)
    ref = coco_map(preds, targets, class_ids=range(1, 7))
    gpu = [{k: v.cuda() for k, v in d.items()} for d in preds]
    out = coco_map(gpu, targets, class_ids=range(1, 7))
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # no op without a deterministic CUDA kernel is used
    try:
        strict = coco_map(gpu, targets, class_ids=range(1, 7))
    finally:
        torch.use_deterministic_algorithms(prev)
    for res in (out, strict):
        assert [res[k] for k in STAT_KEYS] == [ref[k] for k in STAT_KEYS]
        assert np.array_equal(res["precision"], ref["precision"])
        assert np.array_equal(res["recall"], ref["recall"])


def test_device_argument_is_validated():
    preds, targets = _scene(55, n_img=12)
    with pytest.raises(TypeError, match="device must be None, a str or a torch.device, got int"):
        coco_map(preds, targets, device=0)
    with pytest.raises(ValueError, match="device must name a torch device.*'gpu0'"):
        coco_map(preds, targets, device="gpu0")
    with pytest.raises(ValueError, match="device must name a torch device"):
        MeanAveragePrecision(device="nowhere")
    with pytest.raises(TypeError, match="device must be None"):
        MeanAveragePrecision(device=1.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available here"):
            coco_map(preds, targets, device="cuda")
    with pytest.raises(ValueError, match=r"area_ranges must map names to \(min, max\) pairs"):
        coco_map(preds, targets, area_ranges={"all": (0.0, 1e10), "big": 5000.0})
    # MPS has no float64: the CPU is used, with the same answer
    ref, mps = coco_map(preds, targets), coco_map(preds, targets, device="mps")
    assert [mps[k] for k in STAT_KEYS] == [ref[k] for k in STAT_KEYS]
    cpu = coco_map(preds, targets, device=torch.device("cpu"))
    assert np.array_equal(cpu["precision"], ref["precision"])
