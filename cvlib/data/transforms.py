"""Batched, on-device data augmentation with targets that stay consistent with the images.

Every transform is a callable ``(x, y) -> (x, y)`` that works on a whole batch on the batch's
device, so it can be passed to ``cvlib.train.fit(..., augment=...)`` (applied to training
batches only). ``x`` is a float image batch ``[B, C, H, W]``; the kind of ``y`` is read from its
type and shape and geometric transforms move it with the pixels:

* ``None``, class labels ``[B]`` (int64) or soft labels ``[B, K]`` (float): left as they are;
* a semantic / instance mask ``[B, H, W]`` (int64): warped with nearest-neighbour sampling;
* detection targets, a list of ``B`` dicts with ``"boxes"`` (``[N, 4]`` xyxy absolute pixels,
  float) and ``"labels"`` (``[N]``): boxes are mapped, clipped to the image, and boxes that
  become smaller than ``min_box_size`` pixels (or keep less than ``min_visibility`` of their
  area) are dropped together with every per-box entry of the dict (each tensor whose first
  dimension is ``N``).

What datasets yield is accepted as it is: a ``uint8`` image batch (0..255) is converted to float
in [0, 1], and integer (or numpy / list) boxes to float32, by :func:`prepare_batch`, which every
transform calls first; the outputs follow cvlib's conventions (float images, float boxes). Other
integer or bool images are refused with a message saying how to convert them.

Random parameters come from a CPU ``torch.Generator`` (``seed=`` or ``generator=``) and are
moved to the data's device, so a seed gives the same augmentation on every device.

Methods: random resized crops and horizontal flips as in AlexNet/Inception training (Krizhevsky
et al. 2012; Szegedy et al. 2015, arXiv:1409.4842), padded crops as for CIFAR ResNets (He et al.
2016, arXiv:1512.03385), mixup (Zhang et al. 2018, arXiv:1710.09412) and CutMix (Yun et al.
2019, arXiv:1905.04899). MixUp and CutMix return soft labels ``[B, K]`` whose rows sum to 1;
``torch.nn.functional.cross_entropy`` (the default loss of ``cvlib.train.fit``) accepts such
class-probability targets directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Compose",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomCrop",
    "ColorJitter",
    "Normalize",
    "MixUp",
    "CutMix",
    "target_kind",
    "prepare_batch",
]

Target = Any  # None | Tensor[B] | Tensor[B, K] | Tensor[B, H, W] | list[dict[str, Tensor]]


def target_kind(x: Tensor, y: Target) -> str:
    """Classify ``y`` as ``"none"``, ``"labels"``, ``"mask"`` or ``"boxes"`` and check it against ``x``.

    Raises:
        TypeError: if ``x`` is not a floating tensor or ``y`` is of an unsupported type.
        ValueError: if shapes disagree (batch size, mask size, box shape).
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point Tensor[B, C, H, W], got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
    B, _, H, W = x.shape
    if y is None:
        return "none"
    if isinstance(y, Tensor):
        if y.shape[:1] != (B,):
            raise ValueError(f"y must have batch size {B} like x, got {tuple(y.shape)}")
        if y.ndim in (1, 2):
            return "labels"
        if y.ndim == 3 and y.shape[1:] == (H, W):
            return "mask"
        raise ValueError(
            f"y must be labels [B], soft labels [B, K] or a mask [B, {H}, {W}], got {tuple(y.shape)}"
        )
    if isinstance(y, (list, tuple)) and all(isinstance(t, dict) for t in y):
        if len(y) != B:
            raise ValueError(f"y must hold one target dict per image ({B}), got {len(y)}")
        for i, t in enumerate(y):
            boxes = t.get("boxes")
            if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
                got = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
                raise ValueError(f"y[{i}]['boxes'] must be [N, 4], got {got}")
        return "boxes"
    raise TypeError(f"y must be None, a Tensor or a list of target dicts, got {type(y).__name__}")


def _float_boxes(boxes: Any, i: int) -> Tensor:
    if not isinstance(boxes, Tensor):
        if isinstance(boxes, (np.ndarray, list, tuple)):
            try:
                boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
            except ValueError as e:
                raise ValueError(f"y[{i}]['boxes'] must be [N, 4] numbers, got {boxes!r}") from e
        else:
            raise TypeError(f"y[{i}]['boxes'] must be a Tensor[N, 4], got {type(boxes).__name__}")
    if boxes.dtype == torch.bool or boxes.is_complex():
        raise TypeError(f"y[{i}]['boxes'] must hold real numbers (float or int), got {boxes.dtype}")
    if not boxes.is_floating_point():
        boxes = boxes.to(torch.float32)
    if boxes.ndim == 2 and boxes.shape[1] == 4 and boxes.numel():
        if not torch.isfinite(boxes).all():
            raise ValueError(f"y[{i}]['boxes'] must be finite, got NaN or inf")
        inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if inverted.any():
            bad = int(inverted.nonzero()[0])
            raise ValueError(
                f"y[{i}]['boxes'] must be xyxy with x2 >= x1 and y2 >= y1, got {boxes[bad].tolist()} "
                f"at row {bad}"
            )
    return boxes


def prepare_batch(x: Tensor, y: Target = None) -> tuple[Tensor, Target]:
    """Bring a batch as datasets yield it to what the transforms work on.

    Args:
        x (Tensor[B, C, H, W]): float images, or ``uint8`` images in 0..255.
        y: any target of :func:`target_kind`; detection boxes may be integer tensors, numpy
            arrays or lists.

    Returns:
        ``x`` as float in [0, 1] (``uint8``: divided by 255; float: unchanged) and ``y`` with
        float32 boxes (other entries unchanged; the caller's dicts are not modified).

    Raises:
        TypeError: ``x`` is not a Tensor, or has another integer, bool or complex dtype (convert
            with ``x.float() / max_value``), or boxes are not numbers.
        ValueError: boxes with NaN/inf or x2 < x1 / y2 < y1.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a Tensor[B, C, H, W], got {type(x).__name__}")
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    elif not x.is_floating_point():
        raise TypeError(
            f"x must be float images in [0, 1] or uint8 in 0..255, got {x.dtype}; convert with "
            f"x.float() / max_value"
        )
    if isinstance(y, (list, tuple)) and all(isinstance(t, dict) for t in y):
        y = [{**t, "boxes": _float_boxes(t["boxes"], i)} if "boxes" in t else t for i, t in enumerate(y)]
    return x, y


def _make_generator(seed: int, generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        return torch.Generator().manual_seed(seed)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(
            f"generator must live on the CPU (parameters move to the data), got {generator.device}"
        )
    return generator


def _check_range(name: str, value: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    if len(value) != 2 or not (lo <= value[0] <= value[1] <= hi):
        raise ValueError(f"{name} must be (min, max) with {lo} <= min <= max <= {hi}, got {tuple(value)}")
    return float(value[0]), float(value[1])


def _filter_boxes(t: dict, boxes: Tensor, keep: Tensor) -> dict:
    """Replace the boxes of target dict ``t`` and keep only rows ``keep`` of its per-box tensors."""
    n = t["boxes"].shape[0]
    out = {
        k: (v[keep] if isinstance(v, Tensor) and v.ndim >= 1 and v.shape[0] == n else v) for k, v in t.items()
    }
    out["boxes"] = boxes[keep]
    return out


class Compose:
    """Apply transforms in order: ``Compose(flip, crop, jitter)(x, y)``."""

    def __init__(self, *transforms: Callable[[Tensor, Target], tuple[Tensor, Target]]):
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}] must be callable (x, y) -> (x, y), got {type(t).__name__}")
        self.transforms = transforms

    def __call__(self, x: Tensor, y: Target = None) -> tuple[Tensor, Target]:
        for t in self.transforms:
            x, y = t(x, y)
        return x, y

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``; masks and boxes follow.

    Args:
        p: probability of flipping each image, in [0, 1].
        seed, generator: the source of randomness (a CPU ``torch.Generator`` wins over ``seed``).
    """

    def __init__(self, p: float = 0.5, *, seed: int = 0, generator: torch.Generator | None = None):
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p
        self.generator = _make_generator(seed, generator)

    def __call__(self, x: Tensor, y: Target = None) -> tuple[Tensor, Target]:
        x, y = prepare_batch(x, y)
        kind = target_kind(x, y)
        flip = (torch.rand(x.shape[0], generator=self.generator) < self.p).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if kind == "mask":
            y = torch.where(flip[:, None, None], y.flip(-1), y)
        elif kind == "boxes":
            W = x.shape[-1]
            out = []
            for t, f in zip(y, flip.tolist()):
                b = t["boxes"]
                b = torch.stack([W - b[:, 2], b[:, 1], W - b[:, 0], b[:, 3]], dim=1) if f else b
                out.append({**t, "boxes": b})
            y = out
        return x, y

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class _Warp:
    """Shared machinery: per-image axis-aligned crop windows resampled to a fixed output size.

    A window ``(x0, y0, w, h)`` in input pixels (it may extend past the image: padding) is mapped
    onto the ``out_w x out_h`` output; input point ``x`` goes to ``(x - x0) * out_w / w``.
    """

    fill: float
    mask_fill: int
    min_box_size: float
    min_visibility: float

    def _windows(self, B: int, H: int, W: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _apply(self, x: Tensor, y: Target, out_hw: tuple[int, int]) -> tuple[Tensor, Target]:
        kind = target_kind(x, y)
        B, _, H, W = x.shape
        oh, ow = out_hw
        x0, y0, w, h = (t.to(device=x.device, dtype=torch.float32) for t in self._windows(B, H, W))
        # sampling grid in grid_sample's normalised coordinates (align_corners=False: -1/+1 are the
        # outer pixel edges); output pixel centre j + 0.5 reads input x0 + (j + 0.5) * w / ow
        cols = x0[:, None] + (torch.arange(ow, device=x.device) + 0.5)[None] * (w / ow)[:, None]  # [B, ow]
        rows = y0[:, None] + (torch.arange(oh, device=x.device) + 0.5)[None] * (h / oh)[:, None]  # [B, oh]
        grid = torch.stack(
            [
                (2 * cols / W - 1)[:, None, :].expand(B, oh, ow),
                (2 * rows / H - 1)[:, :, None].expand(B, oh, ow),
            ],
            dim=-1,
        ).to(x.dtype)  # [B, oh, ow, 2]
        # sampling (v - fill) with zero padding and adding fill back pads with ``fill``
        x = F.grid_sample(x - self.fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        x = x + self.fill
        if kind == "mask":
            m = (y.to(grid.dtype) - self.mask_fill)[:, None]
            m = F.grid_sample(m, grid, mode="nearest", padding_mode="zeros", align_corners=False)
            y = (m[:, 0] + self.mask_fill).round().to(y.dtype)
        elif kind == "boxes":
            sx, sy = (ow / w).tolist(), (oh / h).tolist()
            out = []
            for i, t in enumerate(y):
                b = t["boxes"]
                off = torch.tensor([x0[i], y0[i], x0[i], y0[i]], device=b.device, dtype=b.dtype)
                scale = torch.tensor([sx[i], sy[i], sx[i], sy[i]], device=b.device, dtype=b.dtype)
                mapped = (b - off) * scale
                limit = torch.tensor([ow, oh, ow, oh], device=b.device, dtype=b.dtype)
                clipped = torch.minimum(mapped.clamp(min=0), limit)
                bw, bh = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
                full = ((mapped[:, 2] - mapped[:, 0]) * (mapped[:, 3] - mapped[:, 1])).clamp(min=1e-12)
                keep = (bw >= self.min_box_size) & (bh >= self.min_box_size)
                keep &= bw * bh >= self.min_visibility * full
                out.append(_filter_boxes(t, clipped, keep))
            y = out
        return x, y


class RandomResizedCrop(_Warp):
    """Crop a random window of random area and aspect ratio and resize it to ``size``.

    The window covers a fraction ``scale`` of the image area (values above 1 zoom out and pad
    with ``fill`` / ``mask_fill``) with aspect ratio (w / h) log-uniform in ``ratio``; it is
    shrunk to fit the image when ``scale <= 1`` would overflow, and its position is uniform.
    Images are resampled bilinearly, masks by nearest neighbour, boxes by the same affine map.

    Args:
        size: output ``(H, W)`` or an int for a square; None keeps the input size.
        scale: range of the window area as a fraction of the image area, ``0 < min <= max <= 4``.
        ratio: range of the window aspect ratio w / h.
        fill: image value outside the input. mask_fill: mask value outside (255 = ignore_index).
        min_box_size: boxes narrower or lower than this (output pixels) after clipping are dropped.
        min_visibility: boxes keeping less than this fraction of their area are dropped.
        seed, generator: the source of randomness.
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale: tuple[float, float] = (0.35, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        *,
        fill: float = 0.0,
        mask_fill: int = 255,
        min_box_size: float = 2.0,
        min_visibility: float = 0.25,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ):
        self.size = _check_size(size)
        self.scale = _check_range("scale", scale, 1e-6, 4.0)
        self.ratio = _check_range("ratio", ratio, 1e-3, 1e3)
        if not 0 <= min_visibility <= 1:
            raise ValueError(f"min_visibility must be in [0, 1], got {min_visibility}")
        self.fill, self.mask_fill = float(fill), int(mask_fill)
        self.min_box_size, self.min_visibility = float(min_box_size), float(min_visibility)
        self.generator = _make_generator(seed, generator)

    def _windows(self, B: int, H: int, W: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        g = self.generator
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * torch.rand(
            B, generator=g, dtype=torch.float64
        )
        lr = math.log(self.ratio[0]), math.log(self.ratio[1])
        r = torch.exp(lr[0] + (lr[1] - lr[0]) * torch.rand(B, generator=g, dtype=torch.float64))
        w = torch.sqrt(area * r) * W
        h = torch.sqrt(area / r) * H
        if self.scale[1] <= 1:  # plain crops stay inside the image
            w, h = w.clamp(max=W), h.clamp(max=H)
        x0 = torch.minimum(W - w, torch.zeros(())) + (W - w).abs() * torch.rand(
            B, generator=g, dtype=torch.float64
        )
        y0 = torch.minimum(H - h, torch.zeros(())) + (H - h).abs() * torch.rand(
            B, generator=g, dtype=torch.float64
        )
        return x0, y0, w, h

    def __call__(self, x: Tensor, y: Target = None) -> tuple[Tensor, Target]:
        x, y = prepare_batch(x, y)
        target_kind(x, y)
        return self._apply(x, y, self.size or (x.shape[-2], x.shape[-1]))

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomCrop(_Warp):
    """Pad by ``padding`` pixels on every side and crop a random ``size`` window (integer offsets).

    The CIFAR recipe of He et al. 2016 is ``RandomCrop(padding=4)`` on 32x32 images. Pixels are
    copied, not blended (offsets are whole pixels; equal up to float rounding), masks and boxes
    shift with them.

    Args:
        size: output ``(H, W)`` or int; None keeps the input size.
        padding: pixels added on each side before cropping (>= 0).
        fill, mask_fill, min_box_size, min_visibility, seed, generator: as in ``RandomResizedCrop``.
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        padding: int = 4,
        *,
        fill: float = 0.0,
        mask_fill: int = 255,
        min_box_size: float = 2.0,
        min_visibility: float = 0.25,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ):
        self.size = _check_size(size)
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be an int >= 0, got {padding!r}")
        self.padding = padding
        self.fill, self.mask_fill = float(fill), int(mask_fill)
        self.min_box_size, self.min_visibility = float(min_box_size), float(min_visibility)
        self.generator = _make_generator(seed, generator)
        self._out: tuple[int, int] = (0, 0)

    def _windows(self, B: int, H: int, W: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        oh, ow = self._out
        p = self.padding
        if oh > H + 2 * p or ow > W + 2 * p:
            raise ValueError(f"size {self._out} does not fit in the padded image ({H + 2 * p}, {W + 2 * p})")
        x0 = torch.randint(-p, W + p - ow + 1, (B,), generator=self.generator).double()
        y0 = torch.randint(-p, H + p - oh + 1, (B,), generator=self.generator).double()
        return (
            x0,
            y0,
            torch.full((B,), float(ow), dtype=torch.float64),
            torch.full((B,), float(oh), dtype=torch.float64),
        )

    def __call__(self, x: Tensor, y: Target = None) -> tuple[Tensor, Target]:
        x, y = prepare_batch(x, y)
        target_kind(x, y)
        self._out = self.size or (x.shape[-2], x.shape[-1])
        return self._apply(x, y, self._out)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


def _check_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
    return (size[0], size[1])


def _gray(x: Tensor) -> Tensor:
    """ITU-R BT.601 luma of an RGB batch, Tensor[B, 1, H, W]."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
    return (x * w[:, None, None]).sum(dim=1, keepdim=True)


class ColorJitter:
    """Random brightness, contrast and saturation, one factor of each per image (RGB in [0, 1]).

    Factors are uniform in ``[1 - b, 1 + b]``: brightness scales the pixels, contrast blends
    with the image's mean grey, saturation with the pixel's own grey; the result is clamped to
    [0, 1]. Targets are returned unchanged.
    """

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ):
        for name, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        self.strength = (brightness, contrast, saturation)
        self.generator = _make_generator(seed, generator)

    def __call__(self, x: Tensor, y: Target = None) -> tuple[Tensor, Target]:
        x, y = prepare_batch(x, y)
        target_kind(x, y)
        if x.shape[1] != 3:
            raise ValueError(f"ColorJitter needs RGB images [B, 3, H, W], got {tuple(x.shape)}")
        u = torch.rand(3, x.shape[0], generator=self.generator) * 2 - 1
        f = (1 + torch.tensor(self.strength)[:, None] * u).to(device=x.device, dtype=x.dtype)
        x = (x * f[0, :, None, None, None]).clamp(0, 1)
        mean = _gray(x).mean(dim=(2, 3), keepdim=True)
        x = (mean + (x - mean) * f[1, :, None, None, None]).clamp(0, 1)
        grey = _gray(x)
        x = (grey + (x - grey) * f[2, :, None, None, None]).clamp(0, 1)
        return x, y

    def __repr__(self) -> str:
        b, c, s = self.strength
        return f"ColorJitter(brightness={b}, contrast={c}, saturation={s})"


class Normalize:
    """``(x - mean) / std`` per channel (deterministic; e.g. ImageNet statistics for pretrained nets)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        for name, v in (("mean", mean), ("std", std)):
            if isinstance(v, (str, bytes)) or not isinstance(v, (Sequence, Tensor, np.ndarray)):
                raise TypeError(
                    f"{name} must be a sequence of floats (one per channel), got {type(v).__name__}"
                )
            try:
                values = [float(e) for e in v]
            except (TypeError, ValueError) as e:
                raise TypeError(f"{name} must hold numbers, got {list(v)!r}") from e
            if not all(math.isfinite(e) for e in values):
                raise ValueError(f"{name} must be finite, got {values}")
        if len(mean) != len(std) or not len(mean):
            raise ValueError(
                f"mean and std must have the same non-zero length, got {len(mean)} and {len(std)}"
            )
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be > 0, got {tuple(std)}")
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def __call__(self, x: Tensor, y: Target = None) -> tuple[Tensor, Target]:
        x, y = prepare_batch(x, y)
        target_kind(x, y)
        if x.shape[1] != len(self.mean):
            raise ValueError(f"x has {x.shape[1]} channels but mean/std have {len(self.mean)}")
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype)[:, None, None]
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype)[:, None, None]
        return (x - mean) / std, y

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class _Mix:
    """Shared part of MixUp / CutMix: partner permutation, Beta-distributed weights, soft labels."""

    def __init__(self, alpha: float, num_classes: int | None, seed: int, generator: torch.Generator | None):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
            raise ValueError(f"num_classes must be an int >= 2 or None, got {num_classes!r}")
        self.alpha, self.num_classes = float(alpha), num_classes
        self.generator = _make_generator(seed, generator)

    def _draw(self, B: int) -> tuple[Tensor, Tensor]:
        perm = torch.randperm(B, generator=self.generator)
        # torch's Beta sampler takes no generator: seed NumPy's from ours to stay reproducible
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=self.generator)))
        lam = torch.from_numpy(rng.beta(self.alpha, self.alpha, size=B))
        return perm, lam

    def _soft(self, x: Tensor, y: Target) -> Tensor:
        if target_kind(x, y) != "labels":
            raise ValueError("MixUp/CutMix need class labels [B] or soft labels [B, K] as y")
        if y.ndim == 2:
            if not y.is_floating_point():
                raise TypeError(f"soft labels must be float, got {y.dtype}")
            return y.to(x.dtype)
        if y.is_floating_point():
            raise TypeError(f"class labels [B] must be integers, got {y.dtype}")
        if y.dtype == torch.bool or y.is_complex():
            raise TypeError(f"class labels [B] must be integers, got {y.dtype}")
        if self.num_classes is None:
            raise ValueError("num_classes is needed to turn class labels [B] into soft labels")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(
                f"class labels must be in [0, {self.num_classes}) (num_classes={self.num_classes}), got "
                f"values from {int(y.min())} to {int(y.max())}"
            )
        return F.one_hot(y.long(), self.num_classes).to(x.dtype)


class MixUp(_Mix):
    """mixup (Zhang et al. 2018, arXiv:1710.09412): convex blends of image pairs and of their labels.

    Each image ``i`` is blended with a partner ``perm[i]`` (a random permutation of the batch)
    with its own weight ``lam_i ~ Beta(alpha, alpha)``: ``x_i = lam_i x_i + (1 - lam_i) x_perm[i]``
    and the same for the one-hot labels. Returns soft labels Tensor[B, K] (rows sum to 1) that the
    default cross-entropy of ``cvlib.train.fit`` accepts.

    Args:
        alpha: Beta concentration (the paper uses 0.1-0.4 on ImageNet); > 0.
        num_classes: K, needed when ``y`` holds class indices.
    """

    def __init__(
        self,
        alpha: float = 0.2,
        num_classes: int | None = None,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ):
        super().__init__(alpha, num_classes, seed, generator)

    def __call__(self, x: Tensor, y: Target) -> tuple[Tensor, Tensor]:
        x, y = prepare_batch(x, y)
        soft = self._soft(x, y)
        perm, lam = self._draw(x.shape[0])
        perm, lam = perm.to(x.device), lam.to(device=x.device, dtype=x.dtype)
        x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
        return x, lam[:, None] * soft + (1 - lam[:, None]) * soft[perm]

    def __repr__(self) -> str:
        return f"MixUp(alpha={self.alpha}, num_classes={self.num_classes})"


class CutMix(_Mix):
    """CutMix (Yun et al. 2019, arXiv:1905.04899): paste a random box from a partner image.

    For image ``i`` a box of area ``(1 - lam_i) H W`` (``lam_i ~ Beta(alpha, alpha)``, aspect as
    the image) centred uniformly at random and clipped to the image is copied from ``x[perm[i]]``;
    the labels are mixed by the pasted area actually kept, so rows of the returned soft labels
    Tensor[B, K] sum to 1 and weigh each class by its visible share of pixels.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        num_classes: int | None = None,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ):
        super().__init__(alpha, num_classes, seed, generator)

    def __call__(self, x: Tensor, y: Target) -> tuple[Tensor, Tensor]:
        x, y = prepare_batch(x, y)
        soft = self._soft(x, y)
        B, _, H, W = x.shape
        perm, lam = self._draw(B)
        centre = torch.rand(B, 2, generator=self.generator, dtype=torch.float64)
        cut = torch.sqrt(1 - lam)
        x1 = ((centre[:, 0] - cut / 2) * W).round().clamp(0, W)
        x2 = ((centre[:, 0] + cut / 2) * W).round().clamp(0, W)
        y1 = ((centre[:, 1] - cut / 2) * H).round().clamp(0, H)
        y2 = ((centre[:, 1] + cut / 2) * H).round().clamp(0, H)
        lam = 1 - (x2 - x1) * (y2 - y1) / (H * W)  # the share of the own image really kept
        dev = x.device
        cols = torch.arange(W, device=dev)[None, None, :]
        rows = torch.arange(H, device=dev)[None, :, None]
        x1, x2, y1, y2 = (t.to(dev)[:, None, None] for t in (x1, x2, y1, y2))
        box = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)  # [B, H, W]
        perm, lam = perm.to(dev), lam.to(device=dev, dtype=x.dtype)
        x = torch.where(box[:, None], x[perm], x)
        return x, lam[:, None] * soft + (1 - lam[:, None]) * soft[perm]

    def __repr__(self) -> str:
        return f"CutMix(alpha={self.alpha}, num_classes={self.num_classes})"
