"""A synthetic COCO-like detection benchmark set (shared by the mAP benchmark and its tests).

``n_images`` images of 640 x 480 with 0-15 ground-truth boxes each (80 classes, sizes spanning
COCO's small/medium/large, about 1 % crowd), and ``n_dets`` detections per image: jittered copies of
the ground truth (some with the wrong class) plus random boxes, with random scores.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["make_coco_like"]


def make_coco_like(n_images: int = 5000, n_dets: int = 100, n_classes: int = 80, seed: int = 0):
    """Returns ``(preds, targets)`` as cvlib takes them (lists of dicts of float64/int64 tensors)."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, 16))
        xy = rng.uniform(0, 560, (g, 2))
        wh = np.exp(rng.uniform(np.log(6), np.log(400), (g, 2)))
        gb = np.concatenate([xy, np.minimum(xy + wh, 640)], 1)
        gl = rng.integers(1, n_classes + 1, g)
        crowd = rng.random(g) < 0.01
        targets.append(
            {
                "boxes": torch.from_numpy(gb),
                "labels": torch.from_numpy(gl),
                "iscrowd": torch.from_numpy(crowd),
            }
        )
        n_jit = min(n_dets, 3 * g)
        src = rng.integers(0, max(g, 1), n_jit)
        if g:
            size = np.concatenate([wh[src], wh[src]], 1)
            jit = gb[src] + rng.normal(0, 1, (n_jit, 4)) * size * 0.08
            jl = np.where(rng.random(n_jit) < 0.85, gl[src], rng.integers(1, n_classes + 1, n_jit))
        else:
            jit, jl = np.zeros((0, 4)), np.zeros(0, np.int64)
        nr = n_dets - len(jit)
        xy = rng.uniform(0, 600, (nr, 2))
        rb = np.concatenate([xy, xy + np.exp(rng.uniform(np.log(4), np.log(300), (nr, 2)))], 1)
        db = np.concatenate([jit, rb])
        db = np.concatenate([np.minimum(db[:, :2], db[:, 2:]), np.maximum(db[:, :2], db[:, 2:])], 1)
        dl = np.concatenate([jl, rng.integers(1, n_classes + 1, nr)])
        preds.append(
            {
                "boxes": torch.from_numpy(db),
                "scores": torch.from_numpy(rng.random(len(db)).round(3)),  # some tied scores
                "labels": torch.from_numpy(dl),
            }
        )
    return preds, targets
