"""Segmentation figures: class colours, mask overlays, side-by-side predictions, pix2pix triplets.

Masks are int ``[H, W]`` (or ``[B, H, W]``) class ids; 0 is background and ``ignore_index`` (255)
is drawn white. Every function returns a :class:`matplotlib.figure.Figure` built without pyplot.
The colour table is the PASCAL VOC one (Everingham et al. 2010): the bits of the class id are
spread over the high bits of R, G and B, so neighbouring ids get distinct colours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import Tensor

from cvlib._validate import check_int

__all__ = [
    "class_colors",
    "colorize_mask",
    "overlay_mask",
    "show_overlay",
    "show_segmentation",
    "show_semantic_vs_instance",
    "show_maps",
    "show_translation",
]


def class_colors(num_classes: int) -> np.ndarray:
    """PASCAL VOC colour table: float ``[num_classes, 3]`` in [0, 1] (class 0 black)."""
    num_classes = check_int(num_classes, "num_classes", min=1)
    colors = np.zeros((num_classes, 3))
    for c in range(num_classes):
        r = g = b = 0
        cid = c
        for j in range(8):
            r |= ((cid >> 0) & 1) << (7 - j)
            g |= ((cid >> 1) & 1) << (7 - j)
            b |= ((cid >> 2) & 1) << (7 - j)
            cid >>= 3
        colors[c] = (r, g, b)
    return colors / 255.0


def _mask_np(mask: Tensor | np.ndarray) -> np.ndarray:
    m = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {m.shape}")
    return m.astype(np.int64)


def _image_np(image: Tensor | np.ndarray) -> np.ndarray:
    if not isinstance(image, Tensor):
        arr = np.asarray(image)
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"image must be a tensor or a numeric array [C, H, W] / [H, W, C], got {arr.dtype}"
            )
    elif image.is_complex():
        raise TypeError(f"image must be real, got dtype {image.dtype}")
    x = (
        image.detach().cpu().float()
        if isinstance(image, Tensor)
        else torch.as_tensor(np.asarray(image)).float()
    )
    if x.dim() == 3 and x.shape[0] in (1, 3):
        x = x.permute(1, 2, 0)
    if x.dim() == 2:
        x = x[..., None]
    if x.shape[-1] == 1:
        x = x.expand(-1, -1, 3)
    if x.dim() != 3 or x.shape[-1] != 3:
        raise ValueError(f"image must be [3, H, W], [1, H, W], [H, W] or [H, W, 3], got {tuple(image.shape)}")
    return x.clamp(0, 1).numpy()


def colorize_mask(
    mask: Tensor | np.ndarray, num_classes: int | None = None, ignore_index: int = 255
) -> np.ndarray:
    """Class ids [H, W] -> RGB float [H, W, 3] (``ignore_index`` white)."""
    m = _mask_np(mask)
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", min=1)
    ignore_index = check_int(ignore_index, "ignore_index")
    valid = m != ignore_index
    k = num_classes if num_classes is not None else int(m[valid].max(initial=0)) + 1
    if valid.any() and (m[valid].min() < 0 or m[valid].max() >= k):
        raise ValueError(
            f"mask values must be in [0, {k}) or {ignore_index}, got [{m[valid].min()}, {m[valid].max()}]"
        )
    out = class_colors(k)[np.where(valid, m, 0)]
    out[~valid] = 1.0
    return out


def overlay_mask(
    image: Tensor | np.ndarray,
    mask: Tensor | np.ndarray,
    alpha: float = 0.5,
    num_classes: int | None = None,
    visible: Sequence[int] | None = None,
    show_background: bool = False,
) -> np.ndarray:
    """Blend class colours over an image: ``(1 - alpha) * image + alpha * colour`` on shown pixels.

    Args:
        image (Tensor[3, H, W] or array [H, W, 3]): in [0, 1].
        mask (Tensor[H, W]): class ids.
        alpha: opacity of the colours, in [0, 1].
        visible: class ids to colour (default: all); other pixels keep the image.
        show_background: colour class 0 too.

    Returns:
        array [H, W, 3] float in [0, 1].
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img, m = _image_np(image), _mask_np(mask)
    if img.shape[:2] != m.shape:
        raise ValueError(f"image {img.shape[:2]} and mask {m.shape} must have the same H, W")
    colors = colorize_mask(m, num_classes)
    shown = np.isin(m, list(visible)) if visible is not None else np.ones_like(m, dtype=bool)
    if not show_background:
        shown &= m != 0
    a = alpha * shown[..., None]
    return (1 - a) * img + a * colors


def _legend(fig: Figure, class_names: Sequence[str], start: int = 0) -> None:
    colors = class_colors(len(class_names) + start)
    handles = [Patch(color=colors[i + start], label=n) for i, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False)


def show_overlay(
    image: Tensor | np.ndarray,
    mask: Tensor | np.ndarray,
    alpha: float = 0.5,
    class_names: Sequence[str] | None = None,
    visible: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """One image with its mask overlaid; ``class_names[c]`` names mask value ``c`` (0 = background)."""
    k = len(class_names) if class_names is not None else None
    fig = Figure(figsize=(4, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(overlay_mask(image, mask, alpha, k, visible))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if class_names is not None:
        _legend(fig, list(class_names)[1:], start=1)
    return fig


def show_segmentation(
    images: Tensor,
    targets: Tensor,
    predictions: Mapping[str, Tensor] | None = None,
    class_names: Sequence[str] | None = None,
    n: int = 4,
    alpha: float = 0.6,
) -> Figure:
    """Rows = images; columns = image, ground truth, then each named prediction (all overlaid).

    Args:
        images (Tensor[B, 3, H, W]), targets (Tensor[B, H, W]): images and true class ids.
        predictions: ``{name: Tensor[B, H, W] labels or Tensor[B, K, H, W] logits}``.
        class_names: names of mask values 0..K-1 (for the legend and colours).
    """
    predictions = dict(predictions or {})
    n = min(n, images.shape[0])
    k = len(class_names) if class_names is not None else None
    cols = [("image", None), ("target", targets)] + [
        (name, p.argmax(1) if p.dim() == 4 else p) for name, p in predictions.items()
    ]
    fig = Figure(figsize=(2.2 * len(cols), 2.2 * n + 0.5))
    axes = fig.subplots(n, len(cols), squeeze=False)
    for i in range(n):
        for j, (name, m) in enumerate(cols):
            ax = axes[i, j]
            img = _image_np(images[i])
            ax.imshow(img if m is None else overlay_mask(img, m[i], alpha, k, show_background=False))
            ax.set_axis_off()
            if i == 0:
                ax.set_title(name, fontsize=10)
    if class_names is not None:
        _legend(fig, list(class_names)[1:], start=1)
    fig.tight_layout(rect=(0, 0.06 if class_names is not None else 0, 1, 1))
    return fig


def show_semantic_vs_instance(
    image: Tensor, semantic: Tensor, instances: Tensor, class_names: Sequence[str] | None = None
) -> Figure:
    """Image, semantic mask (one colour per class) and instance ids (one colour per object)."""
    k = len(class_names) if class_names is not None else None
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 3)
    inst = _mask_np(instances)
    inst_colors = np.random.default_rng(0).uniform(0.2, 1.0, size=(int(inst.max()) + 1, 3))
    inst_colors[0] = 0
    panels = [
        ("image", _image_np(image)),
        ("semantic: class per pixel", colorize_mask(semantic, k)),
        ("instance: object per pixel", inst_colors[inst]),
    ]
    for ax, (title, arr) in zip(axes, panels):
        ax.imshow(arr, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    if class_names is not None:
        _legend(fig, list(class_names)[1:], start=1)
    fig.tight_layout(rect=(0, 0.08 if class_names is not None else 0, 1, 0.95))
    return fig


def show_maps(
    maps: Mapping[str, Tensor | np.ndarray],
    cmap: str = "viridis",
    annotate: bool = False,
    ncols: int | None = None,
) -> Figure:
    """A row of 2D maps (feature maps, kernels, overlap counts), each titled; ``annotate`` writes values."""
    items = list(maps.items())
    ncols = ncols or len(items)
    nrows = -(-len(items) // ncols)
    fig = Figure(figsize=(2.6 * ncols, 2.6 * nrows + 0.3))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(items) :]:
        ax.set_axis_off()
    for ax, (title, m) in zip(axes.flat, items):
        a = m.detach().cpu().float().numpy() if isinstance(m, Tensor) else np.asarray(m, dtype=float)
        if a.ndim != 2:
            raise ValueError(f"map {title!r} must be 2D, got shape {a.shape}")
        ax.imshow(a, cmap=cmap, interpolation="nearest")
        if annotate and a.size <= 144:
            for (r, c), v in np.ndenumerate(a):
                ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=7, color="w")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def show_translation(
    conditions: Tensor, outputs: Tensor, targets: Tensor, n: int = 6, num_classes: int | None = None
) -> Figure:
    """pix2pix results: rows input (mask ids [B, H, W] or one-hot [B, K, H, W]), output, target."""
    n = min(n, outputs.shape[0])
    cond = conditions.argmax(1) if conditions.dim() == 4 else conditions
    fig = Figure(figsize=(1.8 * n, 5.8))
    axes = fig.subplots(3, n, squeeze=False)
    rows = [
        ("input", lambda i: colorize_mask(cond[i], num_classes)),
        ("output", lambda i: _image_np(outputs[i])),
        ("target", lambda i: _image_np(targets[i])),
    ]
    for r, (name, get) in enumerate(rows):
        for i in range(n):
            axes[r, i].imshow(get(i), interpolation="nearest")
            axes[r, i].set_xticks([])
            axes[r, i].set_yticks([])
        axes[r, 0].set_ylabel(name)
    fig.tight_layout()
    return fig
