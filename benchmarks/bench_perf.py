"""cvlib against the specialised tools, side by side in one process, same inputs, answers checked.

Comparisons (issue "Performance: ahead of the specialised tools"):

* ``knn``: :class:`cvlib.knn.KNNClassifier.kneighbors` vs faiss-cpu's exact ``IndexFlatL2``
  (10,000 train x 1,000 queries, k = 5, 784-d and 3,072-d), at 1 thread and at the default thread
  count (both libraries set alike); neighbours must be identical.
* ``coco``: :func:`cvlib.metrics.detection.coco_map` vs faster-coco-eval's ``COCOeval_faster``
  (5,000 images x 100 detections, 80 classes, synthetic: ``benchmarks/_coco_data.py``); all 12
  statistics and the full precision / recall arrays are compared.
* ``nms``: :func:`cvlib.ops.nms` and :func:`cvlib.ops.batched_nms` vs a plain greedy loop (one
  IoU row per kept box) on random boxes and on chains of overlapping boxes, n up to 10,000; on a
  CUDA GPU with torchvision installed, also torchvision's kernel.
* ``roi``: :func:`cvlib.ops.roi_align` time and the largest block it gathers, against what an
  unblocked computation asks for.
* ``torchvision`` (only where torchvision imports; otherwise recorded as skipped): ``nms`` and
  ``batched_nms`` vs ``torchvision.ops.nms`` / ``batched_nms`` on the CPU (random boxes and chains,
  n = 1,000 / 3,000 / 10,000; kept indices identical, or different only between exactly tied
  scores) and on CUDA when a GPU is present; ``roi_align`` vs ``torchvision.ops.roi_align`` on a
  detector's FPN level and on the large case above (also compared in float64); the detectors
  ``fcos_resnet50_fpn`` and ``faster_rcnn_resnet50_fpn`` vs torchvision's ``FCOS`` and
  ``FasterRCNN`` configured alike (see ``_tv_detector``), the same random weights loaded into both,
  time per image and the detections compared. torchvision needs its own environment here::

      python3 -m venv /tmp/tvenv && /tmp/tvenv/bin/pip install torch torchvision numpy tqdm matplotlib pillow
      OMP_NUM_THREADS=1 PYTHONPATH=. /tmp/tvenv/bin/python benchmarks/bench_perf.py --only torchvision

Timing: the candidates are interleaved (their order alternates every repeat) and the medians of
the wall-clock time and of the process CPU time are reported; on a busy machine the CPU time is the
steadier figure (at more than one thread it sums the threads' work, so compare wall time there).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_perf.py                 # everything, full sizes
    python benchmarks/bench_perf.py --only knn coco --quick           # small sizes, a minute
    python benchmarks/bench_perf.py --coco-images 1000 --repeats 5

Results are merged into ``benchmarks/results.json`` under ``"perf"`` (other entries are kept) and
the ratio plot is written to ``book/_static/performance_ratios.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._coco_data import make_coco_like  # noqa: E402
from cvlib.knn import KNNClassifier  # noqa: E402
from cvlib.metrics.detection import MeanAveragePrecision, coco_map  # noqa: E402
from cvlib.ops.boxes import batched_nms, box_iou, nms  # noqa: E402
from cvlib.ops.roi import roi_align  # noqa: E402

STAT_KEYS = list(MeanAveragePrecision.KEYS)  # the 12 COCO summary statistics, pycocotools' order


def timeit(fns: dict, repeats: int, warmup: tuple[str, ...] | None = None) -> dict:
    """Interleaved repeats of each callable; median wall and CPU seconds per name (one warm-up each, or
    only for the names in ``warmup`` when given: the others were just run by the caller)."""
    for k, f in fns.items():
        if warmup is None or k in warmup:
            f()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            c0, t0 = time.process_time(), time.perf_counter()
            fns[k]()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: {"wall_s": statistics.median(wall[k]), "cpu_s": statistics.median(cpu[k])} for k in names}


def ratios(t: dict, ours: str, ref: str) -> dict:
    """Speed of ``ours`` relative to ``ref`` (> 1: cvlib faster), by wall and by CPU time."""
    return {
        "ratio_wall": t[ref]["wall_s"] / t[ours]["wall_s"],
        "ratio_cpu": t[ref]["cpu_s"] / t[ours]["cpu_s"],
    }


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    with contextlib.suppress(ImportError):
        import faiss

        faiss.omp_set_num_threads(n)


# ------------------------------------------------------------------------------------------ k-NN
def bench_knn(repeats: int, quick: bool) -> list[dict]:
    out = []
    n_train, n_query = (2000, 200) if quick else (10_000, 1_000)
    try:
        import faiss
    except ImportError:  # e.g. on a GPU machine without faiss: the GPU rows only
        faiss, threads = None, []
        print("knn: faiss not importable, CPU comparison skipped")
    else:
        threads = sorted({1, os.cpu_count() or 1})
    for dim in (784, 3072):
        rng = np.random.default_rng(dim)
        x = rng.random((n_train, dim), dtype=np.float32)
        q = rng.random((n_query, dim), dtype=np.float32)
        if faiss is None:
            if torch.cuda.is_available():
                out.append(_knn_cuda(x, q, dim, repeats))
            continue
        index = faiss.IndexFlatL2(dim)
        index.add(x)
        knn = KNNClassifier(k=5).fit(torch.from_numpy(x), torch.zeros(n_train, dtype=torch.int64))
        qt = torch.from_numpy(q)
        for n in threads:
            set_threads(n)
            d_f, i_f = index.search(q, 5)
            d_c, i_c = knn.kneighbors(qt)
            same = float((i_c.numpy() == i_f).mean())
            xt = torch.from_numpy(x)
            fns = {
                "cvlib": lambda knn=knn, qt=qt: knn.kneighbors(qt),
                "faiss": lambda index=index, q=q: index.search(q, 5),
                "matmul": lambda qt=qt, xt=xt: qt @ xt.T,  # the distance step's product alone
            }
            t = timeit(fns, repeats)
            # mismatches: are they float32 near-ties? exact (float64) distances of both neighbour lists
            xd, qd = torch.from_numpy(x).double(), torch.from_numpy(q).double()
            bad = (i_c.numpy() != i_f).any(1).nonzero()[0]
            ex_c = ((qd[bad, None] - xd[i_c[bad]]) ** 2).sum(-1).sort(1).values
            ex_f = ((qd[bad, None] - xd[torch.from_numpy(i_f[bad])]) ** 2).sum(-1).sort(1).values
            gap = float(((ex_c - ex_f).abs() / ex_f).max()) if len(bad) else 0.0
            out.append(
                {
                    "dim": dim,
                    "n_train": n_train,
                    "n_query": n_query,
                    "k": 5,
                    "threads": n,
                    "cvlib": t["cvlib"],
                    "faiss_IndexFlatL2": t["faiss"],
                    **ratios(t, "cvlib", "faiss"),
                    "distance_gflop_per_s": 2e-9 * n_train * n_query * dim / t["cvlib"]["wall_s"],
                    "fraction_of_matmul_rate": t["matmul"]["wall_s"] / t["cvlib"]["wall_s"],
                    "identical_neighbours": same,
                    "max_abs_distance_diff": float(np.abs(d_c.numpy() ** 2 - d_f).max()),
                    "rows_differing": int(len(bad)),
                    "max_rel_exact_distance_gap_in_differing_rows": gap,
                }
            )
            print(
                f"knn {dim}-d, {n} thread(s): {out[-1]['ratio_wall']:.2f}x wall, "
                f"{out[-1]['ratio_cpu']:.2f}x CPU vs faiss, identical {same:.4f}, "
                f"{out[-1]['fraction_of_matmul_rate']:.2f} of the matmul rate"
            )
        if torch.cuda.is_available():
            out.append(_knn_cuda(x, q, dim, repeats))
    set_threads(1)
    return out


def _knn_cuda(x: np.ndarray, q: np.ndarray, dim: int, repeats: int) -> dict:
    """k-NN on the GPU: the whole search against the plain matrix product of its distance step."""
    xt, qt = torch.from_numpy(x).cuda(), torch.from_numpy(q).cuda()
    knn = KNNClassifier(k=5).fit(xt, torch.zeros(len(xt), dtype=torch.int64, device="cuda"))

    def sync(f):
        def g():
            f()
            torch.cuda.synchronize()

        return g

    t = timeit({"cvlib": sync(lambda: knn.kneighbors(qt)), "matmul": sync(lambda: qt @ xt.T)}, repeats)
    cpu = KNNClassifier(k=5).fit(torch.from_numpy(x), torch.zeros(len(x), dtype=torch.int64))
    same = float((knn.kneighbors(qt)[1].cpu() == cpu.kneighbors(torch.from_numpy(q))[1]).float().mean())
    return {
        "dim": dim,
        "device": torch.cuda.get_device_name(0),
        "n_train": len(x),
        "n_query": len(q),
        "k": 5,
        "cvlib": t["cvlib"],
        "matmul": t["matmul"],
        "distance_gflop_per_s": 2e-9 * len(x) * len(q) * dim / t["cvlib"]["wall_s"],
        "fraction_of_matmul_rate": t["matmul"]["wall_s"] / t["cvlib"]["wall_s"],
        "identical_to_cpu": same,
    }


# ------------------------------------------------------------------------------------------ COCO
def _to_coco(preds, targets, n_cls):
    images, anns, res = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i + 1, "width": 640, "height": 640})
        for b, lab, c in zip(t["boxes"].tolist(), t["labels"].tolist(), t["iscrowd"].tolist()):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": lab,
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h,
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
    cats = [{"id": c} for c in range(1, n_cls + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, res


def bench_coco(repeats: int, n_images: int) -> dict:
    import copy

    preds, targets = make_coco_like(n_images, 100, 80)
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:  # e.g. on a GPU machine without it: cvlib on the CPU and on the GPU only
        print("coco: faster-coco-eval not importable, compared with cvlib's CPU result only")
        got = {}
        t = timeit({"cvlib": lambda: got.update(r=coco_map(preds, targets, class_ids=range(1, 81)))}, repeats)
        out = {"images": n_images, "skipped": "faster-coco-eval not importable", "cvlib": t["cvlib"]}
        if torch.cuda.is_available():
            out["cuda"] = _coco_cuda(preds, targets, got["r"], repeats)
        return out
    gt_json, res_json = _to_coco(preds, targets, 80)
    result = {}
    # faster-coco-eval changes the dicts it is given: one fresh copy per call, made before the clock
    copies = [(copy.deepcopy(gt_json), copy.deepcopy(res_json)) for _ in range(repeats + 1)]

    def fce():
        gt_d, res_d = copies.pop()
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = gt_d
            gt.createIndex()
            ev = COCOeval_faster(gt, gt.loadRes(res_d), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        result["fce"] = ev

    def ours():
        result["cvlib"] = coco_map(preds, targets, class_ids=range(1, 81))

    t = timeit({"cvlib": ours, "faster_coco_eval": fce}, repeats)
    ev, r = result["fce"], result["cvlib"]
    stats_diff = float(np.abs(np.array([r[k] for k in STAT_KEYS]) - np.asarray(ev.stats)).max())
    prec_diff = float(np.abs(np.asarray(ev.eval["precision"]) - r["precision"]).max())
    rec_diff = float(np.abs(np.asarray(ev.eval["recall"]) - r["recall"]).max())
    out = {
        "images": n_images,
        "dets_per_image": 100,
        "classes": 80,
        "gt_boxes": int(sum(len(x["boxes"]) for x in targets)),
        "threads": torch.get_num_threads(),
        "cvlib": t["cvlib"],
        "faster_coco_eval": t["faster_coco_eval"],
        **ratios(t, "cvlib", "faster_coco_eval"),
        "max_abs_diff_stats": stats_diff,
        "max_abs_diff_precision": prec_diff,
        "max_abs_diff_recall": rec_diff,
        "map": r["map"],
        "note": "faster-coco-eval timed from JSON-style dicts (copies made before timing): COCO "
        "index, loadRes, evaluate, accumulate, summarize; cvlib from the tensors",
    }
    if torch.cuda.is_available():  # the same evaluation on the detections' GPU
        out["cuda"] = _coco_cuda(preds, targets, r, repeats)
    print(
        f"coco {n_images} images: {out['ratio_wall']:.2f}x wall, {out['ratio_cpu']:.2f}x CPU vs "
        f"faster-coco-eval; max |diff| stats {stats_diff:.1e}, precision {prec_diff:.1e}, "
        f"recall {rec_diff:.1e}"
    )
    return out


def _coco_cuda(preds, targets, ref: dict, repeats: int) -> dict:
    """coco_map with the detections on the GPU (computed there), against its CPU result."""

    def to(d):
        return {k: v.cuda() for k, v in d.items()}

    p, g = [to(d) for d in preds], [to(d) for d in targets]
    got = {}

    def run():
        got["r"] = coco_map(p, g, class_ids=range(1, 81))
        torch.cuda.synchronize()

    t = timeit({"cvlib_cuda": run}, repeats)["cvlib_cuda"]
    r = got["r"]
    return {
        "device": torch.cuda.get_device_name(0),
        "cvlib": t,
        "max_abs_diff_vs_cpu_precision": float(np.abs(r["precision"] - ref["precision"]).max()),
        "max_abs_diff_vs_cpu_recall": float(np.abs(r["recall"] - ref["recall"]).max()),
    }


# ------------------------------------------------------------------------------------------- NMS
def greedy_nms(boxes, scores, thr):
    """The plain greedy loop: sorted boxes, one IoU row against the later boxes per kept box."""
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    removed = torch.zeros(len(b), dtype=torch.bool)
    keep = []
    for i in range(len(b)):
        if not removed[i]:
            keep.append(i)
            removed[i + 1 :] |= box_iou(b[i : i + 1], b[i + 1 :])[0] > thr
    return order[keep]


def greedy_batched(boxes, scores, idxs, thr):
    keep = [
        m[greedy_nms(boxes[m], scores[m], thr)] for c in idxs.unique() for m in [(idxs == c).nonzero()[:, 0]]
    ]
    keep = torch.cat(keep).sort().values
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def _scene(kind, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    if kind == "chain":  # each box overlaps the next (IoU 1/3): half are kept, one after another
        x = torch.arange(n, dtype=torch.float32)
        return torch.stack([x, torch.zeros(n), x + 2, torch.full((n,), 10.0)], 1), torch.linspace(1, 0, n)
    xy = torch.rand(n, 2, generator=g) * 1000
    return torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 100 + 1], 1), torch.rand(n, generator=g)


def bench_nms(repeats: int, quick: bool) -> list[dict]:
    out = []
    sizes = (1000, 3000) if quick else (1000, 4000, 10_000)
    for kind in ("random", "chain"):
        for n in sizes:
            b, s = _scene(kind, n)
            thr = 0.3
            same = torch.equal(nms(b, s, thr), greedy_nms(b, s, thr))
            fns = {
                "cvlib": lambda b=b, s=s, thr=thr: nms(b, s, thr),
                "greedy": lambda b=b, s=s, thr=thr: greedy_nms(b, s, thr),
            }
            t = timeit(fns, repeats)
            out.append(
                {
                    "op": "nms",
                    "scene": kind,
                    "n": n,
                    "kept": len(nms(b, s, thr)),
                    "identical": same,
                    "cvlib": t["cvlib"],
                    "greedy_loop": t["greedy"],
                    **ratios(t, "cvlib", "greedy"),
                }
            )
            print(
                f"nms {kind} n={n}: {out[-1]['ratio_wall']:.2f}x wall, "
                f"{out[-1]['ratio_cpu']:.2f}x CPU vs greedy, identical {same}"
            )
    n = sizes[-1]
    b, s = _scene("random", n, 1)
    idx = torch.randint(0, 80, (n,), generator=torch.Generator().manual_seed(2))
    same = torch.equal(batched_nms(b, s, idx, 0.5), greedy_batched(b, s, idx, 0.5))
    t = timeit(
        {"cvlib": lambda: batched_nms(b, s, idx, 0.5), "greedy": lambda: greedy_batched(b, s, idx, 0.5)},
        repeats,
    )
    out.append(
        {
            "op": "batched_nms",
            "scene": "random, 80 classes",
            "n": n,
            "identical": same,
            "cvlib": t["cvlib"],
            "greedy_loop": t["greedy"],
            **ratios(t, "cvlib", "greedy"),
        }
    )
    print(f"batched_nms n={n}: {out[-1]['ratio_wall']:.2f}x wall vs per-class greedy, identical {same}")
    out += _torchvision_nms(sizes[-1], "cuda")  # a "skipped" row without a CUDA GPU
    return out


# -------------------------------------------------------------------------------------- RoIAlign
def bench_roi(repeats: int, quick: bool) -> dict:
    n_rois = 2 if quick else 4
    feat = torch.randn(1, 64, 512, 512, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[0.0, 5, 5, 505, 505]]).repeat(n_rois, 1)
    sizes = []
    real = torch.Tensor.index_select

    def spy(self, dim, index):
        sizes.append(index.numel() * self.shape[1] * self.element_size())
        return real(self, dim, index)

    torch.Tensor.index_select = spy
    try:
        roi_align(feat, boxes, 7, sampling_ratio=-1)
    finally:
        torch.Tensor.index_select = real
    t = timeit({"cvlib": lambda: roi_align(feat, boxes, 7, sampling_ratio=-1)}, max(1, repeats // 2))
    unblocked_per_roi = 504 * 504 * 64 * 4  # 7 bins x 72 samples per side, 64 channels, float32
    out = {
        "case": "roi_align, 64-channel 512x512 map, rois of 500 px, output 7, sampling_ratio=-1",
        "rois_timed": n_rois,
        "cvlib": t["cvlib"],
        "largest_block_bytes": max(sizes),
        "unblocked_bytes_per_tap_64_rois": 64 * unblocked_per_roi,
    }
    out["torchvision"] = "see the torchvision section (--only torchvision)"
    print(
        f"roi_align: {t['cvlib']['wall_s']:.2f} s for {n_rois} rois, "
        f"largest block {max(sizes) / 2**20:.0f} MiB "
        f"(unblocked: {64 * unblocked_per_roi / 1e9:.2f} GB per tap for 64 rois)"
    )
    return out


# ------------------------------------------------------------------------------------ torchvision
TV_SECTION = "torchvision"


def _tv_versions(tv) -> dict:
    return {
        "torch": torch.__version__,
        "torchvision": tv.__version__,
        "device": "CPU, 1 thread (nms_cuda: a CUDA GPU, when one is present)",
        "environment": sys.executable,
    }


def _sync(device: str, f):
    """``f`` followed by a device synchronisation (CUDA kernels are asynchronous)."""
    if device == "cpu":
        return f

    def g():
        f()
        torch.cuda.synchronize()

    return g


def _compare_keep(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor) -> str:
    """ "identical", "ties" (the kept lists differ only in boxes whose score another box shares
    exactly, where the order of visiting is arbitrary) or "DIFFERENT"."""
    a, b, scores = a.cpu(), b.cpu(), scores.cpu()
    if torch.equal(a, b):
        return "identical"
    diff = set(a.tolist()) ^ set(b.tolist())
    if not diff:  # same set, another order: only allowed between equal scores
        return "ties" if torch.equal(scores[a], scores[b]) else "DIFFERENT"
    tied = torch.unique(scores, return_counts=True)
    tied_values = set(tied[0][tied[1] > 1].tolist())
    return "ties" if all(scores[i].item() in tied_values for i in diff) else "DIFFERENT"


def _torchvision_nms(n: int | tuple[int, ...], device: str = "cuda", repeats: int = 5) -> list[dict]:
    """``nms`` (random boxes and chains) and ``batched_nms`` (80 classes) against torchvision's
    kernels on ``device``; one row per case, or one "skipped" row."""
    op = f"nms vs torchvision {device.upper() if device == 'cuda' else 'CPU'}"
    try:
        import torchvision
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        return [{"op": op, "skipped": f"torchvision not importable ({type(e).__name__}: {e})"[:200]}]
    if device == "cuda" and not torch.cuda.is_available():
        return [{"op": op, "skipped": "no CUDA GPU"}]
    tvops = torchvision.ops
    out = []
    for size in (n,) if isinstance(n, int) else n:
        cases = [("nms", kind, *_scene(kind, size), None, 0.3) for kind in ("random", "chain")]
        b, s = _scene("random", size, 1)
        idx = torch.randint(0, 80, (size,), generator=torch.Generator().manual_seed(2))
        cases.append(("batched_nms", "random, 80 classes", b, s, idx, 0.5))
        for name, scene, b, s, idx, thr in cases:
            b, s = b.to(device), s.to(device)
            if idx is None:
                ours, ref = partial(nms, b, s, thr), partial(tvops.nms, b, s, thr)
            else:
                idx = idx.to(device)
                ours, ref = partial(batched_nms, b, s, idx, thr), partial(tvops.batched_nms, b, s, idx, thr)
            same = _compare_keep(ours(), ref(), s)
            t = timeit({"cvlib": _sync(device, ours), "torchvision": _sync(device, ref)}, repeats)
            out.append(
                {
                    "op": f"{name} vs torchvision",
                    "device": device,
                    "scene": scene,
                    "n": size,
                    "iou_threshold": thr,
                    "kept": len(ours()),
                    "identical": same == "identical",
                    "agreement": same,
                    "cvlib": t["cvlib"],
                    "torchvision": t["torchvision"],
                    **ratios(t, "cvlib", "torchvision"),
                }
            )
            print(
                f"{name} vs torchvision {device} {scene} n={size}: {out[-1]['ratio_wall']:.2f}x wall, "
                f"{out[-1]['ratio_cpu']:.2f}x CPU, {same}"
            )
    return out


def _largest_block(f) -> tuple[int, torch.Tensor]:
    """Bytes of the largest ``index_select`` gather made while running ``f`` (cvlib's roi_align), and
    the result of ``f``."""
    sizes = [0]
    real = torch.Tensor.index_select

    def spy(self, dim, index):
        sizes.append(index.numel() * self.shape[1] * self.element_size())
        return real(self, dim, index)

    torch.Tensor.index_select = spy
    try:
        y = f()
    finally:
        torch.Tensor.index_select = real
    return max(sizes), y


def _tv_roi_align(tv, repeats: int, quick: bool) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    # a detector's FPN level (stride 4 of an 800 x 800 image) with 512 proposals of 16-400 px
    feat = torch.randn(1, 64 if quick else 256, 200, 200, generator=g)
    xy = torch.rand(512, 2, generator=g) * 700
    wh = torch.rand(512, 2, generator=g) * 384 + 16
    rois = torch.cat([torch.zeros(512, 1), xy, (xy + wh).clamp(max=799)], 1)
    cases = [
        (
            f"FPN level {feat.shape[1]} ch 200x200 (stride 4), 512 rois of 16-400 px",
            feat,
            rois,
            0.25,
            sr,
            True,
        )
        for sr in (2, -1)
    ]
    big = torch.randn(1, 64, 512, 512, generator=g)
    n_big = 2 if quick else 4
    cases.append(
        (
            f"64 ch 512x512, {n_big} rois of 500 px (issue case)",
            big,
            torch.tensor([[0.0, 5, 5, 505, 505]]).repeat(n_big, 1),
            1.0,
            -1,
            False,
        )
    )
    for case, x, r, scale, sr, aligned in cases:
        ours = partial(roi_align, x, r, 7, scale, sr, aligned)
        ref = partial(tv.ops.roi_align, x, r, 7, scale, sr, aligned)
        c0 = time.process_time()
        block, y = _largest_block(ours)  # also cvlib's warm-up
        slow = time.process_time() - c0 > 10  # a single repeat for very slow cases
        expected = ref()
        diff = float((y - expected).abs().max())
        # float32 rounds the sample coordinates (ulp ~1e-5 at 200 cells) differently in the two codes:
        # in float64 (first 8 channels) they must agree to rounding, and both float32 results are
        # compared with torchvision's float64 one
        x8, r64 = x[:, :8].double(), r.double()
        exact = tv.ops.roi_align(x8, r64, 7, scale, sr, aligned)
        diff64 = float((roi_align(x8, r64, 7, scale, sr, aligned) - exact).abs().max())
        err32 = [float((z[:, :8].double() - exact).abs().max()) for z in (y, expected)]
        t = timeit({"cvlib": ours, "torchvision": ref}, 1 if slow else repeats, warmup=("torchvision",))
        out.append(
            {
                "op": "roi_align vs torchvision",
                "device": "cpu",
                "case": case,
                "output_size": 7,
                "sampling_ratio": sr,
                "aligned": aligned,
                "max_abs_diff": diff,
                "max_abs_value": float(expected.abs().max()),
                "max_abs_diff_float64": diff64,
                "float32_error_vs_float64": {"cvlib": err32[0], "torchvision": err32[1]},
                "largest_block_bytes": block,
                "repeats": 1 if slow else repeats,
                "cvlib": t["cvlib"],
                "torchvision": t["torchvision"],
                **ratios(t, "cvlib", "torchvision"),
            }
        )
        print(
            f"roi_align vs torchvision, {case}, sampling_ratio={sr}: {out[-1]['ratio_wall']:.2f}x wall, "
            f"{out[-1]['ratio_cpu']:.2f}x CPU, max |diff| {diff:.1e} (float64: {diff64:.1e}), "
            f"largest block {block / 2**20:.0f} MiB"
        )
    return out


_TV_RENAME = [  # cvlib state-dict key prefix -> torchvision's (regular expressions, applied in order)
    (r"^features\.", "backbone."),
    (r"^backbone\.fpn\.lateral\.(\d+)\.", r"backbone.fpn.inner_blocks.\1.0."),
    (r"^backbone\.fpn\.output\.(\d+)\.", r"backbone.fpn.layer_blocks.\1.0."),
    (r"^backbone\.fpn\.extra\.0\.", "backbone.fpn.extra_blocks.p6."),
    (r"^backbone\.fpn\.extra\.1\.", "backbone.fpn.extra_blocks.p7."),
    (r"^head\.cls_tower\.", "head.classification_head.conv."),
    (r"^head\.cls_logits\.", "head.classification_head.cls_logits."),
    (r"^head\.box_tower\.", "head.regression_head.conv."),
    (r"^head\.bbox_reg\.", "head.regression_head.bbox_reg."),
    (r"^head\.ctrness\.", "head.regression_head.bbox_ctrness."),
    (r"^rpn\.head\.conv\.", "rpn.head.conv.0.0."),
    (r"^box_head\.(fc6|fc7)\.", r"roi_heads.box_head.\1."),
    (r"^box_head\.(cls_score|bbox_pred)\.", r"roi_heads.box_predictor.\1."),
]


def _tv_key(key: str) -> str:
    import re

    for pat, rep in _TV_RENAME:
        key = re.sub(pat, rep, key)
    return key


def _tv_detector(tv, name: str, size: int, num_classes: int):
    """torchvision's reference model configured as cvlib's (documented in the results), random init.

    Both: no resizing (``min_size = max_size`` = the input size), ImageNet normalisation inside,
    score threshold 0.05. FCOS: torchvision's anchors are centred at ``x * stride``, cvlib's points
    (the paper's) at ``(x + 0.5) * stride``, so torchvision's anchors are shifted by half a stride.
    Faster R-CNN: cvlib's FPN stops at P5 (no max-pooled P6 level for the RPN, anchors 32-256 px), and
    its anchors are not rounded to whole pixels (torchvision's are).
    """
    from torchvision.models.detection import FCOS, FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelP6P7

    common = dict(min_size=size, max_size=size)
    if name == "fcos_resnet50_fpn":
        backbone = _resnet_fpn_extractor(
            tv.models.resnet50(), 5, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)
        )
        strides = (8, 16, 32, 64, 128)
        anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
        anchors.cell_anchors = [torch.tensor([[0.0, 0.0, s, s]]) for s in strides]  # centre (x + 0.5) s
        return FCOS(backbone, num_classes, anchor_generator=anchors, score_thresh=0.05, **common)

    class NoExtra(ExtraFPNBlock):  # P2-P5 only, as cvlib
        def forward(self, results, x, names):
            return results, names

    backbone = _resnet_fpn_extractor(tv.models.resnet50(), 5, extra_blocks=NoExtra())
    anchors = AnchorGenerator(((32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 4)
    h = torch.tensor([0.5, 1.0, 2.0]).sqrt()  # cvlib's anchors are not rounded to whole pixels
    anchors.cell_anchors = [torch.stack([-s / h, -s * h, s / h, s * h], 1) / 2 for s in (32, 64, 128, 256)]
    return FasterRCNN(backbone, num_classes + 1, rpn_anchor_generator=anchors, **common)


def _match_detections(da: dict, db: dict, shift: int) -> dict:
    """Compare two detection lists: in order, and matched one to one (each detection of ``da`` with
    the closest box of the same label in ``db``), since near-equal scores may come in either order."""
    na, nb = len(da["boxes"]), len(db["boxes"])
    out = {"detections": [na, nb]}
    if na != nb:
        return {**out, "same_detections": False}
    if na == 0:
        return {**out, "same_detections": True, "max_abs_diff_boxes": 0.0, "max_abs_diff_scores": 0.0}
    lb = db["labels"] + shift
    cost = (da["boxes"][:, None] - db["boxes"][None]).abs().amax(-1)  # [N, N]
    cost = torch.where(da["labels"][:, None] == lb[None], cost, torch.full_like(cost, float("inf")))
    j = cost.argmin(1)
    return {
        **out,
        "same_detections": len(set(j.tolist())) == na and bool(torch.isfinite(cost.min(1).values).all()),
        "same_order": torch.equal(j, torch.arange(na)),
        "max_abs_diff_boxes": float(cost.min(1).values.max()),
        "max_abs_diff_scores": float((da["scores"] - db["scores"][j]).abs().max()),
        "max_abs_diff_boxes_in_order": float((da["boxes"] - db["boxes"]).abs().max()),
        "same_labels_in_order": torch.equal(da["labels"], lb),
    }


@torch.inference_mode()
def _roi_pool_seconds(ours, ref, images) -> dict:
    """CPU seconds of one forward pass of each Faster R-CNN spent in its multi-level RoIAlign."""
    from cvlib.models.detection import faster_rcnn as frc

    spent = {"cvlib": 0.0, "torchvision": 0.0}
    real = frc.multiscale_roi_align

    def timed(*args, **kw):
        c0 = time.process_time()
        y = real(*args, **kw)
        spent["cvlib"] += time.process_time() - c0
        return y

    frc.multiscale_roi_align = timed
    try:
        ours(images)
    finally:
        frc.multiscale_roi_align = real
    start = {}
    h1 = ref.roi_heads.box_roi_pool.register_forward_pre_hook(
        lambda *_: start.__setitem__("t", time.process_time())
    )
    h2 = ref.roi_heads.box_roi_pool.register_forward_hook(
        lambda *_: spent.__setitem__("torchvision", spent["torchvision"] + time.process_time() - start["t"])
    )
    try:
        ref(list(images))
    finally:
        h1.remove()
        h2.remove()
    return spent


def _tv_detectors(tv, repeats: int, quick: bool) -> list[dict]:
    from cvlib.models import create_model

    n_img, size, k = (1, 256, 20) if quick else (2, 512, 20)
    images = torch.rand(n_img, 3, size, size, generator=torch.Generator().manual_seed(0))
    out = []
    for name in ("fcos_resnet50_fpn", "faster_rcnn_resnet50_fpn"):
        torch.manual_seed(0)
        ours = create_model(name, num_classes=k).eval()
        ref = _tv_detector(tv, name, size, k).eval()
        g = torch.Generator().manual_seed(1)
        sd = ours.state_dict()
        for key, v in sd.items():  # random BN statistics, so that batch norm is not the identity
            if key.endswith("running_mean"):
                v.copy_(torch.randn(v.shape, generator=g) * 0.1)
            elif key.endswith("running_var"):
                v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        ours.load_state_dict(sd)
        ref.load_state_dict({_tv_key(key): v for key, v in sd.items()}, strict=True)
        with torch.inference_mode():
            a = ours(images)
            b = ref(list(images))
            t = timeit(
                {"cvlib": lambda m=ours: m(images), "torchvision": lambda m=ref: m(list(images))}, repeats
            )
        shift = 1 if name.startswith("fcos") else 0  # torchvision's FCOS labels count from 0
        agree = [_match_detections(da, db, shift) for da, db in zip(a, b)]
        per = {key: {"wall_s": v["wall_s"] / n_img, "cpu_s": v["cpu_s"] / n_img} for key, v in t.items()}
        out.append(
            {
                "op": "detector inference vs torchvision",
                "model": name,
                "torchvision_model": type(ref).__name__,
                "device": "cpu",
                "input": f"{n_img} random images 3x{size}x{size} in [0, 1], one batch, eval mode",
                "num_classes": k,
                "weights": "the same random weights in both (cvlib's init, random BN statistics)",
                "config": _tv_detector.__doc__.split("\n\n")[1].replace("\n    ", " ").strip(),
                "per_image": True,
                "cvlib": per["cvlib"],
                "torchvision": per["torchvision"],
                **ratios(t, "cvlib", "torchvision"),
                "outputs": agree,
                **(
                    {"multiscale_roi_align_cpu_s_per_batch": _roi_pool_seconds(ours, ref, images)}
                    if name.startswith("faster")
                    else {}
                ),
            }
        )
        print(
            f"{name} vs torchvision {type(ref).__name__}: {out[-1]['ratio_wall']:.2f}x wall, "
            f"{out[-1]['ratio_cpu']:.2f}x CPU; outputs {agree}"
        )
    return out


def bench_torchvision(repeats: int, quick: bool) -> dict:
    """NMS, RoIAlign and the detectors against torchvision on the CPU (and NMS on CUDA if present)."""
    try:
        import torchvision as tv
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        msg = f"skipped: torchvision not importable ({type(e).__name__}: {e})"[:200]
        print(f"torchvision section {msg}")
        return {"skipped": msg}
    out = {
        **_tv_versions(tv),
        "nms": _torchvision_nms((1000, 3000) if quick else (1000, 3000, 10_000), "cpu", repeats),
    }
    out["nms_cuda"] = _torchvision_nms((1000, 10_000), "cuda", repeats)
    out["roi_align"] = _tv_roi_align(tv, repeats, quick)
    out["detectors"] = _tv_detectors(tv, repeats, quick)
    return out


# ------------------------------------------------------------------------------------------ main
def plot(perf: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, wall, cpu = [], [], []
    for r in perf.get("knn", []):
        if "ratio_wall" not in r:  # a GPU row (against its own matmul, not faiss)
            continue
        labels.append(f"k-NN {r['dim']}-d, {r['threads']} thr\nvs faiss IndexFlatL2")
        wall.append(r["ratio_wall"])
        cpu.append(r["ratio_cpu"])
    if "ratio_wall" in perf.get("coco", {}):
        labels.append(f"COCO mAP, {perf['coco']['images']} img\nvs faster-coco-eval")
        wall.append(perf["coco"]["ratio_wall"])
        cpu.append(perf["coco"]["ratio_cpu"])
    for r in perf.get("nms", []):
        if "ratio_wall" in r:
            labels.append(f"{r['op']} {r['scene']}\nn={r['n']} vs greedy loop")
            wall.append(r["ratio_wall"])
            cpu.append(r["ratio_cpu"])
    tvs = perf.get(TV_SECTION, {})
    for r in tvs.get("nms", []) + tvs.get("nms_cuda", []):
        if "ratio_wall" in r:
            labels.append(f"{r['op'].split()[0]} {r['scene']}\nn={r['n']} vs torchvision {r['device']}")
            wall.append(r["ratio_wall"])
            cpu.append(r["ratio_cpu"])
    for r in tvs.get("roi_align", []):
        labels.append(f"roi_align {r['case'].split(',')[0]}\nsampling {r['sampling_ratio']} vs torchvision")
        wall.append(r["ratio_wall"])
        cpu.append(r["ratio_cpu"])
    for r in tvs.get("detectors", []):
        labels.append(f"{r['model']}\nvs torchvision {r['torchvision_model']}")
        wall.append(r["ratio_wall"])
        cpu.append(r["ratio_cpu"])
    if not labels:
        return
    fig, ax = plt.subplots(figsize=(7, 0.42 * len(labels) + 1.2))
    y = np.arange(len(labels))
    ax.barh(y - 0.2, wall, 0.4, label="wall clock")
    ax.barh(y + 0.2, cpu, 0.4, label="CPU time")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("reference time / cvlib time (> 1: cvlib faster)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ["knn", "coco", "nms", "roi", TV_SECTION]
    p.add_argument("--only", nargs="+", choices=sections, default=sections)
    p.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--coco-images", type=int, default=None, help="default 5000 (500 with --quick)")
    p.add_argument("--no-write", action="store_true", help="print only, leave results.json and the plot")
    p.add_argument(
        "--table", action="store_true", help="print the markdown table from results.json, run nothing"
    )
    a = p.parse_args()
    if a.table:
        print(markdown_table(json.loads((ROOT / "benchmarks" / "results.json").read_text())["perf"]))
        plot(
            json.loads((ROOT / "benchmarks" / "results.json").read_text())["perf"],
            ROOT / "book" / "_static" / "performance_ratios.png",
        )
        return
    set_threads(1)
    perf = {}
    if "knn" in a.only:
        perf["knn"] = bench_knn(a.repeats, a.quick)
    if "coco" in a.only:
        perf["coco"] = bench_coco(a.repeats, a.coco_images or (500 if a.quick else 5000))
    if "nms" in a.only:
        perf["nms"] = bench_nms(a.repeats, a.quick)
    if "roi" in a.only:
        perf["roi"] = bench_roi(a.repeats, a.quick)
    if TV_SECTION in a.only:
        perf[TV_SECTION] = bench_torchvision(a.repeats, a.quick)
    if a.no_write:
        return
    path = ROOT / "benchmarks" / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    old = data.get("perf", {})
    old.update(perf)  # merge: sections not run this time are kept
    meta = {
        "command": "python benchmarks/bench_perf.py " + " ".join(sys.argv[1:]),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "timing": "median of interleaved repeats, wall clock and process CPU time; ratio = reference / cvlib",
    }
    if TV_SECTION in perf:  # run in its own environment (torchvision): its own versions
        old[TV_SECTION]["meta"] = meta
    if set(a.only) - {TV_SECTION}:
        old["meta"] = meta
    data["perf"] = old
    path.write_text(json.dumps(data, indent=2) + "\n")
    plot(old, ROOT / "book" / "_static" / "performance_ratios.png")


def _table(title: str, head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown_table(perf: dict) -> str:
    """The tables of book/performance.md, from ``results.json["perf"]``: process CPU seconds
    (wall-clock on a GPU) of cvlib and the reference and the speed-up, reference / cvlib (> 1: cvlib
    faster); wall-clock figures are in results.json and the plot."""

    def sec(t: dict, key: str = "cpu_s") -> str:
        v = t[key]
        return f"{v * 1000:.3g} ms" if v < 0.1 else f"{v:.3g} s"

    knn, gpu = [], []
    for r in perf.get("knn", []):
        case = f"{r['dim']}-d"
        if "device" in r:  # the search against the bare product of its distance step, on a GPU
            gpu.append(
                [
                    f"{case}, {r['device']}",
                    sec(r["cvlib"], "wall_s"),
                    sec(r["matmul"], "wall_s"),
                    f"{r['fraction_of_matmul_rate']:.2f}",
                    f"{100 * r['identical_to_cpu']:.2f} %",
                ]
            )
            continue
        knn.append(
            [
                case,
                str(r["threads"]),
                sec(r["cvlib"]),
                sec(r["faiss_IndexFlatL2"]),
                f"{r['ratio_cpu']:.2f}x",
                f"{100 * r['identical_neighbours']:.2f} %",
            ]
        )
    out = [
        _table(
            "k-NN against faiss-cpu's `IndexFlatL2` (10,000 x 1,000 queries, k = 5)",
            ["features", "threads", "cvlib", "faiss", "speed-up", "same neighbours"],
            knn,
        ),
        _table(
            "k-NN on a GPU against the bare matrix product of its distance step",
            ["case", "cvlib", "matmul", "fraction of the matmul rate", "same as CPU"],
            gpu,
        ),
    ]
    if "ratio_cpu" in perf.get("coco", {}):
        r = perf["coco"]
        diff = max(r["max_abs_diff_stats"], r["max_abs_diff_precision"], r["max_abs_diff_recall"])
        out.append(
            _table(
                "COCO mAP against faster-coco-eval (100 detections per image, 80 classes)",
                ["images", "cvlib", "faster-coco-eval", "speed-up", "largest difference"],
                [
                    [
                        f"{r['images']:,}",
                        sec(r["cvlib"]),
                        sec(r["faster_coco_eval"]),
                        f"{r['ratio_cpu']:.2f}x",
                        f"{diff:.1e}",
                    ]
                ],
            )
        )
    nms = [
        [
            f"`{r['op']}`",
            r["scene"],
            f"{r['n']:,}",
            sec(r["cvlib"]),
            sec(r["greedy_loop"]),
            f"{r['ratio_cpu']:.2f}x",
            "identical" if r["identical"] else "DIFFERENT",
        ]
        for r in perf.get("nms", [])
        if "ratio_cpu" in r
    ]
    out.append(
        _table(
            "NMS against the plain greedy loop",
            ["op", "boxes", "n", "cvlib", "greedy loop", "speed-up", "kept boxes"],
            nms,
        )
    )
    tvs = perf.get(TV_SECTION, {})
    tv_nms = []
    for r in tvs.get("nms", []) + tvs.get("nms_cuda", []):
        if "ratio_cpu" in r:
            key = "cpu_s" if r["device"] == "cpu" else "wall_s"
            ratio = r["ratio_cpu"] if key == "cpu_s" else r["ratio_wall"]
            tv_nms.append(
                [
                    f"`{r['op'].split()[0]}`" + (", on CUDA" if r["device"] == "cuda" else ""),
                    r["scene"],
                    f"{r['n']:,}",
                    sec(r["cvlib"], key),
                    sec(r["torchvision"], key),
                    f"{ratio:.2f}x",
                    _AGREE[r["agreement"]],
                ]
            )
    out.append(
        _table(
            "NMS against torchvision's kernels (on the CPU unless marked)",
            ["op", "boxes", "n", "cvlib", "torchvision", "speed-up", "kept boxes"],
            tv_nms,
        )
    )
    roi = [
        [
            r["case"] + (", aligned" if r["aligned"] else ", not aligned"),
            str(r["sampling_ratio"]),
            sec(r["cvlib"]),
            sec(r["torchvision"]),
            f"{r['ratio_cpu']:.2f}x",
            f"{r['max_abs_diff']:.1e} ({r['max_abs_diff_float64']:.0e})",
        ]
        for r in tvs.get("roi_align", [])
    ]
    out.append(
        _table(
            "`roi_align` against torchvision's CPU kernel (output 7 x 7)",
            ["case", "sampling ratio", "cvlib", "torchvision", "speed-up", "largest difference (float64)"],
            roi,
        )
    )
    det = []
    for r in tvs.get("detectors", []):
        o = r["outputs"]
        order = "" if all(x.get("same_order") for x in o) else ", near-tied scores in another order"
        box = max(x.get("max_abs_diff_boxes", float("nan")) for x in o)
        same = f"boxes within {box:.1e} px{order}" if all(x["same_detections"] for x in o) else "DIFFERENT"
        det.append(
            [
                f"`{r['model']}` / `{r['torchvision_model']}`",
                sec(r["cvlib"]),
                sec(r["torchvision"]),
                f"{r['ratio_cpu']:.2f}x",
                same,
            ]
        )
    out.append(
        _table(
            "Detectors against torchvision's models (CPU, 2 images 3 x 512 x 512, time per image)",
            ["cvlib / torchvision", "cvlib", "torchvision", "speed-up", "same detections"],
            det,
        )
    )
    return "\n\n".join(t for t in out if t)


_AGREE = {
    "identical": "identical",
    "ties": "same set; exact score ties in another order",
    "DIFFERENT": "DIFFERENT",
}


if __name__ == "__main__":
    main()
