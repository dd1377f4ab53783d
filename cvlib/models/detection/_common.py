"""Pieces shared by the detectors: input checks and normalisation, a tiny backbone, ImageNet ResNet
backbones with frozen batch norm, the FPN, box matching and sampling.

FPN: Lin et al. 2017, "Feature Pyramid Networks for Object Detection", arXiv:1612.03144 (lateral 1x1
convolutions, nearest-neighbour top-down pathway, 3x3 output convolutions; extra coarser levels by
stride-2 3x3 convolutions as in RetinaNet/FCOS).

The detection contract (all detectors):

* images: Tensor[B, 3, H, W] or a list of Tensor[3, H_i, W_i], float in [0, 1] or uint8 in [0, 255]
  (as datasets yield them; divided by 255 inside). With ``image_mean``/``image_std`` set (the default
  for ImageNet backbones) every image is normalised ``(x - mean) / std`` inside the model, as
  torchvision's ``GeneralizedRCNNTransform`` does, so callers always pass [0, 1] images. A list of
  different sizes is zero-padded (after normalisation) at the bottom/right to a common size (boxes stay
  valid); no resizing happens inside the model.
* targets (training): a list of B dicts ``{"boxes": Tensor[N, 4] xyxy pixels (any real dtype, used as
  float), "labels": Tensor[N] integer in 1..K}``; label 0 is background and never appears in a target.
  N = 0 is allowed. Targets are moved to the images' device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._layers import ConvNormAct

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "prepare_images",
    "check_train_size",
    "check_targets",
    "TinyBackbone",
    "FrozenBatchNorm2d",
    "freeze_batch_norm",
    "resnet_backbone",
    "FPN",
    "BackboneWithFPN",
    "match_by_iou",
    "sample_balanced",
    "normalization",
    "reject_detector_weights",
]

# the statistics torchvision's ImageNet weights were trained with (same values as
# cvlib.models.classification._weights)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_float_image(im: Tensor, name: str) -> Tensor:
    """uint8 -> float / 255; float unchanged; anything else is a TypeError that says how to convert."""
    if im.dtype == torch.uint8:
        return im.to(torch.get_default_dtype()) / 255.0
    if not im.is_floating_point():
        raise TypeError(
            f"{name} must be float in [0, 1] or uint8 in [0, 255], got {im.dtype}; "
            f"convert with {name}.float() / 255 (or .float() if the values are already in [0, 1])"
        )
    return im


def _check_finite_image(im: Tensor, name: str) -> None:
    if not bool(torch.isfinite(im).all()):
        raise ValueError(f"{name} contains NaN or inf")


def _normalize(x: Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> Tensor:
    """(x - mean) / std over the channel dimension (-3) of Tensor[..., 3, H, W]."""
    if mean is None and std is None:
        return x
    m = torch.as_tensor(mean if mean is not None else (0.0, 0.0, 0.0), dtype=x.dtype, device=x.device)
    s = torch.as_tensor(std if std is not None else (1.0, 1.0, 1.0), dtype=x.dtype, device=x.device)
    return (x - m[:, None, None]) / s[:, None, None]


def _check_mean_std(image_mean: object, image_std: object) -> tuple:
    """Validate the constructor's normalisation option; returns (mean, std) as tuples or (None, None)."""
    if (image_mean is None) != (image_std is None):
        raise ValueError(
            "image_mean and image_std must be given together (or both None for no normalisation)"
        )
    if image_mean is None:
        return None, None
    out = []
    for name, v in (("image_mean", image_mean), ("image_std", image_std)):
        try:
            t = tuple(float(a) for a in v)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of 3 floats, got {type(v).__name__}") from None
        if len(t) != 3:
            raise ValueError(f"{name} must have 3 values (RGB), got {len(t)}")
        out.append(t)
    if any(s <= 0 for s in out[1]):
        raise ValueError(f"image_std must be positive, got {out[1]}")
    return out[0], out[1]


def prepare_images(
    images: Tensor | list[Tensor],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, list[tuple[int, int]]]:
    """Check, convert, normalise and batch detector inputs.

    Args:
        images (Tensor[B, 3, H, W] | list[Tensor[3, H_i, W_i]]): float in [0, 1] or uint8 in [0, 255]
            (converted to float / 255).
        mean, std (tuple[float, float, float] | None): per-channel normalisation ``(x - mean) / std``,
            applied to each image before padding (so padding is 0 in the normalised space, as torchvision).
        dtype (torch.dtype | None): floating dtype of the batch (the detectors pass their parameters'
            dtype, so float64/float16 images reach a float32 model as float32); None keeps the images'.

    Returns:
        (Tensor[B, 3, H, W], list[tuple[int, int]]): the batch (zero-padded at the bottom/right to the
        largest size) and each image's original ``(H_i, W_i)``.

    Raises:
        TypeError: for a non-tensor input or an integer dtype other than uint8 (the message says how
            to convert); ValueError: for a wrong shape (channels last is named) or NaN/inf values.
    """
    if isinstance(images, Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            hint = (
                "; channels last? use images.permute(0, 3, 1, 2)"
                if images.dim() == 4 and images.shape[-1] == 3
                else ""
            )
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}{hint}")
        if images.shape[0] == 0 or 0 in images.shape[-2:]:
            raise ValueError(f"images must hold at least one non-empty image, got {tuple(images.shape)}")
        images = _as_float_image(images, "images")
        _check_finite_image(images, "images")
        if dtype is not None:
            images = images.to(dtype)
        return _normalize(images, mean, std), [tuple(images.shape[-2:])] * images.shape[0]
    if not isinstance(images, (list, tuple)) or not images:
        raise TypeError(
            f"images must be a Tensor[B, 3, H, W] or a non-empty list of Tensor[3, H, W], "
            f"got {type(images).__name__}{' (empty)' if isinstance(images, (list, tuple)) else ''}"
        )
    out = []
    for i, im in enumerate(images):
        if not isinstance(im, Tensor):
            hint = (
                "; convert a HWC uint8 array with torch.from_numpy(a).permute(2, 0, 1)"
                if type(im).__name__ == "ndarray"
                else ""
            )
            raise TypeError(f"images[{i}] must be a Tensor[3, H, W], got {type(im).__name__}{hint}")
        if im.dim() != 3 or im.shape[0] != 3:
            hint = "; channels last? use .permute(2, 0, 1)" if im.dim() == 3 and im.shape[-1] == 3 else ""
            raise ValueError(f"images[{i}] must be [3, H, W], got {tuple(im.shape)}{hint}")
        if 0 in im.shape[-2:]:
            raise ValueError(f"images[{i}] is empty: {tuple(im.shape)}")
        im = _as_float_image(im, f"images[{i}]")
        if dtype is not None:
            im = im.to(dtype)
        _check_finite_image(im, f"images[{i}]")
        out.append(_normalize(im, mean, std))
    sizes = [tuple(im.shape[-2:]) for im in out]
    h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
    dtype = out[0].dtype
    for im in out[1:]:
        dtype = torch.promote_types(dtype, im.dtype)
    batch = out[0].new_zeros((len(out), 3, h, w), dtype=dtype)
    for i, im in enumerate(out):
        batch[i, :, : im.shape[1], : im.shape[2]] = im
    return batch, sizes


def check_train_size(images: Tensor, backbone: nn.Module) -> None:
    """Training needs more than one value per channel at the coarsest backbone map (batch norm):
    a batch of one image no larger than the backbone's total stride is refused with a clear message."""
    info = getattr(backbone, "feature_info", None)
    stride = int(info[-1]["reduction"]) if info else 1
    h, w = images.shape[-2:]
    if images.shape[0] == 1 and h <= stride and w <= stride and stride > 1:
        raise ValueError(
            f"training on one {h} x {w} image leaves a 1 x 1 map at the backbone's stride {stride}, and "
            f"batch norm needs more than one value per channel; use more images or images larger than "
            f"{stride} px"
        )


def check_targets(
    targets: object, batch_size: int, num_classes: int, device: torch.device | None = None
) -> list[dict[str, Tensor]]:
    """Validate detection targets; report the first degenerate box with its image index.

    Boxes of any real dtype (integer pixel boxes too) become float; labels must be an integer tensor
    and become int64; both move to ``device`` when given.

    Raises:
        TypeError: non-tensor boxes/labels, non-real boxes, non-integer labels (with how to convert).
        ValueError: wrong lengths or shapes, degenerate or non-finite boxes, labels outside 1..K.
    """
    if not isinstance(targets, (list, tuple)) or len(targets) != batch_size:
        n = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
        raise ValueError(f"targets must be a list of {batch_size} dicts (one per image), got {n}")
    out = []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        b, lab = t["boxes"], t["labels"]
        for key, v in (("boxes", b), ("labels", lab)):
            if not isinstance(v, Tensor):
                raise TypeError(
                    f"targets[{i}]['{key}'] must be a torch.Tensor, got {type(v).__name__}; "
                    "convert with torch.as_tensor(...)"
                )
        if b.dtype == torch.bool or b.is_complex():
            raise TypeError(f"targets[{i}]['boxes'] must hold real pixel coordinates, got {b.dtype}")
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"targets[{i}]['boxes'] must be [N, 4], got {tuple(b.shape)}")
        if lab.dtype == torch.bool or lab.is_floating_point() or lab.is_complex():
            raise TypeError(
                f"targets[{i}]['labels'] must be an integer tensor (int64 class ids 1..{num_classes}), "
                f"got {lab.dtype}; convert with .long()"
            )
        if lab.shape != b.shape[:1]:
            hint = "; flatten [N, 1] labels with .flatten()" if lab.dim() == 2 and lab.shape[1] == 1 else ""
            raise ValueError(
                f"targets[{i}]['labels'] must be [N] with N = {len(b)}, got {tuple(lab.shape)}{hint}"
            )
        b = b if b.is_floating_point() else b.to(torch.get_default_dtype())
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
        lab = lab.long()
        if device is not None:
            b, lab = b.to(device), lab.to(device)
        out.append({"boxes": b, "labels": lab})
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


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """Batch norm with fixed statistics and affine parameters (torchvision's detection backbones).

    Detection batches are small (2-16 images), too few for good batch statistics, so fine-tuning keeps
    the ImageNet running mean/variance and the affine ``weight``/``bias`` fixed: the layer is the
    per-channel affine map ``(x - running_mean) / sqrt(running_var + eps) * weight + bias`` in train and
    eval mode alike. Same state-dict keys as :class:`torch.nn.BatchNorm2d`; parameters have
    ``requires_grad=False``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__(num_features, eps=eps)
        self.weight.requires_grad_(False)
        self.bias.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every :class:`torch.nn.BatchNorm2d` in ``module`` (in place) by a
    :class:`FrozenBatchNorm2d` with the same statistics and parameters; returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, FrozenBatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, child.eps).to(
                device=child.running_mean.device, dtype=child.running_mean.dtype
            )
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        else:
            freeze_batch_norm(child)
    return module


_RESNET_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")


def resnet_backbone(
    arch: str = "resnet50",
    *,
    weights_backbone: str | None = None,
    trainable_layers: int | None = None,
    frozen_bn: bool | None = None,
) -> nn.Module:
    """A cvlib ResNet for a detector, optionally with ImageNet weights, as torchvision's detection
    backbones: frozen batch norm and only the last ``trainable_layers`` stages trained.

    Args:
        arch (str): ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"`` or ``"resnet152"``.
        weights_backbone (str | None): a tag of that ResNet's weight table (``"imagenet"``), loaded by
            the classification factory (``create_model(arch, weights=...)``: cached, sha256-checked,
            torchvision's layout); None = random initialisation.
        trainable_layers (int | None): 0-5 stages trained, counted from the last (``layer4``, ``layer3``,
            ``layer2``, ``layer1``, then ``conv1``/``bn1``); None = 3 with weights, 5 without
            (torchvision's defaults).
        frozen_bn (bool | None): replace BatchNorm by :class:`FrozenBatchNorm2d`; None = only with weights.

    Returns:
        nn.Module: the ResNet with its classifier ``fc`` replaced by ``nn.Identity`` (unused by
        ``forward_features``).
    """
    from cvlib.models._registry import create_model

    if arch not in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        raise ValueError(f"arch must be a ResNet (resnet18 ... resnet152), got {arch!r}")
    if weights_backbone is not None and not isinstance(weights_backbone, str):
        raise TypeError(
            f"weights_backbone must be a str such as 'imagenet' or None, got {weights_backbone!r}"
        )
    pretrained = weights_backbone is not None
    if trainable_layers is None:
        trainable_layers = 3 if pretrained else 5
    if not isinstance(trainable_layers, int) or not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable_layers must be an int in 0..5, got {trainable_layers!r}")
    backbone = create_model(arch, weights=weights_backbone)
    backbone.fc = nn.Identity()
    if pretrained if frozen_bn is None else frozen_bn:
        freeze_batch_norm(backbone)
    train = set(_RESNET_STAGES[:trainable_layers]) | ({"bn1"} if trainable_layers == 5 else set())
    for name, p in backbone.named_parameters():
        if name.split(".")[0] not in train:
            p.requires_grad_(False)
    return backbone


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


def normalization(normalize: bool) -> dict[str, tuple[float, float, float] | None]:
    """Constructor keywords ``image_mean``/``image_std``: ImageNet statistics if ``normalize`` else None."""
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {normalize!r}")
    return (
        dict(image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
        if normalize
        else dict(image_mean=None, image_std=None)
    )


def reject_detector_weights(kwargs: dict) -> None:
    """The detector factories take ``weights_backbone``; a ``weights=`` argument is a mistake."""
    if "weights" in kwargs:
        raise ValueError(
            "cvlib publishes no trained detector weights; use weights_backbone='imagenet' for an ImageNet "
            f"backbone (got weights={kwargs['weights']!r})"
        )
