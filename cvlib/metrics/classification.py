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

from cvlib._validate import check_class_ids, check_int, check_tensor

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


def _main(output: Any) -> Any:
    # GoogLeNet-style (main, aux...) tuples: score the main head.
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return output


def _check_scores(output: Any, name: str = "output") -> torch.Tensor:
    output = check_tensor(output, name, dtype="float", shape="[B, K] or [B, K, H, W] scores")
    if output.ndim < 2:
        raise ValueError(f"{name} must be [B, K] or [B, K, ...] scores, got shape {tuple(output.shape)}")
    if output.shape[1] == 0:
        raise ValueError(f"{name} must have at least one class (K >= 1), got shape {tuple(output.shape)}")
    return output


def _hard_targets(output: torch.Tensor, target: Any) -> torch.Tensor:
    """Integer class ids from ``target`` (soft labels ``[B, K]`` are arg-maxed), on the output's device."""
    target = check_tensor(target, "target", dtype=("int", "float"), shape="[B] (or [B, H, W]) int class ids")
    target = target.to(output.device)
    if target.is_floating_point():
        if target.shape != output.shape:
            raise TypeError(
                f"target must hold integer class ids {_expected(output)} or float soft labels "
                f"{tuple(output.shape)}; got dtype {target.dtype} shape {tuple(target.shape)} "
                "(convert class ids with target.long())"
            )
        return target.argmax(1)
    expect = _expected(output)
    if tuple(target.shape) != expect:
        hint = " (squeeze the trailing dimension)" if tuple(target.shape) == (*expect, 1) else ""
        raise ValueError(
            f"target must have shape {expect} for output {tuple(output.shape)}, "
            f"got {tuple(target.shape)}{hint}"
        )
    return target


def _expected(output: torch.Tensor) -> tuple[int, ...]:
    return (output.shape[0], *output.shape[2:])


def _validate(
    output: torch.Tensor, target: torch.Tensor, soft: torch.Tensor | None, k: int, ignore_index: int | None
) -> None:
    """One device reduction: NaN in the scores (or soft labels), class ids outside ``[0, k)``."""
    if target.numel() == 0:
        return
    ids = target
    if ignore_index is not None and target.ndim >= 2:
        ids = torch.where(target == ignore_index, torch.zeros_like(target), target)
    stats = torch.stack(
        [
            torch.isnan(output).any().long(),
            torch.zeros((), dtype=torch.long, device=output.device)
            if soft is None
            else (~torch.isfinite(soft)).any().long(),
            ids.min().long(),
            ids.max().long(),
        ]
    ).tolist()
    if stats[0]:
        raise ValueError(
            f"output holds NaN scores ({int(torch.isnan(output).sum())} of {output.numel()}); "
            "check the model for a diverged forward pass"
        )
    if stats[1]:
        raise ValueError("target soft labels must be finite, got NaN or inf")
    lo, hi = stats[2], stats[3]
    if lo < 0 or hi >= k:
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None and target.ndim >= 2 else ""
        raise ValueError(f"target holds class id {lo if lo < 0 else hi}, outside [0, {k}){extra}")


def _check_ignore(ignore_index: Any) -> int | None:
    if ignore_index is not None:
        check_int(ignore_index, "ignore_index")
    return ignore_index


def _counts(output: Any, target: Any, k: int, ignore_index: int | None):
    output = _check_scores(_main(output))
    ignore_index = _check_ignore(ignore_index)
    k = check_int(k, "k", min=1)
    soft = target if isinstance(target, torch.Tensor) and target.is_floating_point() else None
    target = _hard_targets(output, target)
    if k > output.shape[1]:
        raise ValueError(f"k must be in [1, {output.shape[1]}] (the number of classes), got {k}")
    _validate(output, target, soft, output.shape[1], ignore_index)
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
    hit, n = int(hit.item()), int(n.item())  # exact counts; no float64 on the device (MPS has none)
    return hit / n if n > 0 else float("nan")


def topk_accuracy(
    output: torch.Tensor, target: torch.Tensor, k: int = 5, ignore_index: int | None = 255
) -> float:
    """Fraction of samples whose target is among the ``k`` highest scores (ties: ``torch.topk`` order)."""
    hit, n = _counts(output, target, k, ignore_index)
    hit, n = int(hit.item()), int(n.item())  # exact counts; no float64 on the device (MPS has none)
    return hit / n if n > 0 else float("nan")


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
    ignore_index = _check_ignore(ignore_index)
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", min=1)
    check_tensor(output, "output", dtype=("float", "int"), shape="[B, K, ...] scores or [B, ...] class ids")
    if output.is_floating_point():
        output = _check_scores(output)
        soft = target if isinstance(target, torch.Tensor) and target.is_floating_point() else None
        target = _hard_targets(output, target)
        if num_classes is not None and num_classes != output.shape[1]:
            raise ValueError(
                f"output has {output.shape[1]} classes (dim 1 of {tuple(output.shape)}) "
                f"but num_classes={num_classes}"
            )
        k = output.shape[1]
        _validate(output, target, soft, k, ignore_index)
        pred = output.argmax(1)
    else:
        if num_classes is None:
            raise ValueError("num_classes is required when output holds predicted class ids")
        check_tensor(target, "target", dtype="int", shape="[B, ...] int class ids")
        target = target.to(output.device)
        if output.shape != target.shape:
            raise ValueError(f"predictions {tuple(output.shape)} and target {tuple(target.shape)} must match")
        k, pred = num_classes, output
    dense = target.ndim >= 2
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None and dense:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    check_class_ids(target, "target", k)
    check_class_ids(pred, "output (predicted class ids)", k)
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
