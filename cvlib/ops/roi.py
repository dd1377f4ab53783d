"""Region-of-interest pooling in pure PyTorch: RoIPool (Girshick 2015, arXiv:1504.08083) and RoIAlign
(He et al. 2017, Mask R-CNN, arXiv:1703.06870).

Both cut a fixed ``output_size`` grid of bins out of a feature map for each box. RoIPool rounds the box
to feature cells and max-pools each bin; RoIAlign keeps the box continuous and averages bilinear samples
(``sampling_ratio`` per bin side, or ``ceil(roi_size / output_size)`` when it is <= 0). The sampling
conventions (``aligned`` half-pixel shift, out-of-map samples counting as 0, the 1-pixel minimum roi
size when ``aligned=False``) follow the Detectron2 / torchvision kernels, so results are comparable.

Implementation: every sample is a bilinear blend of 4 feature cells; the 4 cell indices and weights of
all samples of all boxes are computed at once and gathered from the flattened feature map, so there is
no Python loop over boxes (RoIPool loops over chunks of boxes only to bound memory).

Boxes are given as a list of Tensor[K_b, 4] (one per image) or a Tensor[K, 5] whose first column is
the image index; coordinates are xyxy in input pixels and ``spatial_scale`` maps them to the map
(``1 / stride``).
"""

from __future__ import annotations

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


def _axis_samples(start: Tensor, size: Tensor, bins: int, grid: Tensor, g_max: int, length: int):
    """Bilinear taps along one axis.

    For K rois, returns (low index, high index, low weight, high weight) each [K, bins * g_max], with the
    weights zeroed for samples outside the map or beyond that roi's own ``grid`` count.
    """
    k = start.shape[0]
    bin_size = size / bins  # [K]
    p = torch.arange(bins, device=start.device, dtype=start.dtype)
    i = torch.arange(g_max, device=start.device, dtype=start.dtype)
    frac = (i[None, :] + 0.5) / grid[:, None]  # [K, g]
    pos = (
        start[:, None, None] + (p[None, :, None] + frac[:, None, :]) * bin_size[:, None, None]
    )  # [K, bins, g]
    valid = (i[None, None, :] < grid[:, None, None]) & (pos >= -1.0) & (pos <= length)
    pos = pos.clamp(min=0)
    low = pos.floor().clamp(max=length - 1)
    at_edge = low >= length - 1
    pos = torch.where(at_edge, low, pos)
    high = torch.where(at_edge, low, low + 1)
    w_high = pos - low
    w_low = 1 - w_high
    vf = valid.to(start.dtype)
    shape = (k, bins * g_max)
    return (
        low.long().reshape(shape),
        high.long().reshape(shape),
        (w_low * vf).reshape(shape),
        (w_high * vf).reshape(shape),
    )


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

    Memory is bounded: rois (and, for very large rois, rows of output bins) are processed in blocks of
    at most ``2**24`` bilinear samples x channels (64 MB in float32 per tap), whatever the sizes.
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
    """:func:`roi_align` on validated ``rois`` Tensor[K, 5], in blocks of <= ``max_elements`` samples."""
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
    gy_max, gx_max = int(gy.max()), int(gx.max())
    ylo, yhi, wylo, wyhi = _axis_samples(y1, rh, oh, gy, gy_max, h)  # [K, Y]
    xlo, xhi, wxlo, wxhi = _axis_samples(x1, rw, ow, gx, gx_max, w)  # [K, X]
    base = rois[:, 0].long() * (h * w)  # [K]
    flat = input.permute(0, 2, 3, 1).reshape(b * h * w, c).to(rois.dtype)  # [B*H*W, C]: rows gather fast
    # memory: a block of k rois x r output rows holds k * r * gy_max * X * C samples per tap; blocks are
    # sized to stay under max_elements (at least one roi and one output row)
    per_row = gy_max * xlo.shape[1] * c
    rows = max(1, min(oh, max_elements // max(1, per_row)))
    kc = max(1, max_elements // max(1, per_row * oh)) if rows == oh else 1
    outs = []
    for ks in range(0, k, kc):
        kk = slice(ks, ks + kc)
        n = len(range(k)[kk])
        row_outs = []
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            yy = slice(r0 * gy_max, r1 * gy_max)
            acc = 0
            for yi, wy in ((ylo, wylo), (yhi, wyhi)):
                for xi, wx in ((xlo, wxlo), (xhi, wxhi)):
                    idx = base[kk, None, None] + yi[kk, yy, None] * w + xi[kk, None, :]  # [k, Y', X]
                    wgt = wy[kk, yy, None] * wx[kk, None, :]  # [k, Y', X]
                    acc = acc + flat.index_select(0, idx.reshape(-1)).view(*idx.shape, c) * wgt[..., None]
            row_outs.append(acc.view(n, r1 - r0, gy_max, ow, gx_max, c).sum(dim=(2, 4)))  # [k, r, ow, C]
        outs.append(torch.cat(row_outs, dim=1) if len(row_outs) > 1 else row_outs[0])
    out = torch.cat(outs, dim=0) if len(outs) > 1 else outs[0]  # [K, oh, ow, C]
    out = out / (gy * gx).view(k, 1, 1, 1)
    return out.permute(0, 3, 1, 2).to(input.dtype).contiguous()


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
