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
  unblocked computation asks for; torchvision's ``roi_align`` where it is installed.

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


def timeit(fns: dict, repeats: int) -> dict:
    """Interleaved repeats of each callable; median wall and CPU seconds per name (one warm-up each)."""
    for f in fns.values():
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
    import faiss

    out = []
    n_train, n_query = (2000, 200) if quick else (10_000, 1_000)
    threads = sorted({1, os.cpu_count() or 1})
    for dim in (784, 3072):
        rng = np.random.default_rng(dim)
        x = rng.random((n_train, dim), dtype=np.float32)
        q = rng.random((n_query, dim), dtype=np.float32)
        index = faiss.IndexFlatL2(dim)
        index.add(x)
        knn = KNNClassifier(k=5).fit(torch.from_numpy(x), torch.zeros(n_train, dtype=torch.int64))
        qt = torch.from_numpy(q)
        for n in threads:
            set_threads(n)
            d_f, i_f = index.search(q, 5)
            d_c, i_c = knn.kneighbors(qt)
            same = float((i_c.numpy() == i_f).mean())
            fns = {
                "cvlib": lambda knn=knn, qt=qt: knn.kneighbors(qt),
                "faiss": lambda index=index, q=q: index.search(q, 5),
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
                    "identical_neighbours": same,
                    "max_abs_distance_diff": float(np.abs(d_c.numpy() ** 2 - d_f).max()),
                    "rows_differing": int(len(bad)),
                    "max_rel_exact_distance_gap_in_differing_rows": gap,
                }
            )
            print(
                f"knn {dim}-d, {n} thread(s): {out[-1]['ratio_wall']:.2f}x wall, "
                f"{out[-1]['ratio_cpu']:.2f}x CPU vs faiss, identical {same:.4f}"
            )
    set_threads(1)
    return out


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

    from faster_coco_eval import COCO, COCOeval_faster

    preds, targets = make_coco_like(n_images, 100, 80)
    gt_json, res_json = _to_coco(preds, targets, 80)
    result = {}

    def fce():
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = copy.deepcopy(gt_json)
            gt.createIndex()
            ev = COCOeval_faster(gt, gt.loadRes(copy.deepcopy(res_json)), "bbox")
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
        "note": "faster-coco-eval timed from JSON-style dicts: COCO index, loadRes, "
        "evaluate, accumulate, summarize; cvlib from the tensors",
    }
    print(
        f"coco {n_images} images: {out['ratio_wall']:.2f}x wall, {out['ratio_cpu']:.2f}x CPU vs "
        f"faster-coco-eval; max |diff| stats {stats_diff:.1e}, precision {prec_diff:.1e}, "
        f"recall {rec_diff:.1e}"
    )
    return out


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
    out.append(_torchvision_nms(sizes[-1]))
    return out


def _torchvision_nms(n: int) -> dict:
    try:
        import torchvision
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        return {
            "op": "nms vs torchvision CUDA",
            "skipped": f"torchvision not importable ({type(e).__name__})",
        }
    if not torch.cuda.is_available():
        return {"op": "nms vs torchvision CUDA", "skipped": "no CUDA GPU"}
    b, s = (x.cuda() for x in _scene("random", n))

    def sync(f):
        def g():
            f()
            torch.cuda.synchronize()

        return g

    t = timeit(
        {"cvlib": sync(lambda: nms(b, s, 0.3)), "torchvision": sync(lambda: torchvision.ops.nms(b, s, 0.3))},
        5,
    )
    same = torch.equal(nms(b, s, 0.3).cpu(), torchvision.ops.nms(b, s, 0.3).cpu())
    return {
        "op": "nms vs torchvision CUDA",
        "n": n,
        "identical": same,
        **t,
        **ratios(t, "cvlib", "torchvision"),
    }


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
    try:
        import torchvision  # noqa: F401

        out["torchvision"] = "installed: compare with torchvision.ops.roi_align and the reference detectors"
    except Exception as e:  # noqa: BLE001
        out["torchvision"] = f"skipped: torchvision not importable ({type(e).__name__})"
        out["detectors_vs_torchvision"] = "skipped: torchvision not importable"
    print(
        f"roi_align: {t['cvlib']['wall_s']:.2f} s for {n_rois} rois, "
        f"largest block {max(sizes) / 2**20:.0f} MiB "
        f"(unblocked: {64 * unblocked_per_roi / 1e9:.2f} GB per tap for 64 rois)"
    )
    return out


# ------------------------------------------------------------------------------------------ main
def plot(perf: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, wall, cpu = [], [], []
    for r in perf.get("knn", []):
        labels.append(f"k-NN {r['dim']}-d, {r['threads']} thr\nvs faiss IndexFlatL2")
        wall.append(r["ratio_wall"])
        cpu.append(r["ratio_cpu"])
    if "coco" in perf:
        labels.append(f"COCO mAP, {perf['coco']['images']} img\nvs faster-coco-eval")
        wall.append(perf["coco"]["ratio_wall"])
        cpu.append(perf["coco"]["ratio_cpu"])
    for r in perf.get("nms", []):
        if "ratio_wall" in r:
            labels.append(f"{r['op']} {r['scene']}\nn={r['n']} vs greedy loop")
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
    p.add_argument(
        "--only", nargs="+", choices=["knn", "coco", "nms", "roi"], default=["knn", "coco", "nms", "roi"]
    )
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
    if a.no_write:
        return
    path = ROOT / "benchmarks" / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    old = data.get("perf", {})
    old.update(perf)  # merge: sections not run this time are kept
    old["meta"] = {
        "command": "python benchmarks/bench_perf.py " + " ".join(sys.argv[1:]),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "timing": "median of interleaved repeats, wall clock and process CPU time; ratio = reference / cvlib",
    }
    data["perf"] = old
    path.write_text(json.dumps(data, indent=2) + "\n")
    plot(old, ROOT / "book" / "_static" / "performance_ratios.png")


def markdown_table(perf: dict) -> str:
    """The table of book/performance.md, from ``results.json["perf"]``."""
    rows = [
        "| comparison | size | threads | cvlib (wall / CPU) | reference (wall / CPU) "
        "| ratio wall | ratio CPU | same answer |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ws(t):
        return f"{t['wall_s']:.3g} s / {t['cpu_s']:.3g} s"

    for r in perf.get("knn", []):
        same = f"{100 * r['identical_neighbours']:.2f} % of neighbours"
        rows.append(
            f"| k-NN vs faiss `IndexFlatL2` | {r['n_train']:,} x {r['n_query']:,}, {r['dim']}-d, k={r['k']} "
            f"| {r['threads']} | {ws(r['cvlib'])} | {ws(r['faiss_IndexFlatL2'])} | {r['ratio_wall']:.2f} "
            f"| {r['ratio_cpu']:.2f} | {same} |"
        )
    if "coco" in perf:
        r = perf["coco"]
        same = f"max abs diff {max(r['max_abs_diff_stats'], r['max_abs_diff_precision']):.1e}"
        rows.append(
            f"| COCO mAP vs faster-coco-eval | {r['images']:,} images x 100 dets, 80 classes "
            f"| {r['threads']} | {ws(r['cvlib'])} | {ws(r['faster_coco_eval'])} | {r['ratio_wall']:.2f} "
            f"| {r['ratio_cpu']:.2f} | {same} |"
        )
    for r in perf.get("nms", []):
        if "ratio_wall" not in r:
            continue
        rows.append(
            f"| `{r['op']}` vs greedy loop | {r['scene']}, n = {r['n']:,} | 1 | {ws(r['cvlib'])} "
            f"| {ws(r['greedy_loop'])} | {r['ratio_wall']:.2f} | {r['ratio_cpu']:.2f} "
            f"| {'identical' if r['identical'] else 'DIFFERENT'} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
