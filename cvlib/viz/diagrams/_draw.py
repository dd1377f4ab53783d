"""Shared drawing primitives for the concept diagrams: labelled blocks, arrows, 3-D tensor slabs, grids.

Every diagram draws on one axes that fills its figure, in inch coordinates (``x`` in ``[0, width]``,
``y`` in ``[0, height]``), so sizes written in the diagram modules are the sizes printed at book column
width (7 in at 100 dpi = 700 px).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

__all__ = ["PALETTE", "FONT", "canvas", "block", "arrow", "slab", "grid", "label", "shade"]

# One palette for every diagram (colour-blind-safe hues, light fills with dark edges).
PALETTE: dict[str, str] = {
    "input": "#d9d9d9",
    "conv": "#9ecae1",
    "pool": "#fdd0a2",
    "fc": "#a1d99b",
    "norm": "#dadaeb",
    "act": "#fcbba1",
    "add": "#fff7bc",
    "output": "#c7e9c0",
    "skip": "#e6550d",
    "accent": "#d62728",
    "accent2": "#1f77b4",
    "muted": "#969696",
    "edge": "#404040",
    "text": "#202020",
    "frozen": "#bdbdbd",
    "teacher": "#bcbddc",
    "student": "#9ecae1",
}
FONT = 9  # smallest font size used (points)


def canvas(width: float = 7.0, height: float = 3.5) -> tuple[Figure, Axes]:
    """A figure of ``width`` x ``height`` inches with one frameless axes in inch coordinates."""
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def label(
    ax: Axes,
    x: float,
    y: float,
    text: str,
    *,
    size: float = FONT,
    ha: str = "center",
    va: str = "center",
    color: str | None = None,
    weight: str = "normal",
    **kw,
):
    """Text at ``(x, y)``, at least :data:`FONT` points."""
    return ax.text(
        x,
        y,
        text,
        fontsize=max(size, FONT),
        ha=ha,
        va=va,
        color=color or PALETTE["text"],
        weight=weight,
        **kw,
    )


def block(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str = "",
    *,
    color: str = PALETTE["conv"],
    size: float = FONT,
    rotate: bool = False,
    edge: str | None = None,
    lw: float = 1.0,
    ls: str = "-",
    weight: str = "normal",
):
    """A rounded box with lower-left corner ``(x, y)`` and a centred label (vertical if ``rotate``)."""
    patch = FancyBboxPatch(
        (x, y),
        w,
        h,
        boxstyle="round,pad=0,rounding_size=0.05",
        facecolor=color,
        edgecolor=edge or PALETTE["edge"],
        linewidth=lw,
        linestyle=ls,
    )
    ax.add_patch(patch)
    if text:
        label(ax, x + w / 2, y + h / 2, text, size=size, rotation=90 if rotate else 0, weight=weight)
    return patch


def arrow(
    ax: Axes,
    start: Sequence[float],
    end: Sequence[float],
    *,
    color: str = PALETTE["edge"],
    lw: float = 1.2,
    style: str = "-|>",
    rad: float = 0.0,
    ls: str = "-",
    shrink: float = 0.0,
):
    """An arrow from ``start`` to ``end`` (``rad`` bends it into an arc)."""
    a = FancyArrowPatch(
        tuple(start),
        tuple(end),
        arrowstyle=style,
        mutation_scale=10,
        color=color,
        linewidth=lw,
        linestyle=ls,
        connectionstyle=f"arc3,rad={rad}",
        shrinkA=shrink * 72,
        shrinkB=shrink * 72,
    )
    ax.add_patch(a)
    return a


def elbow(
    ax: Axes, points: Sequence[Sequence[float]], *, color: str = PALETTE["edge"], lw: float = 1.2, ls="-"
):
    """A polyline through ``points`` with an arrow head on the last segment."""
    pts = np.asarray(points, dtype=float)
    ax.plot(pts[:-1, 0], pts[:-1, 1], color=color, lw=lw, ls=ls, solid_capstyle="butt")
    return arrow(ax, pts[-2], pts[-1], color=color, lw=lw, ls=ls)


def slab(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    depth: float,
    *,
    color: str = PALETTE["conv"],
    text: str = "",
    below: str = "",
    size: float = FONT,
    shift: float = 0.35,
):
    """A tensor drawn as a 3-D slab: front face ``w`` x ``h`` at ``(x, y)`` and ``depth`` going back-right.

    ``depth`` is drawn as an oblique offset of ``depth * shift`` along 45 degrees (channels), ``w`` is the
    slab's thickness seen from the front and ``h`` its spatial size. ``text`` goes on the front face,
    ``below`` under the slab.
    """
    d = depth * shift
    dx, dy = d * 0.7, d * 0.7
    kw = dict(edgecolor=PALETTE["edge"], linewidth=0.8)
    ax.add_patch(
        Polygon(
            [(x, y + h), (x + dx, y + h + dy), (x + w + dx, y + h + dy), (x + w, y + h)],
            facecolor=_shade(color, 1.12),
            **kw,
        )
    )
    ax.add_patch(
        Polygon(
            [(x + w, y), (x + w + dx, y + dy), (x + w + dx, y + h + dy), (x + w, y + h)],
            facecolor=_shade(color, 0.85),
            **kw,
        )
    )
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, **kw))
    if text:
        label(ax, x + w / 2, y + h / 2, text, size=size)
    if below:
        label(ax, x + (w + dx) / 2, y - 0.08, below, size=size, va="top")
    return (x + w + dx, y + h + dy)


def grid(
    ax: Axes,
    x: float,
    y: float,
    nrows: int,
    ncols: int,
    cell: float,
    *,
    values: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    color: str = "white",
    fmt: str = "{:g}",
    size: float = FONT,
    lw: float = 0.8,
    edge: str | None = None,
):
    """An ``nrows`` x ``ncols`` grid of square cells, top-left cell first, lower-left corner at ``(x, y)``.

    ``values`` (``[nrows, ncols]``, NaN = blank) are written in the cells; ``colors`` (same shape, any
    matplotlib colours or None) fill them.
    """
    for i in range(nrows):
        for j in range(ncols):
            cx, cy = x + j * cell, y + (nrows - 1 - i) * cell
            fc = color if colors is None or colors[i][j] is None else colors[i][j]
            ax.add_patch(
                Rectangle((cx, cy), cell, cell, facecolor=fc, edgecolor=edge or PALETTE["edge"], lw=lw)
            )
            if values is not None and not (isinstance(values[i][j], float) and np.isnan(values[i][j])):
                label(ax, cx + cell / 2, cy + cell / 2, fmt.format(values[i][j]), size=size)
    return (x, y, x + ncols * cell, y + nrows * cell)


def cell_center(x: float, y: float, nrows: int, cell: float, i: int, j: int) -> tuple[float, float]:
    """Centre of cell ``(i, j)`` of a :func:`grid` drawn at ``(x, y)``."""
    return x + (j + 0.5) * cell, y + (nrows - 1 - i + 0.5) * cell


def _shade(color: str, factor: float) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    if factor >= 1:
        return tuple(c + (1 - c) * (factor - 1) * 2 for c in (r, g, b))  # lighter
    return (r * factor, g * factor, b * factor)


def shade(color: str, factor: float) -> tuple[float, float, float]:
    """``color`` made lighter (``factor > 1``) or darker (``factor < 1``)."""
    return _shade(color, factor)
