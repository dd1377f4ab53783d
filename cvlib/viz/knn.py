"""Figures for the k-nearest-neighbour chapter (Cover & Hart 1967, doi:10.1109/TIT.1967.1053964):
accuracy against k, a query with its nearest training images, and the O(n) cost of a query.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot. Images are
``[B, C, H, W]`` tensors in [0, 1] (C = 1 or 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from cvlib.viz.core import to_numpy_image

__all__ = ["plot_accuracy_vs_k", "show_neighbors", "plot_knn_view", "plot_scaling"]


def _curves(accuracies: Sequence[float] | Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    try:
        if isinstance(accuracies, Mapping):
            return {str(k): [float(a) for a in v] for k, v in accuracies.items()}
        return {"test": [float(a) for a in accuracies]}
    except (TypeError, ValueError):
        raise TypeError(
            f"accuracies must be a list of numbers or a mapping name -> numbers, got {accuracies!r:.80}"
        ) from None


def _draw_accuracy(ax, ks: Sequence[int], curves: dict[str, list[float]], current: int | None) -> None:
    for name, acc in curves.items():
        if len(acc) != len(ks):
            raise ValueError(f"accuracies[{name!r}] must have {len(ks)} values (one per k), got {len(acc)}")
        ax.plot(ks, acc, marker="o", ms=3, label=name)
    if current is not None:
        for acc in curves.values():
            if current in ks:
                ax.plot(
                    [current], [acc[list(ks).index(current)]], "o", ms=9, mfc="none", mec="crimson", mew=2
                )
        ax.axvline(current, color="crimson", lw=0.8, ls="--")
    ax.set_xlabel("k (neighbours that vote)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()


def plot_accuracy_vs_k(
    ks: Sequence[int],
    accuracies: Sequence[float] | Mapping[str, Sequence[float]],
    *,
    current: int | None = None,
    title: str | None = None,
) -> Figure:
    """Accuracy as a function of k; one curve per entry when ``accuracies`` is a mapping
    (e.g. ``{"train": [...], "test": [...]}``). ``current`` marks one k."""
    if ks is None or isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
        raise TypeError(f"ks must be a list of ints, got {ks!r:.60}")
    ks = list(ks)
    if not ks:
        raise ValueError("ks must not be empty")
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    _draw_accuracy(ax, ks, _curves(accuracies), current)
    best_name, best = max(((n, max(a)) for n, a in _curves(accuracies).items()), key=lambda t: t[1])
    ax.set_title(title or f"best {best_name} accuracy {best:.3f}")
    return fig


def _draw_neighbors(
    axes_row,
    query: torch.Tensor,
    neighbors: torch.Tensor,
    query_label: int | None,
    neighbor_labels: Sequence[int] | None,
    distances: Sequence[float] | None,
    classes: Sequence[str] | None,
) -> None:
    name = (lambda c: classes[c]) if classes is not None else str  # noqa: E731
    ax = axes_row[0]
    ax.imshow(to_numpy_image(query), cmap="gray", vmin=0, vmax=1)
    ax.set_title("query" + (f"\n{name(query_label)}" if query_label is not None else ""), fontsize=9)
    for j, ax in enumerate(axes_row[1:]):
        if j >= len(neighbors):
            break
        ax.imshow(to_numpy_image(neighbors[j]), cmap="gray", vmin=0, vmax=1)
        parts = []
        if neighbor_labels is not None:
            parts.append(name(int(neighbor_labels[j])))
        if distances is not None:
            parts.append(f"d={float(distances[j]):.2f}")
        color = "black"
        if neighbor_labels is not None and query_label is not None:
            color = "green" if int(neighbor_labels[j]) == int(query_label) else "crimson"
        ax.set_title("\n".join(parts), fontsize=8, color=color)


def show_neighbors(
    queries: torch.Tensor,
    neighbors: torch.Tensor,
    *,
    query_labels: Sequence[int] | torch.Tensor | None = None,
    neighbor_labels: torch.Tensor | None = None,
    distances: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
) -> Figure:
    """Each query (first column) followed by its nearest training images.

    Args:
        queries (Tensor[Q, C, H, W]): query images in [0, 1].
        neighbors (Tensor[Q, k, C, H, W]): their neighbours, nearest first.
        query_labels (Tensor[Q]): true labels (neighbour titles are green when they agree).
        neighbor_labels (Tensor[Q, k]): labels of the neighbours.
        distances (Tensor[Q, k]): distances, printed under each neighbour.
        classes: names for the labels.
    """
    if queries.ndim != 4 or neighbors.ndim != 5 or neighbors.shape[0] != queries.shape[0]:
        raise ValueError(
            f"queries must be [Q, C, H, W] and neighbors [Q, k, C, H, W], got {tuple(queries.shape)} "
            f"and {tuple(neighbors.shape)}"
        )
    q, k = neighbors.shape[:2]
    fig = Figure(figsize=(1.2 * (k + 1), 1.45 * q), layout="constrained")
    axes = fig.subplots(q, k + 1, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(q):
        _draw_neighbors(
            axes[i],
            queries[i],
            neighbors[i],
            None if query_labels is None else int(query_labels[i]),
            None if neighbor_labels is None else neighbor_labels[i].tolist(),
            None if distances is None else distances[i].tolist(),
            classes,
        )
    return fig


def plot_knn_view(
    ks: Sequence[int],
    accuracies: Sequence[float] | Mapping[str, Sequence[float]],
    k: int,
    query: torch.Tensor,
    neighbors: torch.Tensor,
    *,
    query_label: int | None = None,
    neighbor_labels: torch.Tensor | None = None,
    distances: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    prediction: int | None = None,
) -> Figure:
    """The view of the k-slider widget as a static figure: accuracy against k with ``k`` marked
    (top) and one query with its ``k`` nearest training images (bottom).

    Args:
        query (Tensor[C, H, W]); neighbors (Tensor[k', C, H, W]) with k' >= k (the first k are drawn).
    """
    ks = list(ks)
    shown = min(k, len(neighbors))
    fig = Figure(figsize=(max(6.0, 1.1 * (shown + 1)), 5.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.6, 1])
    _draw_accuracy(top.subplots(), ks, _curves(accuracies), k)
    head = f"k = {k}"
    if prediction is not None:
        head += f": vote says {classes[prediction] if classes is not None else prediction}"
    top.suptitle(head, fontsize=10)
    axes = bottom.subplots(1, shown + 1, squeeze=False)[0]
    for ax in axes:
        ax.set_axis_off()
    _draw_neighbors(
        axes,
        query,
        neighbors[:shown],
        query_label,
        None if neighbor_labels is None else [int(v) for v in neighbor_labels[:shown]],
        None if distances is None else [float(v) for v in distances[:shown]],
        classes,
    )
    return fig


def plot_scaling(scaling: Mapping[str, Sequence[float]], *, title: str | None = None) -> Figure:
    """Query time and memory against training-set size, with least-squares lines through 0.

    Args:
        scaling: the dict of :func:`cvlib.knn.measure_scaling` (``n_train``,
            ``seconds_per_query``, ``memory_bytes``).
    """
    n = np.asarray(scaling["n_train"], dtype=float)
    t = np.asarray(scaling["seconds_per_query"], dtype=float) * 1e3  # ms
    m = np.asarray(scaling["memory_bytes"], dtype=float) / 2**20  # MiB
    if not (len(n) == len(t) == len(m)) or len(n) < 2:
        raise ValueError(
            f"scaling needs >= 2 sizes with one time and memory each, got {len(n)}, {len(t)}, {len(m)}"
        )
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for ax, v, label in ((ax1, t, "time per query (ms)"), (ax2, m, "memory held (MiB)")):
        slope = float(n @ v / (n @ n))
        ax.plot(n, v, "o", label="measured")
        ax.plot([0, n.max()], [0, slope * n.max()], "--", color="gray", label="linear fit through 0")
        ax.set_xlabel("training images n")
        ax.set_ylabel(label)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
