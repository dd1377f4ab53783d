"""The small real dataset of the course: scikit-learn's bundled 8x8 handwritten digits.

1,797 grey-level images of the digits 0-9 from the UCI "Optical Recognition of Handwritten
Digits" set (Alpaydin & Kaynak 1998), shipped inside scikit-learn, so no download is needed.
Pixel values are counts 0..16 of a 4x4 block of the original 32x32 bitmaps; :func:`load_digits`
scales them to [0, 1] and can upsample to any size for models that need a larger input.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DIGITS_CLASSES", "load_digits", "train_test_split"]

DIGITS_CLASSES = tuple(str(i) for i in range(10))


@lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    return bunch.images, bunch.target


def load_digits(size: int | tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the 1,797 sklearn digits as image tensors.

    Args:
        size: output height and width (an int for square images). ``None`` keeps 8x8; a larger
            size is reached by bilinear interpolation (``align_corners=False``), clamped to [0, 1].

    Returns:
        images (Tensor[1797, 1, H, W]): float32 in [0, 1] (raw value / 16).
        labels (Tensor[1797]): int64 digit classes 0..9.
    """
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in hw):
            raise ValueError(f"size must be a positive int or (H, W) of positive ints, got {size!r}")
    raw_images, raw_labels = _raw_digits()  # cached; copied below so callers cannot alter the cache
    images = torch.tensor(raw_images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N, 1, 8, 8]
    labels = torch.tensor(raw_labels, dtype=torch.int64)
    if size is not None and hw != (8, 8):
        images = F.interpolate(images, size=hw, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return images, labels


def train_test_split(
    x: torch.Tensor, y: torch.Tensor, test_size: float | int = 0.25, seed: int = 0, stratify: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed, seeded split of ``(x, y)`` into train and test parts.

    With ``stratify=True`` each class is split separately so both parts keep the class
    proportions (up to rounding). The same ``seed`` always gives the same split on every
    machine (the permutation comes from a seeded CPU ``torch.Generator``).

    Args:
        x (Tensor[N, ...]): samples.
        y (Tensor[N]): integer labels.
        test_size: a fraction in (0, 1) or a number of test samples in [1, N).
        seed: seed of the permutation.
        stratify: split class by class.

    Returns:
        ``x_train, y_train, x_test, y_test``; both parts are in a seeded random order.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    n = x.shape[0]
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must be [N] with N = x.shape[0] = {n}, got {tuple(y.shape)}")
    if isinstance(test_size, float) and 0.0 < test_size < 1.0:
        frac = test_size
    elif isinstance(test_size, int) and not isinstance(test_size, bool) and 1 <= test_size < n:
        frac = test_size / n
    else:
        raise ValueError(f"test_size must be a float in (0, 1) or an int in [1, {n}), got {test_size!r}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    if stratify:
        y_cpu = y.detach().cpu()[perm]
        test_parts, train_parts = [], []
        for c in torch.unique(y_cpu):
            idx = perm[y_cpu == c]
            n_test = int(round(frac * idx.numel()))
            test_parts.append(idx[:n_test])
            train_parts.append(idx[n_test:])
        test_idx = torch.cat(test_parts)
        train_idx = torch.cat(train_parts)
        # mix the classes again, deterministically
        test_idx = test_idx[torch.randperm(test_idx.numel(), generator=g)]
        train_idx = train_idx[torch.randperm(train_idx.numel(), generator=g)]
    else:
        n_test = int(round(frac * n))
        test_idx, train_idx = perm[:n_test], perm[n_test:]
    test_idx = test_idx.to(x.device)
    train_idx = train_idx.to(x.device)
    return x[train_idx], y[train_idx.to(y.device)], x[test_idx], y[test_idx.to(y.device)]
