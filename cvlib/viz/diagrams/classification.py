"""Diagrams for the classification chapters (ch03-ch06, ch10, ch11): classic layouts (LeNet-5,
AlexNet, VGG-16), residual, Inception, dense and SE blocks, compound scaling, deformable sampling,
inverted residuals, knowledge distillation and transfer learning.

Sources: LeCun et al. 1998; Krizhevsky et al. 2012; Simonyan & Zisserman (arXiv:1409.1556); He et al.
(arXiv:1512.03385); Szegedy et al. (arXiv:1409.4842); Huang et al. (arXiv:1608.06993); Hu et al.
(arXiv:1709.01507); Tan & Le (arXiv:1905.11946); Dai et al. (arXiv:1703.06211); Sandler et al.
(arXiv:1801.04381); Hinton et al. (arXiv:1503.02531); Yosinski et al. (arXiv:1411.1792).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Ellipse, Rectangle

from cvlib.viz.diagrams._draw import PALETTE, arrow, block, canvas, elbow, grid, label, slab
from cvlib.viz.diagrams._registry import register

__all__ = [
    "cnn_layout",
    "residual_block",
    "inception_module",
    "dense_block",
    "se_block",
    "compound_scaling",
    "deformable_sampling",
    "inverted_residual",
    "distillation",
    "transfer_learning",
]

# (kind, operation label, shape label, spatial size, channels); kind in input/conv/pool/fc
_LAYOUTS: dict[str, list[tuple[str, str, str, int, int]]] = {
    "lenet5": [
        ("input", "input", "1@32x32", 32, 1),
        ("conv", "conv 5x5", "6@28x28", 28, 6),
        ("pool", "pool 2x2", "6@14x14", 14, 6),
        ("conv", "conv 5x5", "16@10x10", 10, 16),
        ("pool", "pool 2x2", "16@5x5", 5, 16),
        ("fc", "FC", "120", 1, 120),
        ("fc", "FC", "84", 1, 84),
        ("fc", "FC", "10", 1, 10),
    ],
    "alexnet": [
        ("input", "input", "3@227", 227, 3),
        ("conv", "11x11 s4", "96@55", 55, 96),
        ("pool", "pool", "96@27", 27, 96),
        ("conv", "5x5", "256@27", 27, 256),
        ("pool", "pool", "256@13", 13, 256),
        ("conv", "3x3", "384@13", 13, 384),
        ("conv", "3x3", "384@13", 13, 384),
        ("conv", "3x3", "256@13", 13, 256),
        ("pool", "pool", "256@6", 6, 256),
        ("fc", "FC", "4096", 1, 4096),
        ("fc", "FC", "4096", 1, 4096),
        ("fc", "FC", "1000", 1, 1000),
    ],
    "vgg16": [
        ("input", "input", "3@224", 224, 3),
        ("conv", "2x conv", "64@224", 224, 64),
        ("conv", "2x conv", "128@112", 112, 128),
        ("conv", "3x conv", "256@56", 56, 256),
        ("conv", "3x conv", "512@28", 28, 512),
        ("conv", "3x conv", "512@14", 14, 512),
        ("pool", "pool", "512@7", 7, 512),
        ("fc", "FC", "4096", 1, 4096),
        ("fc", "FC", "4096", 1, 4096),
        ("fc", "FC", "1000", 1, 1000),
    ],
}
_TITLES = {
    "lenet5": "LeNet-5: two conv/pool stages, three fully connected layers",
    "alexnet": "AlexNet: large strided first filter, five convolutions, three FC layers",
    "vgg16": "VGG-16: five stages of 3x3 convolutions (a 2x2 max-pool closes each), three FC layers",
}


def _register_layout(name: str, chapter: str, caption: str, alt: str):
    return register(name, chapter=chapter, caption=caption, alt=alt, variant=name.removesuffix("_layout"))


@_register_layout(
    "vgg16_layout",
    "ch03",
    "VGG-16: every convolution is 3x3; each of the five stages halves the resolution and (up to 512) "
    "doubles the channels.",
    """Ten slabs from left to right: the 224x224 RGB input, five convolution stages (2, 2, 3, 3, 3
    convolutions with 64, 128, 256, 512, 512 channels at 224, 112, 56, 28, 14 pixels) drawn as blue boxes
    that get shorter and thicker, a final pooled 7x7x512 map, and three thin green fully connected bars
    of 4096, 4096 and 1000 units.""",
)
@_register_layout(
    "alexnet_layout",
    "ch03",
    "AlexNet: an 11x11 stride-4 first convolution, overlapping max-pools, three 3x3 convolutions and "
    "three fully connected layers (the paper's two-GPU split is not drawn).",
    """Twelve slabs from left to right: a 227x227 RGB input, a 96-channel 55x55 map after an 11x11 stride-4
    convolution, pooling to 27x27, a 256-channel 5x5 convolution, pooling to 13x13, three 3x3
    convolutions (384, 384, 256 channels), pooling to 6x6, then green bars for FC 4096, FC 4096 and the
    1000-way output. Blue boxes are convolutions, orange boxes pooling.""",
)
@_register_layout(
    "lenet5_layout",
    "ch03",
    "LeNet-5: 5x5 convolutions and 2x2 subsampling shrink a 32x32 image to 16 maps of 5x5, then "
    "fully connected layers of 120, 84 and 10 units.",
    """Eight slabs from left to right: a grey 32x32 input, a blue block of 6 maps of 28x28 after a 5x5
    convolution, an orange block of 6 maps of 14x14 after pooling, a blue block of 16 maps of 10x10,
    an orange block of 16 maps of 5x5, and three thin green bars for fully connected layers of 120, 84
    and 10 units. Operation names are written above and shapes below each slab.""",
)
def cnn_layout(variant: str = "lenet5") -> Figure:
    """A classic CNN drawn as slabs (height ~ resolution, thickness ~ channels).

    Args:
        variant (str): ``"lenet5"``, ``"alexnet"`` or ``"vgg16"``.
    """
    if variant not in _LAYOUTS:
        raise ValueError(f"variant must be one of {sorted(_LAYOUTS)}, got {variant!r}")
    layers = _LAYOUTS[variant]
    fig, ax = canvas(7, 3.5)
    hmax = max(s for _, _, _, s, _ in layers)
    geo = []
    for kind, _, _, s, c in layers:
        if kind == "fc":
            w, h, d = 0.1, 0.4 + 0.09 * math.log2(c), 0.0
        else:
            h = 0.35 + 1.35 * math.log(s) / math.log(hmax)
            w = 0.05 + 0.045 * math.log2(max(c, 1))
            d = h * 0.55
        geo.append((w, h, d))
    widths = [w + d * 0.35 * 0.7 for w, h, d in geo]
    gap = (6.55 - sum(widths)) / (len(layers) - 1)
    x, yc = 0.3, 1.55
    prev_right = None
    for i, ((kind, op, shape, _, _), (w, h, d)) in enumerate(zip(layers, geo)):
        color = {
            "input": PALETTE["input"],
            "conv": PALETTE["conv"],
            "pool": PALETTE["pool"],
            "fc": PALETTE["fc"],
        }[kind]
        y = yc - h / 2
        if prev_right is not None:
            arrow(ax, (prev_right, yc), (x - 0.02, yc), lw=0.8)
        slab(ax, x, y, w, h, d, color=color)
        cx = x + widths[i] / 2
        up = 0 if i % 2 == 0 else 0.24
        label(ax, cx, 2.83 + up, op)
        label(ax, cx, 0.5 - up, shape)
        prev_right = x + widths[i]
        x += widths[i] + gap
    label(ax, 3.5, 3.35, _TITLES[variant], weight="bold")
    return fig


@register(
    "residual_block",
    chapter="ch04",
    caption="Plain vs residual block: the residual block adds its input back before the last ReLU, so its "
    "layers learn only the change F(x) and the identity path carries the signal and the gradient.",
    alt="""Two rows of boxes, left to right. Top, plain block: x, 3x3 conv + BN, ReLU, 3x3 conv + BN, ReLU,
    output H(x). Bottom, residual block: the same boxes, but before the last ReLU a circle with a plus
    adds the input x, which arrives by an orange arrow that jumps over the layers and is labelled
    'identity shortcut'; the output is F(x) + x.""",
)
def residual_block() -> Figure:
    """A plain two-layer block next to the same block with an identity shortcut."""
    fig, ax = canvas(7, 3.4)
    h = 0.5
    for row, y in ((0, 2.3), (1, 0.6)):
        label(ax, 0.05, y + h + 0.25, ("plain block", "residual block")[row], ha="left", weight="bold")
        label(ax, 0.3, y + h / 2, "x", size=11)
        xs = [0.6, 1.85, 2.75, 4.0]
        names = ["3x3 conv\n+ BN", "ReLU", "3x3 conv\n+ BN", None]
        prev = 0.42
        for x, n in zip(xs[:3], names[:3]):
            wide = 0.95 if "conv" in n else 0.6
            block(ax, x, y, wide, h, n, color=PALETTE["conv"] if "conv" in n else PALETTE["act"])
            arrow(ax, (prev, y + h / 2), (x, y + h / 2))
            prev = x + wide
        if row == 0:
            block(ax, 4.3, y, 0.6, h, "ReLU", color=PALETTE["act"])
            arrow(ax, (prev, y + h / 2), (4.3, y + h / 2))
            arrow(ax, (4.9, y + h / 2), (5.35, y + h / 2))
            label(ax, 5.45, y + h / 2, "H(x)", ha="left", size=11)
        else:
            ax.add_patch(Circle((4.15, y + h / 2), 0.17, facecolor=PALETTE["add"], edgecolor=PALETTE["edge"]))
            label(ax, 4.15, y + h / 2, "+", size=12)
            arrow(ax, (prev, y + h / 2), (3.98, y + h / 2))
            block(ax, 4.6, y, 0.6, h, "ReLU", color=PALETTE["act"])
            arrow(ax, (4.32, y + h / 2), (4.6, y + h / 2))
            arrow(ax, (5.2, y + h / 2), (5.6, y + h / 2))
            label(ax, 5.7, y + h / 2, "F(x) + x", ha="left", size=11)
            elbow(
                ax,
                [(0.48, y + h / 2), (0.48, y - 0.3), (4.15, y - 0.3), (4.15, y + h / 2 - 0.17)],
                color=PALETTE["skip"],
                lw=1.6,
            )
            label(ax, 2.3, y - 0.45, "identity shortcut x", color=PALETTE["skip"])
            label(ax, 2.1, y + h + 0.22, "F(x)", color=PALETTE["accent2"])
    return fig


@register(
    "inception_module",
    chapter="ch04",
    caption="Inception module: four parallel branches (1x1, 3x3, 5x5 convolutions and pooling) see the same "
    "input at different scales; 1x1 convolutions cut the channels before the expensive filters.",
    alt="""A box 'previous layer' at the bottom feeds four columns. Column 1: a 1x1 convolution. Column 2:
    1x1 convolution then 3x3 convolution. Column 3: 1x1 convolution then 5x5 convolution. Column 4: 3x3
    max-pool then 1x1 convolution. All four columns end in a box 'concatenate along channels' at the top.
    The 1x1 convolutions are drawn in a darker blue; a note says they reduce the channels.""",
)
def inception_module() -> Figure:
    """GoogLeNet's Inception module (with 1x1 reductions)."""
    fig, ax = canvas(7, 3.9)
    w, h = 1.35, 0.45
    xs = [0.55, 2.15, 3.75, 5.35]
    red = "#6baed6"
    block(ax, 0.55, 0.15, 6.15, h, "previous layer", color=PALETTE["input"])
    block(ax, 0.55, 3.0, 6.15, h, "concatenate along channels", color=PALETTE["add"])
    stacks = [
        [None, ("1x1 conv", red)],
        [("1x1 conv", red), ("3x3 conv", PALETTE["conv"])],
        [("1x1 conv", red), ("5x5 conv", PALETTE["conv"])],
        [("3x3 max-pool", PALETTE["pool"]), ("1x1 conv", red)],
    ]
    ys = [1.0, 2.0]
    for x, st in zip(xs, stacks):
        cx = x + w / 2
        start = 0.15 + h
        for y, item in zip(ys, st):
            if item is None:
                continue
            block(ax, x, y, w, h, item[0], color=item[1])
            arrow(ax, (cx, start), (cx, y))
            start = y + h
        arrow(ax, (cx, start), (cx, 3.0))
    label(ax, 3.62, 3.68, "dark blue: 1x1 convolutions that reduce the channels", color="#08519c")
    return fig


@register(
    "dense_block",
    chapter="ch04",
    caption="Dense block: every layer receives the concatenation of all earlier feature maps and adds k new "
    "channels (the growth rate), so layer l sees k0 + (l - 1) k channels.",
    alt="""Five coloured squares x0 to x4 in a row, with four boxes H1 to H4 (BN, ReLU, conv) between them.
    Curved arrows run from every square to every later box, so H4 receives x0, x1, x2 and x3. Under each
    box a stacked bar shows its input as the concatenation of the colours of all earlier maps, labelled
    k0, k0+k, k0+2k, k0+3k channels.""",
)
def dense_block() -> Figure:
    """A four-layer dense block with growth rate k."""
    fig, ax = canvas(7, 3.5)
    cols = ["#bdbdbd", "#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc"]
    y = 1.55
    s = 0.42
    xs_x = [0.2 + i * 1.42 for i in range(5)]
    for i, x in enumerate(xs_x):
        ax.add_patch(Rectangle((x, y), s, s, facecolor=cols[i], edgecolor=PALETTE["edge"]))
        label(ax, x + s / 2, y + s / 2, f"x{i}")
        if i < 4:
            hx = x + s + 0.2
            block(ax, hx, y - 0.04, 0.55, s + 0.08, f"H{i + 1}", color=PALETTE["conv"])
            arrow(ax, (x + s, y + s / 2), (hx, y + s / 2))
            arrow(ax, (hx + 0.55, y + s / 2), (xs_x[i + 1], y + s / 2))
            # input bar: concat of x0..xi
            bx, by = hx + 0.12, 0.45
            for k in range(i + 1):
                ax.add_patch(
                    Rectangle(
                        (bx, by + k * 0.16), 0.3, 0.16, facecolor=cols[k], edgecolor=PALETTE["edge"], lw=0.6
                    )
                )
            ax.plot(
                [hx + 0.27, hx + 0.27],
                [by + (i + 1) * 0.16, y - 0.04],
                color=PALETTE["muted"],
                lw=0.8,
                ls=":",
            )
            label(ax, hx + 0.27, 0.25, "k0" if i == 0 else f"k0+{i}k" if i > 1 else "k0+k")
    # dense connections: from x_i to H_j for j > i + 1 (the direct ones are drawn already)
    for i in range(4):
        for j in range(i + 1, 4):
            hx = xs_x[j] + s + 0.2
            arrow(
                ax,
                (xs_x[i] + s / 2, y + s),
                (hx + 0.15 + 0.08 * i, y + s + 0.04),
                rad=-0.35 - 0.03 * (j - i),
                color=cols[i] if i else "#737373",
                lw=1.1,
            )
    label(
        ax, 3.5, 3.3, "each H = BN, ReLU, 3x3 conv adding k channels; inputs are concatenated", weight="bold"
    )
    label(ax, 6.95, 0.25, "input channels", ha="right", color=PALETTE["muted"])
    return fig


@register(
    "se_block",
    chapter="ch04",
    caption="Squeeze-and-excitation: global average pooling squeezes each channel to one number, two small "
    "FC layers turn them into gates in (0, 1), and the gates rescale the channels.",
    alt="""Left, a blue box of size H x W x C. An arrow 'squeeze: global average pool' leads to a thin bar
    of C numbers, then 'FC, ReLU' to a shorter bar of C/r numbers, then 'FC, sigmoid' to a bar of C gate
    values shaded from light to dark. A circle with a times sign multiplies the gates with the original
    box, brought along by a lower arrow, giving an output box of the same size whose channels have
    different shades.""",
)
def se_block() -> Figure:
    """Squeeze (pool), excite (FC-ReLU-FC-sigmoid), scale."""
    fig, ax = canvas(7, 3.2)
    yc = 1.9
    slab(ax, 0.2, yc - 0.6, 0.45, 1.2, 1.2, color=PALETTE["conv"], below="H x W x C")
    gates = np.array([0.9, 0.2, 0.6, 0.95, 0.4, 0.7, 0.1, 0.8])
    blues = __import__("matplotlib").colormaps["Blues"]

    def bar(x, n, colors=None):
        hh = 0.14
        y0 = yc - n * hh / 2
        for k in range(n):
            fc = "white" if colors is None else colors[k]
            ax.add_patch(
                Rectangle((x, y0 + k * hh), 0.16, hh, facecolor=fc, edgecolor=PALETTE["edge"], lw=0.7)
            )
        return y0, y0 + n * hh

    bar(2.3, 8)
    bar(3.4, 3)
    bar(4.5, 8, [blues(0.15 + 0.8 * g) for g in gates])
    arrow(ax, (1.1, yc), (2.25, yc))
    label(ax, 1.65, yc - 0.38, "squeeze:\nglobal avg pool")
    arrow(ax, (2.5, yc), (3.35, yc))
    label(ax, 2.93, yc + 0.45, "FC, ReLU")
    arrow(ax, (3.6, yc), (4.45, yc))
    label(ax, 4.03, yc + 0.45, "FC, sigmoid")
    label(ax, 2.38, yc - 0.78, "C")
    label(ax, 3.48, yc - 0.78, "C/r")
    label(ax, 4.58, yc - 0.78, "C gates")
    ax.add_patch(Circle((5.15, yc), 0.16, facecolor=PALETTE["add"], edgecolor=PALETTE["edge"]))
    label(ax, 5.15, yc, "x", size=11)
    arrow(ax, (4.7, yc), (4.98, yc))
    elbow(ax, [(0.5, yc - 0.62), (0.5, 0.3), (5.15, 0.3), (5.15, yc - 0.17)], color=PALETTE["skip"])
    label(ax, 2.75, 0.12, "scale: each channel times its gate", color=PALETTE["skip"])
    # output slab with per-channel shades
    x0 = 5.6
    for k in range(8):
        slab(
            ax, x0 + k * 0.055, yc - 0.6, 0.055, 1.2, 0 if k < 7 else 1.2, color=blues(0.15 + 0.8 * gates[k])
        )
    arrow(ax, (5.32, yc), (5.58, yc))
    label(ax, 6.15, yc - 0.78, "rescaled")
    return fig


@register(
    "compound_scaling",
    chapter="ch04",
    caption="Scaling a network: wider (more channels), deeper (more layers), higher input resolution, or all "
    "three at once with fixed ratios (EfficientNet's compound scaling).",
    alt="""Five small networks side by side, each drawn as a stack of layer boxes above an input square.
    'baseline' has three narrow layers and a small input. 'wider' has the same three layers drawn wider.
    'deeper' has five narrow layers. 'higher resolution' has a larger input square and larger layers.
    'compound' is wider, deeper and has the larger input. Under the panels: depth = alpha^phi,
    width = beta^phi, resolution = gamma^phi, with alpha * beta^2 * gamma^2 about 2.""",
)
def compound_scaling() -> Figure:
    """Width, depth, resolution and compound scaling."""
    fig, ax = canvas(7, 3.6)
    specs = [
        ("baseline", 0.55, 3, 0.45),
        ("wider", 0.95, 3, 0.45),
        ("deeper", 0.55, 5, 0.45),
        ("higher\nresolution", 0.55, 3, 0.7),
        ("compound", 0.95, 5, 0.7),
    ]
    for p, (name, w, depth, res) in enumerate(specs):
        cx = 0.7 + p * 1.4
        ax.add_patch(
            Rectangle((cx - res / 2, 0.75), res, res, facecolor=PALETTE["input"], edgecolor=PALETTE["edge"])
        )
        y = 0.75 + res + 0.12
        lh = 0.28 + (res - 0.45) * 0.3
        for d in range(depth):
            ww = w * (1 - 0.08 * d) + (res - 0.45) * 0.5
            block(
                ax,
                cx - ww / 2,
                y,
                ww,
                lh * 0.7,
                color=PALETTE["conv"] if p in (0,) else "#6baed6" if p == 4 else PALETTE["conv"],
            )
            y += lh
        label(ax, cx, 0.42, name, va="top" if "\n" in name else "center") if False else label(
            ax, cx, 0.5 if "\n" not in name else 0.38, name
        )
    label(
        ax,
        3.5,
        0.08,
        "depth d = \u03b1^\u03c6, width w = \u03b2^\u03c6, resolution r = \u03b3^\u03c6, "
        "with \u03b1 \u00b7 \u03b2\u00b2 \u00b7 \u03b3\u00b2 \u2248 2",
    )
    return fig


@register(
    "deformable_sampling",
    chapter="ch04",
    caption="Deformable convolution: a 3x3 kernel samples a fixed grid; the deformable one adds a learned "
    "offset to each tap, so the samples follow the object's shape.",
    alt="""Two panels, each an image grid with a grey elongated object. Left, 'standard 3x3': nine dark
    dots on a regular square grid around the centre, most of them off the object. Right, 'deformable':
    the same nine regular positions as faint circles, each joined by a red arrow to a red dot moved onto
    the object, so the red dots spread along its diagonal shape.""",
)
def deformable_sampling() -> Figure:
    """Regular vs deformable 3x3 sampling positions."""
    fig, ax = canvas(7, 3.5)
    c = 0.3
    rng = np.random.default_rng(3)
    ux, uy = math.cos(math.radians(35)), math.sin(math.radians(35))
    for p in range(2):
        x0, y0 = 0.4 + p * 3.5, 0.45
        grid(ax, x0, y0, 9, 9, c, lw=0.4, edge="#bdbdbd")
        cx, cy = x0 + 4.5 * c, y0 + 4.5 * c
        ax.add_patch(Ellipse((cx, cy), 2.5, 0.75, angle=35, facecolor="#d9d9d9", edgecolor=PALETTE["muted"]))
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                px, py = cx + dj * c, cy + di * c
                if p == 0:
                    ax.add_patch(Circle((px, py), 0.06, color=PALETTE["edge"], zorder=3))
                else:
                    # learned offsets move the taps onto the object: 3 along its axis, 3 across it
                    a = ((px - cx) * ux + (py - cy) * uy) * 2.3 + rng.normal(0, 0.04)
                    b = (-(px - cx) * uy + (py - cy) * ux) * 0.45 + rng.normal(0, 0.02)
                    qx, qy = cx + a * ux - b * uy, cy + a * uy + b * ux
                    ax.add_patch(Circle((px, py), 0.06, fill=False, ec=PALETTE["muted"], zorder=3))
                    if abs(qx - px) + abs(qy - py) > 0.05:
                        arrow(ax, (px, py), (qx, qy), color=PALETTE["accent"], lw=0.9)
                    ax.add_patch(Circle((qx, qy), 0.06, color=PALETTE["accent"], zorder=4))
        label(
            ax,
            x0 + 4.5 * c,
            3.3,
            ("standard 3x3: fixed grid", "deformable: p + learned offset")[p],
            weight="bold",
        )
    return fig


@register(
    "inverted_residual",
    chapter="ch11",
    caption="ResNet bottleneck (wide-narrow-wide) vs MobileNetV2's inverted residual (narrow-wide-narrow): "
    "expand with a 1x1 conv, filter with a depthwise 3x3, project back with a linear 1x1; the shortcut "
    "joins the narrow ends.",
    alt="""Two rows of slabs whose thickness shows the number of channels. Top, ResNet bottleneck: a thick
    256-channel slab, a 1x1 convolution to a thin 64-channel slab, a 3x3 convolution keeping 64, a 1x1
    convolution back to a thick 256-channel slab, with an orange shortcut joining the two thick ends.
    Bottom, inverted residual: a thin 24-channel slab, '1x1 expand, ReLU6' to a thick 144-channel slab,
    '3x3 depthwise, ReLU6' keeping 144, '1x1 project, linear' back to a thin 24-channel slab, with the
    shortcut joining the two thin ends.""",
)
def inverted_residual() -> Figure:
    """Bottleneck vs inverted residual, thickness ~ channels."""
    fig, ax = canvas(7, 3.7)
    rows = [
        (
            "ResNet bottleneck: wide - narrow - wide",
            [256, 64, 64, 256],
            ["1x1 conv\nReLU", "3x3 conv\nReLU", "1x1 conv"],
        ),
        (
            "MobileNetV2 inverted residual: narrow - wide - narrow",
            [24, 144, 144, 24],
            ["1x1 expand\nReLU6", "3x3 depthwise\nReLU6", "1x1 project\nlinear"],
        ),
    ]
    for r, (title, chans, ops) in enumerate(rows):
        y = 2.3 - r * 1.75
        label(ax, 0.05, y + 1.05, title, ha="left", weight="bold")
        xs = [0.3 + i * 1.75 for i in range(4)]
        for i, (x, ch) in enumerate(zip(xs, chans)):
            w = 0.06 + ch / 256 * 0.35
            col = PALETTE["conv"] if i in (1, 2) and r == 0 else ("#6baed6" if ch > 100 else PALETTE["conv"])
            if r == 1 and i == 2:
                col = PALETTE["pool"]
            slab(ax, x, y, w, 0.65, 0.65, color=col)
            label(ax, x + 0.25, y - 0.15, str(ch))
            if i < 3:
                arrow(ax, (x + w + 0.22, y + 0.32), (xs[i + 1] - 0.05, y + 0.32))
                label(ax, (x + w + 0.2 + xs[i + 1]) / 2 + 0.05, y + 0.68, ops[i])
        ax.add_patch(Circle((6.6, y + 0.32), 0.14, facecolor=PALETTE["add"], edgecolor=PALETTE["edge"]))
        label(ax, 6.6, y + 0.32, "+", size=11)
        xe = xs[3] + 0.06 + chans[3] / 256 * 0.35 + 0.2
        arrow(ax, (xe, y + 0.32), (6.46, y + 0.32))
        elbow(ax, [(0.4, y), (0.4, y - 0.3), (6.6, y - 0.3), (6.6, y + 0.18)], color=PALETTE["skip"])
    return fig


@register(
    "distillation",
    chapter="ch10",
    caption="Knowledge distillation: the student matches the teacher's softened probabilities (softmax at "
    "temperature T, KL weighted by alpha T^2) and the true labels (cross-entropy weighted by 1 - alpha).",
    alt="""An image box on the left feeds two networks: a large purple teacher at the top, marked frozen,
    and a small blue student at the bottom. Each network's logits are divided by the temperature T and
    passed through a softmax; small bar charts show the teacher's soft targets spread over several
    classes. A box 'KL(teacher || student) x alpha T^2' compares the two soft outputs; a second box
    'cross-entropy with label x (1 - alpha)' compares the student's ordinary softmax with the true label.
    Both feed a final 'total loss' box, whose gradient updates only the student.""",
)
def distillation() -> Figure:
    """Teacher, student, temperature-softened targets and the loss mix."""
    fig, ax = canvas(7, 3.7)
    block(ax, 0.05, 1.5, 0.75, 0.6, "image", color=PALETTE["input"])
    block(ax, 1.15, 2.55, 1.2, 0.8, "teacher\n(large, frozen)", color=PALETTE["teacher"])
    block(ax, 1.15, 0.3, 1.2, 0.8, "student\n(small)", color=PALETTE["student"])
    arrow(ax, (0.8, 1.95), (1.15, 2.7))
    arrow(ax, (0.8, 1.65), (1.15, 0.9))
    block(ax, 2.7, 2.65, 1.15, 0.6, "softmax(z / T)", color="white")
    block(ax, 2.7, 1.35, 1.15, 0.6, "softmax(z / T)", color="white")
    block(ax, 2.7, 0.15, 1.15, 0.55, "softmax(z)", color="white")
    arrow(ax, (2.35, 2.95), (2.7, 2.95))
    arrow(ax, (2.35, 0.85), (2.7, 1.5))
    arrow(ax, (2.35, 0.6), (2.7, 0.45))
    # soft-target bars
    probs = [0.08, 0.55, 0.22, 0.1, 0.05]
    for k, pr in enumerate(probs):
        ax.add_patch(
            Rectangle(
                (4.0 + k * 0.12, 2.7),
                0.09,
                pr * 0.9,
                facecolor=PALETTE["teacher"],
                edgecolor=PALETTE["edge"],
                lw=0.6,
            )
        )
    label(ax, 4.3, 2.5, "soft targets")
    block(ax, 4.85, 1.95, 1.4, 0.62, "KL x alpha T^2", color=PALETTE["add"])
    block(ax, 4.85, 0.15, 1.4, 0.62, "CE(label)\nx (1 - alpha)", color=PALETTE["add"])
    arrow(ax, (4.65, 2.8), (5.2, 2.57))
    arrow(ax, (3.85, 1.65), (4.85, 2.2))
    arrow(ax, (3.85, 0.45), (4.85, 0.45))
    block(ax, 6.35, 1.0, 0.6, 0.7, "total\nloss", color=PALETTE["act"])
    arrow(ax, (6.25, 2.2), (6.65, 1.7))
    arrow(ax, (6.25, 0.5), (6.65, 1.0))
    label(ax, 3.28, 2.3, "T > 1 softens", color=PALETTE["muted"])
    return fig


@register(
    "transfer_learning",
    chapter="ch14",
    caption="Transfer learning: keep a backbone pretrained on a large dataset, replace its head with one for "
    "the new classes, then either freeze the backbone (feature extraction) or fine-tune it with a "
    "smaller learning rate than the new head.",
    alt="""Three rows. Top, 'pretrained on ImageNet': image, a blue backbone box and a pale '1000-way
    head' box with a red dashed outline, marked 'dropped'. Middle, 'feature extraction': the same backbone
    in grey noted 'frozen, lr = 0', followed by a green 'new head' box noted 'trained, lr' for the new
    classes. Bottom, 'fine-tuning': the backbone in blue noted 'trained, lr / 10', followed by the green
    new head noted 'trained, lr'. Dashed arrows copy the backbone weights from the top row down to the
    two lower rows.""",
)
def transfer_learning() -> Figure:
    """Pretraining, feature extraction (frozen backbone) and fine-tuning (smaller backbone lr)."""
    fig, ax = canvas(7, 3.7)
    rows = [("pretrained on ImageNet", 2.75), ("feature extraction", 1.55), ("fine-tuning", 0.35)]
    for r, (name, y) in enumerate(rows):
        label(ax, 0.05, y + 0.3, name, ha="left", weight="bold")
        col = PALETTE["frozen"] if r == 1 else PALETTE["conv"]
        block(ax, 1.95, y, 0.45, 0.6, "img", color=PALETTE["input"])
        arrow(ax, (2.4, y + 0.3), (2.6, y + 0.3))
        block(ax, 2.6, y, 1.9, 0.6, "backbone", color=col)
        arrow(ax, (4.5, y + 0.3), (4.75, y + 0.3))
        if r == 0:
            block(
                ax,
                4.75,
                y,
                1.3,
                0.6,
                "1000-way\nhead",
                color="#e5f5e0",
                edge=PALETTE["accent"],
                ls="--",
                lw=1.5,
            )
            label(ax, 6.5, y + 0.3, "dropped", color=PALETTE["accent"])
        else:
            block(ax, 4.75, y, 1.3, 0.6, "new head", color="#41ab5d")
            label(ax, 5.4, y - 0.14, "trained, lr")
            label(ax, 3.55, y - 0.14, "frozen, lr = 0" if r == 1 else "trained, lr / 10")
            label(ax, 6.5, y + 0.3, "new\nclasses")
    arrow(ax, (4.3, 2.75), (4.3, 2.15), color=PALETTE["accent2"], ls="--")
    arrow(ax, (4.3, 1.55), (4.3, 0.95), color=PALETTE["accent2"], ls="--")
    return fig
