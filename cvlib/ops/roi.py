"""Region-of-interest pooling in pure PyTorch: RoIPool (Girshick 2015, arXiv:1504.08083) and RoIAlign
(He et al. 2017, Mask R-CNN, arXiv:1703.06870).

Both cut a fixed ``output_size`` grid of bins out of a feature map for each box. RoIPool rounds the box
to feature cells and max-pools each bin; RoIAlign keeps the box continuous and averages bilinear samples
(``sampling_ratio`` per bin side, or ``ceil(roi_size / output_size)`` when it is <= 0). The sampling
conventions (``aligned`` half-pixel shift, out-of-map samples counting as 0, the 1-pixel minimum roi
size when ``aligned=False``) follow the Detectron2 / torchvision kernels, so results are comparable.

Implementation: bilinear sampling on a regular grid is separable. Along each axis, the mean over a
bin's samples of their two bilinear taps is a row of weights over feature cells, so a roi's output is
``Ay @ crop @ Ax^T`` with ``Ay`` Tensor[out_h, Ty] and ``Ax`` Tensor[out_w, Tx] on the ``Ty`` x ``Tx``
distinct cells its samples touch (the roi's crop when samples are denser than cells, a few rows and
columns around the samples when they are sparser). Rois are sorted by crop size and pooled in groups
with one batched gather of their crops (channels last) and two batched matmuls, so each roi costs
about its own crop, whatever the largest roi; Python loops run over groups and memory-bounded chunks
of rois, not over single boxes (RoIPool loops over chunks of boxes only to bound memory).

Boxes are given as a list of Tensor[K_b, 4] (one per image) or a Tensor[K, 5] whose first column is
the image index; coordinates are xyxy in input pixels and ``spatial_scale`` maps them to the map
(``1 / stride``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["roi_align", "roi_pool", "convert_boxes_to_roi_format"]


def convert_boxes_to_roi_format(boxes: list[Tensor] | Tensor, batch_size: int | None = None) -> Tensor:
    """Boxes as Tensor[K, 5] ``(batch_index, x1, y1, x2, y2)``.

    Args:
        boxes (list[Tensor[K_b, 4]] | Tensor[K, 5]): per-image boxes or rois with image index.
        batch_size (int | None): if given, image indices must be below it.
    """
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
                shape = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
                raise ValueError(f"boxes[{i}] must be a Tensor[K, 4], got {shape}")
            if b.is_complex() or b.dtype == torch.bool:
                raise TypeError(f"boxes[{i}] must hold real coordinates, got dtype {b.dtype}")
        if batch_size is not None and len(boxes) != batch_size:
            raise ValueError(f"boxes must have one entry per image ({batch_size}), got {len(boxes)}")
        if not boxes:
            raise ValueError("boxes must not be an empty list")
        dtype = boxes[0].dtype
        idx = [torch.full((len(b), 1), i, dtype=dtype, device=b.device) for i, b in enumerate(boxes)]
        rois = torch.cat([torch.cat([i, b.to(dtype)], dim=1) for i, b in zip(idx, boxes)], dim=0)
    elif isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                f"boxes must be a list of Tensor[K, 4] or a Tensor[K, 5], got {tuple(boxes.shape)}"
            )
        if boxes.is_complex() or boxes.dtype == torch.bool:
            raise TypeError(f"boxes must hold real coordinates, got dtype {boxes.dtype}")
        rois = boxes
    else:
        raise TypeError(f"boxes must be a list of tensors or a Tensor, got {type(boxes).__name__}")
    if rois.numel() and not bool(torch.isfinite(rois).all()):
        i = int((~torch.isfinite(rois).all(1)).nonzero()[0, 0])
        raise ValueError(f"boxes contains a non-finite value at roi {i}")
    if batch_size is not None and rois.numel():
        bi = rois[:, 0]
        bad = (bi < 0) | (bi >= batch_size) | (bi != bi.round())
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"roi {i} has image index {bi[i].item()}, expected an int in [0, {batch_size})")
    return rois


def _check(
    input: Tensor, boxes, output_size, spatial_scale: float, inverted: bool = True
) -> tuple[Tensor, tuple[int, int]]:
    if not isinstance(input, Tensor):
        raise TypeError(f"input must be a Tensor[B, C, H, W], got {type(input).__name__}")
    if input.dim() != 4:
        raise ValueError(f"input must be a Tensor[B, C, H, W], got {tuple(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point feature map, got dtype {input.dtype}")
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        output_size = (output_size, output_size)
    if (
        not isinstance(output_size, (tuple, list))
        or len(output_size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in output_size)
    ):
        raise ValueError(
            f"output_size must be a positive int or (out_h, out_w) of positive ints, got {output_size!r}"
        )
    oh, ow = output_size
    # coordinates in float32 at least: half/bfloat16 cannot represent pixel positions of large maps
    try:
        scale = float(spatial_scale)
    except (TypeError, ValueError):
        raise TypeError(f"spatial_scale must be a float, got {type(spatial_scale).__name__}") from None
    if not scale > 0 or scale == float("inf"):
        raise ValueError(f"spatial_scale must be a finite number > 0 (1 / stride), got {spatial_scale!r}")
    rois = convert_boxes_to_roi_format(boxes, input.shape[0]).to(
        torch.promote_types(input.dtype, torch.float32)
    )
    if inverted and rois.numel():
        bad = (rois[:, 3] < rois[:, 1]) | (rois[:, 4] < rois[:, 2])
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"boxes must be xyxy with x1 <= x2 and y1 <= y2; roi {i} is inverted: {rois[i, 1:].tolist()}"
            )
    return rois, (oh, ow)


def _axis_taps(start: Tensor, size: Tensor, bins: int, grid: Tensor, g_max: int, length: int):
    """Bilinear sampling along one axis as a weight matrix on the distinct feature cells it touches.

    For n rois, the samples of bin ``p`` are at ``start + (p + (i + 0.5) / grid) * size / bins`` for
    ``i < grid``; each is a blend of its ``low`` and ``high`` cell (clamped to the map, weight 0 outside
    ``[-1, length]``). The mean over the samples of a bin is a row of weights over cells, so the axis is
    summarised by ``cells`` Tensor[n, T] (the distinct cells of each roi, ascending, padded with its last
    one) and ``weights`` Tensor[n, bins, T] (bin ``p``'s mean tap weight on ``cells[:, t]``).
    """
    n = start.shape[0]
    bin_size = size / bins  # [n]
    p = torch.arange(bins, device=start.device, dtype=start.dtype)
    i = torch.arange(g_max, device=start.device, dtype=start.dtype)
    frac = (i[None, :] + 0.5) / grid[:, None]  # [n, g]
    pos = (
        start[:, None, None] + (p[None, :, None] + frac[:, None, :]) * bin_size[:, None, None]
    )  # [n, bins, g]
    valid = (i[None, None, :] < grid[:, None, None]) & (pos >= -1.0) & (pos <= length)
    pos = pos.clamp(min=0)
    low = pos.floor().clamp(max=length - 1)
    at_edge = low >= length - 1
    pos = torch.where(at_edge, low, pos)
    w_high = pos - low
    w_low = 1 - w_high
    low = low.long()
    high = torch.where(at_edge, low, low + 1)
    # samples that do not count (out of the map, or beyond this roi's own grid) point at the roi's first
    # tap with weight 0, so that they add no cell
    first = low[:, :1, :1]
    taps = torch.cat([torch.where(valid, low, first), torch.where(valid, high, first)], dim=2)  # [n,bins,2g]
    vf = valid.to(start.dtype) / grid[:, None, None]
    wgt = torch.cat([w_low * vf, w_high * vf], dim=2)  # [n, bins, 2g]
    # distinct cells of each roi: sort its taps, number the first of each run of equal cells
    flat = taps.reshape(n, -1)
    sv, perm = flat.sort(dim=1)
    new = torch.ones_like(sv, dtype=torch.bool)
    new[:, 1:] = sv[:, 1:] != sv[:, :-1]
    rank_sorted = new.long().cumsum(1) - 1
    t = int(rank_sorted[:, -1].max()) + 1
    rank = torch.empty_like(rank_sorted).scatter_(1, perm, rank_sorted)  # column of each tap
    cells = sv[:, -1:].repeat(1, t).scatter_(1, rank_sorted, sv)  # equal taps write equal cells
    weights = wgt.new_zeros((n, bins, t)).scatter_add(2, rank.view(n, bins, -1), wgt)
    return cells, weights


def _tap_bound(start: Tensor, size: Tensor, bins: int, grid: Tensor, length: int) -> Tensor:
    """Upper bound of the number of distinct cells :func:`_axis_taps` returns per roi (Tensor[n])."""
    step = size / (bins * grid)
    lo = (start + 0.5 * step).clamp(0, length - 1).floor()
    hi = (start + size - 0.5 * step).clamp(0, length - 1).floor() + 2  # + 1 for the high tap, + 1 slack
    return torch.minimum((hi - lo + 1).clamp(1, length), 2 * bins * grid)


def roi_align(
    input: Tensor,
    boxes: list[Tensor] | Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (He et al. 2017): average of bilinear samples in each output bin.

    Args:
        input (Tensor[B, C, H, W]): feature maps.
        boxes (list[Tensor[K_b, 4]] | Tensor[K, 5]): xyxy boxes in input-image pixels (see module docstring),
            with x1 <= x2 and y1 <= y2.
        output_size (int | tuple[int, int]): ``(out_h, out_w)`` bins.
        spatial_scale (float): multiply box coordinates by this to get feature-map coordinates (> 0).
        sampling_ratio (int): samples per bin side; <= 0 means adaptive ``ceil(roi_size / out_size)``.
        aligned (bool): shift boxes by -0.5 cell so that a pixel's centre maps to a sample point exactly.

    Returns:
        Tensor[K, C, out_h, out_w]: pooled features, in the order of the rois.

    Memory is bounded: crops are gathered in chunks of rois (and, for very large rois, of crop rows and
    columns) of at most ``2**20`` cells x channels (4 MB in float32), whatever the sizes; besides the
    output, a channels-last copy of ``input`` is the only allocation of its size.
    """
    rois, (oh, ow) = _check(input, boxes, output_size, spatial_scale, inverted=True)
    return _roi_align(input, rois, (oh, ow), float(spatial_scale), sampling_ratio, aligned)


def _roi_align(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    max_elements: int = 2**24,
) -> Tensor:
    """:func:`roi_align` on validated ``rois`` Tensor[K, 5]: gathers of <= ``min(max_elements, 2**20)``
    cells x channels, tap tables of <= about ``max_elements`` values per group of rois."""
    oh, ow = output_size
    b, c, h, w = input.shape
    k = rois.shape[0]
    if k == 0:
        return input.new_zeros((0, c, oh, ow))
    offset = 0.5 if aligned else 0.0
    x1, y1 = rois[:, 1] * spatial_scale - offset, rois[:, 2] * spatial_scale - offset
    rw, rh = rois[:, 3] * spatial_scale - offset - x1, rois[:, 4] * spatial_scale - offset - y1
    if not aligned:  # legacy behaviour: rois are at least one cell wide
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    if sampling_ratio > 0:
        gy = torch.full_like(rh, float(sampling_ratio))
        gx = torch.full_like(rw, float(sampling_ratio))
    else:
        gy, gx = torch.ceil(rh / oh).clamp(min=1), torch.ceil(rw / ow).clamp(min=1)
    # groups of rois with similar crops, each padded to its largest crop: sort by the bound of the
    # distinct cells (rows in steps of 25 %, then columns) and cut where padding would add more than a
    # quarter of the work, or where the group's tap tables would exceed the budget
    ny = _tap_bound(y1, rh, oh, gy, h)
    nx = _tap_bound(x1, rw, ow, gx, w)
    order = torch.argsort(torch.floor(torch.log(ny) / math.log(1.25)) * (w + 1) + nx, descending=True)
    plan = torch.stack([ny, nx, gy, gx], 1)[order].long().tolist()
    groups, cur, cy, cx, area = [], [], 0, 0, 0
    for j, (ey, ex, ey_g, ex_g) in enumerate(plan):
        ty, tx = max(cy, ey), max(cx, ex)
        own = max(ey, oh) * max(ex, ow)
        padded = (len(cur) + 1) * max(ty, oh) * max(tx, ow)
        tables = (len(cur) + 1) * (oh * (ty + 16 * ey_g) + ow * (tx + 16 * ex_g))
        if cur and (padded > 1.25 * (area + own) + 4096 or tables > max_elements):
            groups.append(cur)
            cur, ty, tx, area = [], ey, ex, 0
        cur.append(j)
        cy, cx, area = ty, tx, area + own
    groups.append(cur)
    # channels last, [B*H*W, C] with contiguous rows: a gathered cell is one copied row
    flat = input.to(rois.dtype).permute(0, 2, 3, 1).contiguous().view(b * h * w, c)
    out = flat.new_empty((k, c, oh, ow))
    order_l = order.tolist()
    # rois in chunks whose gathered crops stay in cache: at most 2**20 values, or max_elements
    chunk = min(max_elements, 2**20)
    for grp in groups:
        sel = torch.tensor([order_l[j] for j in grp], device=rois.device)
        gy_max = max(plan[j][2] for j in grp)
        gx_max = max(plan[j][3] for j in grp)
        uy, ay = _axis_taps(y1[sel], rh[sel], oh, gy[sel], gy_max, h)  # [n, Ty], [n, oh, Ty]
        ux, ax = _axis_taps(x1[sel], rw[sel], ow, gx[sel], gx_max, w)  # [n, Tx], [n, ow, Tx]
        base = rois[sel, 0].long() * (h * w)
        n = max(1, min(len(grp), chunk // (max(uy.shape[1], oh) * max(ux.shape[1], ow) * max(c, 1))))
        for s in range(0, len(grp), n):
            r = slice(s, s + n)
            # in the precision of the coordinates (float32 at least), also under autocast
            with torch.autocast(flat.device.type, enabled=False):
                pooled = _pool_rois(flat, base[r], uy[r], ay[r], ux[r], ax[r], w, chunk)  # [n, C, oh, ow]
            out.index_copy_(0, sel[r], pooled)
    return out.to(input.dtype)


def _pool_rois(
    flat: Tensor, base: Tensor, uy: Tensor, ay: Tensor, ux: Tensor, ax: Tensor, w: int, max_elements: int
) -> Tensor:
    """``ay @ crop @ ax^T`` for n rois, each crop gathered from ``flat`` Tensor[B*H*W, C] on the cells
    ``uy`` x ``ux`` (rows ``base + y * w + x``), in chunks of rows and columns that hold at most
    ``max_elements`` gathered values and partial sums (at least one cell per roi).

    Args:
        uy (Tensor[n, Ty]), ux (Tensor[n, Tx]): cell rows and columns of each roi.
        ay (Tensor[n, oh, Ty]), ax (Tensor[n, ow, Tx]): mean tap weights of each output bin.

    Returns:
        Tensor[n, C, oh, ow].
    """
    n, oh, ty = ay.shape
    ow, tx = ax.shape[1:]
    c = flat.shape[1]
    cols = max(1, min(tx, max_elements // max(1, n * oh * c)))
    rows = max(1, min(ty, max_elements // max(1, n * cols * c)))
    out = None
    for c0 in range(0, tx, cols):
        xs = slice(c0, c0 + cols)
        m = len(range(tx)[xs])
        part = None
        for r0 in range(0, ty, rows):
            ys = slice(r0, r0 + rows)
            idx = base[:, None, None] + uy[:, ys, None] * w + ux[:, None, xs]  # [n, rows, m]
            crop = flat.index_select(0, idx.reshape(-1)).view(n, idx.shape[1], m * c)
            p = torch.bmm(crop.transpose(1, 2), ay[:, :, ys].transpose(1, 2))  # [n, m * C, oh]
            part = p if part is None else part + p
        q = torch.bmm(part.view(n, m, c * oh).transpose(1, 2), ax[:, :, xs].transpose(1, 2))  # [n, C*oh, ow]
        out = q if out is None else out + q
    return out.view(n, c, oh, ow)


def roi_pool(
    input: Tensor,
    boxes: list[Tensor] | Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoIPool (Girshick 2015): max over the feature cells of each bin of the rounded box.

    The box is rounded to whole cells (``round(x * spatial_scale)``, halves away from zero like C's
    ``round`` in torchvision's kernel, not to even), at least one cell wide; bin
    ``p`` covers cells ``floor(p * size / out)`` to ``ceil((p + 1) * size / out)`` (exclusive), clipped to
    the map. An empty bin gives 0.

    Args and shapes as :func:`roi_align`. Returns: Tensor[K, C, out_h, out_w].
    """
    rois, (oh, ow) = _check(input, boxes, output_size, spatial_scale)
    b, c, h, w = input.shape
    k = rois.shape[0]
    if k == 0:
        return input.new_zeros((0, c, oh, ow))
    scaled = rois[:, 1:] * spatial_scale
    coords = torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)  # half away from zero, as torchvision
    x1, y1, x2, y2 = coords.unbind(1)
    rw, rh = (x2 - x1 + 1).clamp(min=1), (y2 - y1 + 1).clamp(min=1)

    def bin_masks(start: Tensor, size: Tensor, bins: int, length: int) -> Tensor:
        p = torch.arange(bins, device=input.device, dtype=rois.dtype)
        lo = (torch.floor(p[None] * size[:, None] / bins) + start[:, None]).clamp(0, length)
        hi = (torch.ceil((p[None] + 1) * size[:, None] / bins) + start[:, None]).clamp(0, length)
        cells = torch.arange(length, device=input.device, dtype=rois.dtype)
        return (cells[None, None] >= lo[..., None]) & (cells[None, None] < hi[..., None])  # [K, bins, length]

    my, mx = bin_masks(y1, rh, oh, h), bin_masks(x1, rw, ow, w)
    bidx = rois[:, 0].long()
    neg = torch.finfo(input.dtype).min
    chunk = max(1, 2**24 // max(1, c * h * w * max(oh, ow)))
    outs = []
    for s in range(0, k, chunk):
        f = input[bidx[s : s + chunk]]  # [k, C, H, W]
        colmax = torch.where(mx[s : s + chunk, None, None], f[:, :, :, None, :], neg).amax(
            -1
        )  # [k, C, H, ow]
        m = torch.where(my[s : s + chunk, None, :, :, None], colmax[:, :, None, :, :], neg).amax(
            3
        )  # [k,C,oh,ow]
        empty = ~(
            my[s : s + chunk].any(-1)[:, :, None] & mx[s : s + chunk].any(-1)[:, None, :]
        )  # [k, oh, ow]
        outs.append(m.masked_fill(empty[:, None], 0))
    return torch.cat(outs, dim=0)
