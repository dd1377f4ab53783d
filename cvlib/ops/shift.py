"""Translate and crop image batches: the inputs of the shift/crop experiment of the CNN-basics chapter.

A fully connected layer ties each weight to one pixel position, so moving the object changes which
weights see it; a convolution followed by global pooling is (nearly) translation invariant
(LeCun et al. 1998; the aliasing caveat is Zhang 2019, "Making convolutional networks
shift-invariant again", arXiv:1904.11486). These helpers produce the shifted and cropped test
inputs; they are vectorised and run on the input's device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cvlib._validate import check_int

__all__ = ["shift_images", "random_shift", "center_crop_and_pad"]


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
    if x.is_complex():
        raise TypeError(f"x must be a real tensor [..., H, W], got dtype {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"x must be [..., H, W] (e.g. [B, C, H, W]), got {tuple(x.shape)}")


def _as_shift(v: int | Tensor, name: str, batch: int | None, device: torch.device) -> Tensor:
    if isinstance(v, bool):
        raise TypeError(f"{name} must be an int or an int64 Tensor[B], got bool")
    if isinstance(v, int):
        return torch.tensor([v], device=device)
    if not isinstance(v, Tensor) or v.is_floating_point() or v.dim() != 1:
        raise TypeError(f"{name} must be an int or an integer Tensor[B], got {v!r:.60}")
    if batch is None or v.shape[0] != batch:
        raise ValueError(f"{name} must have one shift per image ({batch}), got {tuple(v.shape)}")
    return v.to(device=device, dtype=torch.long)


def shift_images(x: Tensor, dx: int | Tensor, dy: int | Tensor, *, fill: float = 0.0) -> Tensor:
    """Translate images by whole pixels; content moved out of the frame is lost, vacated pixels get ``fill``.

    Args:
        x (Tensor[..., H, W]): e.g. ``[B, C, H, W]``; any dtype and device.
        dx: shift to the right (negative: left) in pixels; an int, or an integer ``Tensor[B]`` with
            one shift per image (then ``x`` must be ``[B, ..., H, W]``).
        dy: shift down (negative: up), same forms as ``dx``.
        fill: value of the vacated pixels.

    Returns:
        Tensor: same shape, dtype and device as ``x``; ``out[..., i, j] = x[..., i - dy, j - dx]``
        where that index is inside the image, else ``fill``.
    """
    _check_images(x)
    if x.numel() == 0:
        return x.clone()
    h, w = x.shape[-2:]
    batch = x.shape[0] if x.dim() >= 3 else None
    sx, sy = _as_shift(dx, "dx", batch, x.device), _as_shift(dy, "dy", batch, x.device)
    n = max(sx.numel(), sy.numel())
    rows = torch.arange(h, device=x.device)[None, :] - sy[:, None]  # [n or 1, H] source rows
    cols = torch.arange(w, device=x.device)[None, :] - sx[:, None]  # [n or 1, W] source cols
    rows, cols = rows.expand(n, h), cols.expand(n, w)
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # [n, H, W]
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    if n == 1:
        out = x[..., rows[0][:, None], cols[0][None, :]]  # [..., H, W]
        mask = valid[0]
    else:
        xb = x.reshape(n, -1, h, w)  # [B, M, H, W]
        b = torch.arange(n, device=x.device)[:, None, None]
        out = xb[b, :, rows[:, :, None], cols[:, None, :]]  # [B, H, W, M]
        out = out.permute(0, 3, 1, 2).reshape(x.shape)
        mask = valid.reshape((n,) + (1,) * (x.dim() - 3) + (h, w))
    return torch.where(mask, out, torch.as_tensor(fill, dtype=x.dtype, device=x.device))


def random_shift(
    x: Tensor, max_shift: int, *, generator: torch.Generator | None = None, fill: float = 0.0
) -> Tensor:
    """Shift each image of a batch by its own random (dx, dy), uniform in ``[-max_shift, max_shift]``.

    Usable as a ``fit(..., augment=...)`` transform via ``lambda x, y: (random_shift(x, 2), y)``.

    Args:
        x (Tensor[B, ..., H, W]).
        max_shift: largest shift in pixels (>= 0).
        generator: a CPU ``torch.Generator`` for reproducible shifts.

    Returns:
        Tensor: same shape, dtype and device as ``x``.
    """
    _check_images(x)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")
    if x.dim() < 3:
        raise ValueError(f"x must be a batch [B, ..., H, W], got {tuple(x.shape)}")
    d = torch.randint(-max_shift, max_shift + 1, (2, x.shape[0]), generator=generator)
    return shift_images(x, d[0], d[1], fill=fill)


def center_crop_and_pad(x: Tensor, size: int | tuple[int, int], *, fill: float = 0.0) -> Tensor:
    """Keep the central ``size`` window and replace everything around it by ``fill`` (shape unchanged).

    This simulates a tighter crop of the scene shown at the same scale and position: parts of the
    object near the border are lost, the rest stays where it was.

    Args:
        x (Tensor[..., H, W]).
        size: kept (height, width), or one int for both; ``1 <= size <= (H, W)``. When ``H - size`` is
            odd, the extra row/column is removed at the bottom/right.

    Returns:
        Tensor: same shape, dtype and device as ``x``.
    """
    _check_images(x)
    h, w = x.shape[-2:]
    if isinstance(size, int) and not isinstance(size, bool):
        ch, cw = size, size
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        ch, cw = (check_int(v, "size", min=1) for v in size)
    else:
        raise TypeError(f"size must be an int or (height, width), got {size!r}")
    if isinstance(fill, bool) or not isinstance(fill, (int, float)):
        raise TypeError(f"fill must be a number, got {fill!r}")
    if not (1 <= ch <= h and 1 <= cw <= w):
        raise ValueError(f"size must be between 1 and the image size {(h, w)}, got {size!r}")
    top, left = (h - ch) // 2, (w - cw) // 2
    out = torch.full_like(x, fill)
    out[..., top : top + ch, left : left + cw] = x[..., top : top + ch, left : left + cw]
    return out
