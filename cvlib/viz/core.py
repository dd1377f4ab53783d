"""Plotting helpers shared by the chapters: image grids, training curves, confusion matrices, bars, scatters.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (so a notebook shows
it once, as the cell's value, and scripts can ``fig.savefig(...)``); none of them calls ``plt.show``.
Images are float ``[B, 3, H, W]`` / ``[B, 1, H, W]`` / ``[B, H, W]`` in [0, 1] (clipped), uint8, or
NumPy ``[H, W(, C)]`` arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = [
    "to_numpy_image",
    "show_images",
    "overlay_heatmaps",
    "plot_history",
    "plot_confusion_matrix",
    "plot_bar",
    "plot_scatter",
]


def to_numpy_image(img: Any) -> np.ndarray:
    """One image as a NumPy ``[H, W]`` or ``[H, W, 3]`` array for ``imshow``.

    Args:
        img (Tensor[C, H, W] | Tensor[H, W] | ndarray[H, W(, C)]): C in {1, 3}; floats are clipped to [0, 1].
    """
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.ndim == 3:
            if t.shape[0] not in (1, 3):
                raise ValueError(f"image must be [C, H, W] with C in (1, 3), got {tuple(t.shape)}")
            t = t.permute(1, 2, 0)
        a = t.float().numpy() if t.dtype != torch.uint8 else t.numpy()
    else:
        a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"image must be 2-D or 3-D, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float32), 0.0, 1.0)
    return a


def _as_list(images: Any) -> list:
    if images is None or isinstance(images, (str, bytes)) or not hasattr(images, "__iter__"):
        raise TypeError(
            f"images must be a tensor [B, C, H, W], an array or a list of images, got {images!r:.60}"
        )
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[1] in (1, 3):
        images = torch.from_numpy(images)  # a numpy [B, C, H, W] batch
    if isinstance(images, list) and images and not isinstance(images[0], (torch.Tensor, np.ndarray)):
        try:
            images = torch.as_tensor(images)  # nested lists of numbers
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"images must be tensors, arrays or nested lists of numbers: {e}") from None
    if isinstance(images, torch.Tensor):
        if images.is_complex():
            raise TypeError(f"images must be real, got dtype {images.dtype}")
        if images.ndim not in (3, 4):
            raise ValueError(f"images must be [B, C, H, W] or [B, H, W], got {tuple(images.shape)}")
        return list(images)
    if isinstance(images, np.ndarray) and images.ndim == 2:
        return [images]
    return list(images)


def _grid(n: int, nrow: int, cell: float, title_space: bool) -> tuple[Figure, np.ndarray]:
    cols = max(1, min(nrow, n))
    rows = math.ceil(n / cols)
    fig = Figure(
        figsize=(cell * cols, cell * rows + (0.3 * rows if title_space else 0)), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def show_images(
    images: Any,
    titles: Sequence[str] | None = None,
    nrow: int = 8,
    *,
    cmap: str | None = None,
    cell: float = 1.6,
    suptitle: str | None = None,
) -> Figure:
    """A grid of images, ``nrow`` per row, with optional titles.

    Args:
        images (Tensor[B, C, H, W] | Tensor[B, H, W] | list): the images (see the module docstring).
        titles: one string per image (or None).
        nrow: images per row.
        cmap: colour map for single-channel images (default ``"gray"``).
        cell: inches per image.
    """
    imgs = _as_list(images)
    if not imgs:
        raise ValueError("images must not be empty")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"titles must have one entry per image ({len(imgs)}), got {len(titles)}")
    fig, axes = _grid(len(imgs), nrow, cell, titles is not None)
    for i, img in enumerate(imgs):
        a = to_numpy_image(img)
        axes[i].imshow(
            a, cmap=(cmap or "gray") if a.ndim == 2 else None, vmin=0, vmax=255 if a.dtype == np.uint8 else 1
        )
        if titles is not None:
            axes[i].set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def overlay_heatmaps(
    images: Any,
    heatmaps: Any,
    titles: Sequence[str] | None = None,
    nrow: int = 8,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    cell: float = 1.6,
) -> Figure:
    """Images with heat maps (CAM, Grad-CAM, saliency) drawn on top.

    Args:
        images (Tensor[B, C, H, W]): the images.
        heatmaps (Tensor[B, h, w]): one map per image, resized to the image size for display and
            normalised per image to [0, 1].
    """
    imgs = _as_list(images)
    maps = _as_list(heatmaps)
    if len(imgs) != len(maps):
        raise ValueError(f"images and heatmaps must pair up, got {len(imgs)} and {len(maps)}")
    fig, axes = _grid(len(imgs), nrow, cell, titles is not None)
    for i, (img, hm) in enumerate(zip(imgs, maps)):
        a = to_numpy_image(img)
        h = torch.as_tensor(
            np.asarray(hm.detach().cpu() if isinstance(hm, torch.Tensor) else hm), dtype=torch.float32
        )
        h = torch.nn.functional.interpolate(
            h[None, None], size=a.shape[:2], mode="bilinear", align_corners=False
        )[0, 0]
        h = (h - h.min()) / (h.max() - h.min()).clamp_min(1e-12)
        axes[i].imshow(a, cmap="gray" if a.ndim == 2 else None)
        axes[i].imshow(h.numpy(), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            axes[i].set_title(str(titles[i]), fontsize=8)
    return fig


def plot_history(history: Any, keys: Sequence[str] | None = None) -> Figure:
    """Training curves (train vs validation per quantity) of a ``cvlib.train.History`` or its dict."""
    from cvlib.train.loop import History

    if isinstance(history, History):
        return history.plot(keys)
    if isinstance(history, Mapping):
        return History(dict(history)).plot(keys)
    raise TypeError(f"history must be a History or a dict of lists, got {type(history).__name__}")


def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str] | None = None,
    *,
    normalize: bool = False,
    cmap: str = "Blues",
    title: str | None = None,
) -> Figure:
    """A confusion matrix as an image; rows are true classes, columns predictions.

    Args:
        cm (Tensor[K, K] | ndarray[K, K]): counts (``cvlib.metrics.confusion_matrix``).
        class_names: K labels (default 0..K-1).
        normalize: divide each row by its total (per-class recall on the diagonal).
    """
    m = np.asarray(cm.detach().cpu() if isinstance(cm, torch.Tensor) else cm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"cm must be [K, K], got shape {m.shape}")
    k = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names must have {k} entries, got {len(names)}")
    if normalize:
        m = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(3.5, 0.45 * k + 1.5)
    fig = Figure(figsize=(size + 0.8, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(m, cmap=cmap)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        thresh = m.max() / 2 if m.size else 0
        for i in range(k):
            for j in range(k):
                txt = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
                ax.text(
                    j,
                    i,
                    txt,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if m[i, j] > thresh else "black",
                )
    if title:
        ax.set_title(title)
    return fig


def plot_bar(
    values: Mapping[str, float] | Mapping[str, Sequence[float]] | Sequence[float],
    labels: Sequence[str] | None = None,
    *,
    title: str | None = None,
    ylabel: str | None = None,
    annotate: bool = True,
    fmt: str = "{:.3f}",
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Bars for one value per label, or grouped bars for ``{series: [value per label]}``.

    Args:
        values: ``{label: value}``, a sequence (with ``labels``), or ``{series: values}`` (grouped,
            one bar group per entry of ``labels``).
        annotate: write each value above its bar (with ``fmt``).
    """
    if isinstance(values, Mapping):
        first = next(iter(values.values()), None)
        grouped = isinstance(first, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(first, str)
    else:
        grouped = False
    fig = Figure(figsize=(5.5, 3.2), layout="constrained")
    ax = fig.subplots()
    if grouped:
        series = {k: [float(v) for v in vs] for k, vs in values.items()}  # type: ignore[union-attr]
        n = len(next(iter(series.values())))
        if labels is None:
            labels = [str(i) for i in range(n)]
        if any(len(v) != len(labels) for v in series.values()):
            raise ValueError(f"every series needs {len(labels)} values (one per label)")
        width = 0.8 / len(series)
        for s, (name, vals) in enumerate(series.items()):
            xs = np.arange(len(labels)) + (s - (len(series) - 1) / 2) * width
            bars = ax.bar(xs, vals, width, label=name)
            if annotate:
                ax.bar_label(bars, [fmt.format(v) for v in vals], fontsize=7)
        ax.set_xticks(range(len(labels)), labels)
        ax.legend()
    else:
        if isinstance(values, Mapping):
            labels, vals = list(values.keys()), [float(v) for v in values.values()]
        else:
            vals = [float(v) for v in values]
            labels = list(labels) if labels is not None else [str(i) for i in range(len(vals))]
        if len(labels) != len(vals):
            raise ValueError(f"labels must have {len(vals)} entries, got {len(labels)}")
        bars = ax.bar(range(len(vals)), vals, color=[f"C{i % 10}" for i in range(len(vals))])
        ax.set_xticks(range(len(vals)), labels)
        if annotate:
            ax.bar_label(bars, [fmt.format(v) for v in vals], fontsize=8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_scatter(
    x: Sequence[float] | np.ndarray | torch.Tensor,
    y: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    labels: Sequence[Any] | None = None,
    names: Sequence[str] | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    logx: bool = False,
    logy: bool = False,
) -> Figure:
    """A scatter plot; points coloured by ``labels`` (class ids) and/or annotated with ``names``.

    Args:
        x, y (Tensor[N] | array[N]): coordinates.
        labels: N class labels (one colour and legend entry per class).
        names: N strings written next to the points (e.g. model names in an accuracy-vs-cost plot).
    """
    xs = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).ravel()
    ys = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.subplots()
    if labels is not None:
        lab = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
        if lab.shape[0] != xs.size:
            raise ValueError(f"labels must have {xs.size} entries, got {lab.shape[0]}")
        for i, c in enumerate(np.unique(lab)):
            sel = lab == c
            ax.scatter(xs[sel], ys[sel], s=14, color=f"C{i % 10}", label=str(c))
        ax.legend(fontsize=7, markerscale=1.2)
    else:
        ax.scatter(xs, ys, s=20)
    if names is not None:
        if len(names) != xs.size:
            raise ValueError(f"names must have {xs.size} entries, got {len(names)}")
        for xi, yi, n in zip(xs, ys, names):
            ax.annotate(str(n), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig
