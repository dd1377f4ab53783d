"""Procedural shapes scenes: one scene description, every label a vision task needs.

A scene is a textured background with a few filled shapes (circle, square, triangle, cross) painted
on it. From the same description the generator returns the image, a scene class label, a semantic
mask, instance ids, tight boxes and per-instance labels, so the classification, segmentation and
detection chapters (and pix2pix, masks -> images) share one dataset whose labels are exact by
construction. Every coarse shape comes in two *fine* variants that differ in a subtle attribute
(a small hole, a notched corner, pointing up or down, arm thickness): a coarse label (shape) and a
fine label (shape + variant) exist for the coarse- vs fine-grained chapter, in the spirit of
fine-grained benchmarks such as Oxford-IIIT Pet (Parkhi et al. 2012) whose classes differ in
details rather than in overall form.

Rasterisation uses coordinate grids (no per-pixel Python loops): each object slot is drawn for all
scenes of a batch at once. Every random number is drawn from a seeded CPU ``torch.Generator`` and
then moved to the requested device, so a seed gives the same scenes on any device.

Label conventions (documented once here, used everywhere):

* ``labels`` (classification, one per scene): ``0..K-1`` indexing ``CLASSES`` (coarse) or
  ``FINE_CLASSES`` (fine); the class of the largest visible shape ("dominant" shape).
* ``masks`` (semantic, int64 ``[B, H, W]``): ``0`` = background, ``c + 1`` for class ``c``.
* ``instances`` (int64 ``[B, H, W]``): ``0`` = background, ``1..N_b`` for the visible objects, in
  painting order.
* ``boxes[b]`` (float ``[N_b, 4]``): xyxy in absolute pixels with pixel ``(i, j)`` covering
  ``[j, j+1] x [i, i+1]``, i.e. the tight box of instance ``k`` is
  ``(min col, min row, max col + 1, max row + 1)`` of its pixels. ``box_labels[b]`` (int64
  ``[N_b]``) equal the mask value of the instance's pixels (``1..K``, 0 is background).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

__all__ = [
    "CLASSES",
    "FINE_CLASSES",
    "COARSE_OF_FINE",
    "ShapesConfig",
    "ShapesBatch",
    "generate_scenes",
    "coarse_from_fine",
    "shapes_classification",
    "shapes_segmentation",
    "shapes_detection",
    "ShapesClassification",
    "ShapesSegmentation",
    "ShapesDetection",
    "collate_detection",
]

#: Coarse shape classes; label ``c`` is ``CLASSES[c]`` (mask value ``c + 1``).
CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
#: Fine classes: two variants per coarse class, differing in one subtle attribute.
FINE_CLASSES: tuple[str, ...] = (
    "circle",  # filled disk
    "circle_hole",  # disk with a small central hole (radius 0.35 of the disk)
    "square",  # filled square
    "square_notch",  # square with its top-right corner notched
    "triangle_up",  # isosceles triangle, apex up
    "triangle_down",  # the same triangle, apex down
    "cross",  # plus sign, arm half-width 0.35
    "cross_thin",  # plus sign, arm half-width 0.18
)
#: ``COARSE_OF_FINE[f]`` is the coarse label of fine label ``f``.
COARSE_OF_FINE: tuple[int, ...] = tuple(CLASSES.index(name.split("_")[0]) for name in FINE_CLASSES)

# Radius of a circle around each shape's centre that contains it, in units of its size ``r``
# (the triangle's base corners at (+-1, 0.8) are the farthest points: sqrt(1.64) < 1.3).
_BOUNDING = 1.3
_PLACEMENT_TRIES = 32


@dataclass(frozen=True)
class ShapesConfig:
    """What the generated scenes look like.

    Attributes:
        image_size: side ``S`` of the square images in pixels (>= 16).
        num_objects: inclusive range ``(min, max)`` of shapes per scene (>= 1 each).
        classes: coarse class names to draw from (a subset of ``CLASSES``); the label space stays
            the full ``CLASSES`` / ``FINE_CLASSES`` so labels mean the same for every subset.
        fine: if True, ``labels``, ``masks`` and ``box_labels`` use the fine classes.
        size_range: range of the shape size ``r`` (half the width of a square) as a fraction of
            ``image_size``.
        max_rotation: shapes are rotated by a uniform angle in ``[-max_rotation, max_rotation]``
            degrees (small, so that "triangle up" stays up).
        overlap: how much bounding circles may overlap, 0 (disjoint) to < 1; occluded parts are
            hidden and the boxes follow the visible pixels.
        noise: standard deviation of the Gaussian pixel noise added last.
        texture: amplitude of the stripe texture on shapes and of the smooth background field.
    """

    image_size: int = 32
    num_objects: tuple[int, int] = (1, 1)
    classes: tuple[str, ...] = CLASSES
    fine: bool = False
    size_range: tuple[float, float] = (0.22, 0.34)
    max_rotation: float = 10.0
    overlap: float = 0.0
    noise: float = 0.04
    texture: float = 0.15

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 16:
            raise ValueError(f"image_size must be an int >= 16, got {self.image_size!r}")
        lo, hi = self.num_objects
        if not (1 <= lo <= hi):
            raise ValueError(f"num_objects must be (min, max) with 1 <= min <= max, got {self.num_objects}")
        bad = [c for c in self.classes if c not in CLASSES]
        if not self.classes or bad:
            raise ValueError(f"classes must be a non-empty subset of {CLASSES}, got {self.classes}")
        s0, s1 = self.size_range
        if not (0 < s0 <= s1 <= 0.5 / _BOUNDING):
            raise ValueError(
                f"size_range must satisfy 0 < lo <= hi <= {0.5 / _BOUNDING:.3f}, got {self.size_range}"
            )
        if not (0 <= self.overlap < 1):
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.noise < 0 or self.texture < 0:
            raise ValueError(f"noise and texture must be >= 0, got {self.noise}, {self.texture}")

    @property
    def num_classes(self) -> int:
        """Number of classes ``K`` of the configured label space (coarse or fine)."""
        return len(FINE_CLASSES) if self.fine else len(CLASSES)

    @property
    def class_names(self) -> tuple[str, ...]:
        """``FINE_CLASSES`` if ``fine`` else ``CLASSES``."""
        return FINE_CLASSES if self.fine else CLASSES


@dataclass
class ShapesBatch:
    """A batch of generated scenes (see the module docstring for the label conventions).

    Attributes:
        images (Tensor[B, 3, H, W]): float in [0, 1].
        labels (Tensor[B]): int64 scene labels in the configured label space (coarse or fine).
        coarse_labels (Tensor[B]): int64 coarse scene labels (indices into ``CLASSES``).
        fine_labels (Tensor[B]): int64 fine scene labels (indices into ``FINE_CLASSES``).
        masks (Tensor[B, H, W]): int64 semantic mask, 0 background, ``label + 1`` elsewhere.
        instances (Tensor[B, H, W]): int64 instance ids, 0 background, 1..N_b.
        boxes (list[Tensor[N_b, 4]]): float xyxy tight boxes of the instances, in id order.
        box_labels (list[Tensor[N_b]]): int64, mask value of each instance (1..K).
        config: the ``ShapesConfig`` that produced the batch.
    """

    images: Tensor
    labels: Tensor
    coarse_labels: Tensor
    fine_labels: Tensor
    masks: Tensor
    instances: Tensor
    boxes: list[Tensor]
    box_labels: list[Tensor]
    config: ShapesConfig = field(default_factory=ShapesConfig)

    def __len__(self) -> int:
        return self.images.shape[0]

    def targets(self) -> list[dict[str, Tensor]]:
        """Detection targets: one ``{"boxes": [N, 4] xyxy float, "labels": [N] int64}`` per image."""
        return [{"boxes": b, "labels": l} for b, l in zip(self.boxes, self.box_labels)]


def coarse_from_fine(fine_labels: Tensor) -> Tensor:
    """Map fine labels (indices into ``FINE_CLASSES``) to coarse labels (indices into ``CLASSES``).

    Args:
        fine_labels (Tensor[...]): int64 fine labels.
    Returns:
        Tensor[...]: int64 coarse labels, same shape and device.
    """
    if fine_labels.dtype.is_floating_point or fine_labels.dtype == torch.bool:
        raise TypeError(f"fine_labels must be an integer tensor, got {fine_labels.dtype}")
    if fine_labels.numel() and (fine_labels.min() < 0 or fine_labels.max() >= len(FINE_CLASSES)):
        raise ValueError(f"fine_labels must be in [0, {len(FINE_CLASSES)}), got values outside it")
    table = torch.tensor(COARSE_OF_FINE, dtype=torch.int64, device=fine_labels.device)
    return table[fine_labels.long()]


# --------------------------------------------------------------------------- rasterisation


def _shape_masks(u: Tensor, v: Tensor) -> Tensor:
    """Inside-masks of every fine class in local coordinates: Tensor[len(FINE_CLASSES), *u.shape].

    ``u`` points right and ``v`` down, both in units of the shape size ``r``.
    """
    rr = u * u + v * v
    disk = rr <= 1.0
    square = (u.abs() <= 0.85) & (v.abs() <= 0.85)
    notch = (u >= 0.3) & (v <= -0.3)  # top-right corner (v points down)

    def triangle(vv: Tensor) -> Tensor:  # apex at (0, -1), base from (-1, 0.8) to (1, 0.8)
        return (vv <= 0.8) & (u.abs() <= (vv + 1.0) / 1.8)

    def cross(w: float) -> Tensor:
        return (u.abs() <= 1.0) & (v.abs() <= 1.0) & ((u.abs() <= w) | (v.abs() <= w))

    return torch.stack(
        [
            disk,
            disk & (rr >= 0.35**2),
            square,
            square & ~notch,
            triangle(v),
            triangle(-v),
            cross(0.35),
            cross(0.18),
        ]
    )


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """Vectorised HSV -> RGB for tensors of the same shape, all in [0, 1]; returns [..., 3]."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=-1)
    ramp = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return v[..., None] - v[..., None] * s[..., None] * ramp


def _uniform(g: torch.Generator, shape: Sequence[int], lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


def _place(n: int, config: ShapesConfig, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Rejection-sample object placements for ``n`` scenes at once (CPU).

    Returns centres ``cx, cy`` and sizes ``r`` as Tensor[n, M] in pixels and ``active``
    (bool Tensor[n, M]), with M = max objects; bounding circles keep inside the image and overlap
    at most by ``config.overlap``.
    """
    S = config.image_size
    m = config.num_objects[1]
    count = torch.randint(config.num_objects[0], m + 1, (n,), generator=g)
    cx, cy, r = (torch.zeros(n, m) for _ in range(3))
    active = torch.zeros(n, m, dtype=torch.bool)
    for k in range(m):  # a loop over object slots; every scene is handled at once
        rt = _uniform(g, (n, _PLACEMENT_TRIES), *config.size_range) * S
        rho = _BOUNDING * rt
        xt = rho + torch.rand(n, _PLACEMENT_TRIES, generator=g) * (S - 2 * rho)
        yt = rho + torch.rand(n, _PLACEMENT_TRIES, generator=g) * (S - 2 * rho)
        ok = torch.ones(n, _PLACEMENT_TRIES, dtype=torch.bool)
        for j in range(k):
            dist = torch.hypot(xt - cx[:, j : j + 1], yt - cy[:, j : j + 1])
            need = (rho + _BOUNDING * r[:, j : j + 1]) * (1 - config.overlap)
            ok &= (dist >= need) | ~active[:, j : j + 1]
        first = ok.int().argmax(dim=1, keepdim=True)  # first valid try (0 if none)
        cx[:, k] = xt.gather(1, first)[:, 0]
        cy[:, k] = yt.gather(1, first)[:, 0]
        r[:, k] = rt.gather(1, first)[:, 0]
        active[:, k] = ok.any(dim=1) & (k < count)
    return cx, cy, r, active


def _smooth_field(n: int, S: int, g: torch.Generator, cells: int = 4) -> Tensor:
    """Low-frequency random field Tensor[n, 3, S, S] in [-1, 1] (bilinear upsampled grid)."""
    coarse = torch.rand(n, 3, cells, cells, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(S, S), mode="bilinear", align_corners=False)


def generate_scenes(
    n: int,
    config: ShapesConfig | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> ShapesBatch:
    """Generate ``n`` shapes scenes, deterministic in ``seed`` and identical on every device.

    Args:
        n: number of scenes (>= 0).
        config: a ``ShapesConfig`` (default: 32x32, one shape, coarse labels).
        seed: seed of the CPU generator that draws every random number.
        device: where the returned tensors live (default CPU); the drawing is done there too.

    Returns:
        ShapesBatch: images, labels, masks, instance ids, boxes and box labels.

    Example:
        >>> batch = generate_scenes(8, ShapesConfig(num_objects=(1, 3)), seed=0)
        >>> batch.images.shape, batch.masks.shape
        (torch.Size([8, 3, 32, 32]), torch.Size([8, 32, 32]))
    """
    config = ShapesConfig() if config is None else config
    if not isinstance(config, ShapesConfig):
        raise TypeError(f"config must be a ShapesConfig, got {type(config).__name__}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    device = torch.device("cpu") if device is None else torch.device(device)
    S, M = config.image_size, config.num_objects[1]
    g = torch.Generator().manual_seed(seed)

    # ---- draw the whole scene description on the CPU generator (device-independent)
    cx, cy, r, active = _place(n, config, g)
    allowed = [f for f, c in enumerate(COARSE_OF_FINE) if CLASSES[c] in config.classes]
    fine = torch.tensor(allowed)[torch.randint(len(allowed), (n, M), generator=g)]
    theta = _uniform(g, (n, M), -1.0, 1.0) * math.radians(config.max_rotation)
    # background: hue, low saturation, value; objects: value at cyclic distance >= 0.35 from it
    bg_hsv = torch.stack([torch.rand(n, generator=g), _uniform(g, (n,), 0, 0.5), torch.rand(n, generator=g)])
    obj_v = (bg_hsv[2][:, None] + _uniform(g, (n, M), 0.35, 0.65)) % 1.0
    obj_rgb = _hsv_to_rgb(torch.rand(n, M, generator=g), _uniform(g, (n, M), 0.3, 1.0), 0.15 + 0.85 * obj_v)
    stripe = torch.stack(  # frequency (cycles per size), direction, phase, amplitude
        [
            _uniform(g, (n, M), 1.0, 3.0),
            _uniform(g, (n, M), 0, math.pi),
            _uniform(g, (n, M), 0, 2 * math.pi),
            _uniform(g, (n, M), 0, 1) * config.texture,
        ]
    )
    field_ = _smooth_field(n, S, g) * config.texture
    noise = torch.randn(n, 3, S, S, generator=g) * config.noise

    to = {"device": device}
    cx, cy, r, active, fine, theta = (t.to(**to) for t in (cx, cy, r, active, fine, theta))
    obj_rgb, stripe, field_, noise = (t.to(**to) for t in (obj_rgb, stripe, field_, noise))
    bg_rgb = _hsv_to_rgb(*bg_hsv.to(**to))

    # ---- paint: background, then each object slot for all scenes at once
    images = (bg_rgb[:, :, None, None] + field_).clamp(0, 1)
    slot = torch.zeros(n, S, S, dtype=torch.int64, device=device)  # 1 + slot index, 0 = background
    coords = torch.arange(S, device=device, dtype=torch.float32) + 0.5  # pixel centres
    ys, xs = coords[:, None], coords[None, :]
    for k in range(M):
        dx = xs[None] - cx[:, k, None, None]
        dy = ys[None] - cy[:, k, None, None]
        cos, sin = theta[:, k].cos()[:, None, None], theta[:, k].sin()[:, None, None]
        rk = r[:, k, None, None]
        u, v = (dx * cos + dy * sin) / rk, (-dx * sin + dy * cos) / rk
        inside = _shape_masks(u, v)  # [F, n, S, S]
        inside = inside.gather(0, fine[None, :, k, None, None].expand(1, n, S, S))[0]
        inside &= active[:, k, None, None]
        freq, ang, phase, amp = (p[:, k, None, None] for p in stripe)
        shade = 1 + amp * torch.sin(2 * math.pi * freq * (u * ang.cos() + v * ang.sin()) + phase)
        colour = (obj_rgb[:, k, :, None, None] * shade[:, None]).clamp(0, 1)
        images = torch.where(inside[:, None], colour, images)
        slot = torch.where(inside, torch.full_like(slot, k + 1), slot)
    images = (images + noise).clamp(0, 1)

    # ---- labels from the painted slots: visible pixels decide everything
    onehot = slot[:, None] == torch.arange(1, M + 1, device=device)[None, :, None, None]  # [n, M, S, S]
    area = onehot.sum(dim=(2, 3))  # [n, M]
    visible = area > 0
    new_id = torch.cumsum(visible.long(), dim=1) * visible  # contiguous ids 1..N_b in slot order
    lut = torch.cat([torch.zeros(n, 1, dtype=torch.int64, device=device), new_id], dim=1)
    instances = lut.gather(1, slot.flatten(1)).view(n, S, S)
    coarse = coarse_from_fine(fine)
    cls = fine if config.fine else coarse  # [n, M]
    cls_lut = torch.cat([torch.zeros(n, 1, dtype=torch.int64, device=device), cls + 1], dim=1)
    masks = cls_lut.gather(1, slot.flatten(1)).view(n, S, S)

    cols, rows = onehot.any(dim=2), onehot.any(dim=3)  # [n, M, S] each
    idx = torch.arange(S, device=device)
    big = torch.full((), S, device=device)
    x1 = torch.where(cols, idx, big).amin(dim=2)
    x2 = torch.where(cols, idx, -1).amax(dim=2) + 1
    y1 = torch.where(rows, idx, big).amin(dim=2)
    y2 = torch.where(rows, idx, -1).amax(dim=2) + 1
    all_boxes = torch.stack([x1, y1, x2, y2], dim=2).float()  # [n, M, 4]
    boxes = [all_boxes[b][visible[b]] for b in range(n)]
    box_labels = [cls[b][visible[b]] + 1 for b in range(n)]

    dominant = area.argmax(dim=1, keepdim=True)  # largest visible shape; first slot on ties
    return ShapesBatch(
        images=images,
        labels=cls.gather(1, dominant)[:, 0],
        coarse_labels=coarse.gather(1, dominant)[:, 0],
        fine_labels=fine.gather(1, dominant)[:, 0],
        masks=masks,
        instances=instances,
        boxes=boxes,
        box_labels=box_labels,
        config=config,
    )


# --------------------------------------------------------------------------- task views


def _config(config: ShapesConfig | None, **overrides) -> ShapesConfig:
    config = ShapesConfig() if config is None else config
    if not isinstance(config, ShapesConfig):
        raise TypeError(f"config must be a ShapesConfig, got {type(config).__name__}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(config, **overrides) if overrides else config


def shapes_classification(
    n: int,
    config: ShapesConfig | None = None,
    *,
    fine: bool | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Images and scene labels ready for ``cvlib.train.fit``.

    Args:
        n: number of scenes. config: scene settings (default one shape per 32x32 image).
        fine: overrides ``config.fine`` when given. seed, device: as in ``generate_scenes``.
    Returns:
        (Tensor[n, 3, S, S], Tensor[n]): float images in [0, 1] and int64 labels in ``0..K-1``.
    """
    batch = generate_scenes(n, _config(config, fine=fine), seed=seed, device=device)
    return batch.images, batch.labels


def shapes_segmentation(
    n: int,
    config: ShapesConfig | None = None,
    *,
    fine: bool | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Images and semantic masks (int64 ``[n, S, S]``, 0 = background, ``1..K`` = class)."""
    batch = generate_scenes(n, _config(config, fine=fine), seed=seed, device=device)
    return batch.images, batch.masks


def shapes_detection(
    n: int,
    config: ShapesConfig | None = None,
    *,
    fine: bool | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """Images and detection targets ``[{"boxes": [N, 4] xyxy float, "labels": [N] int64 1..K}]``."""
    batch = generate_scenes(n, _config(config, fine=fine), seed=seed, device=device)
    return batch.images, batch.targets()


class ShapesClassification(TensorDataset):
    """``TensorDataset`` of (image [3, S, S], label) pairs; ``classes`` names the labels."""

    def __init__(
        self, n: int, config: ShapesConfig | None = None, *, fine: bool | None = None, seed: int = 0
    ):
        cfg = _config(config, fine=fine)
        super().__init__(*shapes_classification(n, cfg, seed=seed))
        self.classes = cfg.class_names


class ShapesSegmentation(TensorDataset):
    """``TensorDataset`` of (image [3, S, S], mask [S, S]) pairs; mask value ``c + 1`` is ``classes[c]``."""

    def __init__(
        self, n: int, config: ShapesConfig | None = None, *, fine: bool | None = None, seed: int = 0
    ):
        cfg = _config(config, fine=fine)
        super().__init__(*shapes_segmentation(n, cfg, seed=seed))
        self.classes = cfg.class_names


def collate_detection(items: Sequence[tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, list[dict]]:
    """Stack same-size images into Tensor[B, 3, H, W] and keep the targets as a list of dicts."""
    if not items:
        raise ValueError("collate_detection needs at least one (image, target) pair, got 0")
    images, targets = zip(*items)
    return torch.stack(images), list(targets)


class ShapesDetection(Dataset):
    """Detection dataset of (image [3, S, S], {"boxes": [N, 4], "labels": [N]}) pairs.

    Default scenes hold 1-4 shapes on 64x64 images. Batch it with ``collate_fn`` (a static method
    equal to :func:`collate_detection`): ``fit(model, ds, collate_fn=ds.collate_fn, ...)``.
    """

    collate_fn = staticmethod(collate_detection)

    def __init__(
        self, n: int, config: ShapesConfig | None = None, *, fine: bool | None = None, seed: int = 0
    ):
        default = ShapesConfig(image_size=64, num_objects=(1, 4), size_range=(0.08, 0.2))
        batch = generate_scenes(n, _config(config or default, fine=fine), seed=seed)
        self.images, self.targets = batch.images, batch.targets()
        self.classes = batch.config.class_names

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        return self.images[i], self.targets[i]
