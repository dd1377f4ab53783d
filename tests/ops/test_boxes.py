"""Box ops against brute-force Python loops, hand-worked cases, error branches and empties."""

import math
import time

import pytest
import torch

from cvlib.ops.boxes import (
    BoxCoder,
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
    nms,
    remove_small_boxes,
)


def random_boxes(n, seed, size=100.0, degenerate=False):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * size
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * size / 2
    if degenerate:  # some zero-width / zero-height / duplicated boxes
        wh[::3, 0] = 0
        wh[1::4, 1] = 0
        xy[2::5] = xy[0]
        wh[2::5] = wh[0]
    return torch.cat([xy, xy + wh], dim=1)


def ref_pair(a, b):
    """Brute-force IoU / GIoU / DIoU / CIoU of two boxes given as python lists."""
    area = lambda t: (t[2] - t[0]) * (t[3] - t[1])  # noqa: E731
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = area(a) + area(b) - inter
    iou = inter / union if union > 0 else 0.0
    cw = max(a[2], b[2]) - min(a[0], b[0])
    ch = max(a[3], b[3]) - min(a[1], b[1])
    giou = iou - ((cw * ch - union) / (cw * ch) if cw * ch > 0 else 0.0)
    d2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    diou = iou - d2 / (cw**2 + ch**2 + 1e-7)
    v = 4 / math.pi**2 * (math.atan2(b[2] - b[0], b[3] - b[1]) - math.atan2(a[2] - a[0], a[3] - a[1])) ** 2
    ciou = diou - v / (1 - iou + v + 1e-7) * v
    return iou, giou, diou, ciou


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("degenerate", [False, True])
def test_iou_family_matches_brute_force(seed, degenerate):
    a, b = random_boxes(13, seed, degenerate=degenerate), random_boxes(9, seed + 10, degenerate=degenerate)
    b[:3] = a[:3]  # identical boxes
    fns = [box_iou, generalized_box_iou, distance_box_iou, complete_box_iou]
    mats = [f(a, b) for f in fns]
    for i in range(len(a)):
        for j in range(len(b)):
            ref = ref_pair(a[i].tolist(), b[j].tolist())
            for m, r in zip(mats, ref):
                assert m[i, j].item() == pytest.approx(r, abs=1e-9)
    for f, m in zip(fns, mats):  # aligned variant = diagonal of the matrix
        torch.testing.assert_close(f(a[:9], b, aligned=True), torch.diagonal(m[:9]))


def test_iou_hand_cases():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1.0, 1 / 3, 0.0, 0.0]]))
    # disjoint boxes: GIoU = 0 - (C - U) / C with C = 30*30, U = 200
    assert generalized_box_iou(a, b)[0, 2].item() == pytest.approx(-(900 - 200) / 900)
    # two identical degenerate boxes: union 0 -> IoU defined as 0, no NaN anywhere
    z = torch.tensor([[3.0, 3, 3, 3]])
    for f in (box_iou, generalized_box_iou, distance_box_iou, complete_box_iou):
        assert torch.isfinite(f(z, z)).all()
    assert box_iou(z, z).item() == 0.0


def test_dtypes_and_empties():
    ai = torch.tensor([[0, 0, 10, 10]], dtype=torch.int32)
    assert box_iou(ai, ai).dtype == torch.float32 and box_iou(ai, ai).item() == 1.0
    assert box_area(ai.half()).dtype == torch.float32
    assert box_iou(torch.zeros(0, 4), torch.zeros(5, 4)).shape == (0, 5)
    assert box_iou(torch.zeros(3, 4, dtype=torch.float64), torch.zeros(0, 4)).dtype == torch.float64
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).dtype == torch.int64
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).shape == (0,)
    assert box_convert(torch.zeros(0, 4), "xyxy", "cxcywh").shape == (0, 4)
    assert remove_small_boxes(torch.zeros(0, 4), 1.0).dtype == torch.int64


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_convert_roundtrip_and_values(fmt):
    b = random_boxes(20, 3)
    torch.testing.assert_close(box_convert(box_convert(b, "xyxy", fmt), fmt, "xyxy"), b)
    x = torch.tensor([[1.0, 2, 5, 10]])
    want = {"xywh": [1.0, 2, 4, 8], "cxcywh": [3.0, 6, 4, 8]}[fmt]
    assert box_convert(x, "xyxy", fmt).tolist() == [want]


def test_area_and_clip():
    b = torch.tensor([[-5.0, 2, 30, 8], [1, 1, 4, 5]])
    assert box_area(b).tolist() == [35 * 6, 12]
    assert clip_boxes_to_image(b, (6, 20)).tolist() == [[0, 2, 20, 6], [1, 1, 4, 5]]
    assert remove_small_boxes(torch.tensor([[0.0, 0, 1, 5], [0, 0, 3, 3]]), 2.0).tolist() == [1]


def test_box_coder_roundtrip_and_clip():
    coder = BoxCoder()
    anchors, gt = (
        random_boxes(50, 4) + torch.tensor([0, 0, 1, 1]),
        random_boxes(50, 5) + torch.tensor([0, 0, 1, 1]),
    )
    d = coder.encode(gt, anchors)
    torch.testing.assert_close(coder.decode(d, anchors), gt)
    # identical boxes encode to zero; per-class deltas broadcast over the reference
    assert coder.encode(anchors, anchors).abs().max() < 1e-12
    d3 = torch.stack([d, torch.zeros_like(d)], dim=1)
    out = coder.decode(d3, anchors)
    torch.testing.assert_close(out[:, 1], anchors)
    # a huge log-scale delta is clipped before exp: width <= 1000/16 * anchor width
    big = coder.decode(torch.tensor([[0.0, 0, 1e4, 1e4]]), torch.tensor([[0.0, 0, 16, 16]]))
    assert big[0, 2] - big[0, 0] == pytest.approx(1000.0, rel=1e-5)


def ref_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(ref_pair(boxes[i], boxes[j])[0] <= thr for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.7])
def test_nms_matches_brute_force(seed, thr):
    b = random_boxes(40, seed, size=60, degenerate=seed % 2 == 1)
    s = torch.rand(40, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    s[5:10] = s[0]  # ties: resolved by lower index first
    assert nms(b, s, thr).tolist() == ref_nms(b.tolist(), s.tolist(), thr)


def test_nms_identical_boxes_and_batched():
    b = torch.tensor([[0.0, 0, 10, 10]] * 3 + [[1, 1, 11, 11]])
    s = torch.tensor([0.5, 0.9, 0.9, 0.1])
    assert nms(b, s, 0.5).tolist() == [1]
    idx = torch.tensor([0, 1, 1, 0])
    assert batched_nms(b, s, idx, 0.5).tolist() == [1, 0]
    g = torch.Generator().manual_seed(0)
    b, s = random_boxes(60, 9, size=40), torch.rand(60, generator=g, dtype=torch.float64)
    idx = torch.randint(0, 3, (60,), generator=g)
    keep = batched_nms(b, s, idx, 0.4)
    ref = []
    for c in range(3):
        m = (idx == c).nonzero().flatten().tolist()
        ref += [m[k] for k in ref_nms(b[m].tolist(), s[m].tolist(), 0.4)]
    assert sorted(keep.tolist()) == sorted(ref)
    assert s[keep].tolist() == sorted(s[keep].tolist(), reverse=True)


def test_errors_name_argument_and_index():
    good = torch.tensor([[0.0, 0, 1, 1]] * 3)
    inv = good.clone()
    inv[2] = torch.tensor([5.0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"boxes2 .* box 2 is inverted"):
        box_iou(good, inv)
    nan = good.clone()
    nan[1, 3] = float("nan")
    with pytest.raises(ValueError, match=r"boxes1 contains a non-finite value .* index 1"):
        generalized_box_iou(nan, good)
    with pytest.raises(ValueError, match=r"boxes must be \[N, 4\], got \(3, 5\)"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"scores must be \[N\] with N = len\(boxes\) = 3, got \(2,\)"):
        nms(good, torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="idxs must be"):
        batched_nms(good, torch.zeros(3), torch.zeros(4, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="aligned=True needs"):
        box_iou(good, good[:2], aligned=True)
    with pytest.raises(ValueError, match="in_fmt must be one of"):
        box_convert(good, "xyz", "xyxy")
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(good, torch.zeros(3), 1.5)
    with pytest.raises(TypeError, match="boxes1 must be a torch.Tensor"):
        box_iou([[0, 0, 1, 1]], good)
    with pytest.raises(ValueError, match="boxes and reference must have equal length"):
        BoxCoder().encode(good, good[:1])


def test_matches_torchvision_when_available():
    tv = pytest.importorskip("torchvision.ops")
    a, b = random_boxes(30, 11), random_boxes(20, 12)
    for ours, theirs in (
        (box_iou, tv.box_iou),
        (generalized_box_iou, tv.generalized_box_iou),
        (distance_box_iou, tv.distance_box_iou),
        (complete_box_iou, tv.complete_box_iou),
    ):
        torch.testing.assert_close(ours(a, b), theirs(a, b))
    s = torch.rand(30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert nms(a, s, 0.3).tolist() == tv.nms(a, s, 0.3).tolist()


def greedy_nms(b, s, thr):
    """Plain greedy loop: one IoU row per kept box."""
    order = torch.sort(s, descending=True, stable=True).indices
    b = b[order]
    removed = torch.zeros(len(b), dtype=torch.bool)
    keep = []
    for i in range(len(b)):
        if not removed[i]:
            keep.append(i)
            removed[i + 1 :] |= box_iou(b[i : i + 1], b[i + 1 :])[0] > thr
    return order[keep].tolist()


def test_nms_long_chain_exact_and_fast():
    # a chain: each box overlaps the next (IoU 1/3 at shift 1, width 2); crosses several sweep blocks
    n, thr = 3000, 0.3
    x = torch.arange(n, dtype=torch.float32)
    b = torch.stack([x, torch.zeros(n), x + 2, torch.full((n,), 10.0)], 1)
    s = torch.linspace(1, 0, n)
    t0 = time.process_time()
    keep = nms(b, s, thr)
    dt = time.process_time() - t0
    assert keep.tolist() == greedy_nms(b, s, thr)
    assert len(keep) == n // 2  # every other box survives
    assert dt < 4.0  # the old fixed-point loop was O(n^3) here (10 s at n=3000); this takes ~0.2 s


def test_nms_and_batched_many_boxes_match_greedy():
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(900, 2, generator=g) * 200
    b = torch.cat([xy, xy + torch.rand(900, 2, generator=g) * 60 + 1], 1)
    s = (torch.rand(900, generator=g) * 50).round()  # many tied scores
    assert nms(b, s, 0.4).tolist() == greedy_nms(b, s, 0.4)
    idx = torch.randint(0, 4, (900,), generator=g)
    ref = []
    for c in range(4):
        m = (idx == c).nonzero().flatten()
        ref += m[greedy_nms(b[m], s[m], 0.4)].tolist()
    keep = batched_nms(b, s, idx, 0.4)
    assert sorted(keep.tolist()) == sorted(ref)
    # by decreasing score, ties by lower index
    pairs = list(zip((-s[keep]).tolist(), keep.tolist()))
    assert pairs == sorted(pairs)


def test_box_coder_zero_size_boxes_are_finite():
    coder = BoxCoder()
    boxes = torch.tensor([[5.0, 5, 5, 9], [1, 1, 4, 1], [2, 2, 2, 2]])  # zero width / height / both
    ref = torch.tensor([[0.0, 0, 10, 10], [3, 3, 3, 8], [0, 0, 4, 4]])  # one zero-width reference
    d = coder.encode(boxes, ref)
    assert torch.isfinite(d).all()
    ref[1] = torch.tensor([3.0, 3, 6, 8])
    back = coder.decode(coder.encode(boxes, ref), ref)
    # the decoded boxes are the targets up to the 1e-3 px minimum size
    assert torch.allclose(back, boxes, atol=2e-3)


def test_malformed_box_inputs_are_clear_errors():
    good = torch.tensor([[0.0, 0, 1, 1]] * 3)
    with pytest.raises(TypeError, match="boxes must hold real numbers, got dtype torch.complex64"):
        box_area(good.to(torch.complex64))
    with pytest.raises(TypeError, match="scores must hold real numbers"):
        nms(good, torch.zeros(3, dtype=torch.complex64), 0.5)
    for size in (None, 8.0, (8,), ("a", 8), (-1, 8)):
        with pytest.raises(ValueError, match=r"size must be \(H, W\)"):
            clip_boxes_to_image(good, size)
    with pytest.raises(TypeError, match="idxs must hold integer category ids"):
        batched_nms(good, torch.zeros(3), torch.zeros(3), 0.5)
    for thr in (None, "a"):
        with pytest.raises(TypeError, match="iou_threshold must be a float"):
            nms(good, torch.zeros(3), thr)
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0, 1\], got nan"):
        batched_nms(good, torch.zeros(3), torch.zeros(3, dtype=torch.long), float("nan"))
