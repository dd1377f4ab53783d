"""Pieces shared by the detectors: input checks, a tiny backbone, the FPN, box matching and sampling.

FPN: Lin et al. 2017, "Feature Pyramid Networks for Object Detection", arXiv:1612.03144 (lateral 1x1
convolutions, nearest-neighbour top-down pathway, 3x3 output convolutions; extra coarser levels by
stride-2 3x3 convolutions as in RetinaNet/FCOS).

The detection contract (both detectors):

* images: Tensor[B, 3, H, W] or a list of Tensor[3, H_i, W_i], float in [0, 1]. A list of different
  sizes is zero-padded at the bottom/right to a common size (boxes stay valid); no resizing happens
  inside the model.
* targets (training): a list of B dicts ``{"boxes": Tensor[N, 4] float xyxy pixels, "labels":
  Tensor[N] int64 in 1..K}``; label 0 is background and never appears in a target. N = 0 is allowed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._layers import ConvNormAct

__all__ = [
    "prepare_images",
    "check_targets",
    "TinyBackbone",
    "FPN",
    "BackboneWithFPN",
    "match_by_iou",
    "sample_balanced",
]


def prepare_images(images: Tensor | list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
    """Batch images into Tensor[B, 3, H, W]; return it and each image's original ``(H_i, W_i)``."""
    if isinstance(images, Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
        return images, [tuple(images.shape[-2:])] * images.shape[0]
    if not isinstance(images, (list, tuple)) or not images:
        raise TypeError(
            f"images must be a Tensor[B, 3, H, W] or a non-empty list of Tensor[3, H, W], "
            f"got {type(images).__name__}"
        )
    for i, im in enumerate(images):
        if not isinstance(im, Tensor) or im.dim() != 3 or im.shape[0] != 3:
            shape = tuple(im.shape) if isinstance(im, Tensor) else type(im).__name__
            raise ValueError(f"images[{i}] must be [3, H, W], got {shape}")
    sizes = [tuple(im.shape[-2:]) for im in images]
    h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
    batch = images[0].new_zeros((len(images), 3, h, w))
    for i, im in enumerate(images):
        batch[i, :, : im.shape[1], : im.shape[2]] = im
    return batch, sizes


def check_targets(targets: object, batch_size: int, num_classes: int) -> list[dict[str, Tensor]]:
    """Validate detection targets; report the first degenerate box with its image index."""
    if not isinstance(targets, (list, tuple)) or len(targets) != batch_size:
        n = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
        raise ValueError(f"targets must be a list of {batch_size} dicts (one per image), got {n}")
    out = []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        b, lab = t["boxes"], t["labels"]
        if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"targets[{i}]['boxes'] must be [N, 4], got {tuple(getattr(b, 'shape', ()))}")
        if not isinstance(lab, Tensor) or lab.shape != b.shape[:1]:
            raise ValueError(
                f"targets[{i}]['labels'] must be [N] with N = {len(b)}, got "
                f"{tuple(getattr(lab, 'shape', ()))}"
            )
        if b.numel():
            bad = ~torch.isfinite(b).all(1) | (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
            if bool(bad.any()):
                j = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"targets[{i}]['boxes'][{j}] is degenerate (needs x2 > x1 and y2 > y1 and "
                    f"finite values): {b[j].tolist()} in image {i}"
                )
            if bool(((lab < 1) | (lab > num_classes)).any()):
                j = int(((lab < 1) | (lab > num_classes)).nonzero()[0, 0])
                raise ValueError(
                    f"targets[{i}]['labels'][{j}] = {int(lab[j])} is outside 1..{num_classes} "
                    "(0 is background)"
                )
        out.append({"boxes": b.float() if not b.is_floating_point() else b, "labels": lab.long()})
    return out


class TinyBackbone(nn.Module):
    """A small conv backbone for CPU-sized experiments: stem (stride 2) and four stride-2 stages of
    two 3x3 ConvNormAct each; ``feature_info`` reductions 4, 8, 16, 32.

    Args:
        channels (tuple[int, int, int, int]): output channels of the four stages.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 48, 64, 96)) -> None:
        super().__init__()
        self.stem = ConvNormAct(3, channels[0] // 2, 3, stride=2)
        stages, c_in = [], channels[0] // 2
        for c in channels:
            stages.append(nn.Sequential(ConvNormAct(c_in, c, 3, stride=2), ConvNormAct(c, c, 3)))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.feature_info = [
            dict(channels=c, reduction=4 * 2**i, module=f"stages.{i}") for i, c in enumerate(channels)
        ]

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """One map per stage, channels and reductions as in ``feature_info``."""
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_features(x)


class FPN(nn.Module):
    """Feature pyramid (Lin et al. 2017) over selected backbone levels, plus optional coarser levels.

    Args:
        in_channels (list[int]): channels of the input maps, finest first.
        out_channels (int): channels of every output level.
        extra_levels (int): stride-2 3x3 convolutions appended after the coarsest level (P6, P7).

    Shapes: list of Tensor[B, C_l, H_l, W_l] -> list of Tensor[B, out_channels, H_l, W_l].
    """

    def __init__(self, in_channels: list[int], out_channels: int, extra_levels: int = 0) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        self.extra = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1) for _ in range(extra_levels)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        lat = [conv(f) for conv, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 2, -1, -1):  # top-down: coarse to fine
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        outs = [conv(x) for conv, x in zip(self.output, lat)]
        for j, conv in enumerate(self.extra):
            outs.append(conv(outs[-1] if j == 0 else F.relu(outs[-1])))
        return outs


def match_by_iou(iou: Tensor, high: float, low: float, allow_low_quality: bool) -> Tensor:
    """Match each prediction (column) to a ground truth (row) of an IoU matrix.

    Args:
        iou (Tensor[G, N]): IoU of G ground-truth boxes with N anchors/proposals.
        high (float): IoU >= high -> foreground (matched ground-truth index).
        low (float): IoU < low -> background (-1); in between -> ignored (-2).
        allow_low_quality (bool): also match each ground truth's best predictions (Faster R-CNN RPN rule),
            so that every ground truth gets at least one foreground.

    Returns:
        Tensor[N] (int64): ground-truth index, -1 (background) or -2 (ignore).
    """
    n = iou.shape[1]
    if iou.shape[0] == 0:
        return torch.full((n,), -1, dtype=torch.int64, device=iou.device)
    vals, idx = iou.max(dim=0)
    out = idx.clone()
    out[vals < high] = -2
    out[vals < low] = -1
    if allow_low_quality:
        best = iou.max(dim=1, keepdim=True).values  # [G, 1]
        gt_i, pred_i = ((iou == best) & (best > 0)).nonzero(as_tuple=True)
        out[pred_i] = idx[pred_i]
    return out


def sample_balanced(matched: Tensor, batch_size: int, positive_fraction: float) -> tuple[Tensor, Tensor]:
    """Random foreground/background sample (Faster R-CNN minibatch rule).

    Args:
        matched (Tensor[N]): >= 0 foreground, -1 background, -2 ignored (as :func:`match_by_iou`).
        batch_size (int): total samples wanted.
        positive_fraction (float): at most this fraction are foreground; background fills the rest.

    Returns:
        (Tensor[P], Tensor[Q]): int64 indices of the sampled foreground and background.
    """
    pos = (matched >= 0).nonzero().flatten()
    neg = (matched == -1).nonzero().flatten()
    n_pos = min(int(batch_size * positive_fraction), pos.numel())
    n_neg = min(batch_size - n_pos, neg.numel())
    pos = pos[torch.randperm(pos.numel(), device=pos.device)[:n_pos]]
    neg = neg[torch.randperm(neg.numel(), device=neg.device)[:n_neg]]
    return pos, neg


class BackboneWithFPN(nn.Module):
    """A classification backbone (``feature_info`` + ``forward_features``) followed by an FPN.

    Args:
        backbone (nn.Module): exposes ``feature_info`` (list of dicts with ``channels``, ``reduction``)
            and ``forward_features(x) -> list[Tensor]``.
        levels (tuple[int, ...]): indices of the backbone stages to use, finest first.
        out_channels (int): FPN width; ``None`` uses the raw backbone maps (no FPN).
        extra_levels (int): coarser levels appended by the FPN (stride doubles each time).

    Attributes:
        out_channels (int), strides (list[int]): of the returned maps, finest first.
    """

    def __init__(
        self, backbone: nn.Module, levels: tuple[int, ...], out_channels: int | None, extra_levels: int = 0
    ) -> None:
        super().__init__()
        info = getattr(backbone, "feature_info", None)
        if not info or not callable(getattr(backbone, "forward_features", None)):
            raise TypeError(
                "backbone must expose feature_info and forward_features(x) (see CONTRIBUTING.md), "
                f"got {type(backbone).__name__}"
            )
        if not levels or any(not 0 <= i < len(info) for i in levels) or list(levels) != sorted(set(levels)):
            raise ValueError(f"levels must be increasing stage indices in [0, {len(info)}), got {levels!r}")
        self.body, self.levels = backbone, tuple(levels)
        chans = [int(info[i]["channels"]) for i in levels]
        self.strides = [int(info[i]["reduction"]) for i in levels]
        if out_channels is None:
            if extra_levels or len(levels) != 1:
                raise ValueError(
                    "without an FPN (out_channels=None) use exactly one level and no extra levels"
                )
            self.fpn, self.out_channels = None, chans[0]
        else:
            self.fpn, self.out_channels = FPN(chans, out_channels, extra_levels), out_channels
            self.strides += [self.strides[-1] * 2 ** (j + 1) for j in range(extra_levels)]

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = self.body.forward_features(x)
        feats = [feats[i] for i in self.levels]
        return self.fpn(feats) if self.fpn is not None else feats
