"""Figures for scenes with dense and box labels, and for augmentation pipelines.

``show_scenes`` draws images with their boxes (xyxy, absolute pixels) and, optionally, their
masks beside them; ``show_augmentations`` draws the same images once per transform, one row each,
so the effect of every augmentation (Shorten & Khoshgoftaar 2019, "A survey on image data
augmentation for deep learning") can be compared at a glance. Both return a
:class:`matplotlib.figure.Figure` and never call ``plt.show``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

__all__ = ["show_scenes", "show_augmentations"]


def _image(x: Tensor) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> [H, W, 3] array for imshow (clipped)."""
    return x.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()


def show_scenes(
    images: Tensor,
    *,
    masks: Tensor | None = None,
    boxes: Sequence[Tensor] | None = None,
    box_labels: Sequence[Tensor] | None = None,
    titles: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    cell: float = 1.8,
) -> Figure:
    """Images in a row, optionally with boxes on them and their masks in a second row.

    Args:
        images (Tensor[B, 3, H, W]): float in [0, 1].
        masks (Tensor[B, H, W]): int class or instance ids, drawn with a qualitative colour map.
        boxes (list[Tensor[N_b, 4]]): xyxy in absolute pixels (pixel ``j`` spans ``[j, j + 1]``).
        box_labels (list[Tensor[N_b]]): ids written at each box's corner; ``class_names[id - 1]``
            when ``class_names`` is given (ids 1..K, 0 = background).
        titles: one per image.
        cell: inches per image.
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a Tensor[B, 3, H, W], got {getattr(images, 'shape', type(images))}")
    B = images.shape[0]
    for name, seq in (("masks", masks), ("boxes", boxes), ("box_labels", box_labels), ("titles", titles)):
        if seq is not None and len(seq) != B:
            raise ValueError(f"{name} must have one entry per image ({B}), got {len(seq)}")
    rows = 2 if masks is not None else 1
    fig = Figure(figsize=(cell * B, cell * rows + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, B, squeeze=False))
    for i in range(B):
        ax = axes[0, i]
        ax.imshow(_image(images[i]), extent=(0, images.shape[-1], images.shape[-2], 0))
        if boxes is not None:
            for k, (x1, y1, x2, y2) in enumerate(boxes[i].detach().cpu().tolist()):
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="red", lw=1.2))
                if box_labels is not None:
                    lab = int(box_labels[i][k])
                    text = class_names[lab - 1] if class_names is not None else str(lab)
                    ax.text(x1, y1, text, color="yellow", fontsize=6, va="bottom",
                            bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "lw": 0})  # fmt: skip
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        if masks is not None:
            m = masks[i].detach().cpu().numpy()
            axes[1, i].imshow(
                np.ma.masked_equal(m, 0), cmap="tab10", vmin=1, vmax=10, interpolation="nearest"
            )
            axes[1, i].set_facecolor("black")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def show_augmentations(
    images: Tensor,
    transforms: Mapping[str, Callable[[Tensor, Any], tuple[Tensor, Any]]],
    targets: Any = None,
    *,
    cell: float = 1.3,
) -> Figure:
    """One row per transform (plus the originals on top), the same images in every column.

    Args:
        images (Tensor[B, 3, H, W]): float in [0, 1].
        transforms: ``{row title: transform}``, each ``(x, y) -> (x, y)`` as in ``cvlib.data.transforms``.
        targets: passed to every transform as ``y`` (e.g. labels for MixUp/CutMix).
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a Tensor[B, 3, H, W], got {getattr(images, 'shape', type(images))}")
    if not transforms:
        raise ValueError("transforms must hold at least one {name: transform} entry")
    rows = {"original": images}
    with torch.no_grad():
        for name, t in transforms.items():
            rows[name] = t(images, targets)[0]
    B = images.shape[0]
    fig = Figure(figsize=(cell * B + 1.2, cell * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), B, squeeze=False)
    for r, (name, x) in enumerate(rows.items()):
        for i in range(B):
            axes[r, i].imshow(_image(x[i]))
            axes[r, i].set_xticks([])
            axes[r, i].set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8)
    return fig
