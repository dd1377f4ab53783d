"""Anchor boxes and grid points for dense detectors.

Anchors (Ren et al. 2015, arXiv:1506.01497, Sec. 3.1.1): at every cell of a feature map with stride s,
boxes of a few sizes and aspect ratios centred on the cell. With an FPN (Lin et al. 2017,
arXiv:1612.03144) each level gets one size (32 at stride 4 ... 512 at stride 64) and three aspect ratios.
Anchor-free detectors (FCOS, arXiv:1904.01355) use only the grid points.

Ordering: level by level; within a level row-major over cells (y, then x), and within a cell the
anchors of :meth:`AnchorGenerator.cell_anchors` (all aspect ratios of the first size, then the next
size). A head output ``[B, A * C, H, W]`` therefore lines up after ``.view(B, A, C, H, W)
.permute(0, 3, 4, 1, 2).reshape(B, H * W * A, C)``.

Centres: cell (i, j) has its centre at ``((j + offset) * s, (i + offset) * s)``; ``offset=0.5`` puts
anchors in the middle of the cell (FCOS), ``offset=0`` at its top-left corner (torchvision's anchors).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cvlib._validate import check_float, check_int

__all__ = ["AnchorGenerator", "grid_points"]


def grid_points(
    feature_size: tuple[int, int],
    stride: tuple[float, float] | float,
    *,
    offset: float = 0.5,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Pixel coordinates of the cell centres of an ``H x W`` feature map, row-major.

    Args:
        feature_size (tuple[int, int]): ``(H, W)`` of the feature map.
        stride (tuple[float, float] | float): ``(stride_y, stride_x)`` in input pixels per cell.
        offset (float): position of the point inside its cell, in cells (0.5 = centre).

    Returns:
        Tensor[H * W, 2]: ``(x, y)`` per cell.
    """
    if not isinstance(feature_size, (tuple, list)) or len(feature_size) != 2:
        raise TypeError(f"feature_size must be (H, W), got {feature_size!r}")
    h, w = (check_int(v, "feature_size", min=0) for v in feature_size)
    if isinstance(stride, (int, float)) and not isinstance(stride, bool):
        sy = sx = stride
    elif isinstance(stride, (tuple, list)) and len(stride) == 2:
        sy, sx = stride
    else:
        raise TypeError(f"stride must be a number or (stride_y, stride_x), got {stride!r}")
    sy = check_float(sy, "stride", min=0, min_open=True)
    sx = check_float(sx, "stride", min=0, min_open=True)
    offset = check_float(offset, "offset")
    ys = (torch.arange(h, device=device, dtype=dtype) + offset) * sy
    xs = (torch.arange(w, device=device, dtype=dtype) + offset) * sx
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def _is_nested_numbers(v: object) -> bool:
    def num(t: object) -> bool:
        return isinstance(t, (int, float)) and not isinstance(t, bool) and t == t  # not NaN

    if not isinstance(v, (list, tuple)):
        return False
    return all(num(s) or (isinstance(s, (list, tuple)) and all(num(t) for t in s)) for s in v)


class AnchorGenerator(nn.Module):
    """Anchors of given sizes and aspect ratios on every feature-map level.

    Args:
        sizes (Sequence[Sequence[float]]): per level, the anchor sizes (sqrt of the area, pixels).
        aspect_ratios (Sequence[Sequence[float]]): per level (or one entry for all levels), ratios h / w.
        offset (float): anchor centre inside its cell, in cells (see the module docstring).

    Example:
        >>> gen = AnchorGenerator(sizes=((32,), (64,)), aspect_ratios=((0.5, 1.0, 2.0),))
        >>> [a.shape for a in gen((128, 128), [(16, 16), (8, 8)])]
        [torch.Size([768, 4]), torch.Size([192, 4])]
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]] = ((32,), (64,), (128,), (256,), (512,)),
        aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
        offset: float = 0.0,
    ) -> None:
        super().__init__()
        if not _is_nested_numbers(sizes):
            raise TypeError(f"sizes must be a list of tuples of positive numbers, got {sizes!r}")
        if not _is_nested_numbers(aspect_ratios):
            raise TypeError(
                f"aspect_ratios must be a list of tuples of positive numbers, got {aspect_ratios!r}"
            )
        offset = check_float(offset, "offset")
        sizes = [tuple(s) if isinstance(s, (list, tuple)) else (s,) for s in sizes]
        if not sizes or any(len(s) == 0 or min(s) <= 0 for s in sizes):
            raise ValueError(
                f"sizes must be a non-empty list of non-empty tuples of positive sizes, got {sizes!r}"
            )
        ratios = [tuple(r) for r in aspect_ratios]
        if len(ratios) == 1:
            ratios = ratios * len(sizes)
        if len(ratios) != len(sizes) or any(len(r) == 0 or min(r) <= 0 for r in ratios):
            raise ValueError(
                f"aspect_ratios must have one entry or one per level ({len(sizes)}), "
                f"each with positive ratios; got {aspect_ratios!r}"
            )
        self.sizes, self.aspect_ratios, self.offset = sizes, ratios, float(offset)

    def num_anchors_per_location(self) -> list[int]:
        """A, the number of anchors per cell, for each level."""
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def cell_anchors(self, level: int, device=None, dtype=torch.float32) -> Tensor:
        """Tensor[A, 4]: one cell's anchors centred at the origin, xyxy (h / w = ratio, h * w = size^2)."""
        sizes = torch.tensor(self.sizes[level], device=device, dtype=dtype)
        ratios = torch.tensor(self.aspect_ratios[level], device=device, dtype=dtype)
        h_ratio = torch.sqrt(ratios)
        ws = (sizes[:, None] / h_ratio[None, :]).reshape(-1)  # [sizes * ratios]
        hs = (sizes[:, None] * h_ratio[None, :]).reshape(-1)
        return torch.stack([-ws, -hs, ws, hs], dim=1) / 2

    def forward(
        self,
        image_size: tuple[int, int],
        feature_sizes: Sequence[tuple[int, int]],
        *,
        device=None,
        dtype=None,
    ) -> list[Tensor]:
        """Anchors for one image size (shared by a batch).

        Args:
            image_size (tuple[int, int]): ``(H, W)`` of the (padded) input images.
            feature_sizes (Sequence[tuple[int, int]]): ``(H_l, W_l)`` per level (or the feature maps).

        Returns:
            list[Tensor[H_l * W_l * A, 4]]: xyxy pixel anchors, one tensor per level.
        """
        feature_sizes = [tuple(f.shape[-2:]) if isinstance(f, Tensor) else tuple(f) for f in feature_sizes]
        if len(feature_sizes) != len(self.sizes):
            raise ValueError(
                f"feature_sizes must have one entry per anchor level ({len(self.sizes)}), "
                f"got {len(feature_sizes)}"
            )
        dtype = dtype or torch.float32
        out = []
        for level, (fh, fw) in enumerate(feature_sizes):
            stride = (image_size[0] / fh, image_size[1] / fw)
            pts = grid_points((fh, fw), stride, offset=self.offset, device=device, dtype=dtype)
            shifts = torch.cat([pts, pts], dim=1)  # [H*W, 4]
            cell = self.cell_anchors(level, device=device, dtype=dtype)  # [A, 4]
            out.append((shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4))  # [H*W*A, 4]
        return out
