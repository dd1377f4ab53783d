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
and ``"area"`` Tensor[G] (COCO; default box area). Computation is in float64 NumPy, vectorised over
IoU thresholds, area ranges and ground truth; the only loop inside an (image, class) pair runs over
its at most ``max(max_dets)`` detections, as the greedy matching is sequential.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

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
def _np(x, dtype=np.float64) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _prepare(preds: Sequence[dict], targets: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Validate and convert to float64 numpy dicts."""
    if not isinstance(preds, (list, tuple)) or not isinstance(targets, (list, tuple)):
        raise TypeError(
            f"preds and targets must be lists of dicts, got {type(preds).__name__}, {type(targets).__name__}"
        )
    if len(preds) != len(targets):
        raise ValueError(
            f"preds and targets must have one entry per image, got {len(preds)} and {len(targets)}"
        )
    P, T = [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        for name, d, keys in (
            ("preds", p, ("boxes", "scores", "labels")),
            ("targets", t, ("boxes", "labels")),
        ):
            missing = [k for k in keys if k not in d]
            if missing:
                raise ValueError(f"{name}[{i}] is missing key(s) {missing}")
        pb, tb = _np(p["boxes"]).reshape(-1, 4), _np(t["boxes"]).reshape(-1, 4)
        ps, pl, tl = (
            _np(p["scores"]).reshape(-1),
            _np(p["labels"], np.int64).reshape(-1),
            _np(t["labels"], np.int64),
        )
        tl = tl.reshape(-1)
        if not (len(pb) == len(ps) == len(pl)):
            raise ValueError(
                f"preds[{i}] boxes/scores/labels lengths differ: {len(pb)}, {len(ps)}, {len(pl)}"
            )
        if len(tb) != len(tl):
            raise ValueError(f"targets[{i}] boxes/labels lengths differ: {len(tb)}, {len(tl)}")
        for name, b in (("preds", pb), ("targets", tb)):
            bad = ~np.isfinite(b).all(1) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{name}[{i}]['boxes'][{j}] is non-finite or inverted: {b[j].tolist()}")
        crowd = _np(t.get("iscrowd", np.zeros(len(tb))), bool).reshape(-1)
        diff = _np(t.get("difficult", np.zeros(len(tb))), bool).reshape(-1)
        area = _np(t["area"]).reshape(-1) if "area" in t else (tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1])
        P.append(dict(boxes=pb, scores=ps, labels=pl))
        T.append(dict(boxes=tb, labels=tl, iscrowd=crowd, difficult=diff, area=area))
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
def _match_coco(
    ious: np.ndarray, gt_ignore: np.ndarray, crowd: np.ndarray, thr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching of score-sorted detections, for all area ranges and thresholds at once.

    Args:
        ious: [D, G]; gt_ignore: [A, G] bool; crowd: [G] bool; thr: [T].

    Returns:
        matched [A, T, D] bool and det_ignore [A, T, D] bool (matched to an ignored ground truth).
    """
    a, g = gt_ignore.shape
    d = ious.shape[0]
    t = len(thr)
    matched = np.zeros((a, t, d), bool)
    det_ig = np.zeros((a, t, d), bool)
    if g == 0:
        return matched, det_ig
    gt_taken = np.zeros((a, t, g), bool)
    thr = np.minimum(thr, 1 - 1e-10)[None, :, None]  # [1, T, 1]
    ig = gt_ignore[:, None, :]  # [A, 1, G]
    for j in range(d):
        iou = ious[j][None, None, :]  # [1, 1, G]
        ok = (iou >= thr) & (~gt_taken | crowd[None, None, :])  # [A, T, G]
        ok_real, ok_ig = ok & ~ig, ok & ig
        has_real, has_ig = ok_real.any(-1), ok_ig.any(-1)  # [A, T]
        pick_real = _last_argmax(np.where(ok_real, iou, -1.0))
        pick_ig = _last_argmax(np.where(ok_ig, iou, -1.0))
        m = np.where(has_real, pick_real, pick_ig)  # [A, T]
        hit = has_real | has_ig
        matched[:, :, j] = hit
        det_ig[:, :, j] = hit & ~has_real
        ai, ti = np.nonzero(hit)
        gt_taken[ai, ti, m[ai, ti]] = True
    return matched, det_ig


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
        iou_thresholds (Sequence[float]): IoU thresholds T (default 0.50:0.05:0.95).
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
    """
    P, T = _prepare(preds, targets)
    areas = dict(area_ranges or COCO_AREA_RANGES)
    if "all" not in areas:
        raise ValueError(f"area_ranges must include 'all', got {list(areas)}")
    area_lo = np.array([v[0] for v in areas.values()])[:, None]
    area_hi = np.array([v[1] for v in areas.values()])[:, None]
    thr = np.asarray(iou_thresholds, np.float64)
    rec_thr = np.linspace(0.0, 1.0, rec_thresholds)
    max_dets = sorted(int(m) for m in max_dets)
    classes = (
        sorted(set(class_ids)) if class_ids is not None else sorted({int(c) for t in T for c in t["labels"]})
    )
    nt, nr, nk, na, nm = len(thr), len(rec_thr), len(classes), len(areas), len(max_dets)
    precision = -np.ones((nt, nr, nk, na, nm))
    recall = -np.ones((nt, nk, na, nm))

    for k, c in enumerate(classes):
        scores, matched, det_ig, n_gt = [], [], [], np.zeros(na, np.int64)
        for p, t in zip(P, T):
            dsel, gsel = p["labels"] == c, t["labels"] == c
            if not dsel.any() and not gsel.any():
                continue
            order = np.argsort(-p["scores"][dsel], kind="mergesort")[: max_dets[-1]]
            db, ds = p["boxes"][dsel][order], p["scores"][dsel][order]
            gb, crowd, garea = t["boxes"][gsel], t["iscrowd"][gsel] & use_crowd, t["area"][gsel]
            g_ig = crowd[None, :] | (garea[None, :] < area_lo) | (garea[None, :] > area_hi)  # [A, G]
            m, ig = _match_coco(_iou_np(db, gb, crowd), g_ig, crowd, thr)
            d_area = (db[:, 2] - db[:, 0]) * (db[:, 3] - db[:, 1])
            d_out = (d_area[None, :] < area_lo) | (d_area[None, :] > area_hi)  # [A, D]
            ig = ig | (~m & d_out[:, None, :])
            scores.append(ds)
            matched.append(m)
            det_ig.append(ig)
            n_gt += (~g_ig).sum(1)
        if not scores:
            continue
        for mi, md in enumerate(max_dets):
            s = np.concatenate([x[:md] for x in scores])
            order = np.argsort(-s, kind="mergesort")
            mm = np.concatenate([x[:, :, :md] for x in matched], axis=2)[:, :, order]  # [A, T, D]
            ii = np.concatenate([x[:, :, :md] for x in det_ig], axis=2)[:, :, order]
            tp = np.cumsum(mm & ~ii, axis=2).astype(np.float64)
            fp = np.cumsum(~mm & ~ii, axis=2).astype(np.float64)
            nd = tp.shape[2]
            for ai in range(na):
                if n_gt[ai] == 0:
                    continue
                rc = tp[ai] / n_gt[ai]  # [T, D]
                pr = tp[ai] / (fp[ai] + tp[ai] + np.spacing(1))
                recall[:, k, ai, mi] = rc[:, -1] if nd else 0.0
                if nd == 0:
                    precision[:, :, k, ai, mi] = 0.0
                    continue
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # monotone envelope
                for ti in range(nt):
                    idx = np.searchsorted(rc[ti], rec_thr, side="left")
                    q = np.zeros(nr)
                    ok = idx < nd
                    q[ok] = pr[ti, idx[ok]]
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


def pr_curves(preds: Sequence[dict], targets: Sequence[dict], *, iou_threshold: float = 0.5) -> dict:
    """Per-class precision-recall curves with the VOC matching rule.

    Returns:
        dict[int, dict]: class -> ``{"recall": ndarray[D], "precision": ndarray[D], "scores": ndarray[D],
        "n_gt": int}``, points in order of decreasing score (one per detection).
    """
    P, T = _prepare(preds, targets)
    classes = sorted({int(c) for t in T for c in t["labels"]} | {int(c) for p in P for c in p["labels"]})
    curves = {}
    for c in classes:
        sc, tp, fp, n_gt = [], [], [], 0
        for p, t in zip(P, T):
            dsel, gsel = p["labels"] == c, t["labels"] == c
            gb, diff = t["boxes"][gsel], t["difficult"][gsel]
            n_gt += int((~diff).sum())
            if not dsel.any():
                continue
            order = np.argsort(-p["scores"][dsel], kind="mergesort")
            db, ds = p["boxes"][dsel][order], p["scores"][dsel][order]
            ious = _iou_np(db, gb)
            taken = np.zeros(len(gb), bool)
            t_img, f_img = np.zeros(len(db), bool), np.zeros(len(db), bool)
            for j in range(len(db)):  # greedy within the image, in score order (as the devkit)
                if len(gb) == 0 or ious[j].max() <= iou_threshold:
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
    preds: Sequence[dict], targets: Sequence[dict], *, iou_threshold: float = 0.5, use_07_metric: bool = False
) -> dict:
    """Pascal VOC AP per class and its mean.

    Note: the devkit matches each detection (over all images, by score) to its highest-IoU ground truth
    in the image; here the same happens image by image in score order, which gives the same matches.

    Returns:
        dict: ``map`` (mean over classes with ground truth), ``ap_per_class`` dict[int, float],
        ``curves`` (as :func:`pr_curves`).
    """
    curves = pr_curves(preds, targets, iou_threshold=iou_threshold)
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

    def __init__(self, key: str = "map", **kwargs) -> None:
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
        if len(preds) != len(targets):
            raise ValueError(
                f"preds and targets must have one entry per image, got {len(preds)} and {len(targets)}"
            )
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
