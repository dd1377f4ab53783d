"""Diagrams for dense prediction (ch07): encoder-decoder, convolutionalization, FCN skip fusion,
transposed convolution, unpooling, U-Net, ASPP.

Sources: Long et al., FCN (arXiv:1411.4038); Noh et al. (arXiv:1505.04366); Badrinarayanan et al.,
SegNet (arXiv:1511.00561); Ronneberger et al., U-Net (arXiv:1505.04597); Chen et al., DeepLab
(arXiv:1606.00915, arXiv:1706.05587); Dumoulin & Visin (arXiv:1603.07285).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from cvlib.viz.diagrams._draw import PALETTE, arrow, block, canvas, elbow, grid, label, slab
from cvlib.viz.diagrams._registry import register

__all__ = [
    "encoder_decoder",
    "convolutionalization",
    "fcn_skip_fusion",
    "transposed_convolution",
    "unpooling",
    "unet",
    "aspp",
    "scatter_add",
]


@register(
    "encoder_decoder",
    chapter="ch07",
    caption="Encoder-decoder: the encoder trades resolution for channels (what), the decoder restores the "
    "resolution (where) to label every pixel.",
    alt="""A row of slabs: a grey input image, then blue encoder slabs that get smaller in height and thicker
    (fewer pixels, more channels) down to a narrow bottleneck, then orange decoder slabs that grow back to
    full height, ending in a green per-pixel class map. Brackets name the 'encoder (downsampling)' and
    'decoder (upsampling)' halves.""",
)
def encoder_decoder() -> Figure:
    """Downsampling encoder, bottleneck, upsampling decoder."""
    fig, ax = canvas(7, 3.2)
    hs = [1.9, 1.5, 1.05, 0.7, 0.45, 0.7, 1.05, 1.5, 1.9]
    ws = [0.08, 0.14, 0.22, 0.3, 0.38, 0.3, 0.22, 0.14, 0.1]
    cols = [PALETTE["input"]] + [PALETTE["conv"]] * 4 + [PALETTE["pool"]] * 3 + [PALETTE["output"]]
    x, yc = 0.3, 1.65
    centres = []
    for i, (h, w, c) in enumerate(zip(hs, ws, cols)):
        right = slab(ax, x, yc - h / 2, w, h, h * 0.6, color=c)[0]
        centres.append((x, right))
        if i < len(hs) - 1:
            arrow(ax, (right + 0.03, yc), (right + 0.27, yc), lw=0.9)
        x = right + 0.3
    label(ax, centres[0][0] + 0.2, 0.35, "image")
    label(ax, (centres[4][0] + centres[4][1]) / 2, 0.35, "bottleneck")
    label(ax, centres[-1][1] - 0.15, 0.35, "class per pixel")
    for a, b, t in ((1, 4, "encoder: downsample, more channels"), (5, 8, "decoder: upsample")):
        x0, x1 = centres[a][0], centres[b][1] if b < 8 else centres[b][1]
        if a == 1:
            x1 = centres[4][0] - 0.05
        ax.plot([x0, x0, x1, x1], [2.9, 2.98, 2.98, 2.9], color=PALETTE["edge"], lw=1)
        label(ax, (x0 + x1) / 2, 3.1, t)
    return fig


@register(
    "convolutionalization",
    chapter="ch07",
    caption="Convolutionalization: an FC layer over a 7x7x512 map is a 7x7 convolution with the same "
    "weights, "
    "and the following FC layers are 1x1 convolutions, so a larger input gives a map of class scores.",
    alt="""Two rows. Top, the classifier: a 7x7x512 feature map is flattened into 25,088 numbers, then fully
    connected layers of 4096, 4096 and 1000 units give one score vector. Bottom, the same weights reshaped:
    a larger 12x12x512 map goes through a 7x7 convolution with 4096 filters, two 1x1 convolutions (4096
    and 1000 filters) and gives a 6x6 map of class scores drawn as a small heat map. Dashed arrows say
    'same weights, reshaped'.""",
)
def convolutionalization() -> Figure:
    """FC layers rewritten as 7x7 and 1x1 convolutions."""
    fig, ax = canvas(7, 3.6)
    yt, yb = 2.25, 0.45
    label(ax, 0.05, 3.4, "classifier: fixed 224x224 input", ha="left", weight="bold")
    slab(ax, 0.2, yt, 0.4, 0.7, 0.7, color=PALETTE["conv"], below="7x7x512")
    arrow(ax, (0.95, yt + 0.35), (1.35, yt + 0.35))
    ax.add_patch(Rectangle((1.4, yt - 0.2), 0.1, 1.15, facecolor=PALETTE["input"], edgecolor=PALETTE["edge"]))
    label(ax, 1.45, yt - 0.35, "flatten 25088")
    for i, (n, x) in enumerate(((4096, 2.55), (4096, 3.65), (1000, 4.75))):
        block(ax, x, yt, 0.8, 0.7, f"FC\n{n}", color=PALETTE["fc"])
        arrow(ax, (x - 0.45 if i else 1.5, yt + 0.35), (x, yt + 0.35))
        if i < 2:
            pass
    arrow(ax, (5.55, yt + 0.35), (5.9, yt + 0.35))
    label(ax, 6.4, yt + 0.35, "1000\nscores")
    label(ax, 0.05, 1.68, "fully convolutional: any input size", ha="left", weight="bold")
    slab(ax, 0.15, yb - 0.1, 0.4, 0.9, 0.9, color=PALETTE["conv"], below="12x12x512")
    arrow(ax, (0.95, yb + 0.5), (2.55, yb + 0.5))
    for i, (t, x) in enumerate(
        (("7x7 conv\n4096", 2.55), ("1x1 conv\n4096", 3.65), ("1x1 conv\n1000", 4.75))
    ):
        block(ax, x, yb + 0.15, 0.8, 0.7, t, color=PALETTE["conv"])
        if i:
            arrow(ax, (x - 0.3, yb + 0.5), (x, yb + 0.5))
        arrow(ax, (x + 0.4, yt - 0.05), (x + 0.4, yb + 0.9), color=PALETTE["accent2"], ls="--")
    label(ax, 1.75, yb + 0.75, "same weights,\nreshaped", color=PALETTE["accent2"])
    arrow(ax, (5.55, yb + 0.5), (5.85, yb + 0.5))
    rng = np.random.default_rng(0)
    heat = rng.random((6, 6)) * 0.4
    heat[1:4, 2:5] += 0.6
    cm = __import__("matplotlib").colormaps["viridis"]
    grid(ax, 5.9, yb + 0.1, 6, 6, 0.15, colors=[[cm(v) for v in r] for r in heat], lw=0.3)
    label(ax, 6.35, yb - 0.1, "6x6 score map")
    return fig


@register(
    "fcn_skip_fusion",
    chapter="ch07",
    caption="FCN skip fusion: FCN-32s upsamples the stride-32 scores in one step; FCN-16s first adds scores "
    "from pool4 (stride 16) and FCN-8s also from pool3 (stride 8), so finer layers sharpen the boundaries.",
    alt="""A top row of backbone blocks that halve the resolution: image, pool1 (1/2), pool2 (1/4), pool3
    (1/8), pool4 (1/16), pool5 (1/32) and conv6-7. Below, three rows. FCN-32s: conv7's scores are
    upsampled x32 to the output. FCN-16s: conv7's scores are upsampled x2 and added (a plus circle) to
    1x1-conv scores from pool4, then upsampled x16. FCN-8s: that sum is upsampled x2 and added to scores
    from pool3, then upsampled x8. Output boxes on the right read FCN-32s (coarse), FCN-16s and FCN-8s
    (finest).""",
)
def fcn_skip_fusion() -> Figure:
    """FCN-32s, -16s and -8s fusion paths."""
    fig, ax = canvas(7, 3.8)
    yb, hb = 3.0, 0.6
    names = ["image", "pool1\n1/2", "pool2\n1/4", "pool3\n1/8", "pool4\n1/16", "pool5\n1/32", "conv6-7\n1/32"]
    xs = [0.05, 0.8, 1.5, 2.2, 2.9, 3.6, 4.3]
    for i, (n, x) in enumerate(zip(names, xs)):
        w = 0.8 if i == 6 else 0.6
        block(ax, x, yb, w, hb, n, color=PALETTE["input"] if i == 0 else PALETTE["conv"])
        if i:
            arrow(ax, (xs[i - 1] + 0.6, yb + hb / 2), (x, yb + hb / 2))
    c7, p4, p3 = 4.7, 3.2, 2.5
    rows = {"32": 2.3, "16": 1.45, "8": 0.55}
    out_x = 5.75

    def plus(x, y):
        ax.add_patch(Circle((x, y), 0.14, facecolor=PALETTE["add"], edgecolor=PALETTE["edge"], zorder=3))
        label(ax, x, y, "+", size=11, zorder=4)

    ax.plot([c7, c7], [yb, rows["32"]], color=PALETTE["edge"], lw=1.2)
    arrow(ax, (c7, rows["32"]), (out_x, rows["32"]))
    label(ax, 5.2, rows["32"] + 0.15, "up x32")
    arrow(ax, (c7, rows["32"]), (c7, rows["16"] + 0.14))
    label(ax, c7 + 0.08, (rows["32"] + rows["16"]) / 2, "up x2", ha="left")
    plus(c7, rows["16"])
    elbow(ax, [(p4, yb), (p4, rows["16"]), (c7 - 0.14, rows["16"])], color=PALETTE["skip"])
    label(ax, (p4 + c7) / 2, rows["16"] + 0.15, "1x1 scores", color=PALETTE["skip"])
    arrow(ax, (c7 + 0.14, rows["16"]), (out_x, rows["16"]))
    label(ax, 5.27, rows["16"] + 0.15, "up x16")
    arrow(ax, (c7, rows["16"] - 0.14), (c7, rows["8"] + 0.14))
    label(ax, c7 + 0.08, (rows["16"] + rows["8"]) / 2, "up x2", ha="left")
    plus(c7, rows["8"])
    elbow(ax, [(p3, yb), (p3, rows["8"]), (c7 - 0.14, rows["8"])], color=PALETTE["skip"])
    label(ax, (p3 + c7) / 2 - 0.3, rows["8"] + 0.15, "1x1 scores", color=PALETTE["skip"])
    arrow(ax, (c7 + 0.14, rows["8"]), (out_x, rows["8"]))
    label(ax, 5.27, rows["8"] + 0.15, "up x8")
    for k, t in (("32", "FCN-32s\n(coarse)"), ("16", "FCN-16s"), ("8", "FCN-8s\n(finest)")):
        block(ax, out_x, rows[k] - 0.3, 1.15, 0.6, t, color=PALETTE["output"])
    return fig


def scatter_add(x: np.ndarray, kernel: np.ndarray, stride: int = 1) -> np.ndarray:
    """Transposed convolution computed as a scatter-add (no padding): each input value times the kernel is
    added into the output at ``stride * (i, j)``.

    Args:
        x (np.ndarray[H, W]): input.
        kernel (np.ndarray[k, k]): kernel.
        stride (int): spacing of the copies.

    Returns:
        np.ndarray[(H - 1) * stride + k, (W - 1) * stride + k]
    """
    x, kernel = np.asarray(x, float), np.asarray(kernel, float)
    if x.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"x and kernel must be 2-D, got {x.shape} and {kernel.shape}")
    kh, kw = kernel.shape
    out = np.zeros(((x.shape[0] - 1) * stride + kh, (x.shape[1] - 1) * stride + kw))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i * stride : i * stride + kh, j * stride : j * stride + kw] += x[i, j] * kernel
    return out


@register(
    "transposed_convolution",
    chapter="ch07",
    caption="Transposed convolution (stride 1) as scatter-add: each input value scales a copy of the kernel, "
    "the copies are placed at the input position and overlapping cells are summed.",
    alt="""Top: a 2x2 input with values 1, 2, 3, 4 and a 2x2 kernel with values 1, 1, 0, 2. Bottom: four 3x3
    grids, one per input value, each holding that value times the kernel at that value's position (for
    example the input 4 puts 4, 4, 0, 8 in the lower-right corner), the other cells blank; plus signs
    join them, and an equals sign leads to their 3x3 sum: 1, 3, 2 / 3, 9, 8 / 0, 6, 8.""",
)
def transposed_convolution() -> Figure:
    """Scatter-add picture of a 2x2 transposed convolution on a 2x2 input."""
    x = np.array([[1, 2], [3, 4]], float)
    k = np.array([[1, 1], [0, 2]], float)
    fig, ax = canvas(7, 3.3)
    c = 0.3
    cin = [["#c6dbef"] * 2] * 2
    grid(ax, 1.2, 2.2, 2, 2, c, values=x, colors=cin)
    label(ax, 1.5, 2.0, "input 2x2")
    label(ax, 2.3, 2.5, "*", size=12)
    grid(ax, 2.7, 2.2, 2, 2, c, values=k, colors=[["#fdd0a2"] * 2] * 2)
    label(ax, 3.0, 2.0, "kernel 2x2")
    label(
        ax,
        3.6,
        2.5,
        "each input value scales the kernel and\nis scattered to its position; overlaps add",
        ha="left",
    )
    out = scatter_add(x, k)
    cc = 0.26
    for n, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        vals = np.full((3, 3), np.nan)
        vals[i : i + 2, j : j + 2] = x[i, j] * k
        cols = np.full((3, 3), None, dtype=object)
        cols[i : i + 2, j : j + 2] = "#c6dbef"
        x0 = 0.2 + n * 1.22
        grid(ax, x0, 0.55, 3, 3, cc, values=vals, colors=cols)
        label(ax, x0 + 1.5 * cc, 0.35, f"{x[i, j]:g} x kernel")
        if n < 3:
            label(ax, x0 + 3 * cc + 0.22, 0.55 + 1.5 * cc, "+", size=12)
    label(ax, 5.2, 0.55 + 1.5 * cc, "=", size=12)
    grid(ax, 5.5, 0.55, 3, 3, cc, values=out, colors=[["#9ecae1"] * 3] * 3)
    label(ax, 5.5 + 1.5 * cc, 0.35, "output 3x3")
    return fig


@register(
    "unpooling",
    chapter="ch07",
    caption="Three ways to undo 2x2 pooling: nearest-neighbour copies each value into its 2x2 block; bed of "
    "nails puts it in one corner; max-unpooling puts it where the encoder's max-pool found the maximum.",
    alt="""Left, a 2x2 input with values 1, 2, 3, 4. Arrows lead to three 4x4 outputs. 'nearest': each
    value fills its whole 2x2 block. 'bed of nails': each value sits in the top-left cell of its block and
    the other cells are 0. 'max-unpooling': a small 4x4 grid of remembered max-pool positions (switches),
    one shaded cell per block at different corners, and the output has each value in its shaded cell and
    0 elsewhere.""",
)
def unpooling() -> Figure:
    """Nearest, bed-of-nails and max-unpooling of a 2x2 input to 4x4."""
    fig, ax = canvas(7, 3.0)
    x = np.array([[1, 2], [3, 4]], float)
    c = 0.27
    blue = "#9ecae1"
    grid(ax, 0.15, 1.0, 2, 2, c, values=x, colors=[[blue] * 2] * 2)
    label(ax, 0.42, 0.75, "input")
    nearest = np.kron(x, np.ones((2, 2)))
    nails = np.zeros((4, 4))
    nails[::2, ::2] = x
    switch = [(0, 1), (1, 0), (1, 1), (0, 0)]  # argmax position inside each 2x2 block
    maxun = np.zeros((4, 4))
    sw_cols = np.full((4, 4), None, dtype=object)
    for b, (di, dj) in enumerate(switch):
        bi, bj = divmod(b, 2)
        maxun[2 * bi + di, 2 * bj + dj] = x[bi, bj]
        sw_cols[2 * bi + di, 2 * bj + dj] = "#fdae6b"
    panels = [
        (1.15, nearest, np.where(nearest > 0, blue, None), "nearest"),
        (2.75, nails, np.where(nails > 0, blue, None), "bed of nails"),
        (5.55, maxun, np.where(maxun > 0, blue, None), "max-unpooling"),
    ]
    for x0, vals, cols, name in panels:
        grid(ax, x0, 0.75, 4, 4, c, values=vals, colors=cols)
        label(ax, x0 + 2 * c, 2.05, name, weight="bold")
    grid(ax, 4.15, 0.75, 4, 4, c, colors=sw_cols)
    label(ax, 4.15 + 2 * c, 2.15, "switches saved\nby max-pool")
    label(ax, 4.15 + 2 * c, 0.5, "(positions of maxima)")
    arrow(ax, (4.15 + 4 * c + 0.05, 1.29), (5.5, 1.29), color="#e6550d")
    arrow(ax, (0.72, 1.27), (1.1, 1.27))
    ax.plot([0.9, 0.9, 5.2], [1.27, 2.6, 2.6], color=PALETTE["edge"], lw=1.0)
    arrow(ax, (2.75 + 2 * c, 2.6), (2.75 + 2 * c, 2.25))
    arrow(ax, (5.2, 2.6), (5.55 + 2 * c, 2.25), rad=-0.3)
    return fig


@register(
    "unet",
    chapter="ch07",
    caption="U-Net: a contracting path of unpadded 3x3 convolutions and max-pools, an expanding path of 2x2 "
    "up-convolutions, and copy-and-crop skips that concatenate encoder maps (cropped to the smaller "
    "decoder size). Right: the image is mirror-padded so each 388x388 output tile gets its 572x572 context.",
    alt="""A U-shaped network on the left. Blue encoder blocks descend in four steps (572, 284, 140, 68
    pixels;
    64 to 512 channels) with red 'max pool 2x2' arrows, reach a 1024-channel bottleneck at 32 pixels, and
    orange decoder blocks climb back with green 'up-conv 2x2' arrows to a 388x388 output. Grey arrows
    labelled 'copy and crop' join each encoder block to the decoder block at the same level. On the right,
    a texture image surrounded by its own mirror image; a blue square marks a 572x572 input tile reaching
    into the mirrored border and a yellow square inside it marks the 388x388 output tile it predicts.""",
)
def unet(image: np.ndarray | None = None) -> Figure:
    """U-Net layout plus the overlap-tile strategy with mirror padding.

    Args:
        image (np.ndarray[H, W] | None): grey image for the tile inset (default: a generated texture).
    """
    fig, ax = canvas(7, 3.8)
    levels = [(572, 64), (284, 128), (140, 256), (68, 512)]
    ys = [3.0, 2.3, 1.6, 0.9]
    yb = 0.25
    h = 0.4
    for l, ((s, ch), y) in enumerate(zip(levels, ys)):
        xe = 0.1 + l * 0.38
        xd = 4.55 - l * 0.38 - 0.45
        block(ax, xe, y, 0.45, h, str(ch), color=PALETTE["conv"])
        block(ax, xd, y, 0.45, h, str(ch), color=PALETTE["pool"])
        arrow(ax, (xe + 0.45, y + h / 2), (xd, y + h / 2), color=PALETTE["muted"], lw=1.4)
        label(ax, xe + 0.5, y + h / 2 + 0.14, f"{s}\u00b2", ha="left")
        nx = 0.1 + (l + 1) * 0.38
        ny = ys[l + 1] if l < 3 else yb
        arrow(ax, (xe + 0.2, y), (nx + 0.2, ny + h), color=PALETTE["accent"], lw=1.4)
        ndx = 4.55 - (l + 1) * 0.38 - 0.45 if l < 3 else 2.1
        arrow(ax, (ndx + 0.25, ny + h), (xd + 0.25, y), color="#2ca02c", lw=1.4)
    block(ax, 1.6, yb, 0.75, h, "1024", color="#6baed6")
    label(ax, 2.4, yb + h / 2, "32\u00b2", ha="left")
    label(ax, 2.3, ys[0] + h / 2 + 0.14, "copy and crop", color=PALETTE["muted"])
    arrow(ax, (4.55, ys[0] + h / 2), (4.8, ys[0] + h / 2))
    label(ax, 4.85, ys[0] + h / 2, "388\u00b2\nout", ha="left")
    label(ax, 0.05, 0.55, "max pool", color=PALETTE["accent"], ha="left")
    label(ax, 4.05, 0.55, "up-conv", color="#2ca02c", ha="left")
    # overlap-tile inset: the image is mirror-padded; a 572 input tile predicts the 388 tile inside it
    if image is None:
        yy, xx = np.mgrid[0:96, 0:96] / 96.0
        image = 0.35 + 0.4 * xx * yy + 0.25 * (((xx - 0.2) ** 2 + (yy - 0.25) ** 2) < 0.02)
        image += 0.15 * (np.sin(xx * 25) > 0.6)
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D [H, W], got shape {img.shape}")
    pad = round(img.shape[0] * 92 / 776)  # the image holds 2x2 output tiles of 388 px
    padded = np.pad(img, pad, mode="reflect")
    x0, y0, size = 5.25, 0.95, 1.65
    scale = size / padded.shape[0]
    ax.imshow(padded, cmap="gray", extent=(x0, x0 + size, y0, y0 + size), zorder=1, vmin=0, vmax=1.2)
    p, half = pad * scale, img.shape[0] / 2 * scale
    ax.add_patch(
        Rectangle(
            (x0 + p, y0 + p), size - 2 * p, size - 2 * p, fill=False, ec="white", lw=1, ls="--", zorder=2
        )
    )
    ax.add_patch(
        Rectangle((x0 + p, y0 + size - p - half), half, half, fill=False, ec="#ffd92f", lw=2, zorder=3)
    )
    ax.add_patch(
        Rectangle(
            (x0, y0 + size - 2 * p - half),
            half + 2 * p,
            half + 2 * p,
            fill=False,
            ec=PALETTE["accent2"],
            lw=2,
            zorder=3,
        )
    )
    label(ax, x0 + size / 2, y0 + size + 0.3, "overlap-tile with\nmirror padding", weight="bold")
    label(ax, x0 + size / 2, y0 - 0.2, "blue: 572\u00b2 input tile", color=PALETTE["accent2"])
    label(ax, x0 + size / 2, y0 - 0.45, "yellow: 388\u00b2 output tile", color="#b8860b")
    label(ax, x0 + size / 2, y0 - 0.7, "dashed: image border", color=PALETTE["muted"])
    ax.set_xlim(0, 7)
    ax.set_ylim(0, 3.8)
    return fig


def _dilation_icon(ax, x, y, rate, size=0.36):
    ax.add_patch(Rectangle((x, y), size, size, facecolor="white", edgecolor=PALETTE["muted"], lw=0.6))
    step = size / 2 * 0.85 * (min(rate, 18) / 18) ** 0.5 if rate > 1 else 0.0
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            ax.add_patch(
                Circle((x + size / 2 + dj * step, y + size / 2 + di * step), 0.022, color=PALETTE["edge"])
            )


@register(
    "aspp",
    chapter="ch07",
    caption="Atrous spatial pyramid pooling (DeepLabv3): parallel 1x1 and dilated 3x3 convolutions (rates 6, "
    "12, 18) and image-level pooling see the same feature map at several scales; their outputs are "
    "concatenated and mixed by a 1x1 convolution.",
    alt="""A blue feature-map slab on the left feeds five parallel boxes stacked vertically: '1x1 conv',
    '3x3 conv, rate 6', '3x3 conv, rate 12', '3x3 conv, rate 18' and 'image pooling + 1x1, upsample'.
    Next to each dilated box a small square shows nine dots spaced further apart as the rate grows. All
    five boxes feed a tall 'concat' box, then a '1x1 conv' box and the output.""",
)
def aspp() -> Figure:
    """ASPP with rates 6, 12, 18 and image pooling."""
    fig, ax = canvas(7, 3.6)
    yc = 1.75
    slab(ax, 0.15, yc - 0.7, 0.4, 1.4, 1.2, color=PALETTE["conv"], below="backbone map")
    branches = [
        ("1x1 conv", 1),
        ("3x3 conv, rate 6", 6),
        ("3x3 conv, rate 12", 12),
        ("3x3 conv, rate 18", 18),
        ("image pool + 1x1", 0),
    ]
    ys = [3.0, 2.35, 1.7, 1.05, 0.4]
    for (t, r), y in zip(branches, ys):
        block(ax, 1.9, y, 1.75, 0.45, t, color=PALETTE["pool"] if r == 0 else PALETTE["conv"])
        arrow(ax, (1.05, yc), (1.9, y + 0.22))
        if r > 1:
            _dilation_icon(ax, 3.75, y + 0.04, r)
        arrow(ax, (3.65, y + 0.22) if r <= 1 else (4.11, y + 0.22), (4.45, yc + (y + 0.22 - yc) * 0.55))
    block(ax, 4.45, 0.6, 0.5, 2.3, "concat", rotate=True, color=PALETTE["add"])
    arrow(ax, (4.95, yc), (5.25, yc))
    block(ax, 5.25, yc - 0.3, 0.8, 0.6, "1x1\nconv", color=PALETTE["conv"])
    arrow(ax, (6.05, yc), (6.35, yc))
    label(ax, 6.65, yc, "scores", ha="center")
    return fig
