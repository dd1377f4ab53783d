"""Semantic-segmentation metrics: confusion matrix, pixel accuracy, IoU family, boundary quality.

Definitions follow Long et al. 2015 (FCN, arXiv:1411.4038, section 5): with ``n_ij`` the number of
pixels of class ``i`` predicted as ``j`` and ``t_i = sum_j n_ij``,

* pixel accuracy ``sum_i n_ii / sum_i t_i``;
* IoU of class ``i``: ``n_ii / (t_i + sum_j n_ji - n_ii)``; mean IoU averages the classes that occur
  (in the target or the prediction); frequency-weighted IoU weights each class by ``t_i``.

Boundary quality (for the FCN-32s/16s/8s comparison): the boundary F-score of Csurka et al. 2013
("What is a good evaluation measure for semantic segmentation?", BMVC) with a pixel tolerance, and
the mIoU restricted to a band around the true boundaries (the "trimap" of Kohli et al. 2009, used by
DeepLab, arXiv:1606.00915).

Pixels whose target equals ``ignore_index`` (255 by default) are left out everywhere. Predictions can
be logits/probabilities ``[B, K, H, W]`` (arg-maxed over K) or labels ``[B, H, W]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cvlib._validate import check_int, check_tensor, describe

__all__ = [
    "confusion_matrix",
    "pixel_accuracy",
    "iou_per_class",
    "mean_iou",
    "frequency_weighted_iou",
    "boundary_map",
    "boundary_f1",
    "miou_near_boundary",
    "PixelAccuracy",
    "MeanIoU",
]


def _to_labels(pred: Tensor, target: Tensor, num_classes: int | None) -> tuple[Tensor, Tensor]:
    """Arg-max logits ``[B, K, H, W]`` (or pass labels ``[B, H, W]``) after checking shapes and dtypes.

    Returns ``(labels, target)`` with ``target`` moved to the prediction's device.
    """
    check_tensor(pred, "pred", dtype=("float", "int"), shape="[B, K, H, W] logits or [B, H, W] class ids")
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor [B, H, W] of class ids, got {describe(target)}")
    if not _is_int(target):
        raise TypeError(
            f"target must hold integer class ids [B, H, W], got dtype {target.dtype}"
            + (" (convert a float mask with target.long())" if target.is_floating_point() else "")
        )
    target = target.to(pred.device)
    if pred.dim() == target.dim() + 1:
        if not pred.is_floating_point():
            raise TypeError(f"pred logits [B, K, H, W] must be float, got dtype {pred.dtype}")
        if num_classes is not None and pred.shape[1] != num_classes:
            raise ValueError(f"pred has {pred.shape[1]} channels (classes) but num_classes={num_classes}")
        if pred.shape[:1] + pred.shape[2:] != target.shape:
            raise ValueError(
                f"pred [B, K, H, W] {tuple(pred.shape)} does not match target [B, H, W] {tuple(target.shape)}"
            )
        if pred.shape[1] == 0:
            raise ValueError(f"pred must have at least one class channel, got {tuple(pred.shape)}")
        if pred.numel() and bool(torch.isnan(pred).any()):
            raise ValueError(f"pred holds NaN logits ({int(torch.isnan(pred).sum())} of {pred.numel()})")
        return pred.argmax(1), target
    if pred.shape != target.shape:
        raise ValueError(
            f"pred must be [B, K, H, W] logits or labels shaped like target {tuple(target.shape)}, "
            f"got {tuple(pred.shape)}"
        )
    if pred.is_floating_point():
        raise TypeError(f"label predictions must be integer, got dtype {pred.dtype}")
    return pred, target


def _is_int(t: Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


def _check_ignore(ignore_index: object) -> int | None:
    if ignore_index is not None:
        check_int(ignore_index, "ignore_index")
    return ignore_index  # type: ignore[return-value]


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255
) -> Tensor:
    """Pixel confusion matrix, rows = true class, columns = predicted class.

    Args:
        pred (Tensor[B, K, H, W] or Tensor[B, H, W]): logits or predicted class ids.
        target (Tensor[B, H, W]): int class ids in ``[0, num_classes)`` or ``ignore_index``.
        num_classes: K.
        ignore_index: target value to skip (None: skip nothing).

    Returns:
        Tensor[K, K]: int64 counts.

    Raises:
        ValueError: on shape mismatch or class ids outside ``[0, num_classes)``.
    """
    num_classes = check_int(num_classes, "num_classes", min=1)
    ignore_index = _check_ignore(ignore_index)
    labels, target = _to_labels(pred, target, num_classes)
    labels, target = labels.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        labels, target = labels[keep], target[keep]
    if target.numel():
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"target holds class id {bad} outside [0, {num_classes}) (ignore_index={ignore_index})"
            )
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"pred holds class id {bad} outside [0, {num_classes})")
    idx = target * num_classes + labels
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _iou_from_confmat(cm: Tensor) -> Tensor:
    cm = cm.float() if cm.device.type == "mps" else cm.double()  # MPS has no float64
    inter = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))


def pixel_accuracy(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255) -> float:
    """Fraction of (non-ignored) pixels whose predicted class equals the target; nan if none count."""
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    total = int(cm.sum())
    return float(cm.diagonal().sum()) / total if total else float("nan")


def iou_per_class(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255) -> Tensor:
    """IoU of each class, Tensor[K] float64; nan for a class absent from both target and prediction."""
    return _iou_from_confmat(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_iou(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255) -> float:
    """Mean of :func:`iou_per_class` over the classes that occur (nan-mean)."""
    return float(torch.nanmean(iou_per_class(pred, target, num_classes, ignore_index)))


def frequency_weighted_iou(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255
) -> float:
    """IoU averaged with weights ``t_i / sum t`` (the true-pixel frequency of each class)."""
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    freq = cm.sum(1).double()
    iou = torch.nan_to_num(_iou_from_confmat(cm), nan=0.0)
    return float((freq * iou).sum() / freq.sum().clamp_min(1))


def boundary_map(labels: Tensor, ignore_index: int | None = 255) -> Tensor:
    """Pixels whose right or lower neighbour has a different label (ignored pixels never count).

    Args:
        labels (Tensor[B, H, W]): class ids.

    Returns:
        Tensor[B, H, W]: bool.
    """
    check_tensor(labels, "labels", ndim=3, dtype="int", shape="[B, H, W] class ids")
    ignore_index = _check_ignore(ignore_index)
    b = torch.zeros_like(labels, dtype=torch.bool)
    dx = labels[:, :, 1:] != labels[:, :, :-1]
    dy = labels[:, 1:, :] != labels[:, :-1, :]
    b[:, :, :-1] |= dx
    b[:, :, 1:] |= dx
    b[:, :-1, :] |= dy
    b[:, 1:, :] |= dy
    if ignore_index is not None:
        b &= labels != ignore_index
    return b


def _dilate(mask: Tensor, radius: int) -> Tensor:
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    return F.max_pool2d(mask[:, None].float(), k, stride=1, padding=radius)[:, 0] > 0


def boundary_f1(pred: Tensor, target: Tensor, tolerance: int = 2, ignore_index: int | None = 255) -> float:
    """Boundary F-score (Csurka et al. 2013): F1 of predicted vs true label boundaries.

    A predicted boundary pixel is correct when a true boundary pixel lies within ``tolerance``
    pixels (Chebyshev distance), and vice versa for recall. Scores are pooled over the batch.

    Args:
        pred (Tensor[B, K, H, W] or Tensor[B, H, W]): logits or labels.
        target (Tensor[B, H, W]): class ids.
        tolerance: distance in pixels.

    Returns:
        float in [0, 1]; 1.0 when neither map has a boundary.
    """
    tolerance = check_int(tolerance, "tolerance", min=0)
    ignore_index = _check_ignore(ignore_index)
    labels, target = _to_labels(pred, target, None)
    if target.dim() != 3:
        raise ValueError(f"target must be [B, H, W], got {tuple(target.shape)}")
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    pb = boundary_map(torch.where(valid, labels, target), ignore_index) & valid
    tb = boundary_map(target, ignore_index)
    n_p, n_t = int(pb.sum()), int(tb.sum())
    if n_p == 0 and n_t == 0:
        return 1.0
    if n_p == 0 or n_t == 0:
        return 0.0
    precision = float((pb & _dilate(tb, tolerance)).sum()) / n_p
    recall = float((tb & _dilate(pb, tolerance)).sum()) / n_t
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def miou_near_boundary(
    pred: Tensor, target: Tensor, num_classes: int, width: int = 3, ignore_index: int = 255
) -> float:
    """Mean IoU counted only on pixels within ``width`` pixels of a true boundary (a trimap band)."""
    width = check_int(width, "width", min=0)
    num_classes = check_int(num_classes, "num_classes", min=1)
    ignore_index = check_int(ignore_index, "ignore_index")
    labels, target = _to_labels(pred, target, num_classes)
    if target.dim() != 3:
        raise ValueError(f"target must be [B, H, W], got {tuple(target.shape)}")
    band = _dilate(boundary_map(target, ignore_index), width)
    banded = torch.where(band, target, torch.full_like(target, ignore_index))
    return mean_iou(labels, banded, num_classes, ignore_index)


class _ConfusionMetric:
    """Accumulates a confusion matrix across ``update`` calls (for ``cvlib.train.fit``)."""

    def __init__(self, num_classes: int | None = None, ignore_index: int | None = 255) -> None:
        if num_classes is not None:
            num_classes = check_int(num_classes, "num_classes", min=1)
        self.num_classes = num_classes
        self.ignore_index = _check_ignore(ignore_index)
        self.reset()

    def reset(self) -> None:
        k = self.num_classes or 0
        self.confmat = torch.zeros(k, k, dtype=torch.long)

    def update(self, output: Tensor, target: Tensor) -> None:
        """Add a batch: ``output`` logits [B, K, H, W] or labels [B, H, W]; ``target`` [B, H, W].

        With ``num_classes=None`` the first logits fix K (labels alone cannot).
        """
        output = output[0] if isinstance(output, (tuple, list)) and output else output
        check_tensor(output, "output", dtype=("float", "int"), shape="[B, K, H, W] logits or [B, H, W] ids")
        check_tensor(target, "target", dtype="int", shape="[B, H, W] class ids")
        if self.num_classes is None:
            if output.dim() != target.dim() + 1:
                raise ValueError("num_classes=None needs logits [B, K, H, W] to infer K; pass num_classes")
            self.num_classes = int(output.shape[1])
            self.reset()
        cm = confusion_matrix(output.detach(), target.detach(), self.num_classes, self.ignore_index)
        self.confmat += cm.cpu()


class PixelAccuracy(_ConfusionMetric):
    """Stateful pixel accuracy: ``reset()``, ``update(output, target)``, ``compute() -> float``."""

    def compute(self) -> float:
        total = int(self.confmat.sum())
        return float(self.confmat.diagonal().sum()) / total if total else float("nan")


class MeanIoU(_ConfusionMetric):
    """Stateful mean IoU over the classes seen: ``reset()``, ``update(output, target)``, ``compute()``."""

    def compute(self) -> float:
        return float(torch.nanmean(_iou_from_confmat(self.confmat)))

    def per_class(self) -> Tensor:
        """IoU per class so far, Tensor[K] float64 (nan for unseen classes)."""
        return _iou_from_confmat(self.confmat)
