"""Diagrams for the later chapters (ch12-ch13): the Grad-CAM pipeline, the pix2pix U-Net generator and
the PatchGAN discriminator.

Sources: Selvaraju et al., Grad-CAM (arXiv:1610.02391); Isola et al., pix2pix (arXiv:1611.07004).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cvlib.viz.diagrams._draw import PALETTE, arrow, block, canvas, grid, label, slab
from cvlib.viz.diagrams._registry import register
from cvlib.viz.diagrams.detection import _photo

__all__ = ["gradcam_pipeline", "pix2pix_generator", "patchgan"]


def _heat(h: int, w: int, cy: float = 0.45, cx: float = 0.5, s: float = 0.18) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.exp(-(((yy / h - cy) ** 2) + (xx / w - cx) ** 2) / (2 * s**2))


@register(
    "gradcam_pipeline",
    chapter="ch12",
    caption="Grad-CAM: run the image forward to the class score, back-propagate the score to a convolutional "
    "layer's maps A^k, average each gradient map to a weight alpha_k, and take ReLU(sum_k alpha_k A^k), "
    "upsampled over the image.",
    alt="""Top row, left to right: a cat photo, a blue box 'conv layers', a slab of K feature maps A^k
    from the target layer, a green box 'rest of the network' and the score y^c of a class c. A red
    dashed arrow runs back from the score to a red slab of gradients dy^c/dA^k under the feature maps.
    Bottom row: the gradients are averaged over space into a bar chart of K weights alpha_k; a box
    'ReLU(sum of alpha_k times A^k)' combines weights and maps into a small coarse heat map, which is
    upsampled and overlaid on the photo, bright over the animal's face.""",
)
def gradcam_pipeline(image=None) -> Figure:
    """Forward pass, gradient of the class score, channel weights, weighted map, overlay.

    Args:
        image (Tensor[3, H, W] | np.ndarray[H, W, 3] | None): photo (default: the bundled ``chelsea``).
    """
    from cvlib.viz.diagrams.detection import _to_hwc

    img = _photo("chelsea") if image is None else _to_hwc(image)
    h, w = img.shape[:2]
    fig, ax = canvas(7, 3.7)
    iw = 1.05
    ih = iw * h / w
    yt = 2.45
    ax.imshow(np.clip(img, 0, 1), extent=(0.05, 0.05 + iw, yt, yt + ih))
    label(ax, 0.05 + iw / 2, yt - 0.15, "image")
    arrow(ax, (1.15, yt + 0.35), (1.35, yt + 0.35))
    block(ax, 1.35, yt + 0.05, 0.8, 0.6, "conv\nlayers", color=PALETTE["conv"])
    arrow(ax, (2.15, yt + 0.35), (2.4, yt + 0.35))
    for k in range(4):
        slab(ax, 2.4 + k * 0.09, yt + 0.05 - k * 0.0, 0.09, 0.6, 0 if k < 3 else 0.6, color=PALETTE["conv"])
    label(ax, 2.7, yt + 0.95, "maps A^k")
    arrow(ax, (2.95, yt + 0.35), (3.2, yt + 0.35))
    block(ax, 3.2, yt + 0.05, 1.1, 0.6, "rest of the\nnetwork", color=PALETTE["fc"])
    arrow(ax, (4.3, yt + 0.35), (4.55, yt + 0.35))
    label(ax, 4.6, yt + 0.35, "class score y^c", ha="left")
    # backward
    red = PALETTE["accent"]
    ax.plot([5.2, 5.2], [yt + 0.15, yt - 0.45], color=red, ls="--", lw=1.3)
    arrow(ax, (5.2, yt - 0.45), (3.05, yt - 0.45), color=red, ls="--", lw=1.3)
    label(ax, 4.15, yt - 0.3, "backprop", color=red)
    for k in range(4):
        slab(ax, 2.4 + k * 0.09, yt - 0.75, 0.09, 0.6, 0 if k < 3 else 0.6, color="#fcbba1")
    label(ax, 1.7, yt - 0.45, "gradients\ndy^c / dA^k", color=red)
    # weights
    yb = 0.35
    arrow(ax, (2.6, yt - 0.8), (2.6, yb + 0.95))
    label(ax, 2.65, yt - 1.05, "average over space", ha="left")
    alphas = [0.6, 0.15, 0.9, 0.35]
    for k, a in enumerate(alphas):
        ax.add_patch(
            Rectangle(
                (2.3 + k * 0.16, yb + 0.1),
                0.12,
                a * 0.75,
                facecolor="#fc9272",
                edgecolor=PALETTE["edge"],
                lw=0.6,
            )
        )
    label(ax, 2.6, yb - 0.1, "weights alpha_k")
    arrow(ax, (3.05, yb + 0.45), (3.3, yb + 0.45))
    block(ax, 3.3, yb + 0.15, 1.5, 0.6, "ReLU(sum_k\nalpha_k A^k)", color=PALETTE["add"])
    arrow(ax, (4.8, yb + 0.45), (5.0, yb + 0.45))
    cmap = __import__("matplotlib").colormaps["jet"]
    hm = _heat(7, 7)
    grid(ax, 5.0, yb + 0.1, 7, 7, 0.1, colors=[[cmap(v) for v in r] for r in hm], lw=0.2)
    label(ax, 5.35, yb - 0.1, "7x7 map")
    arrow(ax, (5.75, yb + 0.45), (5.9, yb + 0.45))
    ow = 1.05
    oh = ow * h / w
    ax.imshow(np.clip(img, 0, 1), extent=(5.92, 5.92 + ow, yb, yb + oh))
    ax.imshow(_heat(64, 64), extent=(5.92, 5.92 + ow, yb, yb + oh), cmap="jet", alpha=0.45)
    label(ax, 5.92 + ow / 2, yb + oh + 0.15, "overlay")
    ax.set_xlim(0, 7)
    ax.set_ylim(0, 3.7)
    return fig


def _facade(n: int = 64, photo: bool = False, seed: int = 0) -> np.ndarray:
    """A generated label map (flat classes) or its 'photo' (the same layout with texture and shading)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, n, 3))
    img[:] = (0.35, 0.45, 0.85)
    img[n // 5 :, :] = (0.85, 0.55, 0.25)
    for r in range(2):
        for c in range(3):
            y0, x0 = n // 5 + 6 + r * 20, 6 + c * 20
            img[y0 : y0 + 12, x0 : x0 + 12] = (0.2, 0.75, 0.9)
    img[n - 16 :, n // 2 - 6 : n // 2 + 6] = (0.9, 0.2, 0.2)
    if photo:
        tex = rng.normal(0, 0.05, (n, n, 1)) + 0.08 * np.sin(np.arange(n) / 2.0)[:, None, None]
        img = img * np.array([0.8, 0.75, 0.7]) + tex
        img[: n // 5] = np.linspace(0.9, 0.7, n // 5)[:, None, None] * np.array([0.75, 0.85, 1.0])
    return np.clip(img, 0, 1)


@register(
    "pix2pix_generator",
    chapter="ch13",
    caption="The pix2pix generator is a U-Net: eight stride-2 convolutions take a 256x256 input to 1x1, "
    "eight "
    "transposed convolutions bring it back, and skips concatenate each encoder map to the decoder map "
    "of the same size; dropout in the first decoder blocks is the only noise.",
    alt="""Left, an input label map of a building front (flat coloured regions). Then a row of bars whose
    heights halve from 256 to 1 pixel (the encoder, blue) and double back to 256 (the decoder, orange).
    Orange arcs above the bars join each encoder bar to the decoder bar of the same height: the skip
    connections. The three decoder bars after the bottleneck are hatched for dropout. Right, the output,
    a textured photo-like version of the same facade.""",
)
def pix2pix_generator() -> Figure:
    """U-Net generator of pix2pix, drawn as a row of shrinking and growing bars with skip arcs."""
    fig, ax = canvas(7, 3.4)
    ax.imshow(_facade(), extent=(0.05, 0.95, 1.0, 1.9))
    label(ax, 0.5, 0.8, "input:\nlabel map", va="top")
    ax.imshow(_facade(photo=True), extent=(6.05, 6.95, 1.0, 1.9))
    label(ax, 6.5, 0.8, "output:\nphoto", va="top")
    sizes = [256 // 2**i for i in range(1, 9)]  # encoder outputs 128 .. 1
    dec = sizes[-2::-1] + [256]  # decoder outputs 2 .. 128, then 256
    chans_e = [64, 128, 256, 512, 512, 512, 512, 512]
    yc = 1.45
    xs, hs = [], []
    x = 1.15
    for i, s in enumerate(sizes + dec):
        hh = 0.12 + 1.2 * math.log2(s) / 8
        enc = i < 8
        col = PALETTE["conv"] if enc else PALETTE["pool"]
        ax.add_patch(
            Rectangle(
                (x, yc - hh / 2),
                0.16,
                hh,
                facecolor=col,
                edgecolor=PALETTE["edge"],
                lw=0.7,
                hatch="///" if 8 <= i < 11 else None,
            )
        )
        xs.append(x + 0.08)
        hs.append(hh)
        x += 0.29
    for i in range(7):  # skip: encoder i (size s) -> decoder whose output is the same size
        j = 15 - 1 - i
        top = yc + max(hs[i], hs[j]) / 2
        mid = (xs[i] + xs[j]) / 2
        rise = 0.25 + 0.09 * (7 - i)
        ax.plot(
            [xs[i], xs[i], xs[j], xs[j]],
            [yc + hs[i] / 2, top + rise, top + rise, yc + hs[j] / 2],
            color=PALETTE["skip"],
            lw=0.9,
            alpha=0.8,
        )
        del mid
    arrow(ax, (0.95, yc), (1.13, yc), lw=0.9)
    arrow(ax, (x - 0.12, yc), (6.03, yc), lw=0.9)
    label(ax, xs[0], yc - 0.9, f"C{chans_e[0]}\n128\u00b2")
    label(ax, xs[7], yc - 0.45, "1\u00b2", ha="center")
    label(ax, xs[15], yc - 0.9, "3 ch\n256\u00b2")
    label(ax, 2.25, 0.18, "encoder: conv 4x4 s2, BN, LeakyReLU", color="#08519c")
    label(ax, 5.0, 0.18, "decoder: up-conv 4x4 s2, BN, ReLU", color="#a63603")
    label(ax, xs[9], yc - 0.7, "dropout", color=PALETTE["muted"])
    label(ax, 3.5, 3.2, "skips concatenate mirrored layers", color=PALETTE["skip"])
    return fig


@register(
    "patchgan",
    chapter="ch13",
    caption="The PatchGAN discriminator sees the input and a real or generated output side by side and "
    "returns a 30x30 map of real/fake scores; each score judges one 70x70 patch, and the loss averages them.",
    alt="""Left, the input label map and an output photo stacked as a six-channel pair, with one 70x70 patch
    outlined in red on the photo. Four blue slabs (C64, C128, C256, C512) shrink the pair, and a final
    one-channel 30x30 grid of scores in grey shades comes out on the right, with one red cell; a red
    dashed line joins that cell back to the patch it judges. A note says 'real or fake? per patch'.""",
)
def patchgan() -> Figure:
    """Conditional PatchGAN: 6-channel input pair -> 30x30 score map, one score per 70x70 patch."""
    fig, ax = canvas(7, 3.3)
    ax.imshow(_facade(), extent=(0.1, 1.0, 1.55, 2.45))
    ax.imshow(_facade(photo=True), extent=(0.3, 1.2, 1.35, 2.25), zorder=2)
    ps = 0.9 * 70 / 256
    ax.add_patch(Rectangle((0.55, 1.6), ps, ps, fill=False, ec=PALETTE["accent"], lw=2, zorder=3))
    label(ax, 0.65, 1.15, "input + output\n(6 channels, 256\u00b2)", va="top")
    specs = [("C64", 128, 64), ("C128", 64, 128), ("C256", 32, 256), ("C512", 31, 512)]
    x = 1.75
    arrow(ax, (1.3, 1.8), (x - 0.05, 1.8))
    for name, s, c in specs:
        hh = 0.3 + 1.2 * math.log2(s) / 7
        w = 0.05 + 0.035 * math.log2(c)
        right = slab(ax, x, 1.8 - hh / 2, w, hh, hh * 0.5, color=PALETTE["conv"])[0]
        label(ax, x + w / 2 + 0.05, 0.9 - 0.0, f"{name}\n{s}\u00b2", va="top")
        arrow(ax, (right + 0.02, 1.8), (right + 0.3, 1.8))
        x = right + 0.32
    rng = np.random.default_rng(1)
    vals = rng.random((8, 8))
    cols = [[str(0.3 + 0.6 * v) for v in r] for r in vals]
    cols[2][5] = PALETTE["accent"]
    g = 0.13
    grid(ax, x + 0.05, 1.8 - 4 * g, 8, 8, g, colors=cols, lw=0.4)
    label(ax, x + 0.05 + 4 * g, 0.9, "1 x 30\u00b2 scores\n(8x8 drawn)", va="top")
    cx, cy = x + 0.05 + 5.5 * g, 1.8 - 4 * g + 5.5 * g
    ax.plot([0.55 + ps / 2, cx], [1.6 + ps, cy], color=PALETTE["accent"], ls="--", lw=1, zorder=4)
    label(ax, 3.5, 3.05, "each output score sees a 70x70 patch: real or fake? per patch", weight="bold")
    return fig
