"""k-nearest-neighbour classification on any device, with bounded memory.

The "memorise every image" baseline (Cover & Hart 1967, doi:10.1109/TIT.1967.1053964): keep
the whole training set and label a query by a majority vote of its ``k`` closest training
samples. Distances are computed block by block:

* ``"l2"``: ``||q - t||^2 = ||q||^2 - 2 q.t + ||t||^2`` (one matrix product per block, clamped
  at 0 against round-off); the ranking uses squared distances, the returned distances are the roots.
* ``"l1"``: :func:`torch.cdist` with ``p=1``.
* ``"cosine"``: ``1 - q.t / (||q|| ||t||)``, a zero vector has distance 1 to everything (as in
  scikit-learn).

Queries are processed ``chunk_size`` rows at a time and the training set ``train_chunk_size``
rows at a time, keeping a running top-k per query, so memory is
``O(chunk_size * (train_chunk_size + k))`` whatever the size of the training set.

Edge cases: zero queries give empty ``[0, k]`` results; features so large that squared norms
would overflow (float32 beyond about ``1e17`` at D = 3072) are multiplied by an exact power of two
first (training set at :meth:`KNNClassifier.fit`, queries at search time), so rankings and returned
distances are those of exact arithmetic up to float rounding, never inf/NaN.

Tie-breaking (documented contract, tested against scikit-learn):

* equal distances: the neighbour with the smaller training index comes first, so the k
  neighbours are the first k of a *stable* sort of the distances;
* equal votes: the smallest label wins (as ``KNeighborsClassifier`` does: its ``argmax`` over
  the sorted ``classes_`` returns the first maximum).

scikit-learn's brute-force search (a heap per query) does not promise which of several
equally distant candidates it keeps when they straddle the k-th place, so the two agree
exactly whenever the k-th and (k+1)-th distances differ, including ties in the vote.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from cvlib.runtime import fast_dev_run

__all__ = [
    "METRICS",
    "KNNClassifier",
    "pairwise_distances",
    "majority_vote",
    "accuracy_vs_k",
    "measure_scaling",
]

METRICS = ("l2", "l1", "cosine")
#: the largest training-set size :func:`measure_scaling` measures under ``CVLIB_FAST_DEV_RUN``
FAST_DEV_MAX_TRAIN = 2048


def _as_float_matrix(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must be [N, D] (or [N, ...], flattened), got {tuple(x.shape)}")
    if x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    elif x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # upcast: half precision distances make ties and errors
    return x


def _safe_scale(max_abs: float, dim: int, dtype: torch.dtype) -> float:
    """A power of two ``s <= 1`` such that features of magnitude ``max_abs * s`` cannot overflow.

    ``||q||^2 + ||t||^2 + 2 |q.t| <= 4 D m^2`` must stay below the dtype's largest value (float32:
    3.4e38, reached by features of about 1e17 for D = 3072). Scaling by a power of two is exact
    (every float keeps its mantissa), so rankings and the rescaled distances are unchanged.
    """
    limit = math.sqrt(torch.finfo(dtype).max / (8.0 * dim))
    if not max_abs > limit:
        return 1.0
    return 2.0 ** (math.floor(math.log2(limit)) - math.ceil(math.log2(max_abs)))


def _block_distances(
    q: torch.Tensor, t: torch.Tensor, metric: str, t_sq: torch.Tensor | None
) -> torch.Tensor:
    """Distances (squared for l2) between a query block [Q, D] and a training block [T, D] -> [Q, T]."""
    if metric == "l2":
        q_sq = (q * q).sum(1, keepdim=True)  # [Q, 1]
        # [Q, T]: ||t||^2 - 2 q.t
        d = torch.addmm(t_sq[None, :], q, t.T, alpha=-2.0)
        return d.add_(q_sq).clamp_min_(0.0)
    if metric == "l1":
        return torch.cdist(q, t, p=1.0)
    # cosine: t is already normalised
    qn = q / q.norm(dim=1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    return (1.0 - qn @ t.T).clamp_(0.0, 2.0)


def _smallest_k(d: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest entries of each row of ``d`` ordered by (value, index).

    Args:
        d (Tensor[Q, T]): values. index (Tensor[Q, T] or [T]): int64 ids, increasing along each
            row. k: how many to keep (<= T).

    Returns:
        values (Tensor[Q, k]) and ids (Tensor[Q, k]), sorted by value, ties by id.
    """
    q, t = d.shape
    if index.ndim == 1:
        index = index.expand(q, t)
    if k >= t:  # everything is kept
        vals, pos = d, torch.arange(t, device=d.device).expand(q, t)
    else:
        # one extra candidate tells whether the k-th place is tied (k-th == (k+1)-th value); topk
        # may then have picked any of the equal entries, so those rows take everything below the
        # k-th value plus the lowest-position entries equal to it (O(T), no sort)
        vals, pos = torch.topk(d, k + 1, dim=1, largest=False, sorted=True)
        tied = vals[:, k] == vals[:, k - 1]
        vals, pos = vals[:, :k].contiguous(), pos[:, :k].contiguous()
        if bool(tied.any()):
            rows = tied.nonzero().squeeze(1)
            dr, kr = d[rows], vals[rows, k - 1 :]  # [R, T], [R, 1]
            less, equal = dr < kr, dr == kr
            need = k - less.sum(dim=1, keepdim=True)
            take = less | (equal & (equal.cumsum(dim=1) <= need))  # exactly k per row
            p = take.nonzero()[:, 1].view(len(rows), k)  # row-major: positions increase along a row
            vals[rows], pos[rows] = dr.gather(1, p), p
    pos, order = pos.sort(dim=1)  # positions increasing = ids increasing
    vals = vals.gather(1, order)
    vals, order = vals.sort(dim=1, stable=True)
    pos = pos.gather(1, order)
    return vals, index.gather(1, pos)


class KNNClassifier:
    """k-nearest-neighbour classifier (Cover & Hart 1967) with blocked, device-agnostic search.

    Args:
        k: number of neighbours that vote (>= 1, at most the training-set size).
        metric: one of ``("l2", "l1", "cosine")``.
        chunk_size: queries per block.
        train_chunk_size: training samples per block.

    Inputs are ``[N, D]`` (or ``[N, C, H, W]``, flattened to ``[N, C*H*W]``) tensors or numpy
    arrays. Integer and half inputs are upcast to float32; float64 stays float64. Queries are
    moved to the device and dtype of the training data. See the module docstring for the
    tie-breaking rules.

    Example:
        >>> knn = KNNClassifier(k=3).fit(torch.tensor([[0.0], [1.0], [5.0]]), torch.tensor([0, 0, 1]))
        >>> knn.predict(torch.tensor([[0.2], [4.0]])).tolist()
        [0, 0]
    """

    def __init__(
        self, k: int = 1, metric: str = "l2", chunk_size: int = 512, train_chunk_size: int = 8192
    ) -> None:
        for name, value in (("k", k), ("chunk_size", chunk_size), ("train_chunk_size", train_chunk_size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.k = k
        self.metric = metric
        self.chunk_size = chunk_size
        self.train_chunk_size = train_chunk_size
        self._x: torch.Tensor | None = None

    def __repr__(self) -> str:
        return f"KNNClassifier(k={self.k}, metric={self.metric!r}, n_train={self.n_train})"

    @property
    def n_train(self) -> int:
        """Number of stored training samples (0 before :meth:`fit`)."""
        return 0 if self._x is None else self._x.shape[0]

    @property
    def memory_bytes(self) -> int:
        """Bytes of the stored training set (samples, labels and cached norms): grows as O(N * D)."""
        if self._x is None:
            return 0
        held = [self._x, self._y_enc, self.classes_] + ([self._t_sq] if self.metric == "l2" else [])
        return sum(t.numel() * t.element_size() for t in held)

    def fit(self, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> KNNClassifier:
        """Memorise the training set.

        Args:
            x (Tensor[N, D] or Tensor[N, ...]): training samples, finite.
            y (Tensor[N]): integer labels (any values; stored as sorted ``classes_``).

        Returns:
            self.
        """
        x = _as_float_matrix(x, "x")
        if isinstance(y, np.ndarray):
            y = torch.from_numpy(y)
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor or numpy array, got {type(y).__name__}")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must be [N] with N = x.shape[0] = {x.shape[0]}, got {tuple(y.shape)}")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
        if x.shape[0] < self.k:
            raise ValueError(f"k must be <= the number of training samples {x.shape[0]}, got k={self.k}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x must be finite (found NaN or inf)")
        y = y.to(device=x.device, dtype=torch.int64)
        self.classes_, self._y_enc = torch.unique(y, sorted=True, return_inverse=True)
        # very large finite features would overflow the squared norms: scale by an exact power of 2
        self._scale = _safe_scale(float(x.abs().max()) if x.numel() else 0.0, x.shape[1], x.dtype)
        self._x = x * self._scale if self._scale != 1.0 else x
        self._set_cache()
        return self

    def _set_cache(self) -> None:
        x = self._x
        if self.metric == "l2":
            self._t_sq = (x * x).sum(1)
        elif self.metric == "cosine":
            self._x = x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)

    def _check_query(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        if self._x is None:
            raise RuntimeError("KNNClassifier is not fitted: call fit(x, y) before predict/kneighbors")
        x = _as_float_matrix(x, "x")
        if x.shape[1] != self._x.shape[1]:
            raise ValueError(
                f"x must have {self._x.shape[1]} features like the training data, got {x.shape[1]}"
            )
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x must be finite (found NaN or inf)")
        return x.to(device=self._x.device, dtype=self._x.dtype)

    @torch.no_grad()
    def kneighbors(
        self, x: torch.Tensor | np.ndarray, k: int | None = None, return_distance: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """The ``k`` nearest training samples of each query.

        Args:
            x (Tensor[Q, D]): queries.
            k: neighbours to return (default: ``self.k``), at most the training-set size.
            return_distance: also return the distances.

        Returns:
            distances (Tensor[Q, k], training dtype, ascending) and indices (Tensor[Q, k], int64
            rows of the training set, equal distances by increasing index); only the indices if
            ``return_distance=False``.
        """
        x = self._check_query(x)
        k = self.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if not 1 <= k <= self.n_train:
            raise ValueError(f"k must be an int in [1, {self.n_train}], got {k!r}")
        n_q, n_t = x.shape[0], self.n_train
        scale = self._scale
        train, t_sq_all = self._x, getattr(self, "_t_sq", None)
        if n_q:
            extra = _safe_scale(float(x.abs().max()) * scale, x.shape[1], x.dtype)
            if extra != 1.0:  # queries far larger than the training data: rescale both (rare)
                scale *= extra
                if self.metric != "cosine":
                    train = train * extra
                    t_sq_all = (train * train).sum(1) if self.metric == "l2" else None
            if scale != 1.0:
                x = x * scale
        out_d = torch.empty(n_q, k, dtype=x.dtype, device=x.device)
        out_i = torch.empty(n_q, k, dtype=torch.int64, device=x.device)
        for qs in range(0, n_q, self.chunk_size):
            q = x[qs : qs + self.chunk_size]
            best_d = best_i = None
            for ts in range(0, n_t, self.train_chunk_size):
                t = train[ts : ts + self.train_chunk_size]
                t_sq = t_sq_all[ts : ts + self.train_chunk_size] if self.metric == "l2" else None
                d = _block_distances(q, t, self.metric, t_sq)  # [q, t]
                ids = torch.arange(ts, ts + t.shape[0], device=x.device)
                cd, ci = _smallest_k(d, ids, min(k, t.shape[0]))
                if best_d is None:
                    best_d, best_i = cd, ci
                    continue
                # merge: earlier blocks hold smaller ids, so [best | block] would be ordered by id
                # only if best were; sort the 2k candidates by id, then keep the k smallest.
                md, mi = torch.cat([best_d, cd], 1), torch.cat([best_i, ci], 1)
                mi, order = mi.sort(dim=1)
                best_d, best_i = _smallest_k(md.gather(1, order), mi, min(k, mi.shape[1]))
            out_d[qs : qs + q.shape[0]] = best_d
            out_i[qs : qs + q.shape[0]] = best_i
        if not return_distance:
            return out_i
        if self.metric == "l2":
            out_d = out_d.sqrt_()
        if self.metric != "cosine" and scale != 1.0:
            out_d = out_d / scale  # exact: scale is a power of two
        return out_d, out_i

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Vote shares: Tensor[Q, K] (K = ``len(classes_)``), each row sums to 1."""
        idx = self.kneighbors(x, return_distance=False)  # [Q, k]
        votes = self._y_enc[idx]  # [Q, k]
        counts = torch.zeros(idx.shape[0], self.classes_.numel(), dtype=self._x.dtype, device=idx.device)
        counts.scatter_add_(1, votes, torch.ones_like(votes, dtype=counts.dtype))
        return counts / self.k

    @torch.no_grad()
    def predict(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Majority vote of the ``k`` neighbours: Tensor[Q] int64 labels (ties: smallest label)."""
        idx = self.kneighbors(x, return_distance=False)  # [Q, k]
        return self.classes_[majority_vote(self._y_enc[idx], self.classes_.numel())]

    @torch.no_grad()
    def score(self, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
        """Accuracy of :meth:`predict` on ``(x, y)``."""
        pred = self.predict(x)
        if pred.numel() == 0:
            raise ValueError("score needs at least one query, got x with 0 rows")
        y = torch.as_tensor(y).to(pred.device)
        if y.shape != pred.shape:
            raise ValueError(f"y must be [Q] = {tuple(pred.shape)}, got {tuple(y.shape)}")
        return (pred == y).sum().item() / max(len(y), 1)  # no float64: MPS has none


def pairwise_distances(a: torch.Tensor, b: torch.Tensor, metric: str = "l2") -> torch.Tensor:
    """All distances between rows of ``a`` (Tensor[N, D]) and ``b`` (Tensor[M, D]) -> Tensor[N, M].

    Uses the same formulas as :class:`KNNClassifier` (``l2`` returns true, not squared, distances),
    including the exact power-of-two rescaling of very large features.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    a, b = _as_float_matrix(a, "a"), _as_float_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same number of features, got {a.shape[1]} and {b.shape[1]}")
    b = b.to(device=a.device, dtype=a.dtype)
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        raise ValueError("a and b must be finite (found NaN or inf)")
    m = max(float(a.abs().max()) if a.numel() else 0.0, float(b.abs().max()) if b.numel() else 0.0)
    scale = _safe_scale(m, a.shape[1], a.dtype)  # exact power of 2 against overflow
    if scale != 1.0:
        a, b = a * scale, b * scale
    if metric == "l2":
        d = _block_distances(a, b, "l2", (b * b).sum(1)).sqrt_()
    elif metric == "cosine":
        b = b / b.norm(dim=1, keepdim=True).clamp_min(torch.finfo(b.dtype).tiny)
        return _block_distances(a, b, metric, None)
    else:
        d = _block_distances(a, b, metric, None)
    return d / scale if scale != 1.0 else d


def majority_vote(neighbor_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Most frequent label per row; ties go to the smallest label.

    Args:
        neighbor_labels (Tensor[Q, k]): int64 labels in ``[0, num_classes)``.
        num_classes: number of classes K.

    Returns:
        Tensor[Q], int64.
    """
    if not isinstance(neighbor_labels, torch.Tensor):
        raise TypeError(f"neighbor_labels must be a torch.Tensor, got {type(neighbor_labels).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if neighbor_labels.ndim != 2:
        raise ValueError(f"neighbor_labels must be [Q, k], got {tuple(neighbor_labels.shape)}")
    if (
        neighbor_labels.is_floating_point()
        or neighbor_labels.is_complex()
        or neighbor_labels.dtype == torch.bool
    ):
        raise TypeError(f"neighbor_labels must hold integer labels, got dtype {neighbor_labels.dtype}")
    if neighbor_labels.shape[1] == 0:
        raise ValueError("neighbor_labels must have at least one neighbour per row (k >= 1), got k = 0")
    if neighbor_labels.numel() and (
        int(neighbor_labels.min()) < 0 or int(neighbor_labels.max()) >= num_classes
    ):
        raise ValueError(
            f"neighbor_labels must lie in [0, {num_classes}), got values in "
            f"[{int(neighbor_labels.min())}, {int(neighbor_labels.max())}]"
        )
    neighbor_labels = neighbor_labels.long()
    counts = torch.zeros(
        neighbor_labels.shape[0], num_classes, dtype=torch.int64, device=neighbor_labels.device
    )
    counts.scatter_add_(1, neighbor_labels, torch.ones_like(neighbor_labels))
    return counts.argmax(dim=1)  # argmax returns the first maximum: the smallest tied label


@torch.no_grad()
def accuracy_vs_k(
    knn: KNNClassifier, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, ks
) -> list[float]:
    """Test accuracy for several ``k`` from a single neighbour search.

    The neighbours for ``k`` are the first ``k`` of those for ``max(ks)`` (the order is stable),
    so one :meth:`KNNClassifier.kneighbors` call serves every ``k``; the result equals
    ``KNNClassifier(k).fit(...).score(x, y)`` for each ``k``.

    Returns:
        One accuracy in [0, 1] per entry of ``ks``.
    """
    ks = list(ks)
    if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of positive ints, got {ks!r}")
    idx = knn.kneighbors(x, k=max(ks), return_distance=False)  # [Q, kmax]
    y = torch.as_tensor(y).to(idx.device)
    if y.shape != idx.shape[:1]:
        raise ValueError(f"y must be [Q] = ({idx.shape[0]},), got {tuple(y.shape)}")
    labels = knn._y_enc[idx]
    out = []
    for k in ks:
        pred = knn.classes_[majority_vote(labels[:, :k], knn.classes_.numel())]
        out.append((pred == y).sum().item() / max(len(y), 1))
    return out


def measure_scaling(
    x: torch.Tensor,
    y: torch.Tensor,
    queries: torch.Tensor,
    sizes,
    k: int = 1,
    metric: str = "l2",
    repeats: int = 3,
) -> dict[str, list]:
    """Measure query time and stored memory of k-NN for growing training-set sizes.

    For each ``n`` in ``sizes`` the first ``n`` rows of ``(x, y)`` are memorised and all
    ``queries`` are classified after one warm-up query; the best of ``repeats`` wall-clock times
    is kept.

    Under ``CVLIB_FAST_DEV_RUN=N`` (:func:`cvlib.runtime.fast_dev_run`) this is a smoke run whose
    numbers are meaningless: the sizes are scaled down proportionally so the largest is at most
    ``FAST_DEV_MAX_TRAIN`` (each at least ``k``), only the first ``N`` queries are classified, once,
    with no warm-up. ``n_train`` reports the sizes actually measured.

    Args:
        x (Tensor[M, D]): training samples.
        y (Tensor[M]): their integer labels.
        queries (Tensor[Q, D]): the samples to classify.
        sizes: training-set sizes, each in ``[k, M]``.
        k: neighbours that vote.
        metric: see :class:`KNNClassifier`.
        repeats: timed repetitions (>= 1) per size.

    Returns:
        ``{"n_train": [...], "seconds_per_query": [...], "memory_bytes": [...]}``.
    """
    sizes = [int(n) for n in sizes]
    if not sizes or min(sizes) < k or max(sizes) > len(x):
        raise ValueError(f"sizes must lie in [k={k}, {len(x)}], got {sizes}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    warmup = True
    fast = fast_dev_run()
    if fast is not None:
        repeats, warmup = 1, False
        queries = queries[:fast]
        top = max(sizes)
        if top > FAST_DEV_MAX_TRAIN:
            sizes = [max(k, n * FAST_DEV_MAX_TRAIN // top) for n in sizes]
    out: dict[str, list] = {"n_train": [], "seconds_per_query": [], "memory_bytes": []}
    for n in sizes:
        knn = KNNClassifier(k=k, metric=metric).fit(x[:n], y[:n])
        if warmup:
            knn.predict(queries[:1])
        best = float("inf")
        for _ in range(repeats):
            if queries.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            knn.predict(queries)
            if queries.device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        out["n_train"].append(n)
        out["seconds_per_query"].append(best / len(queries))
        out["memory_bytes"].append(knn.memory_bytes)
    return out
