"""Detection figures: boxes with labels and scores, IoU of two boxes, NMS before/after, anchors, YOLO's
grid assignment, PR curves.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (see :mod:`cvlib.viz.core`).
Boxes are xyxy pixels (Tensor[N, 4] or array-like); images float [3, H, W] in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cvlib.ops.boxes import box_iou, nms
from cvlib.viz.core import to_numpy_image

__all__ = [
    "draw_boxes",
    "plot_detections",
    "plot_iou",
    "plot_nms",
    "plot_anchors",
    "plot_yolo_grid",
    "plot_pr_curves",
]

_COLORS = [
    "tab:red",
    "tab:blue",
    "tab:green",
    "tab:orange",
    "tab:purple",
    "tab:cyan",
    "tab:olive",
    "tab:pink",
]


def _arr(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def draw_boxes(
    ax: Any,
    boxes: Any,
    labels: Any = None,
    scores: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    color: str | None = None,
    linestyle: str = "-",
    linewidth: float = 1.5,
) -> None:
    """Draw xyxy ``boxes`` on a matplotlib ``ax``, with "name score" captions when given.

    Args:
        boxes (Tensor[N, 4]): xyxy pixels. labels (Tensor[N] | None): 1..K (``class_names[label - 1]``).
        scores (Tensor[N] | None): shown with two decimals. color: one colour for all (default by label).
    """
    b = _arr(boxes).reshape(-1, 4)
    lab = None if labels is None else _arr(labels).astype(int).reshape(-1)
    sc = None if scores is None else _arr(scores).reshape(-1)
    for i, (x1, y1, x2, y2) in enumerate(b):
        c = color or (_COLORS[(lab[i] - 1) % len(_COLORS)] if lab is not None else _COLORS[0])
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=c, lw=linewidth, ls=linestyle))
        text = []
        if lab is not None:
            text.append(class_names[lab[i] - 1] if class_names else str(lab[i]))
        if sc is not None:
            text.append(f"{sc[i]:.2f}")
        if text:
            ax.text(
                x1,
                y1,
                " ".join(text),
                color="white",
                fontsize=7,
                va="bottom",
                bbox=dict(facecolor=c, alpha=0.8, pad=1, lw=0),
            )


def plot_detections(
    images: Any,
    preds: Sequence[Mapping[str, Any]],
    targets: Sequence[Mapping[str, Any]] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    score_thresh: float = 0.5,
    ncols: int = 4,
    cell: float = 2.6,
) -> Figure:
    """A grid of images with predicted boxes (solid, with scores) and ground truth (dashed white).

    Args:
        images (Tensor[B, 3, H, W]): images in [0, 1].
        preds (list[dict]): ``boxes``, ``scores``, ``labels`` per image.
        targets (list[dict] | None): ``boxes``, ``labels`` per image.
        score_thresh (float): predictions below it are not drawn.
    """
    n = len(preds)
    if len(images) != n or (targets is not None and len(targets) != n):
        raise ValueError(
            f"images, preds and targets must have the same length, got {len(images)}, {n}, "
            f"{None if targets is None else len(targets)}"
        )
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(cell * ncols, cell * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(to_numpy_image(images[i]))
        if targets is not None:
            draw_boxes(ax, targets[i]["boxes"], color="white", linestyle="--", linewidth=1.0)
        keep = _arr(preds[i]["scores"]) >= score_thresh
        draw_boxes(
            ax,
            _arr(preds[i]["boxes"])[keep],
            _arr(preds[i]["labels"])[keep],
            _arr(preds[i]["scores"])[keep],
            class_names,
        )
    fig.tight_layout()
    return fig


def plot_iou(box1: Sequence[float], box2: Sequence[float], *, extent: float | None = None) -> Figure:
    """Two boxes, their intersection (filled) and enclosing box (dotted); the title gives IoU and GIoU.

    Args:
        box1, box2 (Sequence[float]): xyxy boxes.
        extent (float | None): axis limit (default: fit both boxes).
    """
    from cvlib.ops.boxes import generalized_box_iou

    b = torch.tensor([list(box1), list(box2)], dtype=torch.float64)
    iou = box_iou(b[:1], b[1:]).item()
    giou = generalized_box_iou(b[:1], b[1:]).item()
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    lt, rb = torch.maximum(b[0, :2], b[1, :2]), torch.minimum(b[0, 2:], b[1, 2:])
    if (rb > lt).all():
        ax.add_patch(
            Rectangle(lt.tolist(), *(rb - lt).tolist(), color="tab:purple", alpha=0.35, label="intersection")
        )
    c1, c2 = torch.minimum(b[0, :2], b[1, :2]), torch.maximum(b[0, 2:], b[1, 2:])
    ax.add_patch(
        Rectangle(c1.tolist(), *(c2 - c1).tolist(), fill=False, ls=":", ec="gray", label="enclosing box")
    )
    draw_boxes(ax, b[:1], color="tab:red", linewidth=2)
    draw_boxes(ax, b[1:], color="tab:blue", linewidth=2)
    hi = extent if extent is not None else float(c2.max()) + 1
    lo = 0.0 if extent is not None else min(0.0, float(c1.min()) - 1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(hi, lo)  # image convention: y grows downwards
    ax.set_aspect("equal")
    ax.set_title(f"IoU = {iou:.3f}   GIoU = {giou:.3f}")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_nms(boxes: Any, scores: Any, iou_threshold: float, *, image: Any = None) -> Figure:
    """Boxes before NMS (all, with scores) and after :func:`cvlib.ops.boxes.nms` at ``iou_threshold``."""
    boxes, scores = torch.as_tensor(_arr(boxes)), torch.as_tensor(_arr(scores))
    keep = nms(boxes, scores, iou_threshold)
    fig = Figure(figsize=(8, 4))
    axes = fig.subplots(1, 2)
    hi = float(boxes.max()) + 2 if image is None else None
    for ax, idx, title in (
        (axes[0], torch.arange(len(boxes)), f"before NMS: {len(boxes)} boxes"),
        (axes[1], keep, f"after NMS (IoU > {iou_threshold:.2f} suppressed): {len(keep)}"),
    ):
        if image is not None:
            ax.imshow(to_numpy_image(image))
        else:
            ax.set_xlim(0, hi)
            ax.set_ylim(hi, 0)
            ax.set_aspect("equal")
        draw_boxes(ax, boxes[idx], None, scores[idx])
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_anchors(
    image_size: tuple[int, int],
    anchors: Any,
    *,
    cells: Sequence[int] = (0,),
    per_cell: int = 1,
    image: Any = None,
) -> Figure:
    """Anchors of some cells (index of the first anchor of each cell, ``per_cell`` anchors drawn each)."""
    a = _arr(anchors)
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    if image is not None:
        ax.imshow(to_numpy_image(image))
    for j, c in enumerate(cells):
        draw_boxes(ax, a[c : c + per_cell], color=_COLORS[j % len(_COLORS)])
        centre = (a[c, :2] + a[c, 2:]) / 2
        ax.plot(*centre, "o", color=_COLORS[j % len(_COLORS)], ms=3)
    h, w = image_size
    ax.set_xlim(min(0, a[:, 0].min()), max(w, a[:, 2].max()))
    ax.set_ylim(max(h, a[:, 3].max()), min(0, a[:, 1].min()))
    ax.add_patch(Rectangle((0, 0), w, h, fill=False, ec="black", lw=1))
    ax.set_aspect("equal")
    ax.set_title(f"{len(a)} anchors; {len(cells)} cells shown", fontsize=9)
    return fig


def plot_yolo_grid(
    image: Any,
    boxes: Any,
    labels: Any = None,
    *,
    grid_size: int = 7,
    pred_boxes: Any = None,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """YOLO's grid (Redmon et al. 2016, arXiv:1506.02640): the S x S cells, each object's centre and the
    cell responsible for it (shaded in the object's colour), as
    :func:`cvlib.models.detection.yolo.assign_targets` assigns them. An object whose centre falls into
    a cell already taken by a larger object is marked with an x (the model cannot learn it). With
    ``pred_boxes`` the B predicted boxes of each object cell are drawn: the responsible one (highest
    IoU) solid, the others dotted.

    Args:
        image (Tensor[3, H, W] | tuple[int, int]): an image in [0, 1], or its ``(H, W)`` for a blank canvas.
        boxes (Tensor[N, 4]): ground-truth xyxy pixels. labels (Tensor[N] | None): 1..K.
        grid_size (int): S. pred_boxes (Tensor[S, S, B, 4] | None): predicted xyxy boxes per cell.
        class_names (list[str] | None): names for labels 1..K.
    """
    from cvlib.models.detection.yolo import assign_targets

    if isinstance(image, (tuple, list)) and len(image) == 2:
        (h, w), img = image, None
    else:
        img = to_numpy_image(image)
        h, w = img.shape[:2]
    if not isinstance(grid_size, int) or grid_size < 1:
        raise ValueError(f"grid_size must be an int >= 1, got {grid_size!r}")
    b = torch.as_tensor(_arr(boxes), dtype=torch.float32).reshape(-1, 4)
    lab = torch.ones(len(b), dtype=torch.int64) if labels is None else torch.as_tensor(_arr(labels)).long()
    pb = (
        torch.zeros(grid_size, grid_size, 1, 4)
        if pred_boxes is None
        else torch.as_tensor(_arr(pred_boxes), dtype=torch.float32)
    )
    if pb.dim() != 4 or pb.shape[:2] != (grid_size, grid_size) or pb.shape[-1] != 4:
        raise ValueError(f"pred_boxes must be [S, S, B, 4] with S = {grid_size}, got {tuple(pb.shape)}")
    a = assign_targets(b, lab, pb, (h, w))
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    if img is not None:
        ax.imshow(img, extent=(0, w, h, 0))
    cw, ch = w / grid_size, h / grid_size
    for k in range(grid_size + 1):
        ax.axvline(k * cw, color="0.4", lw=0.6)
        ax.axhline(k * ch, color="0.4", lw=0.6)
    for r, c in a["cell"].nonzero().tolist():
        j = int(a["index"][r, c])
        col = _COLORS[(int(lab[j]) - 1) % len(_COLORS)]
        ax.add_patch(Rectangle((c * cw, r * ch), cw, ch, fc=col, alpha=0.35, ec=col, lw=1.5))
        if pred_boxes is not None:
            for p in range(pb.shape[2]):
                ls = "-" if bool(a["responsible"][r, c, p]) else ":"
                draw_boxes(ax, pb[r, c, p], color=col, linestyle=ls, linewidth=1.0)
    kept = set(a["index"][a["cell"]].tolist())
    draw_boxes(ax, b, lab, None, class_names, linestyle="--", linewidth=1.2)
    centres = ((b[:, :2] + b[:, 2:]) / 2).numpy()
    for i, (x, y) in enumerate(centres):
        ax.plot(x, y, "o" if i in kept else "x", color="black", ms=4 if i in kept else 7, mew=1.5)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    ax.set_title(f"{grid_size} x {grid_size} grid: {len(kept)} of {len(b)} objects have a cell", fontsize=9)
    return fig


def plot_pr_curves(
    curves: Mapping[int, Mapping[str, Any]] | Sequence[Mapping[int, Mapping[str, Any]]],
    *,
    class_names: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> Figure:
    """Precision-recall curves per class (from :func:`cvlib.metrics.detection.pr_curves`), one panel per
    class; several models' curves (a list of such dicts, named by ``names``) share the panels."""
    runs = [curves] if isinstance(curves, Mapping) else list(curves)
    names = names or [f"model {i}" for i in range(len(runs))]
    classes = sorted({c for r in runs for c in r})
    fig = Figure(figsize=(3 * len(classes), 3))
    axes = fig.subplots(1, len(classes), squeeze=False)[0]
    for ax, c in zip(axes, classes):
        for j, (run, name) in enumerate(zip(runs, names)):
            if c in run and len(run[c]["recall"]):
                r, p = np.concatenate([[0], run[c]["recall"]]), np.concatenate([[1], run[c]["precision"]])
                ax.step(r, p, where="post", color=_COLORS[j % len(_COLORS)], label=name)
        ax.set_title(class_names[c - 1] if class_names else f"class {c}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
    axes[0].set_ylabel("precision")
    if len(runs) > 1:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
