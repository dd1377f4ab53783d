"""Diagrams for the foundations (ch01-ch02): k-NN vote, connectivity patterns, receptive fields, dilated
and depthwise-separable convolution, hand-designed vs learned features.

Convolution arithmetic follows Dumoulin & Visin, "A guide to convolution arithmetic for deep learning"
(arXiv:1603.07285); depthwise-separable convolution follows Chollet (arXiv:1610.02357).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from cvlib.viz.diagrams._draw import PALETTE, arrow, block, canvas, cell_center, grid, label
from cvlib.viz.diagrams._registry import register

__all__ = [
    "knn_vote",
    "connectivity",
    "receptive_field",
    "dilated_convolution",
    "depthwise_separable",
    "feature_pipelines",
]

CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")
CLASS_MARKERS = ("o", "s", "^")


@register(
    "knn_vote",
    chapter="ch01",
    caption="k-nearest neighbours: the query takes the majority label of its k = 5 closest training points.",
    alt="""A scatter of training points in three classes (blue circles, orange squares, green triangles) and a
    black star for the query. Lines join the star to its five nearest points, which lie inside a dashed
    circle; three are blue and two orange. A bar chart on the right counts the votes: class A 3, class B 2,
    class C 0, so the query is labelled A.""",
)
def knn_vote(k: int = 5, seed: int = 1) -> Figure:
    """Training points of three classes, a query, its ``k`` nearest neighbours and their vote."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    rng = np.random.default_rng(seed)
    fig, ax = canvas(7, 3.5)
    centres = np.array([[1.4, 2.2], [2.9, 2.3], [2.1, 0.95]])
    pts = np.concatenate([c + rng.normal(0, 0.42, (9, 2)) for c in centres])
    cls = np.repeat(np.arange(3), 9)
    pts = np.clip(pts, [0.25, 0.3], [4.0, 3.2])
    q = np.array([2.1, 2.05])
    d = np.linalg.norm(pts - q, axis=1)
    nn = np.argsort(d)[:k]
    radius = d[nn].max() + 0.08
    ax.add_patch(Circle(q, radius, fill=False, ls="--", ec=PALETTE["muted"], lw=1))
    for i in nn:
        ax.plot([q[0], pts[i, 0]], [q[1], pts[i, 1]], color=PALETTE["muted"], lw=0.9, zorder=1)
    for c in range(3):
        sel = cls == c
        ax.scatter(
            pts[sel, 0],
            pts[sel, 1],
            s=42,
            c=CLASS_COLORS[c],
            marker=CLASS_MARKERS[c],
            edgecolors="white",
            linewidths=0.6,
            zorder=2,
        )
    ax.scatter([q[0]], [q[1]], s=200, c="black", marker="*", zorder=3)
    label(ax, q[0], 3.35, f"query and its k = {k} nearest neighbours")
    votes = np.bincount(cls[nn], minlength=3)
    # vote bars
    x0, y0, bw = 4.9, 0.7, 0.42
    label(ax, 5.5, 3.35, "majority vote")
    for c in range(3):
        h = votes[c] * 0.45
        ax.add_patch(
            Rectangle((x0 + c * 0.6, y0), bw, h, facecolor=CLASS_COLORS[c], edgecolor=PALETTE["edge"])
        )
        label(ax, x0 + c * 0.6 + bw / 2, y0 + h + 0.15, str(votes[c]))
        label(ax, x0 + c * 0.6 + bw / 2, y0 - 0.2, "ABC"[c])
    ax.plot([x0 - 0.1, x0 + 1.75], [y0, y0], color=PALETTE["edge"], lw=1)
    winner = "ABC"[int(np.argmax(votes))]
    label(ax, 5.5, 0.2, f"prediction: {winner}", weight="bold")
    return fig


@register(
    "connectivity",
    chapter="ch02",
    caption="Fully connected, locally connected and convolutional layers between 7 inputs and 5 outputs: "
    "local connections cut the weights from 35 to 15, sharing them across positions cuts them to 3.",
    alt="""Three panels, each with a row of seven input nodes at the bottom and five output nodes at the top.
    Left, fully connected: every output is joined to every input by grey lines, 35 weights. Middle, locally
    connected: each output is joined to three neighbouring inputs, every line a different colour, 15
    weights. Right, convolution: the same three-input pattern, but the left, middle and right lines of
    every output share the same three colours w1, w2, w3, so there are 3 weights.""",
)
def connectivity() -> Figure:
    """Fully connected vs locally connected vs convolution, in one dimension."""
    fig, ax = canvas(7, 3.2)
    n_in, n_out = 7, 5
    cmap = __import__("matplotlib").colormaps["tab20"]
    shared = ("#1f77b4", "#d62728", "#2ca02c")
    titles = ("fully connected", "locally connected", "convolution")
    counts = ("35 weights", "15 weights", "3 shared weights")
    for p in range(3):
        ox = 0.45 + p * 2.25
        xin = ox + np.arange(n_in) * 0.3
        xout = ox + 0.3 + np.arange(n_out) * 0.3
        yin, yout = 0.85, 2.35
        for j in range(n_out):
            srcs = range(n_in) if p == 0 else range(j, j + 3)
            for t, i in enumerate(srcs):
                if p == 0:
                    col, lw = PALETTE["muted"], 0.6
                elif p == 1:
                    col, lw = cmap((j * 3 + t) % 20), 1.4
                else:
                    col, lw = shared[t], 1.4
                ax.plot([xin[i], xout[j]], [yin, yout], color=col, lw=lw, zorder=1)
        ax.scatter(xin, np.full(n_in, yin), s=70, c=PALETTE["input"], edgecolors=PALETTE["edge"], zorder=2)
        ax.scatter(
            xout, np.full(n_out, yout), s=70, c=PALETTE["output"], edgecolors=PALETTE["edge"], zorder=2
        )
        cx = ox + 0.9
        label(ax, cx, 2.85, titles[p], weight="bold")
        label(ax, cx, 0.45, counts[p])
    label(ax, 0.05, 0.85, "in", ha="left")
    label(ax, 0.05, 2.35, "out", ha="left")
    for t, w in enumerate(("w1", "w2", "w3")):
        label(ax, 5.05 + 0.55 * t + 0.25, 0.12, w, color=shared[t], weight="bold")
    return fig


@register(
    "receptive_field",
    chapter="ch02",
    caption="Receptive-field growth: each 3x3 convolution (stride 1) widens what one unit sees by 2 pixels, "
    "so two layers see 5x5 and L layers see (2L + 1) x (2L + 1).",
    alt="""Three grids from left to right: a 7x7 input, a 5x5 first-layer map and a 3x3 second-layer map.
    The centre unit of the second layer (red) looks at a 3x3 window of the first layer (red), which covers
    a 5x5 window of the input (light red). A corner unit of the first layer (blue) covers only a 3x3
    window of the input (blue outline). Projection lines join each unit to the corners of its window.""",
)
def receptive_field() -> Figure:
    """Receptive field of a unit after one and two stacked 3x3 convolutions."""
    fig, ax = canvas(7, 3.4)
    c = 0.3
    red, lred, blue = "#d62728", "#f4b6b6", "#1f77b4"
    # input 7x7
    x0, y0 = 0.3, 0.75
    col0 = np.full((7, 7), None, dtype=object)
    col0[1:6, 1:6] = lred
    grid(ax, x0, y0, 7, 7, c, colors=col0)
    ax.add_patch(Rectangle((x0, y0 + 4 * c), 3 * c, 3 * c, fill=False, ec=blue, lw=2.2))
    # layer 1 5x5
    x1, y1 = 3.05, y0 + c
    col1 = np.full((5, 5), None, dtype=object)
    col1[1:4, 1:4] = red
    col1[0, 0] = blue
    grid(ax, x1, y1, 5, 5, c, colors=col1)
    # layer 2 3x3
    x2, y2 = 5.6, y0 + 2 * c
    col2 = np.full((3, 3), None, dtype=object)
    col2[1, 1] = red
    grid(ax, x2, y2, 3, 3, c, colors=col2)
    # projection lines
    cx, cy = cell_center(x2, y2, 3, c, 1, 1)
    for px, py in ((x1 + c, y1 + c), (x1 + c, y1 + 4 * c), (x1 + 4 * c, y1 + c), (x1 + 4 * c, y1 + 4 * c)):
        ax.plot([cx, px], [cy, py], color=red, lw=0.7, alpha=0.7)
    bx, by = cell_center(x1, y1, 5, c, 0, 0)
    for px, py in ((x0, y0 + 4 * c), (x0 + 3 * c, y0 + 7 * c), (x0 + 3 * c, y0 + 4 * c), (x0, y0 + 7 * c)):
        ax.plot([bx, px], [by, py], color=blue, lw=0.7, alpha=0.7)
    label(ax, x0 + 3.5 * c, 0.5, "input 7x7")
    label(ax, x1 + 2.5 * c, 0.5, "after conv 1: 5x5")
    label(ax, x2 + 1.5 * c, 0.5, "after conv 2: 3x3")
    label(ax, x0 + 3.5 * c, 0.15, "blue: RF of a layer-1 unit = 3x3", color=blue)
    label(ax, x2 + 0.2, 0.15, "red: RF of a layer-2 unit = 5x5", color=red)
    label(ax, 3.5, 3.2, "two stacked 3x3 convolutions see a 5x5 window; L of them see (2L+1)x(2L+1)")
    return fig


@register(
    "dilated_convolution",
    chapter="ch07",
    caption="Dilated (atrous) convolution: the same nine 3x3 weights, spread with dilation 1, 2 and 3, "
    "cover 3x3, 5x5 and 7x7 windows at the same cost and resolution.",
    alt="""Three 7x7 grids side by side. In each, nine cells marked with dark dots are the taps of a 3x3
    kernel centred on the middle cell, and a shaded square shows the window they span. With dilation 1
    the taps are adjacent (3x3 window); with dilation 2 they skip one cell (5x5); with dilation 3 they
    sit at the corners, edge midpoints and centre of the whole grid (7x7).""",
)
def dilated_convolution() -> Figure:
    """3x3 kernel taps at dilation 1, 2, 3 on a 7x7 input."""
    fig, ax = canvas(7, 3.1)
    c = 0.3
    for p, r in enumerate((1, 2, 3)):
        x0, y0 = 0.25 + p * 2.25, 0.7
        cols = np.full((7, 7), None, dtype=object)
        cols[3 - r : 4 + r, 3 - r : 4 + r] = "#deebf7"
        for di in (-r, 0, r):
            for dj in (-r, 0, r):
                cols[3 + di, 3 + dj] = PALETTE["conv"]
        grid(ax, x0, y0, 7, 7, c, colors=cols)
        for di in (-r, 0, r):
            for dj in (-r, 0, r):
                ax.add_patch(Circle(cell_center(x0, y0, 7, c, 3 + di, 3 + dj), 0.05, color=PALETTE["edge"]))
        s = 2 * r + 1
        label(ax, x0 + 3.5 * c, 2.95, f"dilation {r}", weight="bold")
        label(ax, x0 + 3.5 * c, 0.4, f"9 weights, RF {s}x{s}")
    return fig


def _channels(ax, x, y, size, colors, step=0.12, text=""):
    """A stack of square channel maps, back to front, lower-left of the front one at (x, y)."""
    n = len(colors)
    for i, col in enumerate(reversed(colors)):
        k = n - 1 - i
        ax.add_patch(
            Rectangle(
                (x + k * step, y + k * step), size, size, facecolor=col, edgecolor=PALETTE["edge"], lw=0.8
            )
        )
    if text:
        label(ax, x + (size + (n - 1) * step) / 2, y - 0.15, text, va="top")
    return x + size + (n - 1) * step


@register(
    "depthwise_separable",
    chapter="ch11",
    caption="A standard convolution mixes space and channels in one step (k*k*C_in*C_out weights); a "
    "depthwise-separable one filters each channel alone, then mixes channels with 1x1 convolutions "
    "(k*k*C_in + C_in*C_out weights).",
    alt="""Two rows. Top row, standard convolution: an input of three coloured channels, an arrow labelled
    'four 3x3x3 filters', and an output of four channels. Bottom row, depthwise separable: the same
    three-channel input, an arrow labelled 'depthwise: one 3x3 filter per channel' to three channels
    that keep their colours, then an arrow labelled 'pointwise: four 1x1x3 filters' to a four-channel
    output. Weight counts are written at the right: 108 for the standard layer, 27 + 12 = 39 for the
    separable one.""",
)
def depthwise_separable() -> Figure:
    """Standard convolution vs depthwise 3x3 followed by pointwise 1x1."""
    fig, ax = canvas(7, 3.6)
    cin = ["#9ecae1", "#fdae6b", "#a1d99b"]
    cout = ["#bcbddc", "#bcbddc", "#bcbddc", "#bcbddc"]
    s = 0.6
    # standard
    label(ax, 0.1, 3.35, "standard convolution", ha="left", weight="bold")
    e = _channels(ax, 0.3, 2.15, s, cin, text="C_in = 3")
    arrow(ax, (e + 0.1, 2.55), (e + 2.55, 2.55))
    label(ax, e + 1.32, 2.75, "four 3x3x3 filters")
    e2 = _channels(ax, e + 2.7, 2.15, s, cout, text="C_out = 4")
    label(ax, 6.95, 2.55, "3*3*3*4\n= 108 weights", ha="right")
    # separable
    label(ax, 0.1, 1.55, "depthwise separable", ha="left", weight="bold")
    e = _channels(ax, 0.3, 0.4, s, cin)
    arrow(ax, (e + 0.1, 0.8), (e + 1.25, 0.8))
    label(ax, e + 0.67, 1.17, "depthwise\n3x3 per channel")
    e3 = _channels(ax, e + 1.35, 0.4, s, cin)
    arrow(ax, (e3 + 0.1, 0.8), (e3 + 1.25, 0.8))
    label(ax, e3 + 0.67, 1.17, "pointwise\nfour 1x1x3")
    _channels(ax, e3 + 1.35, 0.4, s, cout)
    label(ax, 6.95, 0.8, "3*3*3 + 3*4\n= 39 weights", ha="right")
    del e2
    return fig


@register(
    "feature_pipelines",
    chapter="ch01",
    caption="Hand-designed features vs learned features: classic pipelines fix the feature extractor and "
    "train only the classifier; a CNN learns the features and the classifier together from the loss.",
    alt="""Two horizontal pipelines. Top, 'hand-designed': image, then a grey box 'features by hand (pixels,
    colour histogram, HOG)' marked fixed, then a green box 'classifier (k-NN, SVM)' marked trained, then
    the label. Bottom, 'learned': image, then a blue stack of boxes 'conv layers (learned features)',
    then a green classifier box, then the label; a dashed arrow labelled 'gradient of the loss' runs back
    from the label under both learned boxes, showing they are trained end to end.""",
)
def feature_pipelines() -> Figure:
    """Feature extraction by hand vs learned end to end."""
    fig, ax = canvas(7, 3.3)
    h = 0.7
    for row, y in ((0, 2.2), (1, 0.85)):
        block(ax, 0.1, y, 0.9, h, "image", color=PALETTE["input"])
        if row == 0:
            block(ax, 1.35, y, 2.1, h, "features by hand\n(pixels, histogram, HOG)", color=PALETTE["frozen"])
            label(ax, 2.4, y + h + 0.15, "fixed", color=PALETTE["muted"])
        else:
            for k in range(3):
                block(ax, 1.35 + k * 0.72, y, 0.62, h, f"conv\n{k + 1}", color=PALETTE["conv"])
            label(ax, 2.4, y - 0.18, "learned features")
        block(
            ax,
            3.8,
            y,
            1.55,
            h,
            "classifier\n(k-NN, SVM, FC)" if row == 0 else "classifier\n(FC)",
            color=PALETTE["fc"],
        )
        label(ax, 4.57, y + h + 0.15, "trained", color="#2ca02c") if row == 0 else None
        block(ax, 5.7, y, 0.9, h, "label", color=PALETTE["output"])
        for a, b in ((1.0, 1.35), (3.45, 3.8), (5.35, 5.7)):
            arrow(ax, (a, y + h / 2), (b, y + h / 2))
        label(ax, 0.1, y + h + 0.15, ("hand-designed", "learned end to end")[row], ha="left", weight="bold")
    ax.plot([6.15, 6.15], [0.85, 0.35], color=PALETTE["accent"], lw=1.2, ls="--")
    arrow(ax, (6.15, 0.35), (1.6, 0.35), color=PALETTE["accent"], ls="--")
    label(ax, 4.9, 0.16, "gradient of the loss", color=PALETTE["accent"])
    return fig
