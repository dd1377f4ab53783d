"""Figures for the CNN-basics chapter: linear-classifier templates, conv filters, feature maps, kernels.

Reading a linear classifier's weight rows as images ("templates") follows the CS231n notes on
linear classification; visualising first-layer filters and feature maps follows Zeiler & Fergus
(2014, arXiv:1311.2901). Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot (so a notebook shows it exactly once) and draws one axis per panel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor, nn

from cvlib._validate import check_int, check_tensor
from cvlib.ops.filters import KERNELS, apply_kernel, get_kernel

__all__ = [
    "show_templates",
    "show_filters",
    "show_feature_maps",
    "show_kernel_application",
    "show_kernel_gallery",
    "plot_robustness",
]


def _grid(
    n: int, ncols: int, panel: float = 1.6, title_space: float = 0.35, aspect: float = 1.0
) -> tuple[Figure, list]:
    """A figure with exactly ``n`` axes laid out in rows of ``ncols`` (unused cells removed)."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel * ncols, (panel * aspect + title_space) * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax in axes[:n]:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, list(axes[:n])


def _to_image(t: Tensor, *, symmetric: bool = False, robust: bool = False) -> tuple[np.ndarray, dict]:
    """[C, H, W] or [H, W] tensor -> (array for imshow, imshow kwargs). 1 channel: colormap; 3: RGB.

    ``symmetric`` centres a diverging colormap on 0 at +-max|t| (+-99th percentile with ``robust``,
    so that a few strong responses do not wash out the rest).
    """
    t = t.detach().float().cpu()
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() == 2:
        if symmetric:
            a = t.abs().flatten()
            m = float(a.kthvalue(max(1, int(0.99 * a.numel()))).values if robust else a.max()) or 1.0
            return t.numpy(), dict(cmap="RdBu_r", vmin=-m, vmax=m)
        return t.numpy(), dict(cmap="gray")
    if t.dim() == 3 and t.shape[0] == 3:
        lo, hi = float(t.min()), float(t.max())
        if symmetric or lo < 0 or hi > 1:  # rescale weights / responses to [0, 1] for display
            t = (t - lo) / ((hi - lo) or 1.0)
        return t.permute(1, 2, 0).numpy(), {}
    raise ValueError(f"image must be [H, W], [1, H, W] or [3, H, W], got {tuple(t.shape)}")


def show_templates(
    templates: Tensor | nn.Module,
    class_names: Sequence[str] | None = None,
    *,
    ncols: int = 10,
) -> Figure:
    """Show a linear classifier's weight rows as one image per class.

    Args:
        templates (Tensor[K, C, H, W] | LinearClassifier): the weights reshaped to images, or a
            model with a ``templates()`` method. Single-channel templates use a diverging colormap
            centred on 0 (red: the pixel votes for the class, blue: against); RGB ones are min-max scaled.
        class_names: K titles (default: the class index).
        ncols: panels per row.

    Returns:
        Figure with K axes.
    """
    if isinstance(templates, nn.Module):
        templates = templates.templates()
    if not isinstance(templates, Tensor) or templates.dim() != 4:
        got = tuple(templates.shape) if isinstance(templates, Tensor) else type(templates).__name__
        raise ValueError(f"templates must be [K, C, H, W], got {got}")
    k = templates.shape[0]
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"class_names must have {k} entries, got {len(class_names)}")
    fig, axes = _grid(k, ncols)
    for i, ax in enumerate(axes):
        img, kw = _to_image(templates[i], symmetric=True)
        ax.imshow(img, **kw)
        ax.set_title(str(class_names[i]) if class_names is not None else str(i), fontsize=9)
    return fig


def show_filters(weight: Tensor | nn.Conv2d, *, max_filters: int = 32, ncols: int = 8) -> Figure:
    """Show convolution kernels, one panel per output channel.

    Args:
        weight (Tensor[C_out, C_in, kh, kw] | nn.Conv2d): with C_in = 3 a kernel is drawn as an RGB
            patch; otherwise its first input channel is drawn with a diverging colormap.
        max_filters: show at most this many output channels (the first ones).
        ncols: panels per row.

    Returns:
        Figure with ``min(C_out, max_filters)`` axes.
    """
    if isinstance(weight, nn.Conv2d):
        weight = weight.weight
    if not isinstance(weight, Tensor) or weight.dim() != 4:
        raise ValueError("weight must be a Tensor[C_out, C_in, kh, kw] or an nn.Conv2d")
    check_tensor(weight, "weight", dtype=("float", "int"), nonempty=True, shape="[C_out, C_in, kh, kw]")
    max_filters = check_int(max_filters, "max_filters", min=1)
    ncols = check_int(ncols, "ncols", min=1)
    n = min(weight.shape[0], max_filters)
    fig, axes = _grid(n, ncols, panel=1.0, title_space=0.0)
    for i, ax in enumerate(axes):
        w = weight[i] if weight.shape[1] == 3 else weight[i, 0]
        img, kw = _to_image(w, symmetric=True)
        ax.imshow(img, interpolation="nearest", **kw)
    return fig


def show_feature_maps(
    maps: Tensor, *, max_maps: int = 16, ncols: int = 8, title: str | None = None
) -> Figure:
    """Show the channels of one feature map, each with its own grey scale.

    Args:
        maps (Tensor[C, H, W] | Tensor[1, C, H, W]): e.g. one entry of ``model.forward_features(x)``.
        max_maps: show at most this many channels (the first ones).
        title: optional figure title.

    Returns:
        Figure with ``min(C, max_maps)`` axes.
    """
    check_tensor(maps, "maps", ndim=(3, 4), dtype=("float", "int", "bool"), nonempty=True, shape="[C, H, W]")
    max_maps = check_int(max_maps, "max_maps", min=1)
    ncols = check_int(ncols, "ncols", min=1)
    if maps.dim() == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(f"maps must be [C, H, W] or [1, C, H, W], got {tuple(maps.shape)}")
    n = min(maps.shape[0], max_maps)
    fig, axes = _grid(n, ncols, panel=1.2, title_space=0.1)
    for i, ax in enumerate(axes):
        ax.imshow(maps[i].detach().float().cpu().numpy(), cmap="viridis")
    if title:
        fig.suptitle(title)
    return fig


def _draw_kernel(ax, kernel: Tensor, title: str) -> None:
    k = kernel.detach().float().cpu()
    m = float(k.abs().max()) or 1.0
    ax.imshow(k.numpy(), cmap="RdBu_r", vmin=-m, vmax=m)
    for (i, j), v in np.ndenumerate(k.numpy()):
        colour = "white" if abs(v) > 0.6 * m else "black"
        ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_title(title, fontsize=9)


def _kernel_and_name(kernel: Tensor | str) -> tuple[Tensor, str]:
    if isinstance(kernel, str):
        return get_kernel(kernel), kernel
    return kernel, "kernel"


def show_kernel_application(image: Tensor, kernel: Tensor | str, *, name: str | None = None) -> Figure:
    """Three panels: the image, the kernel (values written in) and its response (``apply_kernel``).

    Args:
        image (Tensor[H, W] | Tensor[1, H, W] | Tensor[3, H, W]): in [0, 1]; an RGB image is converted
            to grey first (the mean of its channels), so that the response is one map.
        kernel (Tensor[kh, kw] | str): the kernel or a name from :data:`cvlib.ops.filters.KERNELS`.
        name: title of the kernel panel (default: the kernel's name).

    Returns:
        Figure with 3 axes.
    """
    k, default = _kernel_and_name(kernel)
    grey = _grey(image)
    fig, axes = _grid(3, 3, panel=2.6)
    axes[0].imshow(grey.cpu().numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("image", fontsize=9)
    _draw_kernel(axes[1], k, name or default)
    resp, kw = _to_image(apply_kernel(grey, k), symmetric=True, robust=True)
    axes[2].imshow(resp, **kw)
    axes[2].set_title("response", fontsize=9)
    return fig


def _grey(image: Tensor) -> Tensor:
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a Tensor, got {type(image).__name__}")
    if image.dim() == 3 and image.shape[0] in (1, 3):
        image = image.float().mean(0)
    if image.dim() != 2:
        raise ValueError(f"image must be [H, W], [1, H, W] or [3, H, W], got {tuple(image.shape)}")
    return image.detach().float()


def show_kernel_gallery(image: Tensor, names: Sequence[str] | None = None, *, ncols: int = 4) -> Figure:
    """The image followed by its response to each named kernel (the kernel explorer's presets, static).

    Args:
        image (Tensor[H, W] | Tensor[1, H, W] | Tensor[3, H, W]): in [0, 1], converted to grey.
        names: kernel names from :data:`cvlib.ops.filters.KERNELS` (default: all of them but identity).
        ncols: panels per row.

    Returns:
        Figure with ``len(names) + 1`` axes. Smoothing kernels are drawn in grey on [0, 1]; kernels
        whose weights sum to 0 (edges) with a diverging colormap centred on 0.
    """
    names = [n for n in KERNELS if n != "identity"] if names is None else list(names)
    grey = _grey(image)
    aspect = grey.shape[0] / grey.shape[1]  # panel height / width
    fig, axes = _grid(len(names) + 1, ncols, panel=2.4, aspect=aspect)
    axes[0].imshow(grey.cpu().numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=9)
    for ax, name in zip(axes[1:], names):
        k = get_kernel(name)
        resp = apply_kernel(grey, k)
        if abs(float(k.sum())) < 1e-6:
            img, kw = _to_image(resp, symmetric=True, robust=True)
        else:
            img, kw = resp.clamp(0, 1).cpu().numpy(), dict(cmap="gray", vmin=0, vmax=1)
        ax.imshow(img, **kw)
        ax.set_title(name, fontsize=9)
    return fig


def plot_robustness(
    sweeps: Mapping[str, tuple[Sequence[float], Mapping[str, Sequence[float]]]],
    *,
    ylabel: str = "test accuracy",
) -> Figure:
    """Accuracy curves of several models under several input perturbations, one axis per perturbation.

    Args:
        sweeps: ``{x_label: (x_values, {model_name: accuracies})}``, e.g.
            ``{"shift (px)": ([0, 1, 2], {"MLP": [.97, .80, .40], "CNN": [.98, .97, .90]})}``.
        ylabel: label of the y axes.

    Returns:
        Figure with ``len(sweeps)`` axes.
    """
    if not sweeps:
        raise ValueError("sweeps must not be empty")
    fig = Figure(figsize=(4.2 * len(sweeps), 3.6), layout="constrained")
    axes = fig.subplots(1, len(sweeps), squeeze=False).ravel()
    for ax, (xlabel, (xs, curves)) in zip(axes, sweeps.items()):
        for label, ys in curves.items():
            if len(ys) != len(xs):
                raise ValueError(f"{label!r} under {xlabel!r} has {len(ys)} values for {len(xs)} x values")
            ax.plot(list(xs), [float(y) for y in ys], marker="o", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False)
    return fig
