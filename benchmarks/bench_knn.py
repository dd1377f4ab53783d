"""Queries per second of cvlib's KNNClassifier vs scikit-learn's brute-force KNeighborsClassifier.

Both run on the same CPU data (random float32 "images"; the distance kernels do not care about
the content) with the same k and the L2 metric, best of ``repeats`` timed runs after one warm-up.
cvlib can also run on a GPU (``--device cuda``); sklearn always runs on the CPU.

Usage::

    python benchmarks/bench_knn.py                       # 10k train x 1k queries, 3072-d (CIFAR)
    python benchmarks/bench_knn.py --dim 784 --n-train 60000

Other scripts can ``from benchmarks.bench_knn import run`` (or import it by path) and use the
returned dict.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import sklearn
import torch
from sklearn.neighbors import KNeighborsClassifier

from cvlib.knn import KNNClassifier

__all__ = ["run"]


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(
    n_train: int = 10_000,
    n_query: int = 1_000,
    dim: int = 3072,
    k: int = 5,
    n_classes: int = 10,
    repeats: int = 3,
    device: str = "cpu",
    seed: int = 0,
) -> dict:
    """Time both classifiers on the same data; return a dict of the settings and the results.

    Keys: ``cvlib_qps``, ``sklearn_qps`` (queries per second), ``ratio`` (cvlib / sklearn),
    ``agreement`` (fraction of equal predictions), ``device``, ``cpu``, ``threads`` and the
    versions of torch, scikit-learn and numpy, plus the arguments.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((n_train, dim), dtype=np.float32)
    y = rng.integers(0, n_classes, n_train)
    q = rng.random((n_query, dim), dtype=np.float32)

    sk = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(x, y)
    t_sk = _best_time(lambda: sk.predict(q), repeats)

    dev = torch.device(device)
    knn = KNNClassifier(k=k).fit(torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev))
    qt = torch.from_numpy(q).to(dev)

    def cv():
        out = knn.predict(qt)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return out

    t_cv = _best_time(cv, repeats)
    agreement = float((cv().cpu().numpy() == sk.predict(q)).mean())
    return {
        "n_train": n_train,
        "n_query": n_query,
        "dim": dim,
        "k": k,
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "cvlib_s": t_cv,
        "sklearn_s": t_sk,
        "cvlib_qps": n_query / t_cv,
        "sklearn_qps": n_query / t_sk,
        "ratio": t_sk / t_cv,
        "agreement": agreement,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--n-query", type=int, default=1_000)
    p.add_argument("--dim", type=int, default=3072)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    r = run(a.n_train, a.n_query, a.dim, a.k, repeats=a.repeats, device=a.device)
    print(f"k-NN, {r['n_train']} train x {r['n_query']} queries, {r['dim']}-d, k={r['k']}, L2")
    print(f"device {r['device']} | cpu {r['cpu']}, {r['threads']} torch threads")
    print(f"torch {r['torch']} | scikit-learn {r['sklearn']} | numpy {r['numpy']}")
    print(f"cvlib   : {r['cvlib_qps']:10.1f} queries/s ({r['cvlib_s']:.3f} s)")
    print(f"sklearn : {r['sklearn_qps']:10.1f} queries/s ({r['sklearn_s']:.3f} s)")
    print(f"ratio cvlib/sklearn: {r['ratio']:.2f}x | predictions agree on {100 * r['agreement']:.1f}%")


if __name__ == "__main__":
    main()
