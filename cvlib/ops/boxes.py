"""Bounding-box operations: formats, areas, IoU family, box coding and non-maximum suppression.

Inside cvlib a box is ``(x1, y1, x2, y2)`` in absolute pixels with ``x1 <= x2`` and ``y1 <= y2``
("xyxy"); ``xywh`` (COCO: top-left corner, width, height) and ``cxcywh`` (centre, width, height) exist
only at dataset boundaries and are converted with :func:`box_convert`.

References:
    IoU-based NMS and the box parameterisation of Faster R-CNN: Ren et al. 2015, arXiv:1506.01497.
    GIoU: Rezatofighi et al. 2019, arXiv:1902.09630. DIoU/CIoU: Zheng et al. 2020, arXiv:1911.08287.

Conventions: a box with zero width or height has zero area; the IoU of two boxes whose union is
zero (two degenerate boxes) is defined as 0 here (it is 0/0 in the formula).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BOX_FORMATS",
    "box_convert",
    "box_area",
    "clip_boxes_to_image",
    "remove_small_boxes",
    "box_iou",
    "generalized_box_iou",
    "distance_box_iou",
    "complete_box_iou",
    "BoxCoder",
    "nms",
    "batched_nms",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


# ----------------------------------------------------------------------------------------- checks
def _upcast(t: Tensor) -> Tensor:
    """Float32 for int/bool/half/bfloat16 input, unchanged for float32/float64."""
    if t.dtype in (torch.float32, torch.float64):
        return t
    return t.float()


def _check_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    return x


def _check_finite(boxes: Tensor, name: str) -> None:
    if boxes.numel() == 0 or not boxes.is_floating_point():
        return
    bad = ~torch.isfinite(boxes).all(dim=-1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"{name} contains a non-finite value (NaN or inf) at index {i}: {boxes[i].tolist()}")


def _check_boxes(boxes: object, name: str, *, inverted: bool = True) -> Tensor:
    """Validate ``boxes`` as Tensor[N, 4] xyxy: finite and (if ``inverted``) with x1 <= x2, y1 <= y2."""
    boxes = _check_tensor(boxes, name)
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must be [N, 4], got {tuple(boxes.shape)}")
    _check_finite(boxes, name)
    if inverted and boxes.numel():
        bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"{name} must be xyxy with x1 <= x2 and y1 <= y2; box {i} is inverted: {boxes[i].tolist()}"
            )
    return _upcast(boxes)


def _check_format(fmt: str, name: str) -> str:
    allowed = BOX_FORMATS
    if fmt not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {fmt!r}")
    return fmt


# ------------------------------------------------------------------------------- formats and area
def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes between ``"xyxy"``, ``"xywh"`` and ``"cxcywh"``.

    Args:
        boxes (Tensor[..., 4]): boxes in ``in_fmt``.
        in_fmt (str): format of ``boxes``.
        out_fmt (str): wanted format.

    Returns:
        Tensor[..., 4]: the same boxes in ``out_fmt`` (int and half inputs are upcast to float32).
    """
    boxes = _check_tensor(boxes, "boxes")
    _check_format(in_fmt, "in_fmt")
    _check_format(out_fmt, "out_fmt")
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [..., 4], got {tuple(boxes.shape)}")
    boxes = _upcast(boxes)
    _check_finite(boxes.reshape(-1, 4), "boxes")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    else:
        x1, y1, x2, y2 = a, b, c, d
    if out_fmt == "xyxy":
        return torch.stack([x1, y1, x2, y2], dim=-1)
    if out_fmt == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], dim=-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """Areas of xyxy boxes.

    Args:
        boxes (Tensor[N, 4]): xyxy boxes with x1 <= x2, y1 <= y2.

    Returns:
        Tensor[N]: ``(x2 - x1) * (y2 - y1)``, float.
    """
    boxes = _check_boxes(boxes, "boxes")
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip xyxy boxes to an image of ``size = (H, W)``: x into [0, W], y into [0, H].

    Args:
        boxes (Tensor[..., 4]): xyxy boxes.
        size (tuple[int, int]): image height and width.

    Returns:
        Tensor[..., 4]: clipped boxes (same dtype).
    """
    boxes = _check_tensor(boxes, "boxes")
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [..., 4], got {tuple(boxes.shape)}")
    if (
        not isinstance(size, (tuple, list, torch.Size))
        or len(size) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        raise ValueError(f"size must be (H, W) with non-negative numbers, got {size!r}")
    h, w = size
    x = boxes[..., 0::2].clamp(min=0, max=w)
    y = boxes[..., 1::2].clamp(min=0, max=h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices (int64) of xyxy boxes whose width and height are both at least ``min_size``."""
    boxes = _check_boxes(boxes, "boxes", inverted=False)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    return keep.nonzero().flatten()


# ------------------------------------------------------------------------------------ IoU family
def _pair(boxes1: Tensor, boxes2: Tensor, aligned: bool) -> tuple[Tensor, Tensor]:
    """Validate and broadcast: [N, 1, 4] x [1, M, 4] (matrix) or [N, 4] x [N, 4] (aligned)."""
    b1 = _check_boxes(boxes1, "boxes1")
    b2 = _check_boxes(boxes2, "boxes2")
    dtype = torch.promote_types(b1.dtype, b2.dtype)
    b1, b2 = b1.to(dtype), b2.to(dtype)
    if aligned:
        if len(b1) != len(b2):
            raise ValueError(
                f"aligned=True needs boxes1 and boxes2 of equal length, got {len(b1)} and {len(b2)}"
            )
        return b1, b2
    return b1[:, None, :], b2[None, :, :]


def _iou_parts(b1: Tensor, b2: Tensor) -> tuple[Tensor, Tensor]:
    """IoU and union of broadcastable xyxy boxes (IoU := 0 where the union is 0)."""
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    lt = torch.maximum(b1[..., :2], b2[..., :2])
    rb = torch.minimum(b1[..., 2:], b2[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1 + area2 - inter
    iou = torch.where(
        union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(union)
    )
    return iou, union


def _enclosing(b1: Tensor, b2: Tensor) -> tuple[Tensor, Tensor]:
    lt = torch.minimum(b1[..., :2], b2[..., :2])
    rb = torch.maximum(b1[..., 2:], b2[..., 2:])
    return lt, rb


def box_iou(boxes1: Tensor, boxes2: Tensor, *, aligned: bool = False) -> Tensor:
    """Intersection over union of xyxy boxes.

    Args:
        boxes1 (Tensor[N, 4]): xyxy pixels, x1 <= x2 and y1 <= y2.
        boxes2 (Tensor[M, 4]): same format.
        aligned (bool): compare ``boxes1[i]`` with ``boxes2[i]`` only (needs N == M).

    Returns:
        Tensor[N, M] (or Tensor[N] if ``aligned``): IoU in [0, 1]; 0 where the union is empty.
    """
    b1, b2 = _pair(boxes1, boxes2, aligned)
    return _iou_parts(b1, b2)[0]


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor, *, aligned: bool = False) -> Tensor:
    """Generalised IoU (Rezatofighi et al. 2019): ``IoU - |C \\ (A u B)| / |C|`` with C the enclosing box.

    Args and shapes as :func:`box_iou`. Returns values in [-1, 1]; the penalty is 0 where ``|C| = 0``.
    """
    b1, b2 = _pair(boxes1, boxes2, aligned)
    iou, union = _iou_parts(b1, b2)
    lt, rb = _enclosing(b1, b2)
    wh = (rb - lt).clamp(min=0)
    area_c = wh[..., 0] * wh[..., 1]
    penalty = torch.where(area_c > 0, (area_c - union) / area_c.clamp(min=torch.finfo(iou.dtype).tiny), 0.0)
    return iou - penalty


def _diou_parts(b1: Tensor, b2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    iou, _ = _iou_parts(b1, b2)
    lt, rb = _enclosing(b1, b2)
    diag2 = ((rb - lt) ** 2).sum(-1)
    c1 = (b1[..., :2] + b1[..., 2:]) / 2
    c2 = (b2[..., :2] + b2[..., 2:]) / 2
    dist2 = ((c1 - c2) ** 2).sum(-1)
    return iou, iou - dist2 / (diag2 + eps)


def distance_box_iou(boxes1: Tensor, boxes2: Tensor, *, aligned: bool = False, eps: float = 1e-7) -> Tensor:
    """Distance IoU (Zheng et al. 2020): ``IoU - d^2 / c^2``, d the centre distance, c the enclosing diagonal.

    Args and shapes as :func:`box_iou`; ``eps`` keeps ``c^2 = 0`` finite. Returns values in [-1, 1].
    """
    b1, b2 = _pair(boxes1, boxes2, aligned)
    return _diou_parts(b1, b2, eps)[1]


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, *, aligned: bool = False, eps: float = 1e-7) -> Tensor:
    """Complete IoU (Zheng et al. 2020): ``DIoU - alpha * v`` with the aspect-ratio term
    ``v = 4 / pi^2 * (atan(w2 / h2) - atan(w1 / h1))^2`` and ``alpha = v / (1 - IoU + v)``.

    ``atan(w / h)`` is computed as ``atan2(w, h)``, so zero-height boxes give pi/2 rather than NaN.
    Args and shapes as :func:`box_iou`.
    """
    b1, b2 = _pair(boxes1, boxes2, aligned)
    iou, diou = _diou_parts(b1, b2, eps)
    a1 = torch.atan2(b1[..., 2] - b1[..., 0], b1[..., 3] - b1[..., 1])
    a2 = torch.atan2(b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1])
    v = (4 / math.pi**2) * (a2 - a1) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


# ------------------------------------------------------------------------------------ box coding
class BoxCoder:
    """The box parameterisation of R-CNN / Faster R-CNN (Ren et al. 2015, arXiv:1506.01497, eq. 2).

    For a reference box (anchor or proposal) with centre ``(xa, ya)`` and size ``(wa, ha)`` and a target
    box ``(x, y, w, h)``::

        tx = wx * (x - xa) / wa    ty = wy * (y - ya) / ha    tw = ww * log(w / wa)    th = wh * log(h / ha)

    The weights ``(10, 10, 5, 5)`` are the Detectron/torchvision defaults for the box head (they scale
    the deltas to roughly unit variance); the RPN uses ``(1, 1, 1, 1)``. ``bbox_xform_clip`` caps
    ``tw, th`` before ``exp`` when decoding (``log(1000 / 16)``, from Detectron), so a wild prediction
    cannot overflow.

    Args:
        weights (tuple[float, float, float, float]): ``(wx, wy, ww, wh)``.
        bbox_xform_clip (float): upper bound for the decoded log-scale deltas.
    """

    MIN_SIZE = 1e-3  # pixels: smallest width/height encode() divides by or takes the log of

    def __init__(
        self,
        weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        bbox_xform_clip: float = math.log(1000.0 / 16),
    ) -> None:
        if len(weights) != 4 or any(w <= 0 for w in weights):
            raise ValueError(f"weights must be 4 positive numbers, got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = float(bbox_xform_clip)

    @staticmethod
    def _centres(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        w = boxes[..., 2] - boxes[..., 0]
        h = boxes[..., 3] - boxes[..., 1]
        return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h

    def encode(self, boxes: Tensor, reference: Tensor) -> Tensor:
        """Deltas that turn ``reference`` boxes into ``boxes``.

        Zero-width or zero-height boxes (degenerate ground truth after clipping, say) give finite
        deltas: widths and heights of both ``boxes`` and ``reference`` are clamped below at
        ``MIN_SIZE = 1e-3`` pixels before dividing and taking logs, so a zero-size target encodes
        as ``log(1e-3 / wa)`` (decoding gives back a box 1e-3 pixels wide) instead of ``-inf``/NaN.

        Args:
            boxes (Tensor[N, 4]): target xyxy boxes (x1 <= x2, y1 <= y2).
            reference (Tensor[N, 4]): anchors or proposals, xyxy.

        Returns:
            Tensor[N, 4]: ``(tx, ty, tw, th)``, finite.
        """
        boxes = _check_boxes(boxes, "boxes")
        reference = _check_boxes(reference, "reference")
        if len(boxes) != len(reference):
            raise ValueError(
                f"boxes and reference must have equal length, got {len(boxes)} and {len(reference)}"
            )
        wx, wy, ww, wh = self.weights
        x, y, w, h = self._centres(boxes.to(reference.dtype))
        xa, ya, wa, ha = self._centres(reference)
        w, h, wa, ha = (v.clamp(min=self.MIN_SIZE) for v in (w, h, wa, ha))
        return torch.stack(
            [wx * (x - xa) / wa, wy * (y - ya) / ha, ww * torch.log(w / wa), wh * torch.log(h / ha)], dim=-1
        )

    def decode(self, deltas: Tensor, reference: Tensor) -> Tensor:
        """Apply ``deltas`` to ``reference`` boxes (the inverse of :meth:`encode`).

        Args:
            deltas (Tensor[N, 4] | Tensor[N, K, 4]): deltas, optionally one set per class.
            reference (Tensor[N, 4]): anchors or proposals, xyxy.

        Returns:
            Tensor of the shape of ``deltas``: decoded xyxy boxes.
        """
        deltas = _check_tensor(deltas, "deltas")
        reference = _check_boxes(reference, "reference", inverted=False)
        if deltas.dim() not in (2, 3) or deltas.shape[-1] != 4 or deltas.shape[0] != reference.shape[0]:
            raise ValueError(
                f"deltas must be [N, 4] or [N, K, 4] with N = len(reference) = {len(reference)}, "
                f"got {tuple(deltas.shape)}"
            )
        deltas = _upcast(deltas).to(reference.dtype)
        wx, wy, ww, wh = self.weights
        xa, ya, wa, ha = self._centres(reference)
        if deltas.dim() == 3:
            xa, ya, wa, ha = xa[:, None], ya[:, None], wa[:, None], ha[:, None]
        dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
        dw = (deltas[..., 2] / ww).clamp(max=self.bbox_xform_clip)
        dh = (deltas[..., 3] / wh).clamp(max=self.bbox_xform_clip)
        cx, cy = dx * wa + xa, dy * ha + ya
        w, h = torch.exp(dw) * wa, torch.exp(dh) * ha
        return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


# ------------------------------------------------------------------------------------------- NMS
def _check_scores(scores: object, n: int, name: str = "scores") -> Tensor:
    scores = _check_tensor(scores, name)
    if scores.dim() != 1 or len(scores) != n:
        raise ValueError(f"{name} must be [N] with N = len(boxes) = {n}, got {tuple(scores.shape)}")
    if scores.is_floating_point() and scores.numel():
        bad = ~torch.isfinite(scores)
        if bool(bad.any()):
            raise ValueError(f"{name} contains a NaN at index {int(bad.nonzero()[0, 0])}")
    return scores


def _nms_sorted(b: Tensor, iou_threshold: float, group_end: Tensor | None = None, block: int = 256) -> Tensor:
    """Greedy NMS of score-sorted boxes ``b`` (Tensor[N, 4]) -> bool keep mask Tensor[N].

    Blocked greedy sweep: the boxes are taken ``block`` at a time. A block first loses the boxes that
    earlier kept boxes suppressed, then is resolved box by box with its own ``[block, block]``
    suppression matrix (a sequential sweep over a small bool matrix on the CPU), and finally its kept
    boxes suppress the later boxes, in ``[kept, 4096]`` IoU blocks. The IoU work is that of
    the plain greedy loop (one row per kept box) but done in a few large vectorised calls, and the
    Python loop runs over boxes only inside the small bool matrix: O(N^2) time, O(block * N) memory.

    ``group_end[i]`` (optional, int64, non-decreasing) is one past the last box of box ``i``'s group
    (batched NMS sorts by group first): boxes of different groups never suppress each other.
    """
    n = len(b)
    removed = torch.zeros(n, dtype=torch.bool, device=b.device)
    keep = torch.zeros(n, dtype=torch.bool, device=b.device)
    ends = group_end.tolist() if group_end is not None else None
    for s in range(0, n, block):
        e = min(n, s + block)
        alive = (~removed[s:e]).nonzero().flatten()
        if len(alive) == 0:
            continue
        bb = b[s:e][alive]
        over = torch.triu(_iou_parts(bb[:, None, :], bb[None, :, :])[0] > iou_threshold, diagonal=1)
        if group_end is not None:
            ge = group_end[s:e][alive]
            over &= ge[:, None] == ge[None, :]
        over_np = over.cpu().numpy()
        gone = np.zeros(len(alive), dtype=bool)
        for i in range(len(alive)):  # sequential sweep over the small suppression matrix
            if not gone[i]:
                gone |= over_np[i]
        kept = alive[torch.from_numpy(~gone).to(b.device)]
        keep[s + kept] = True
        stop = n if ends is None else (ends[s + int(kept[-1])] if len(kept) else e)
        kb = b[s + kept]
        for c in range(e, stop, 4096):  # column chunks keep the IoU block at [block, 4096]
            hit = _iou_parts(kb[:, None, :], b[None, c : min(stop, c + 4096), :])[0] > iou_threshold
            if group_end is not None:
                hit &= group_end[s + kept][:, None] == group_end[None, c : min(stop, c + 4096)]
            removed[c : min(stop, c + 4096)] |= hit.any(0)
    return keep


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    Boxes are visited in order of decreasing score (ties: lower index first); a box is kept unless it
    overlaps an already kept box with IoU **greater than** ``iou_threshold``.

    Computed by a blocked greedy sweep (see ``_nms_sorted``): the IoU work of the plain greedy loop
    (one IoU row per kept box) done in large vectorised blocks on the boxes' device, and a sequential
    sweep only inside small ``[256, 256]`` bool suppression matrices. Time O(N^2) in the worst case
    (long chains of overlapping boxes included), memory O(256 * N).

    Args:
        boxes (Tensor[N, 4]): xyxy boxes.
        scores (Tensor[N]): scores (any real dtype).
        iou_threshold (float): suppression threshold in [0, 1].

    Returns:
        Tensor[K] (int64): indices of the kept boxes, by decreasing score.
    """
    boxes = _check_boxes(boxes, "boxes")
    scores = _check_scores(scores, len(boxes))
    iou_threshold = _check_iou_threshold(iou_threshold)
    if len(boxes) == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[_nms_sorted(boxes[order], iou_threshold)]


def _check_iou_threshold(iou_threshold: object) -> float:
    try:
        thr = float(iou_threshold)
    except (TypeError, ValueError):
        raise TypeError(f"iou_threshold must be a float, got {type(iou_threshold).__name__}") from None
    if not 0.0 <= thr <= 1.0:  # also rejects NaN
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")
    return thr


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS: boxes with different ``idxs`` never suppress each other.

    The result equals :func:`nms` run on each category separately (IoU computed on the original
    coordinates, no offset trick that would round them), merged by decreasing score (ties: lower index).
    The boxes are sorted by category, then score, and swept once; a kept box is only compared with the
    later boxes of its own category.

    Args:
        boxes (Tensor[N, 4]): xyxy boxes.
        scores (Tensor[N]): scores.
        idxs (Tensor[N]): integer category (or image/level) of each box.
        iou_threshold (float): suppression threshold.

    Returns:
        Tensor[K] (int64): indices of the kept boxes, by decreasing score.
    """
    boxes = _check_boxes(boxes, "boxes")
    _check_scores(scores, len(boxes))
    idxs = _check_tensor(idxs, "idxs")
    if idxs.dim() != 1 or len(idxs) != len(boxes):
        raise ValueError(f"idxs must be [N] with N = len(boxes) = {len(boxes)}, got {tuple(idxs.shape)}")
    if idxs.is_floating_point() or idxs.dtype == torch.bool:
        raise TypeError(f"idxs must hold integer category ids, got dtype {idxs.dtype}")
    iou_threshold = _check_iou_threshold(iou_threshold)
    if len(boxes) == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    # sort by category, then by decreasing score (ties: lower index): each category is a contiguous
    # run, so a kept box is compared only with the later boxes of its own category
    by_score = torch.sort(scores, descending=True, stable=True).indices
    order = by_score[torch.sort(idxs[by_score], stable=True).indices]
    _, counts = torch.unique_consecutive(idxs[order], return_counts=True)
    group_end = torch.repeat_interleave(counts.cumsum(0), counts)
    kept = order[_nms_sorted(boxes[order], iou_threshold, group_end)]
    kept = kept.sort().values  # back to index order, then a stable sort by decreasing score
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]
