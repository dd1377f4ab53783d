"""Detection metrics: COCO-style mAP/mAR and Pascal VOC AP, plus per-class precision-recall curves.

COCO protocol (Lin et al. 2014, arXiv:1405.0312; the rules of the ``pycocotools`` ``COCOeval`` code,
re-implemented here and tested equal to it):

* per image and class, detections are sorted by score (stable) and the best ``max(max_dets)`` kept;
  each is greedily matched, at each IoU threshold 0.50:0.05:0.95, to the unmatched ground truth with
  the highest IoU >= threshold, preferring non-ignored ground truth (crowd boxes may be matched many
  times and their IoU is intersection / detection area);
* ground truth outside an area range is ignored, as is an unmatched detection outside it;
* precision is made monotone and read at 101 recall points 0:0.01:1 (0 past the last recall);
  AP averages those points; mAP averages AP over IoU thresholds and over classes that have ground
  truth; AR is the final recall, averaged alike.

VOC protocol (Everingham et al. 2010, IJCV 88:303): IoU > 0.5, detections over all images sorted by
score, ``difficult`` ground truth neither rewarded nor penalised; AP is the area under the monotone
precision envelope ("all-point", VOC2010+) or the mean of the best precision at recall 0, 0.1, ..., 1
("11-point", VOC2007). Boxes are continuous (no +1 pixel as in the MATLAB devkit).

Inputs everywhere: ``preds`` a list (one per image) of dicts ``{"boxes": Tensor[D, 4] xyxy, "scores":
Tensor[D], "labels": Tensor[D] int}``; ``targets`` a list of dicts ``{"boxes": Tensor[G, 4] xyxy,
"labels": Tensor[G] int}`` with optional ``"iscrowd"`` (COCO), ``"difficult"`` (VOC) bool/int Tensor[G]
and ``"area"`` Tensor[G] (COCO; default box area). Inputs are validated at entry (``[N, 4]`` boxes,
finite scores, integer labels, one entry per box, IoU thresholds in [0, 1]).

Computation is in float64 NumPy on the CPU (tensors on a GPU are copied over once, as flat arrays):
:func:`coco_map` evaluates all images and classes together, with one sort, one chunked IoU pass and a
greedy-matching loop over detection *ranks* (all (image, class) pairs advance together; the rule is
sequential only within a pair), then cumulative sums per class. On 5,000 images x 100 detections it is
faster than faster-coco-eval's C++ (see ``book/performance.md``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from cvlib.runtime import fast_dev_run

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "COCO_AREA_RANGES",
    "coco_map",
    "voc_ap",
    "average_precision_voc",
    "pr_curves",
    "MeanAveragePrecision",
    "evaluate_detector",
]

COCO_IOU_THRESHOLDS = tuple(np.linspace(0.5, 0.95, 10).tolist())
COCO_AREA_RANGES = {
    "all": (0.0, 1e10),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}


# ---------------------------------------------------------------------------------------- helpers
_PRED_KEYS = ("boxes", "scores", "labels")
_TARGET_KEYS = ("boxes", "labels")
_TARGET_OPTIONAL = ("iscrowd", "difficult", "area")


def _tensor(x, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, (np.ndarray, list, tuple)):
        return torch.as_tensor(np.asarray(x))
    raise TypeError(f"{name} must be a Tensor (or numpy array), got {type(x).__name__}")


def _flatten(preds: Sequence[dict], targets: Sequence[dict]) -> tuple[dict, dict]:
    """Validate and concatenate all images into flat float64/int64/bool numpy arrays.

    Returns ``D`` (``boxes`` [N, 4], ``scores``, ``labels``, ``img``) and ``G`` (``boxes``, ``labels``,
    ``img``, ``iscrowd``, ``difficult``, ``area``). Boxes must be ``[N, 4]`` (an empty ``[0]`` is
    accepted), labels integer ``[N]``, scores real and finite ``[N]``.
    """
    if not isinstance(preds, (list, tuple)) or not isinstance(targets, (list, tuple)):
        raise TypeError(
            f"preds and targets must be lists of dicts, got {type(preds).__name__}, {type(targets).__name__}"
        )
    if len(preds) != len(targets):
        raise ValueError(
            f"preds and targets must have one entry per image, got {len(preds)} and {len(targets)}"
        )
    cols: dict[str, list] = {k: [] for k in ("pb", "ps", "pl", "tb", "tl", "tc", "td", "ta")}
    n_det, n_gt = [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        for name, d, keys in (("preds", p, _PRED_KEYS), ("targets", t, _TARGET_KEYS)):
            if not isinstance(d, dict):
                raise TypeError(f"{name}[{i}] must be a dict, got {type(d).__name__}")
            missing = [k for k in keys if k not in d]
            if missing:
                raise ValueError(f"{name}[{i}] is missing key(s) {missing}; it has {sorted(d)}")
        pb, ps, pl = (_tensor(p[k], f"preds[{i}]['{k}']") for k in _PRED_KEYS)
        tb, tl = (_tensor(t[k], f"targets[{i}]['{k}']") for k in _TARGET_KEYS)
        for name, b in ((f"preds[{i}]['boxes']", pb), (f"targets[{i}]['boxes']", tb)):
            if not (b.dim() == 2 and b.shape[1] == 4) and not (b.dim() == 1 and b.numel() == 0):
                raise ValueError(f"{name} must be [N, 4] xyxy, got {tuple(b.shape)}")
        n, g = pb.numel() // 4, tb.numel() // 4
        for name, v, m in (
            (f"preds[{i}]['scores']", ps, n),
            (f"preds[{i}]['labels']", pl, n),
            (f"targets[{i}]['labels']", tl, g),
        ):
            if v.dim() > 1 or v.numel() != m:
                raise ValueError(f"{name} must be [{m}] (one per box), got {tuple(v.shape)}")
        for name, v in ((f"preds[{i}]['labels']", pl), (f"targets[{i}]['labels']", tl)):
            if v.is_floating_point() and v.numel() and not bool((v == v.round()).all()) or v.is_complex():
                raise TypeError(f"{name} must hold integer class ids, got dtype {v.dtype}")
        if ps.is_complex() or ps.dtype == torch.bool:
            raise TypeError(f"preds[{i}]['scores'] must be real numbers, got dtype {ps.dtype}")
        cols["pb"].append(pb.reshape(n, 4).cpu().double())
        cols["ps"].append(ps.reshape(n).cpu().double())
        cols["pl"].append(pl.reshape(n).cpu().long())
        cols["tb"].append(tb.reshape(g, 4).cpu().double())
        cols["tl"].append(tl.reshape(g).cpu().long())
        for key, col in (("iscrowd", "tc"), ("difficult", "td"), ("area", "ta")):
            if key in t:
                v = _tensor(t[key], f"targets[{i}]['{key}']")
                if v.numel() != g or v.dim() > 1:
                    raise ValueError(
                        f"targets[{i}]['{key}'] must be [{g}] (one per box), got {tuple(v.shape)}"
                    )
                v = v.reshape(g).cpu()
                cols[col].append(v.double() if key == "area" else v.bool())
            else:
                cols[col].append(None)
        n_det.append(n)
        n_gt.append(g)

    def cat(parts: list, width: int | None, dtype: torch.dtype) -> np.ndarray:
        shape = (0, width) if width else (0,)
        return torch.cat(parts).numpy() if parts else torch.zeros(shape, dtype=dtype).numpy()

    n_det_a, n_gt_a = np.asarray(n_det, np.int64), np.asarray(n_gt, np.int64)
    D = {
        "boxes": cat(cols["pb"], 4, torch.float64),
        "scores": cat(cols["ps"], None, torch.float64),
        "labels": cat(cols["pl"], None, torch.int64),
        "img": np.repeat(np.arange(len(preds)), n_det_a),
    }
    G = {
        "boxes": cat(cols["tb"], 4, torch.float64),
        "labels": cat(cols["tl"], None, torch.int64),
        "img": np.repeat(np.arange(len(preds)), n_gt_a),
    }
    tb = G["boxes"]
    default_area = (tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1])
    off = np.concatenate([[0], np.cumsum(n_gt_a)])
    for col, key in (("tc", "iscrowd"), ("td", "difficult"), ("ta", "area")):
        parts = cols[col]
        if all(v is None for v in parts):
            G[key] = default_area.copy() if key == "area" else np.zeros(len(tb), bool)
            continue
        fill = [
            v.numpy()
            if v is not None
            else (default_area[off[i] : off[i + 1]] if key == "area" else np.zeros(n_gt[i], bool))
            for i, v in enumerate(parts)
        ]
        G[key] = np.concatenate(fill) if fill else np.zeros(0, np.float64 if key == "area" else bool)
    # value checks on the flat arrays, reported with the image and the box index
    for name, arr, img, counts in (
        ("preds", D["boxes"], D["img"], n_det_a),
        ("targets", tb, G["img"], n_gt_a),
    ):
        bad = ~np.isfinite(arr).all(1) | (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            i = int(img[j])
            local = j - int(counts[:i].sum())
            raise ValueError(f"{name}[{i}]['boxes'][{local}] is non-finite or inverted: {arr[j].tolist()}")
    bad = ~np.isfinite(D["scores"])
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        i = int(D["img"][j])
        raise ValueError(
            f"preds[{i}]['scores'][{j - int(n_det_a[:i].sum())}] is {D['scores'][j]}; scores must be finite"
        )
    return D, G


def _check_thresholds(iou_thresholds) -> np.ndarray:
    thr = np.asarray(iou_thresholds, np.float64).reshape(-1)
    if thr.size == 0 or not ((thr >= 0) & (thr <= 1)).all():
        raise ValueError(f"iou_thresholds must be non-empty values in [0, 1], got {list(np.atleast_1d(thr))}")
    return thr


def _prepare(preds: Sequence[dict], targets: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Per-image float64 numpy dicts (validated by :func:`_flatten`)."""
    D, G = _flatten(preds, targets)
    if not preds:
        return [], []
    dsplit = np.searchsorted(D["img"], np.arange(1, len(preds)))
    gsplit = np.searchsorted(G["img"], np.arange(1, len(preds)))
    P = [
        dict(zip(("boxes", "scores", "labels"), v))
        for v in zip(*(np.split(D[k], dsplit) for k in ("boxes", "scores", "labels")))
    ]
    keys = ("boxes", "labels", "iscrowd", "difficult", "area")
    T = [dict(zip(keys, v)) for v in zip(*(np.split(G[k], gsplit) for k in keys))]
    return P, T


def _iou_np(d: np.ndarray, g: np.ndarray, crowd: np.ndarray | None = None) -> np.ndarray:
    """[D, G] IoU in float64; for crowd ground truth the denominator is the detection area."""
    lt = np.maximum(d[:, None, :2], g[None, :, :2])
    rb = np.minimum(d[:, None, 2:], g[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    ad = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    ag = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    union = ad[:, None] + ag[None, :] - inter
    if crowd is not None:
        union = np.where(crowd[None, :], ad[:, None], union)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _last_argmax(x: np.ndarray) -> np.ndarray:
    """Index of the maximum along the last axis, the last one among ties."""
    n = x.shape[-1]
    return n - 1 - np.argmax(x[..., ::-1], axis=-1)


# ------------------------------------------------------------------------------------------- COCO
def _coco_match_all(
    dbox: np.ndarray,
    dpair: np.ndarray,
    gbox: np.ndarray,
    gstart: np.ndarray,
    gcount: np.ndarray,
    gcrowd: np.ndarray,
    g_ig: np.ndarray,
    thr: np.ndarray,
    chunk: int = 1 << 15,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching of every detection of every (image, class) pair at once.

    Args:
        dbox: [D, 4] detections, sorted by pair and, within a pair, by decreasing score.
        dpair: [D] pair id of each detection (non-decreasing).
        gbox: [G, 4] ground truth sorted by pair (original order within a pair).
        gstart, gcount: [P] first ground truth and number of ground truth of each pair.
        gcrowd: [G] bool; g_ig: [G, A] bool ignored ground truth per area range; thr: [T].

    Returns:
        matched [D, A, T] bool and det_ignore [D, A, T] bool (matched to an ignored ground truth).

    The sequential part of the greedy rule runs over the rank of a detection among the detections
    of its pair that overlap some ground truth by at least ``min(thr)``; each step handles that rank
    for all pairs at once on compact candidate lists (pairs never share ground truth).
    """
    nd, (ng, na), nt = len(dbox), g_ig.shape, len(thr)
    matched = np.zeros((nd, na, nt), bool)
    det_ig = np.zeros((nd, na, nt), bool)
    if nd == 0 or ng == 0:
        return matched, det_ig
    thr = np.minimum(thr, 1 - 1e-10)
    t_min = thr.min()
    gmax = int(gcount.max())
    rows_l, g_l, iou_l = [], [], []
    for s in range(0, nd, chunk):  # IoU of each detection with its pair's ground truth, in chunks
        p = dpair[s : s + chunk]
        has = gcount[p] > 0
        if not has.any():
            continue
        r = np.flatnonzero(has)
        p = p[r]
        gi = gstart[p][:, None] + np.arange(gmax)[None, :]  # [R, gmax]
        valid = np.arange(gmax)[None, :] < gcount[p][:, None]
        gi = np.where(valid, gi, 0)
        iou = _iou_rows(dbox[s + r], gbox[gi], gcrowd[gi])
        cand = valid & (iou >= t_min)
        keep = cand.any(1)
        if not keep.any():
            continue
        rows_l.append(s + r[keep])
        g_l.append(np.where(cand, gi, -1)[keep])
        iou_l.append(np.where(cand, iou, -1.0)[keep])
    if not rows_l:
        return matched, det_ig
    rows = np.concatenate(rows_l)
    width = max(x.shape[1] for x in g_l)
    cg = np.concatenate([np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1) for x in g_l])
    ci = np.concatenate([np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1.0) for x in iou_l])
    # compact the candidate lists (keeping ground-truth order: ties go to the last, as in COCOeval)
    c = int((cg >= 0).sum(1).max())
    order = np.argsort(cg < 0, axis=1, kind="stable")[:, :c]
    cg, ci = np.take_along_axis(cg, order, 1), np.take_along_axis(ci, order, 1)
    cvalid = cg >= 0
    cg = np.where(cvalid, cg, 0)
    # rank of each candidate detection within its pair (rows are grouped by pair, in score order)
    pr = dpair[rows]
    first = np.r_[True, pr[1:] != pr[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(pr)), 0))
    rank = np.arange(len(pr)) - start
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2))
    taken = np.zeros((ng, na, nt), bool)
    thr4 = thr[None, None, :, None]  # [1, 1, T, 1]
    for j in range(len(bounds) - 1):
        sel = by_rank[bounds[j] : bounds[j + 1]]
        g, iou, val = cg[sel], ci[sel], cvalid[sel]  # [R, C]
        ig = g_ig[g].transpose(0, 2, 1)[:, :, None, :]  # [R, A, 1, C]
        tk = taken[g].transpose(0, 2, 3, 1)  # [R, A, T, C]
        iou4 = iou[:, None, None, :]
        ok = val[:, None, None, :] & (iou4 >= thr4) & (~tk | gcrowd[g][:, None, None, :])
        ok_real, ok_ig = ok & ~ig, ok & ig
        has_real, has_ig = ok_real.any(-1), ok_ig.any(-1)  # [R, A, T]
        pick_real = _last_argmax(np.where(ok_real, iou4, -1.0))
        pick_ig = _last_argmax(np.where(ok_ig, iou4, -1.0))
        m = np.where(has_real, pick_real, pick_ig)
        hit = has_real | has_ig
        d = rows[sel]
        matched[d] = hit
        det_ig[d] = hit & ~has_real
        ri, ai, ti = np.nonzero(hit)
        taken[g[ri, m[ri, ai, ti]], ai, ti] = True
    return matched, det_ig


def _iou_rows(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of detections d [R, 4] with their own ground-truth rows g [R, M, 4] -> [R, M] (as _iou_np)."""
    lt = np.maximum(d[:, None, :2], g[:, :, :2])
    rb = np.minimum(d[:, None, 2:], g[:, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    ad = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    ag = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    union = ad[:, None] + ag - inter
    union = np.where(crowd, ad[:, None], union)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def coco_map(
    preds: Sequence[dict],
    targets: Sequence[dict],
    *,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    rec_thresholds: int = 101,
    max_dets: Sequence[int] = (1, 10, 100),
    area_ranges: dict[str, tuple[float, float]] | None = None,
    class_ids: Sequence[int] | None = None,
    use_crowd: bool = True,
) -> dict:
    """COCO mAP / mAR as ``pycocotools.cocoeval.COCOeval(iouType="bbox")`` computes them.

    Args:
        preds (list[dict]): per image ``boxes`` Tensor[D, 4] xyxy, ``scores`` Tensor[D], ``labels`` Tensor[D].
        targets (list[dict]): per image ``boxes`` Tensor[G, 4], ``labels`` Tensor[G], optional ``iscrowd``,
            ``area``.
        iou_thresholds (Sequence[float]): IoU thresholds T in [0, 1] (default 0.50:0.05:0.95).
        rec_thresholds (int): number of recall points R in [0, 1] (101 in COCO).
        max_dets (Sequence[int]): detections kept per image and class (M values; the last is the main one).
        area_ranges (dict | None): name -> (min, max) area; default all/small/medium/large of COCO.
        class_ids (Sequence[int] | None): the categories to evaluate (default: all labels seen in
            ``targets``); classes without ground truth are left out of the means, as in COCO.
        use_crowd (bool): honour ``iscrowd`` (else crowd boxes count as ordinary ground truth).

    Returns:
        dict: ``map, map_50, map_75, map_small, map_medium, map_large, mar_1, mar_10, mar_100,
        mar_small, mar_medium, mar_large`` (floats, -1 where undefined, like ``COCOeval.stats``),
        ``classes`` (list[int]), ``map_per_class`` / ``mar_100_per_class`` (list[float]), and the raw arrays
        ``precision`` [T, R, K, A, M] and ``recall`` [T, K, A, M] (-1 where undefined).

    All images and classes are evaluated together on flat arrays (one sort, one IoU pass in chunks, a
    greedy matching loop over detection ranks rather than over (image, class) pairs, cumulative sums
    per class); the results equal pycocotools' (tested on random scenes with crowd boxes).
    """
    D, G = _flatten(preds, targets)
    areas = dict(area_ranges or COCO_AREA_RANGES)
    if "all" not in areas:
        raise ValueError(f"area_ranges must include 'all', got {list(areas)}")
    area_lo = np.array([v[0] for v in areas.values()], np.float64)
    area_hi = np.array([v[1] for v in areas.values()], np.float64)
    thr = _check_thresholds(iou_thresholds)
    if isinstance(rec_thresholds, bool) or not isinstance(rec_thresholds, int) or rec_thresholds < 2:
        raise ValueError(f"rec_thresholds must be an int >= 2, got {rec_thresholds!r}")
    rec_thr = np.linspace(0.0, 1.0, rec_thresholds)
    max_dets = sorted(int(m) for m in max_dets)
    if not max_dets or max_dets[0] < 1:
        raise ValueError(f"max_dets must be positive ints, got {max_dets}")
    classes = (
        sorted({int(c) for c in class_ids}) if class_ids is not None else np.unique(G["labels"]).tolist()
    )
    nt, nr, nk, na, nm = len(thr), len(rec_thr), len(classes), len(areas), len(max_dets)
    precision = -np.ones((nt, nr, nk, na, nm))
    recall = -np.ones((nt, nk, na, nm))
    cls_arr = np.asarray(classes, np.int64)
    n_img = len(preds)

    # class index of every detection / ground truth (-1: not evaluated)
    def cls_index(lab: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(cls_arr, lab)
        ok = pos < nk
        ok[ok] = cls_arr[pos[ok]] == lab[ok]
        return np.where(ok, pos, -1)

    dk, gk = cls_index(D["labels"]), cls_index(G["labels"])
    dsel, gsel = np.flatnonzero(dk >= 0), np.flatnonzero(gk >= 0)
    # detections: by image, class, decreasing score (stable), the best max(max_dets) of each pair
    dpair_all = D["img"][dsel] * nk + dk[dsel]
    o = np.lexsort((-D["scores"][dsel], dpair_all))
    dsel, dpair = dsel[o], dpair_all[o]
    first = np.r_[True, dpair[1:] != dpair[:-1]] if len(dpair) else np.zeros(0, bool)
    rank = np.arange(len(dpair)) - np.maximum.accumulate(np.where(first, np.arange(len(dpair)), 0))
    keep = rank < max_dets[-1]
    dsel, dpair, rank = dsel[keep], dpair[keep], rank[keep]
    dbox, dscore = D["boxes"][dsel], D["scores"][dsel]
    # ground truth: by image and class (original order within a pair)
    gpair = G["img"][gsel] * nk + gk[gsel]
    o = np.argsort(gpair, kind="stable")
    gsel, gpair = gsel[o], gpair[o]
    gbox, garea = G["boxes"][gsel], G["area"][gsel]
    gcrowd = G["iscrowd"][gsel] & use_crowd
    g_ig = gcrowd[:, None] | (garea[:, None] < area_lo) | (garea[:, None] > area_hi)  # [G, A]
    n_pairs = n_img * nk
    gcount = np.bincount(gpair, minlength=n_pairs)
    gstart = np.concatenate([[0], np.cumsum(gcount)[:-1]])
    matched, det_ig = _coco_match_all(dbox, dpair, gbox, gstart, gcount, gcrowd, g_ig, thr)
    d_area = (dbox[:, 2] - dbox[:, 0]) * (dbox[:, 3] - dbox[:, 1])
    d_out = (d_area[:, None] < area_lo) | (d_area[:, None] > area_hi)  # [D, A]
    det_ig |= ~matched & d_out[:, :, None]
    n_gt = np.zeros((nk, na), np.int64)  # non-ignored ground truth per class and area
    np.add.at(n_gt, gk[gsel], (~g_ig).astype(np.int64))
    # per class: detections of all images by decreasing score; ties by image, then rank (= COCOeval's
    # stable sort of the per-image lists concatenated in image order)
    dcls = dpair % nk if nk else dpair
    dimg = dpair // nk if nk else dpair
    order = np.lexsort((rank, dimg, -dscore, dcls))
    tp_all = np.ascontiguousarray((matched & ~det_ig).transpose(1, 2, 0))  # [A, T, D]
    fp_all = np.ascontiguousarray((~matched & ~det_ig).transpose(1, 2, 0))
    for mi, md in enumerate(max_dets):
        o = order[rank[order] < md]
        kc = dcls[o]
        bounds = np.searchsorted(kc, np.arange(nk + 1))
        tp_c = np.cumsum(tp_all[:, :, o], axis=2, dtype=np.int64)  # [A, T, D'] running counts
        fp_c = np.cumsum(fp_all[:, :, o], axis=2, dtype=np.int64)
        for k in range(nk):
            if not (n_gt[k] > 0).any():
                continue
            s, e = bounds[k], bounds[k + 1]
            nd = e - s
            if nd == 0:
                for ai in np.flatnonzero(n_gt[k] > 0):
                    recall[:, k, ai, mi] = 0.0
                    precision[:, :, k, ai, mi] = 0.0
                continue
            tp, fp = tp_c[:, :, s:e], fp_c[:, :, s:e]
            if s:  # counts within the class: subtract the running count before it
                tp, fp = tp - tp_c[:, :, s - 1 : s], fp - fp_c[:, :, s - 1 : s]
            tp, fp = tp.astype(np.float64), fp.astype(np.float64)  # [A, T, nd]
            pr = tp / (fp + tp + np.spacing(1))
            pr = np.maximum.accumulate(pr[:, :, ::-1], axis=2)[:, :, ::-1]  # monotone envelope
            for ai in np.flatnonzero(n_gt[k] > 0):
                rc = tp[ai] / n_gt[k, ai]  # [T, nd]
                recall[:, k, ai, mi] = rc[:, -1]
                for ti in range(nt):
                    idx = np.searchsorted(rc[ti], rec_thr, side="left")
                    q = np.zeros(nr)
                    ok = idx < nd
                    q[ok] = pr[ai, ti, idx[ok]]
                    precision[ti, :, k, ai, mi] = q

    names = list(areas)

    def mean(x: np.ndarray) -> float:
        x = x[x > -1]
        return float(x.mean()) if x.size else -1.0

    def ap(iou=None, area="all", md=max_dets[-1]):
        s = precision[:, :, :, names.index(area), max_dets.index(md)]
        if iou is not None:
            s = s[np.flatnonzero(np.isclose(thr, iou))]
        return mean(s)

    def ar(area="all", md=max_dets[-1]):
        return mean(recall[:, :, names.index(area), max_dets.index(md)])

    out: dict = {"map": ap()}
    for iou, key in ((0.5, "map_50"), (0.75, "map_75")):
        out[key] = ap(iou) if np.isclose(thr, iou).any() else -1.0
    for a in ("small", "medium", "large"):
        out[f"map_{a}"] = ap(area=a) if a in names else -1.0
    for md in max_dets:
        out[f"mar_{md}"] = ar(md=md)
    for a in ("small", "medium", "large"):
        out[f"mar_{a}"] = ar(area=a) if a in names else -1.0
    ia, im = names.index("all"), nm - 1
    out["classes"] = classes
    out["map_per_class"] = [mean(precision[:, :, k, ia, im]) for k in range(nk)]
    out["mar_100_per_class"] = [mean(recall[:, k, ia, im]) for k in range(nk)]
    out["precision"], out["recall"] = precision, recall
    return out


# -------------------------------------------------------------------------------------------- VOC
def average_precision_voc(recall: np.ndarray, precision: np.ndarray, *, use_07_metric: bool = False) -> float:
    """AP from a recall/precision curve (ordered by decreasing score).

    Args:
        recall (np.ndarray[D]): cumulative recall.
        precision (np.ndarray[D]): cumulative precision.
        use_07_metric (bool): 11-point interpolation (VOC2007) instead of the all-point area.
    """
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if use_07_metric:
        ap = 0.0
        for t in np.linspace(0, 1, 11):
            p = precision[recall >= t]
            ap += (p.max() if p.size else 0.0) / 11
        return float(ap)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(((mrec[i + 1] - mrec[i]) * mpre[i + 1]).sum())


def pr_curves(
    preds: Sequence[dict],
    targets: Sequence[dict],
    *,
    iou_threshold: float = 0.5,
    ignore_difficult: bool = True,
) -> dict:
    """Per-class precision-recall curves with the VOC matching rule.

    A detection counts as a true positive when its highest-IoU ground truth in the image (same class)
    overlaps it by more than ``iou_threshold`` (in [0, 1]) and was not matched before. With
    ``ignore_difficult`` (the VOC protocol), ground truth flagged ``difficult`` in the targets is
    neither a true positive nor a miss, and detections whose best match is difficult are dropped from
    the curve (neither TP nor FP); with ``ignore_difficult=False`` they count as ordinary objects.

    Returns:
        dict[int, dict]: class -> ``{"recall": ndarray[D], "precision": ndarray[D], "scores": ndarray[D],
        "n_gt": int}``, points in order of decreasing score (one per detection).
    """
    thr = float(_check_thresholds([iou_threshold])[0])
    P, T = _prepare(preds, targets)
    classes = sorted({int(c) for t in T for c in t["labels"]} | {int(c) for p in P for c in p["labels"]})
    curves = {}
    for c in classes:
        sc, tp, fp, n_gt = [], [], [], 0
        for p, t in zip(P, T):
            dsel, gsel = p["labels"] == c, t["labels"] == c
            gb, diff = t["boxes"][gsel], t["difficult"][gsel] & ignore_difficult
            n_gt += int((~diff).sum())
            if not dsel.any():
                continue
            order = np.argsort(-p["scores"][dsel], kind="mergesort")
            db, ds = p["boxes"][dsel][order], p["scores"][dsel][order]
            ious = _iou_np(db, gb)
            taken = np.zeros(len(gb), bool)
            t_img, f_img = np.zeros(len(db), bool), np.zeros(len(db), bool)
            for j in range(len(db)):  # greedy within the image, in score order (as the devkit)
                if len(gb) == 0 or ious[j].max() <= thr:
                    f_img[j] = True
                    continue
                g = int(np.argmax(ious[j]))
                if diff[g]:
                    continue
                if taken[g]:
                    f_img[j] = True
                else:
                    t_img[j] = taken[g] = True
            sc.append(ds)
            tp.append(t_img)
            fp.append(f_img)
        s = np.concatenate(sc) if sc else np.zeros(0)
        order = np.argsort(-s, kind="mergesort")
        tpc = np.cumsum(np.concatenate(tp)[order]) if sc else np.zeros(0)
        fpc = np.cumsum(np.concatenate(fp)[order]) if sc else np.zeros(0)
        rec = tpc / max(n_gt, 1)
        prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
        curves[c] = {"recall": rec, "precision": prec, "scores": s[order], "n_gt": n_gt}
    return curves


def voc_ap(
    preds: Sequence[dict],
    targets: Sequence[dict],
    *,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
    ignore_difficult: bool = True,
) -> dict:
    """Pascal VOC AP per class and its mean.

    Targets may carry ``"difficult"`` (bool Tensor[G]); as in the VOC protocol those objects are
    ignored (``ignore_difficult=True``, see :func:`pr_curves`).

    Note: the devkit matches each detection (over all images, by score) to its highest-IoU ground truth
    in the image; here the same happens image by image in score order, which gives the same matches.

    Returns:
        dict: ``map`` (mean over classes with ground truth), ``ap_per_class`` dict[int, float],
        ``curves`` (as :func:`pr_curves`).
    """
    curves = pr_curves(preds, targets, iou_threshold=iou_threshold, ignore_difficult=ignore_difficult)
    aps = {
        c: average_precision_voc(v["recall"], v["precision"], use_07_metric=use_07_metric)
        for c, v in curves.items()
        if v["n_gt"] > 0
    }
    return {"map": float(np.mean(list(aps.values()))) if aps else -1.0, "ap_per_class": aps, "curves": curves}


# ------------------------------------------------------------------------------- streaming metric
class MeanAveragePrecision:
    """Accumulating COCO mAP for ``cvlib.train``: ``reset()``, ``update(preds, targets)``, ``compute()``.

    Args:
        key (str): which entry of :func:`coco_map` ``compute()`` returns (``"map"``, ``"map_50"``, ...).
        **kwargs: passed to :func:`coco_map`.
    """

    KEYS = (
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
    )

    def __init__(self, key: str = "map", **kwargs) -> None:
        md = sorted(int(m) for m in kwargs.get("max_dets", (1, 10, 100)))
        keys = tuple(k for k in self.KEYS if not k.startswith("mar_") or not k[4:].isdigit()) + tuple(
            f"mar_{m}" for m in md
        )
        if key not in keys:
            raise ValueError(f"key must be one of {keys}, got {key!r}")
        if "iou_thresholds" in kwargs:
            _check_thresholds(kwargs["iou_thresholds"])
        self.key, self.kwargs = key, kwargs
        self.name = key  # the name cvlib.train.fit logs it under (val_<name>)
        self.reset()

    def reset(self) -> None:
        self.preds: list[dict] = []
        self.targets: list[dict] = []

    @staticmethod
    def _cpu(d: dict) -> dict:
        return {k: (v.detach().cpu() if isinstance(v, Tensor) else v) for k, v in d.items()}

    def update(self, preds: Sequence[dict], targets: Sequence[dict]) -> None:
        """Validate one batch (as :func:`coco_map` would, so errors surface here) and store it."""
        _flatten(preds, targets)
        self.preds += [self._cpu(p) for p in preds]
        self.targets += [self._cpu(t) for t in targets]

    def compute_all(self) -> dict:
        return coco_map(self.preds, self.targets, **self.kwargs)

    def compute(self) -> float:
        return float(self.compute_all()[self.key])


def evaluate_detector(
    model: torch.nn.Module, data, *, batch_size: int = 16, warmup: int = 1, repeats: int = 1
) -> dict:
    """Run a detector in eval mode over a data set, time its forward passes, and score it (COCO and VOC).

    Only the model calls are timed (data loading is not): each batch is moved to the model's device, the
    device is synchronised, and the clock runs until the outputs are ready. The first ``warmup`` batches
    are run once more beforehand, untimed (one-off allocation and kernel selection costs). With
    ``repeats > 1`` the whole pass is timed that many times and the fastest is kept (the usual way to
    suppress noise from other processes); the predictions come from the first pass.

    Under ``CVLIB_FAST_DEV_RUN=N`` (:func:`cvlib.runtime.fast_dev_run`) only the first ``N`` batches
    are run and scored, once, with no warm-up: a smoke run whose numbers are meaningless.

    Args:
        model (nn.Module): eval-mode call ``model(images) -> list[dict]`` (boxes, scores, labels).
        data: ``(images, targets)`` with images Tensor[N, 3, H, W] (or a list of Tensor[3, H, W]) in [0, 1]
            and targets a list of dicts (``boxes``, ``labels``, optional ``difficult``, ``iscrowd``); or a
            Dataset of ``(image, target)`` pairs.
        batch_size (int): images per forward pass.
        warmup (int): untimed batches run before timing.
        repeats (int): timed passes over the data (>= 1); the fastest one counts.

    Returns:
        dict: the :func:`coco_map` entries, ``voc_map_50`` (all-point VOC AP at IoU 0.5), ``images_per_s``,
        ``seconds`` (model time of the fastest pass), ``preds`` (list of dicts on the CPU) and ``curves``
        (:func:`pr_curves`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[1], Tensor):
        images, targets = data
        if len(images) != len(targets):
            raise ValueError(
                f"images and targets must have the same length, got {len(images)} and {len(targets)}"
            )
        n = len(images)

        def get(i: int, j: int):
            return images[i:j], list(targets[i:j])
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        n = len(data)

        def get(i: int, j: int):
            items = [data[k] for k in range(i, j)]
            return [x for x, _ in items], [t for _, t in items]
    else:
        raise TypeError(
            f"data must be (images, targets) or a Dataset of (image, target), got {type(data).__name__}"
        )
    fast = fast_dev_run()
    if fast is not None:
        warmup, repeats, n = 0, 1, min(n, fast * batch_size)
    device = next(model.parameters()).device

    def run(x):
        x = x.to(device) if isinstance(x, Tensor) else [im.to(device) for im in x]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out, time.perf_counter() - start

    was_training = model.training
    model.eval()
    preds: list[dict] = []
    all_targets: list[dict] = []
    seconds = 0.0
    try:
        with torch.inference_mode():
            for j in range(min(warmup, -(-n // batch_size))):
                run(get(j * batch_size, min(n, (j + 1) * batch_size))[0])
            for i in range(0, n, batch_size):
                x, t = get(i, min(n, i + batch_size))
                out, dt = run(x)
                seconds += dt
                preds += [{k: v.detach().cpu() for k, v in d.items()} for d in out]
                all_targets += t
            for _ in range(repeats - 1):
                seconds = min(
                    seconds, sum(run(get(i, min(n, i + batch_size))[0])[1] for i in range(0, n, batch_size))
                )
    finally:
        model.train(was_training)
    res = coco_map(preds, all_targets)
    voc = voc_ap(preds, all_targets)
    res.update(
        voc_map_50=voc["map"],
        curves=voc["curves"],
        preds=preds,
        seconds=seconds,
        images_per_s=n / max(seconds, 1e-12),
    )
    return res
