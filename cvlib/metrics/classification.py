"""Classification metrics computed on the device: accuracy, top-k accuracy, confusion matrix.

The stateful objects (``reset`` / ``update`` / ``compute``) accumulate counts as device tensors, so
updating them inside a training loop never synchronises with the GPU; only ``compute`` does. Top-k
accuracy is the ImageNet measure (Russakovsky et al. 2015, arXiv:1409.0575).

Outputs are logits or scores ``[B, K]`` (or per-pixel ``[B, K, H, W]``); targets are int64 class ids
``[B]`` (``[B, H, W]``), or soft labels ``[B, K]`` (mixup), whose argmax is then used. Targets equal
to ``ignore_index`` (255, the segmentation convention) are left out of per-pixel targets
(``[B, H, W]``); for one label per sample (``[B]``) every class id counts, so 1000-class
problems keep class 255.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import torch

__all__ = [
    "accuracy",
    "topk_accuracy",
    "confusion_matrix",
    "Accuracy",
    "TopK",
    "ConfusionMatrix",
    "get_metric",
    "METRIC_NAMES",
]

METRIC_NAMES = ("accuracy", "top5", "topK (any k)", "pixel_accuracy", "miou")


def _main(output: Any) -> torch.Tensor:
    # GoogLeNet-style (main, aux...) tuples: score the main head.
    return output[0] if isinstance(output, (tuple, list)) else output


def _hard_targets(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if target.is_floating_point() and target.shape == output.shape:
        return target.argmax(1)
    if target.is_floating_point():
        raise ValueError(
            f"float targets must be soft labels of shape {tuple(output.shape)}, got {tuple(target.shape)}"
        )
    return target


def _check(output: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"output and target must be tensors, got {type(output).__name__}, {type(target).__name__}"
        )
    if output.ndim < 2:
        raise ValueError(f"output must be [B, K] or [B, K, ...] scores, got {tuple(output.shape)}")
    expect = (output.shape[0], *output.shape[2:])
    if tuple(target.shape) != expect:
        raise ValueError(
            f"target must have shape {expect} for output {tuple(output.shape)}, got {tuple(target.shape)}"
        )


def _counts(output: torch.Tensor, target: torch.Tensor, k: int, ignore_index: int | None):
    output = _main(output)
    target = _hard_targets(output, target)
    _check(output, target)
    if not 1 <= k <= output.shape[1]:
        raise ValueError(f"k must be in [1, {output.shape[1]}] (the number of classes), got {k}")
    if k == 1:
        hit = output.argmax(1) == target
    else:
        top = output.topk(k, dim=1).indices  # [B, k, ...]
        hit = (top == target.unsqueeze(1)).any(1)
    if ignore_index is not None and target.ndim >= 2:
        valid = target != ignore_index
        return (hit & valid).sum(), valid.sum()
    return hit.sum(), torch.tensor(target.numel(), device=target.device)


def accuracy(output: torch.Tensor, target: torch.Tensor, ignore_index: int | None = 255) -> float:
    """Fraction of samples (or pixels) whose arg-max class equals the target.

    Args:
        output (Tensor[B, K] or Tensor[B, K, H, W]): scores; a tuple uses its first element.
        target (Tensor[B] or Tensor[B, H, W]): int64 class ids, or soft labels ``[B, K]``.
        ignore_index: target value left out of the count (None: count everything).

    Returns:
        float in [0, 1] (nan if every target is ignored).
    """
    hit, n = _counts(output, target, 1, ignore_index)
    return (hit.double() / n).item() if n.item() > 0 else float("nan")


def topk_accuracy(
    output: torch.Tensor, target: torch.Tensor, k: int = 5, ignore_index: int | None = 255
) -> float:
    """Fraction of samples whose target is among the ``k`` highest scores (ties: ``torch.topk`` order)."""
    hit, n = _counts(output, target, k, ignore_index)
    return (hit.double() / n).item() if n.item() > 0 else float("nan")


def confusion_matrix(
    output: torch.Tensor, target: torch.Tensor, num_classes: int | None = None, ignore_index: int | None = 255
) -> torch.Tensor:
    """Confusion matrix by one ``bincount`` on the device; rows are true classes, columns predictions.

    Args:
        output (Tensor[B, K, ...] or Tensor[B, ...]): scores, or already predicted int class ids.
        target (Tensor[B, ...]): int64 class ids.
        num_classes: K (default: ``output.shape[1]`` for scores).

    Returns:
        Tensor[K, K], int64, on the inputs' device (``cm[i, j]``: samples of class i predicted as j,
        the convention of ``sklearn.metrics.confusion_matrix``).
    """
    output = _main(output)
    if output.is_floating_point():
        target = _hard_targets(output, target)
        _check(output, target)
        k = output.shape[1] if num_classes is None else num_classes
        pred = output.argmax(1)
    else:
        if num_classes is None:
            raise ValueError("num_classes is required when output holds predicted class ids")
        if output.shape != target.shape:
            raise ValueError(f"predictions {tuple(output.shape)} and target {tuple(target.shape)} must match")
        k, pred = num_classes, output
    dense = target.ndim >= 2
    pred, target = pred.reshape(-1), target.reshape(-1)
    if ignore_index is not None and dense:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= k):
        bad = target[(target < 0) | (target >= k)][0].item()
        raise ValueError(f"target holds class {bad}, outside [0, {k})")
    return torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)


class Accuracy:
    """Running accuracy (``name = "accuracy"``); counts stay on the device until :meth:`compute`."""

    name = "accuracy"

    def __init__(self, ignore_index: int | None = 255) -> None:
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self.correct: torch.Tensor | int = 0
        self.total: torch.Tensor | int = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        hit, n = _counts(output, target, 1, self.ignore_index)
        self.correct = self.correct + hit
        self.total = self.total + n

    def compute(self) -> float:
        total = float(self.total)
        return float(self.correct) / total if total else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TopK(Accuracy):
    """Running top-``k`` accuracy (``name = f"top{k}"``)."""

    def __init__(self, k: int = 5, ignore_index: int | None = 255) -> None:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        self.k = k
        self.name = f"top{k}"
        super().__init__(ignore_index)

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        hit, n = _counts(output, target, self.k, self.ignore_index)
        self.correct = self.correct + hit
        self.total = self.total + n

    def __repr__(self) -> str:
        return f"TopK(k={self.k})"


class ConfusionMatrix:
    """Running confusion matrix (``name = "confusion_matrix"``); ``compute()`` gives Tensor[K, K] on CPU."""

    name = "confusion_matrix"

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.reset()

    def reset(self) -> None:
        self.matrix: torch.Tensor | None = None

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        cm = confusion_matrix(output, target, self.num_classes, self.ignore_index)
        self.matrix = cm if self.matrix is None else self.matrix + cm

    def compute(self) -> torch.Tensor:
        if self.matrix is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        return self.matrix.cpu()

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes})"


def get_metric(name: str, *, num_classes: int | None = None) -> Any:
    """A fresh metric object for a name: ``"accuracy"``, ``"top5"`` (any ``"top<k>"``),
    ``"pixel_accuracy"``, ``"miou"`` (these two from :mod:`cvlib.metrics.segmentation`; ``miou``
    needs ``num_classes``), ``"confusion_matrix"`` (needs ``num_classes``).

    Raises:
        ValueError: for an unknown name (the allowed names are listed).
    """
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a str, got {type(name).__name__}")
    if name == "accuracy":
        return Accuracy()
    m = re.fullmatch(r"top(\d+)", name)
    if m:
        return TopK(int(m.group(1)))
    if name in ("confusion_matrix", "miou"):
        if num_classes is None:
            raise ValueError(f"metric {name!r} needs num_classes")
    if name == "confusion_matrix":
        return ConfusionMatrix(num_classes)  # type: ignore[arg-type]
    if name in ("pixel_accuracy", "miou"):
        seg = importlib.import_module("cvlib.metrics.segmentation")
        return seg.PixelAccuracy() if name == "pixel_accuracy" else seg.MeanIoU(num_classes, ignore_index=255)
    raise ValueError(
        f"unknown metric {name!r}; allowed: {METRIC_NAMES} or an object with reset/update/compute"
    )
