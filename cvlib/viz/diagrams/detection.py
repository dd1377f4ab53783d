"""Diagrams for object detection (ch08): IoU, anchors on a photo, anchor labelling, NMS step by step,
two-stage vs one-stage pipelines, the YOLO grid and the precision-recall curve with its AP envelope.

Sources: Ren et al., Faster R-CNN (arXiv:1506.01497); Redmon et al., YOLO (arXiv:1506.02640); Tian et
al., FCOS (arXiv:1904.01355); He et al., Mask R-CNN / RoIAlign (arXiv:1703.06870); Everingham et al.,
"The PASCAL Visual Object Classes Challenge" (IJCV 2010) for AP.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from cvlib.viz.diagrams._draw import PALETTE, arrow, block, canvas, label, slab
from cvlib.viz.diagrams._registry import register

__all__ = [
    "iou_diagram",
    "anchors_on_image",
    "anchor_labelling",
    "nms_steps",
    "detector_pipelines",
    "yolo_grid",
    "pr_curve",
    "box_iou_np",
]

log = logging.getLogger(__name__)
_RACCOON_ID = "raccoon-7"  # one medium-sized raccoon, away from the borders


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes.

    Args:
        a (np.ndarray[N, 4]): boxes.
        b (np.ndarray[M, 4]): boxes.

    Returns:
        np.ndarray[N, M]
    """
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def _to_hwc(image: Any) -> np.ndarray:
    """Image (Tensor[3, H, W] / ndarray[H, W(, 3)], float [0, 1] or uint8) as float ndarray[H, W, 3]."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = image.transpose(1, 2, 0)
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"image must be [H, W], [H, W, 3] or [3, H, W], got shape {np.shape(image)}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, -1)
    a = a.astype(np.float64)
    return a / 255.0 if a.max() > 1.0 else a


def _scene(h: int = 300, w: int = 450) -> tuple[np.ndarray, np.ndarray]:
    """A generated stand-in photo (sky, ground, one object) and the object's xyxy box."""
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = np.zeros((h, w, 3))
    img[..., 0], img[..., 1], img[..., 2] = 0.55 + 0.3 * yy, 0.7 + 0.2 * yy, 0.95 - 0.1 * yy
    ground = yy > 0.62
    img[ground] = np.array([0.45, 0.6, 0.35]) + 0.05 * np.sin(xx[ground] * 60)[:, None]
    cy, cx, ry, rx = 0.55, 0.45, 0.22, 0.16
    body = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    img[body] = np.array([0.45, 0.35, 0.3])
    head = ((yy - 0.33) / 0.09) ** 2 + ((xx - 0.47) / 0.07) ** 2 < 1
    img[head] = np.array([0.5, 0.4, 0.35])
    box = np.array([(cx - rx) * w, 0.24 * h, (cx + rx) * w, (cy + ry) * h])
    return img, box


def _photo(name: str) -> np.ndarray:
    """A bundled real photo (``cvlib.data.load_photo``) or, if that is unavailable, the generated scene."""
    try:
        from cvlib.data import load_photo

        return _to_hwc(load_photo(name))
    except Exception as e:  # bundle missing or damaged: fall back, the diagram still draws
        log.info("load_photo(%r) unavailable (%s); using a generated scene", name, e)
        return _scene()[0]


def _raccoon() -> tuple[np.ndarray, np.ndarray]:
    """A bundled raccoon photo and its ground-truth box, or the generated scene and its box."""
    try:
        from cvlib.data import load_raccoon

        ds = load_raccoon(split="all")
        idx = [i for i, n in enumerate(getattr(ds, "ids", [])) if n == _RACCOON_ID]
        img, tgt = ds[idx[0] if idx else 0]
        return _to_hwc(img), np.asarray(tgt["boxes"][0], dtype=float)
    except Exception as e:
        log.info("raccoon photo unavailable (%s); using a generated scene", e)
        return _scene()


def _show(ax, img: np.ndarray, x0: float, y0: float, width: float):
    """Draw ``img`` with its lower-left corner at ``(x0, y0)``, ``width`` inches wide; returns a function
    mapping image pixel coordinates to inches."""
    h, w = img.shape[:2]
    s = width / w
    ax.imshow(
        np.clip(img, 0, 1), extent=(x0, x0 + w * s, y0, y0 + h * s), zorder=0, interpolation="antialiased"
    )

    def to_in(px, py):
        return x0 + px * s, y0 + (h - py) * s

    return to_in, s


def _box(ax, to_in, s, b, **kw):
    x0, y1 = to_in(b[0], b[1])
    kw.setdefault("fill", False)
    r = Rectangle((x0, y1 - (b[3] - b[1]) * s), (b[2] - b[0]) * s, (b[3] - b[1]) * s, **kw)
    ax.add_patch(r)
    return r


@register(
    "iou",
    chapter="ch08",
    caption="Intersection over union: the area both boxes cover divided by the area either covers; 1 for "
    "identical boxes, 0 for disjoint ones.",
    alt="""Left, two overlapping boxes A (blue) and B (orange) with their overlap shaded dark: the
    intersection. Middle, the same boxes with everything either covers shaded: the union. Below them the
    formula IoU = intersection / union with the numbers of this example. Right, three small pairs of
    boxes with IoU about 0.1, 0.5 and 0.9, from barely touching to almost identical.""",
)
def iou_diagram() -> Figure:
    """Intersection and union of two boxes, plus three reference IoU values."""
    fig, ax = canvas(7, 3.2)
    a = np.array([0.0, 0.0, 1.2, 1.0])
    b = np.array([0.6, 0.4, 1.7, 1.5])
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    blue, orange, dark = PALETTE["accent2"], "#ff7f0e", "#6a51a3"
    for p, title in enumerate(("intersection", "union")):
        ox, oy = 0.25 + p * 2.15, 1.05
        if p == 1:
            for bb in (a, b):
                ax.add_patch(
                    Rectangle((ox + bb[0], oy + bb[1]), bb[2] - bb[0], bb[3] - bb[1], color="#cbc9e2", lw=0)
                )
        ix0, iy0 = max(a[0], b[0]), max(a[1], b[1])
        ix1, iy1 = min(a[2], b[2]), min(a[3], b[3])
        ax.add_patch(
            Rectangle((ox + ix0, oy + iy0), ix1 - ix0, iy1 - iy0, color=dark if p == 0 else "#cbc9e2", lw=0)
        )
        for bb, col in ((a, blue), (b, orange)):
            ax.add_patch(
                Rectangle((ox + bb[0], oy + bb[1]), bb[2] - bb[0], bb[3] - bb[1], fill=False, ec=col, lw=2)
            )
        label(ax, ox + 0.12, oy + 0.15, "A", color=blue, weight="bold")
        label(ax, ox + 1.58, oy + 1.35, "B", color=orange, weight="bold")
        label(ax, ox + 0.85, 2.85, title, weight="bold")
    label(ax, 2.2, 0.55, f"IoU = intersection / union = {inter:.2f} / {ua:.2f} = {inter / ua:.2f}", size=10)
    label(ax, 2.2, 0.2, "(areas in square inches of this drawing)", color=PALETTE["muted"])
    # reference pairs
    label(ax, 5.95, 2.95, "for reference", weight="bold")
    for k, target in enumerate((0.1, 0.5, 0.9)):
        y = 2.05 - k * 0.85
        p = np.array([0.0, 0.0, 0.6, 0.6])
        shift = 0.6 * (1 - target) / (1 + target)  # a horizontal shift giving IoU = target
        q = p + np.array([shift, 0.0, shift, 0.0])
        val = box_iou_np(p, q)[0, 0]
        for bb, col in ((p, blue), (q, orange)):
            ax.add_patch(
                Rectangle(
                    (5.0 + bb[0], y + bb[1] - 0.1), bb[2] - bb[0], bb[3] - bb[1], fill=False, ec=col, lw=1.5
                )
            )
        label(ax, 6.2, y + 0.25, f"IoU {val:.2f}", ha="left")
    return fig


@register(
    "anchors_on_image",
    chapter="ch08",
    caption="Anchors: at every feature-map position the detector places boxes of several scales and aspect "
    "ratios; here the nine anchors of one position (3 scales x 3 ratios) on a real photo.",
    alt="""A photograph of a cat (or, where the photos are not installed, a drawn scene with an animal). A
    white dot marks one anchor centre, around which nine rectangles are drawn: three sizes in three colours
    (small, medium, large) and, for each size, a tall, a square and a wide box drawn with different line
    styles. A legend on the right lists the scales and the aspect ratios.""",
)
def anchors_on_image(
    image: Any = None,
    center: tuple[float, float] | None = None,
    scales: tuple[float, ...] = (0.2, 0.35, 0.55),
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
) -> Figure:
    """The anchors of one location drawn on a photo.

    Args:
        image (Tensor[3, H, W] | np.ndarray[H, W, 3] | None): the photo; default the bundled ``chelsea``
            photo via ``cvlib.data.load_photo`` or, if unavailable, a generated scene.
        center ((float, float) | None): anchor centre in pixels (default: the image centre).
        scales (tuple[float]): anchor sizes (square root of the area) as fractions of the shorter side.
        ratios (tuple[float]): aspect ratios height / width.
    """
    img = _photo("chelsea") if image is None else _to_hwc(image)
    if len(scales) > 3 or len(ratios) > 3 or not scales or not ratios:
        raise ValueError(f"scales and ratios must have 1 to 3 entries, got {len(scales)} and {len(ratios)}")
    h, w = img.shape[:2]
    cx, cy = (w / 2, h / 2) if center is None else center
    fig, ax = canvas(7, 3.6)
    width = min(4.6, 3.4 * w / h)
    to_in, s = _show(ax, img, 0.1, 0.1, width)
    colors = ("#ffd92f", "#e7298a", "#66c2a5")
    styles = ("-", "--", ":")
    short = min(h, w)
    for i, sc in enumerate(scales):
        for j, r in enumerate(ratios):
            area = (sc * short) ** 2
            bw, bh = np.sqrt(area / r), np.sqrt(area * r)
            _box(
                ax,
                to_in,
                s,
                (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2),
                ec=colors[i],
                ls=styles[j],
                lw=1.8,
            )
    ax.add_patch(Circle(to_in(cx, cy), 0.05, color="white", ec="black", zorder=5))
    ax.set_xlim(0, 7)
    ax.set_ylim(0, 3.6)
    lx = 0.1 + width + 0.3
    label(ax, lx, 3.3, f"{len(scales) * len(ratios)} anchors at one position", ha="left", weight="bold")
    label(ax, lx, 2.9, "scale (side of the square):", ha="left")
    for i, sc in enumerate(scales):
        ax.plot([lx, lx + 0.35], [2.6 - i * 0.28] * 2, color=colors[i], lw=3)
        label(ax, lx + 0.45, 2.6 - i * 0.28, f"{sc * short:.0f} px", ha="left")
    label(ax, lx, 1.6, "aspect ratio h : w:", ha="left")
    for j, r in enumerate(ratios):
        ax.plot([lx, lx + 0.35], [1.3 - j * 0.28] * 2, color=PALETTE["edge"], lw=1.8, ls=styles[j])
        label(ax, lx + 0.45, 1.3 - j * 0.28, f"{r:g} : 1", ha="left")
    return fig


@register(
    "anchor_labelling",
    chapter="ch08",
    caption="Labelling anchors for training (Faster R-CNN's RPN): IoU with a ground-truth box of at least "
    "0.7 makes an anchor positive, below 0.3 negative, and anchors in between are ignored by the loss.",
    alt="""Left, a photo of a raccoon (or a drawn scene) with its ground-truth box in thick white and six
    numbered anchors: green solid ones overlap the object well, amber dotted ones partly, red dashed ones
    barely. Right, a horizontal IoU axis from 0 to 1 split into a red 'negative' zone below 0.3, an amber
    'ignored' zone and a green 'positive' zone above 0.7; each anchor's number sits above the axis at its
    IoU with the ground truth.""",
)
def anchor_labelling(image: Any = None, box: Any = None) -> Figure:
    """Positive / ignored / negative anchors around one ground-truth box.

    Args:
        image (Tensor[3, H, W] | np.ndarray[H, W, 3] | None): photo (default: a bundled raccoon photo).
        box (Sequence[float] | None): its ground-truth xyxy box in pixels (required with ``image``).
    """
    if image is None:
        img, gt = _raccoon()
    else:
        if box is None:
            raise ValueError("box must be given with image, got None")
        img, gt = _to_hwc(image), np.asarray(box, float).reshape(4)
    h, w = img.shape[:2]
    gw, gh = gt[2] - gt[0], gt[3] - gt[1]
    # anchors as (dx, dy, scale_w, scale_h) relative to the ground-truth box
    rel = [
        (0.04, 0.03, 1.0, 1.05),
        (-0.12, 0.05, 1.1, 0.95),
        (0.3, 0.25, 0.95, 1.0),
        (-0.35, -0.2, 1.0, 1.0),
        (0.75, -0.3, 0.6, 0.6),
        (-0.9, 0.6, 0.5, 0.5),
    ]
    anchors = []
    for dx, dy, sw, sh in rel:
        cx, cy = (gt[0] + gt[2]) / 2 + dx * gw, (gt[1] + gt[3]) / 2 + dy * gh
        aw, ah = gw * sw, gh * sh
        anchors.append(
            [max(cx - aw / 2, 0), max(cy - ah / 2, 0), min(cx + aw / 2, w - 1), min(cy + ah / 2, h - 1)]
        )
    anchors = np.array(anchors)
    ious = box_iou_np(anchors, gt)[:, 0]
    fig, ax = canvas(7, 3.4)
    width = min(3.6, 3.2 * w / h)
    to_in, s = _show(ax, img, 0.1, 0.1, width)
    green, red, grey = "#31a354", PALETTE["accent"], "#fec44f"  # grey would vanish on grey photos
    style = lambda v: (green, "-") if v >= 0.7 else (red, "--") if v < 0.3 else (grey, ":")  # noqa: E731
    for a, v in zip(anchors, ious):
        col, ls = style(v)
        _box(ax, to_in, s, a, ec=col, ls=ls, lw=2)
    _box(ax, to_in, s, gt, ec="white", lw=3.0)
    for k, a in enumerate(anchors):
        col, _ = style(ious[k])
        px, py = to_in(a[0], a[1])
        label(
            ax,
            px + 0.1,
            py - 0.12,
            str(k + 1),
            color="black",
            weight="bold",
            bbox=dict(boxstyle="round,pad=0.1", fc=col, ec="none", alpha=0.9),
        )
    ax.set_xlim(0, 7)
    ax.set_ylim(0, 3.4)
    # IoU axis
    x0, x1, y = width + 0.55, 6.8, 1.4
    L = x1 - x0
    for lo, hi, col, name in (
        (0, 0.3, red, "negative"),
        (0.3, 0.7, grey, "ignored"),
        (0.7, 1.0, green, "positive"),
    ):
        ax.add_patch(Rectangle((x0 + lo * L, y - 0.12), (hi - lo) * L, 0.12, color=col, alpha=0.8, lw=0))
        label(ax, x0 + (lo + hi) / 2 * L, y - 0.35, name)
    for t in (0, 0.3, 0.7, 1.0):
        label(ax, x0 + t * L, y - 0.65, f"{t:g}")
    label(ax, (x0 + x1) / 2, y - 0.95, "IoU with the ground-truth box")
    order = np.argsort(ious)
    for rank, k in enumerate(order):
        px = x0 + ious[k] * L
        lift = 0.25 + 0.3 * (rank % 2)
        ax.plot([px, px], [y, y + lift - 0.08], color=PALETTE["edge"], lw=0.8)
        label(
            ax,
            px,
            y + lift + 0.03,
            str(k + 1),
            weight="bold",
            bbox=dict(boxstyle="round,pad=0.1", fc=style(ious[k])[0], ec="none"),
        )
    label(ax, (x0 + x1) / 2, 3.15, "white: ground truth; numbers: anchors", ha="center")
    return fig


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[tuple[int, list[int]]]:
    """Greedy NMS returning, per kept box in order, the indices it suppresses."""
    order = list(np.argsort(-scores))
    steps = []
    while order:
        i = order.pop(0)
        ious = box_iou_np(boxes[i], boxes[order])[0] if order else np.zeros(0)
        gone = [order[k] for k in range(len(order)) if ious[k] > thr]
        order = [o for o in order if o not in gone]
        steps.append((int(i), [int(g) for g in gone]))
    return steps


@register(
    "nms_steps",
    chapter="ch08",
    caption="Greedy non-maximum suppression with IoU threshold 0.5: keep the highest-scoring box, delete the "
    "boxes that overlap it by more than the threshold, and repeat with the highest remaining box.",
    alt="""Four small panels. 1, 'candidates': six overlapping boxes with scores 0.95, 0.80, 0.70 around a
    large object and 0.85, 0.60 and 0.30 around a small one. 2: the 0.95 box is kept (green) and the boxes
    overlapping it by more than 0.5 are crossed out (grey dashed). 3: the highest remaining box, 0.85, is
    kept and its overlaps removed. 4, 'result': only the kept boxes remain, one per object, plus an isolated
    0.30 box that overlaps nothing (NMS keeps it; a score threshold would remove it).""",
)
def nms_steps(iou_threshold: float = 0.5) -> Figure:
    """Greedy NMS in small multiples."""
    if not 0 < iou_threshold < 1:
        raise ValueError(f"iou_threshold must be in (0, 1), got {iou_threshold}")
    boxes = np.array(
        [
            [0.10, 0.55, 0.95, 1.55],
            [0.18, 0.45, 1.00, 1.45],
            [0.30, 0.50, 1.10, 1.50],
            [0.95, 0.15, 1.55, 0.75],
            [1.02, 0.08, 1.60, 0.68],
            [0.02, 0.05, 0.60, 0.55],
        ]
    )
    corner = ("tl", "bl", "br", "tr", "br", "bl")  # where each score is written, so no two collide
    scores = np.array([0.95, 0.80, 0.70, 0.85, 0.60, 0.30])
    steps = _greedy_nms(boxes, scores, iou_threshold)
    fig, ax = canvas(7, 2.8)
    kept, gone_all = [], []
    panels = [("candidates", [], [])]
    for i, gone in steps[:2]:
        kept = kept + [i]
        gone_all = gone_all + gone
        panels.append((f"keep {scores[i]:.2f}, drop IoU > {iou_threshold:g}", list(kept), list(gone_all)))
    panels.append(
        ("result", [i for i, _ in steps], [k for k in range(len(boxes)) if k not in [i for i, _ in steps]])
    )
    for p, (title, keep, gone) in enumerate(panels):
        ox, oy = 0.12 + p * 1.74, 0.45
        ax.add_patch(
            Rectangle(
                (ox - 0.05, oy - 0.05), 1.7, 1.7, facecolor="#f7f7f7", edgecolor=PALETTE["muted"], lw=0.6
            )
        )
        for k, b in enumerate(boxes):
            if p == 3 and k in gone:
                continue
            if k in keep:
                col, ls, lw = "#31a354", "-", 2.2
            elif k in gone:
                col, ls, lw = "#bdbdbd", "--", 1.2
            else:
                col, ls, lw = PALETTE["accent2"], "-", 1.2
            ax.add_patch(
                Rectangle((ox + b[0], oy + b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec=col, ls=ls, lw=lw)
            )
            if k in gone:
                ax.plot([ox + b[0], ox + b[2]], [oy + b[1], oy + b[3]], color="#bdbdbd", lw=0.8)
            else:
                right, top = corner[k][1] == "r", corner[k][0] == "t"
                label(
                    ax,
                    ox + (b[2] - 0.03 if right else b[0] + 0.03),
                    oy + (b[3] - 0.03 if top else b[1] + 0.03),
                    f"{scores[k]:.2f}",
                    ha="right" if right else "left",
                    va="top" if top else "bottom",
                    color=col,
                    weight="bold" if k in keep else "normal",
                    bbox=dict(boxstyle="square,pad=0.05", fc="#f7f7f7", ec="none", alpha=0.85),
                )
        label(
            ax,
            ox + 0.8,
            2.4,
            f"{p + 1}. {title}" if len(title) < 16 else f"{p + 1}. keep {scores[keep[-1]]:.2f}",
        )
        if 0 < p < 3:
            label(ax, ox + 0.8, 0.2, f"drop IoU > {iou_threshold:g}", color=PALETTE["muted"])
    return fig


@register(
    "detector_pipelines",
    chapter="ch08",
    caption="Two-stage vs one-stage detectors. Faster R-CNN proposes regions, crops their features with "
    "RoIAlign and classifies each crop; YOLO predicts boxes and classes for every cell of an S x S grid in "
    "one pass; FCOS predicts a class and four distances at every feature-map pixel.",
    alt="""Three rows of boxes joined by arrows. Faster R-CNN (two-stage): image, backbone + FPN, region
    proposal network giving about a thousand proposals, RoIAlign cropping a 7x7 feature per proposal, a
    head classifying and refining each box, NMS, detections. YOLO (one-stage): image, backbone, a head
    predicting an S x S grid with B boxes, a confidence and class probabilities per cell, NMS,
    detections. FCOS (one-stage, anchor-free): image, backbone + FPN, a head predicting per pixel a class,
    the distances l, t, r, b to the box sides and a centre-ness, NMS, detections.""",
)
def detector_pipelines() -> Figure:
    """Faster R-CNN vs YOLO vs FCOS as block pipelines."""
    fig, ax = canvas(7, 3.9)
    rows = [
        (
            "Faster R-CNN (two-stage)",
            [
                ("backbone\n+ FPN", PALETTE["conv"]),
                ("RPN:\nproposals", PALETTE["pool"]),
                ("RoIAlign\n7x7 crops", PALETTE["norm"]),
                ("head: class\n+ box", PALETTE["fc"]),
            ],
        ),
        (
            "YOLO (one-stage, grid)",
            [("backbone", PALETTE["conv"]), ("S x S grid: B boxes,\nconf., classes per cell", PALETTE["fc"])],
        ),
        (
            "FCOS (one-stage, per pixel)",
            [
                ("backbone\n+ FPN", PALETTE["conv"]),
                ("per pixel: class,\nl, t, r, b, centre-ness", PALETTE["fc"]),
            ],
        ),
    ]
    for r, (title, stages) in enumerate(rows):
        y = 2.85 - r * 1.25
        label(ax, 0.05, y + 0.78, title, ha="left", weight="bold")
        block(ax, 0.05, y, 0.6, 0.6, "image", color=PALETTE["input"])
        x = 0.65
        avail = 5.55 - 0.65
        ws = [0.95] * len(stages) if len(stages) == 4 else [1.0, avail - 1.0 - 2 * 0.25]
        for (t, col), wd in zip(stages, ws):
            arrow(ax, (x, y + 0.3), (x + 0.22, y + 0.3))
            block(ax, x + 0.22, y, wd, 0.6, t, color=col)
            x += 0.22 + wd
        arrow(ax, (x, y + 0.3), (5.6, y + 0.3))
        block(ax, 5.6, y, 0.55, 0.6, "NMS", color=PALETTE["act"])
        arrow(ax, (6.15, y + 0.3), (6.3, y + 0.3))
        label(ax, 6.65, y + 0.3, "boxes")
    return fig


@register(
    "yolo_grid",
    chapter="ch08",
    caption="YOLO's grid: the image is divided into S x S cells; the cell that contains an object's centre "
    "is "
    "responsible for it and predicts its box (x, y, w, h, confidence) and the class probabilities, so the "
    "output is an S x S x (5B + C) tensor.",
    alt="""Left, a photo of a raccoon (or a drawn scene) covered by a 7x7 grid. The ground-truth box is
    drawn in white, its centre as a red dot, and the grid cell containing the centre is shaded red: the
    responsible cell. Right, the output tensor as a 7x7 slab of depth 30, and one cell's vector split into
    two boxes of five numbers (x, y, w, h, confidence) and 20 class probabilities.""",
)
def yolo_grid(image: Any = None, box: Any = None, S: int = 7, B: int = 2, C: int = 20) -> Figure:
    """The S x S grid on a photo and the responsible cell of an object's centre.

    Args:
        image (Tensor[3, H, W] | np.ndarray[H, W, 3] | None): photo (default: a bundled raccoon photo).
        box (Sequence[float] | None): its ground-truth xyxy box in pixels (required with ``image``).
        S (int): grid size; B (int): boxes per cell; C (int): classes.
    """
    if not all(isinstance(v, int) and v > 0 for v in (S, B, C)):
        raise ValueError(f"S, B and C must be positive ints, got {S}, {B}, {C}")
    if image is None:
        img, gt = _raccoon()
    else:
        if box is None:
            raise ValueError("box must be given with image, got None")
        img, gt = _to_hwc(image), np.asarray(box, float).reshape(4)
    h, w = img.shape[:2]
    fig, ax = canvas(7, 3.5)
    width = min(3.9, 3.3 * w / h)
    to_in, s = _show(ax, img, 0.1, 0.1, width)
    cx, cy = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2
    i, j = int(cy / h * S), int(cx / w * S)
    cw, ch = w / S, h / S
    _box(
        ax,
        to_in,
        s,
        (j * cw, i * ch, (j + 1) * cw, (i + 1) * ch),
        ec="none",
        fc=PALETTE["accent"],
        alpha=0.45,
        fill=True,
    )
    for k in range(1, S):
        ax.plot(*zip(to_in(k * cw, 0), to_in(k * cw, h)), color="white", lw=0.8, alpha=0.9)
        ax.plot(*zip(to_in(0, k * ch), to_in(w, k * ch)), color="white", lw=0.8, alpha=0.9)
    _box(ax, to_in, s, gt, ec="white", lw=2.5)
    ax.add_patch(Circle(to_in(cx, cy), 0.06, color=PALETTE["accent"], ec="white", zorder=5))
    ax.set_xlim(0, 7)
    ax.set_ylim(0, 3.5)
    rx = 0.1 + width + 0.35
    label(ax, rx, 3.25, f"responsible cell: row {i}, column {j}", ha="left", color=PALETTE["accent"])
    slab(ax, rx + 0.3, 1.85, 0.8, 0.8, 1.6, color=PALETTE["fc"], shift=0.35)
    label(ax, rx + 0.7, 2.25, f"{S}x{S}")
    label(ax, rx + 0.95, 1.65, f"output {S}x{S}x(5B + C) = {S}x{S}x{5 * B + C}")
    # one cell's vector
    y = 0.75
    label(ax, rx, 1.15, "one cell's prediction:", ha="left")
    xx = rx
    for b in range(B):
        block(ax, xx, y, 0.62, 0.32, f"box {b + 1}", color="#fdd0a2")
        xx += 0.66
    block(ax, xx, y, 6.9 - xx, 0.32, f"{C} class probs", color=PALETTE["fc"])
    label(ax, rx, 0.45, "box = x, y, w, h, confidence", ha="left", color=PALETTE["muted"])
    return fig


def _pr_example() -> tuple[np.ndarray, np.ndarray, float, list[tuple[float, bool]]]:
    """A small detection example scored with cvlib's VOC matching (falls back to plain numpy)."""
    gts = [
        [[10, 10, 50, 50], [60, 60, 100, 100]],
        [[20, 20, 70, 70]],
        [[0, 0, 40, 40], [50, 10, 90, 50]],
        [[30, 30, 80, 80]],
    ]
    dets = [  # (image, box, score)
        (0, [12, 11, 50, 52], 0.96),
        (1, [22, 18, 70, 72], 0.93),
        (0, [100, 0, 130, 30], 0.88),
        (2, [2, 1, 41, 39], 0.81),
        (3, [60, 0, 90, 20], 0.74),
        (0, [61, 58, 99, 101], 0.66),
        (3, [28, 33, 79, 82], 0.58),
        (1, [0, 80, 20, 99], 0.47),
        (2, [70, 60, 95, 90], 0.35),
        (2, [52, 12, 88, 49], 0.27),
    ]
    preds = [{"boxes": [], "scores": [], "labels": []} for _ in gts]
    for im, b, sc in dets:
        preds[im]["boxes"].append(b)
        preds[im]["scores"].append(sc)
        preds[im]["labels"].append(0)
    targets = [{"boxes": np.array(g, float), "labels": np.zeros(len(g), np.int64)} for g in gts]
    preds = [{k: np.array(v, float if k != "labels" else np.int64) for k, v in p.items()} for p in preds]
    from cvlib.metrics.detection import average_precision_voc, pr_curves

    c = pr_curves(preds, targets, iou_threshold=0.5)[0]
    rec, prec = c["recall"], c["precision"]
    ap = average_precision_voc(rec, prec)
    tp = np.diff(np.concatenate([[0.0], rec])) > 0
    table = [(float(s), bool(t)) for s, t in zip(c["scores"], tp)]
    return rec, prec, ap, table


@register(
    "pr_curve",
    chapter="ch08",
    caption="Precision-recall curve of ten detections against six ground-truth boxes (VOC matching at IoU "
    "0.5, computed with cvlib.metrics): the raw curve zig-zags, its envelope takes the best precision at any "
    "higher recall, and AP is the shaded area under the envelope.",
    alt="""Left, a plot of precision against recall. A thin blue line zig-zags: it rises after each true
    positive and drops after each false positive. A thick orange step line above it is the interpolated
    envelope, and the area under it is shaded; the title gives AP. Right, the ten detections sorted by
    score, each marked TP or FP.""",
)
def pr_curve() -> Figure:
    """Raw precision-recall points, the interpolated envelope and the AP area."""
    rec, prec, ap, table = _pr_example()
    fig = Figure(figsize=(7, 3.4), dpi=100)
    ax = fig.add_axes((0.09, 0.15, 0.52, 0.72))
    r = np.concatenate([[0.0], rec, [rec[-1]]])
    p = np.concatenate([[1.0], prec, [0.0]])
    env = np.maximum.accumulate(p[::-1])[::-1]
    ax.fill_between(r, env, step="post", color="#fdd0a2", alpha=0.7, lw=0)
    ax.step(r, env, where="post", color="#e6550d", lw=2.2, label="envelope (interpolated)")
    ax.plot(rec, prec, "o-", color=PALETTE["accent2"], lw=1, ms=4, label="raw precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall", fontsize=10)
    ax.set_ylabel("precision", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.set_title(f"AP = shaded area = {ap:.3f}", fontsize=10)
    ax.legend(fontsize=9, loc="lower left", frameon=False)
    tx = fig.add_axes((0.66, 0.0, 0.34, 1.0))
    tx.axis("off")
    tx.set_xlim(0, 1)
    tx.set_ylim(0, 1)
    tx.text(0.05, 0.93, "detections by score", fontsize=9, weight="bold")
    for k, (sc, tp) in enumerate(table):
        y = 0.84 - k * 0.075
        tx.text(0.1, y, f"{k + 1:2d}.  {sc:.2f}", fontsize=9)
        tx.text(
            0.55,
            y,
            "TP" if tp else "FP",
            fontsize=9,
            color="#31a354" if tp else PALETTE["accent"],
            weight="bold",
        )
    return fig
