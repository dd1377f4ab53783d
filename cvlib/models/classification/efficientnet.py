"""EfficientNet-B0...B7 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", arXiv:1905.11946).

B0's stage table (Table 1 of the paper) is scaled by *compound scaling*: widths by ``width``
(channels rounded to multiples of 8), repeats by ``depth`` (rounded up), input size ``resolution``; the
per-variant coefficients are the published ones of the authors' reference code
(:data:`EFFICIENTNET_SCALING`), which are rounded by hand and grow more slowly than the exact powers
``alpha ** phi, beta ** phi, gamma ** phi`` of Eq. 3 (alpha = 1.2, beta = 1.1, gamma = 1.15). The block
is MBConv (MobileNetV2's inverted residual, arXiv:1801.04381) with squeeze-and-excitation
(arXiv:1709.01507) and SiLU, and residual branches are dropped by stochastic depth with a rate growing
linearly to 0.2 over the blocks. Layer names follow torchvision (``features.N.M.block...``,
``classifier.1``) so its ImageNet weights load with ``strict=True``.

Departures: like torchvision, B5-B7 use BatchNorm eps=1e-3, momentum=0.01 (the values of the TensorFlow
weights) and B0-B4 PyTorch's defaults. ``small_input=True`` (for 32x32 images) makes the stem and the
second stage stride 1.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from cvlib.models._layers import (
    ConvNormAct,
    SqueezeExcite,
    StochasticDepth,
    check_model_input,
    make_divisible,
)
from cvlib.models._registry import register_model
from cvlib.models.classification._weights import TV_URL, WeightSpec, load_weights, resolve_num_classes

__all__ = [
    "MBConvConfig",
    "MBConv",
    "EfficientNet",
    "EfficientNetScaling",
    "EFFICIENTNET_B0_STAGES",
    "EFFICIENTNET_SCALING",
    "WEIGHTS",
    "COMPOUND_COEFFICIENTS",
    "scale_stages",
    "scaling_table",
] + [f"efficientnet_b{i}" for i in range(8)]


@dataclass(frozen=True)
class MBConvConfig:
    """One stage of B0 (a row of Table 1): expansion ratio, kernel, first stride, in/out channels, repeats."""

    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    num_layers: int


@dataclass(frozen=True)
class EfficientNetScaling:
    """Published compound-scaling coefficients of one variant (width, depth multipliers, input resolution
    in pixels, dropout before the classifier)."""

    width: float
    depth: float
    resolution: int
    dropout: float


# Table 1 of the paper: the EfficientNet-B0 baseline (stages 2-8; stage 1 is the stem, stage 9 the head).
EFFICIENTNET_B0_STAGES: tuple[MBConvConfig, ...] = (
    MBConvConfig(1, 3, 1, 32, 16, 1),
    MBConvConfig(6, 3, 2, 16, 24, 2),
    MBConvConfig(6, 5, 2, 24, 40, 2),
    MBConvConfig(6, 3, 2, 40, 80, 3),
    MBConvConfig(6, 5, 1, 80, 112, 3),
    MBConvConfig(6, 5, 2, 112, 192, 4),
    MBConvConfig(6, 3, 1, 192, 320, 1),
)

# The published per-variant coefficients (the authors' reference code, also used by torchvision).
EFFICIENTNET_SCALING: dict[str, EfficientNetScaling] = {
    "b0": EfficientNetScaling(1.0, 1.0, 224, 0.2),
    "b1": EfficientNetScaling(1.0, 1.1, 240, 0.2),
    "b2": EfficientNetScaling(1.1, 1.2, 260, 0.3),
    "b3": EfficientNetScaling(1.2, 1.4, 300, 0.3),
    "b4": EfficientNetScaling(1.4, 1.8, 380, 0.4),
    "b5": EfficientNetScaling(1.6, 2.2, 456, 0.4),
    "b6": EfficientNetScaling(1.8, 2.6, 528, 0.5),
    "b7": EfficientNetScaling(2.0, 3.1, 600, 0.5),
}

# Eq. 3 of the paper: depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi,
# found by grid search under alpha * beta^2 * gamma^2 ~= 2 (FLOPs double per step of phi).
COMPOUND_COEFFICIENTS = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}


def _check_stages(stages: object) -> None:
    if not isinstance(stages, list | tuple):
        raise TypeError(f"stages must be a list or tuple of MBConvConfig, got {type(stages).__name__}")
    if len(stages) == 0:
        raise ValueError("stages must not be empty")
    for i, cfg in enumerate(stages):
        if not isinstance(cfg, MBConvConfig):
            raise TypeError(f"stages[{i}] must be an MBConvConfig, got {type(cfg).__name__}")
        if cfg.stride not in (1, 2) or cfg.kernel % 2 == 0 or min(cfg.expand_ratio, cfg.num_layers) <= 0:
            raise ValueError(
                f"stages[{i}] needs stride in (1, 2), an odd kernel and positive counts, got {cfg}"
            )


def scale_stages(stages: tuple[MBConvConfig, ...], width: float, depth: float) -> list[MBConvConfig]:
    """Apply compound scaling to a stage table: channels -> ``make_divisible(c * width, 8)``, repeats ->
    ``ceil(n * depth)``."""
    _check_stages(stages)
    if width <= 0 or depth <= 0:
        raise ValueError(f"width and depth must be positive, got {width} and {depth}")
    return [
        MBConvConfig(
            c.expand_ratio,
            c.kernel,
            c.stride,
            make_divisible(c.in_channels * width, 8),
            make_divisible(c.out_channels * width, 8),
            int(math.ceil(c.num_layers * depth)),
        )
        for c in stages
    ]


def scaling_table() -> list[dict]:
    """One row per variant: name, the published coefficients, the number of MBConv blocks and the
    stem/head widths (for plotting compound scaling; params and MACs come from building the model)."""
    rows = []
    for name, s in EFFICIENTNET_SCALING.items():
        stages = scale_stages(EFFICIENTNET_B0_STAGES, s.width, s.depth)
        rows.append(
            dict(
                name=f"efficientnet_{name}",
                width=s.width,
                depth=s.depth,
                resolution=s.resolution,
                dropout=s.dropout,
                blocks=sum(c.num_layers for c in stages),
                stem_channels=stages[0].in_channels,
                head_channels=4 * stages[-1].out_channels,
            )
        )
    return rows


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation (Tan & Le 2019, Sec. 4).

    ``block`` = [1x1 expand ConvNormAct+SiLU (skipped for ratio 1), kxk depthwise ConvNormAct+SiLU,
    SqueezeExcite (squeeze to in_channels // 4, SiLU), 1x1 projection ConvNormAct without activation].
    With stride 1 and equal channels the output is ``x + stochastic_depth(block(x))``.

    Shapes: Tensor[B, in_channels, H, W] -> Tensor[B, out_channels, H / stride, W / stride].
    """

    def __init__(self, cfg: MBConvConfig, stochastic_depth_prob: float, norm_layer=nn.BatchNorm2d) -> None:
        super().__init__()
        self.use_res_connect = cfg.stride == 1 and cfg.in_channels == cfg.out_channels
        hidden = make_divisible(cfg.in_channels * cfg.expand_ratio, 8)
        layers: list[nn.Module] = []
        if hidden != cfg.in_channels:
            layers.append(ConvNormAct(cfg.in_channels, hidden, 1, norm_layer=norm_layer, activation=nn.SiLU))
        layers += [
            ConvNormAct(
                hidden,
                hidden,
                cfg.kernel,
                cfg.stride,
                groups=hidden,
                norm_layer=norm_layer,
                activation=nn.SiLU,
            ),
            SqueezeExcite(hidden, max(1, cfg.in_channels // 4), activation=nn.SiLU),
            ConvNormAct(hidden, cfg.out_channels, 1, norm_layer=norm_layer, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cfg.out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNet(nn.Module):
    """EfficientNet (Tan & Le 2019, arXiv:1905.11946): images Tensor[B, 3, H, W] -> logits Tensor[B, K].

    Args:
        stages (Sequence[MBConvConfig]): the (already scaled) stage table; checked before anything is built.
        dropout (float): dropout before the classifier.
        stochastic_depth_prob (float): drop rate of the last block; block i of N uses ``p * i / N``.
        num_classes (int): K.
        small_input (bool): stride-1 stem and second stage, for 32x32 images.
        norm_layer (Callable[[int], nn.Module]): normalisation layer.
    """

    def __init__(
        self,
        stages: tuple[MBConvConfig, ...] | list[MBConvConfig],
        dropout: float,
        stochastic_depth_prob: float = 0.2,
        num_classes: int = 1000,
        small_input: bool = False,
        norm_layer=nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        _check_stages(stages)
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        stages = [copy.copy(c) for c in stages]
        if small_input:
            stages[1] = MBConvConfig(**{**stages[1].__dict__, "stride": 1})
        stem_stride = 1 if small_input else 2
        features: list[nn.Module] = [
            ConvNormAct(3, stages[0].in_channels, 3, stem_stride, norm_layer=norm_layer, activation=nn.SiLU)
        ]
        total = sum(c.num_layers for c in stages)
        block_id = 0
        reduction = stem_stride
        self.feature_info: list[dict] = []
        for cfg in stages:
            if cfg.stride == 2 and len(features) > 1:  # the map before each downsampling ends a level
                self.feature_info.append(
                    dict(
                        channels=cfg.in_channels, reduction=reduction, module=f"features.{len(features) - 1}"
                    )
                )
            blocks = []
            for j in range(cfg.num_layers):
                first = j == 0
                block_cfg = MBConvConfig(
                    cfg.expand_ratio,
                    cfg.kernel,
                    cfg.stride if first else 1,
                    cfg.in_channels if first else cfg.out_channels,
                    cfg.out_channels,
                    1,
                )
                blocks.append(MBConv(block_cfg, stochastic_depth_prob * block_id / total, norm_layer))
                block_id += 1
            features.append(nn.Sequential(*blocks))
            reduction *= cfg.stride
        last_in = stages[-1].out_channels
        self.feature_info.append(
            dict(channels=last_in, reduction=reduction, module=f"features.{len(features) - 1}")
        )
        self.num_features = 4 * last_in
        features.append(ConvNormAct(last_in, self.num_features, 1, norm_layer=norm_layer, activation=nn.SiLU))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout, inplace=True), nn.Linear(self.num_features, num_classes)
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")  # He init, arXiv:1502.01852
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """One map per resolution, Tensor[B, feature_info[i]["channels"], H / r_i, W / r_i]."""
        wanted = [int(f["module"].split(".")[1]) for f in self.feature_info]
        outs = []
        for i, stage in enumerate(self.features[: wanted[-1] + 1]):
            x = stage(x)
            if i in wanted:
                outs.append(x)
        return outs

    def forward_head(self, x: Tensor) -> Tensor:
        """Last map of :meth:`forward_features` Tensor[B, C_last, h, w] -> logits Tensor[B, K].

        Runs the blocks of ``features`` after the last reported stage (the 1x1 conv to
        4 * C_last channels), pools and classifies: ``forward_head(forward_features(x)[-1]) == forward(x)``.
        """
        last = int(self.feature_info[-1]["module"].split(".")[1])
        x = self.features[last + 1 :](x)
        return self.classifier(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must be [B, 3, H, W], got {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x)[-1])


# torchvision's ImageNet weights (B0-B4 ported by R. Wightman, B5-B7 by L. Melas-Kyriazi from the
# TensorFlow originals); top-1 from torchvision's model cards, evaluated at its crop sizes (B2: 288 px).
_TV_FILES = {
    "b0": ("efficientnet_b0_rwightman-7f5810bc.pth", 77.692),
    "b1": ("efficientnet_b1_rwightman-bac287d4.pth", 78.642),
    "b2": ("efficientnet_b2_rwightman-c35c1473.pth", 80.608),
    "b3": ("efficientnet_b3_rwightman-b3899882.pth", 82.008),
    "b4": ("efficientnet_b4_rwightman-23ab8bcd.pth", 83.384),
    "b5": ("efficientnet_b5_lukemelas-1a07897c.pth", 83.444),
    "b6": ("efficientnet_b6_lukemelas-24a108a5.pth", 84.008),
    "b7": ("efficientnet_b7_lukemelas-c5b4e57e.pth", 84.122),
}
WEIGHTS: dict[str, dict[str, WeightSpec]] = {
    f"efficientnet_{v}": {"imagenet": WeightSpec(TV_URL + f, f.rsplit("-", 1)[1][:8], top1=top1)}
    for v, (f, top1) in _TV_FILES.items()
}


def _efficientnet(variant: str, *, num_classes: int | None, weights: str | None, **kwargs) -> EfficientNet:
    table = WEIGHTS[f"efficientnet_{variant}"]
    n = resolve_num_classes(table, weights, num_classes, default=1000)
    s = EFFICIENTNET_SCALING[variant]
    if variant in ("b5", "b6", "b7"):
        kwargs.setdefault("norm_layer", partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01))
    kwargs.setdefault("dropout", s.dropout)
    stages = scale_stages(EFFICIENTNET_B0_STAGES, s.width, s.depth)
    model = EfficientNet(stages, num_classes=n, **kwargs)
    return load_weights(model, table, weights) if weights is not None else model


@register_model(task="classification")
def efficientnet_b0(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B0 (Tan & Le 2019, arXiv:1905.11946), 224 px, 5,288,548 parameters at 1000 classes."""
    return _efficientnet("b0", num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def efficientnet_b1(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B1 (Tan & Le 2019, arXiv:1905.11946), 240 px, 7,794,184 parameters at 1000 classes."""
    return _efficientnet("b1", num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def efficientnet_b2(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B2 (Tan & Le 2019, arXiv:1905.11946), 260 px, 9,109,994 parameters at 1000 classes."""
    return _efficientnet("b2", num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def efficientnet_b3(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B3 (Tan & Le 2019, arXiv:1905.11946), 300 px, 12,233,232 parameters at 1000 classes."""
    return _efficientnet("b3", num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def efficientnet_b4(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B4 (Tan & Le 2019, arXiv:1905.11946), 380 px, 19,341,616 parameters at 1000 classes."""
    return _efficientnet("b4", num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def efficientnet_b5(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B5 (Tan & Le 2019, arXiv:1905.11946), 456 px, 30,389,784 parameters at 1000 classes."""
    return _efficientnet("b5", num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def efficientnet_b6(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B6 (Tan & Le 2019, arXiv:1905.11946), 528 px, 43,040,704 parameters at 1000 classes."""
    return _efficientnet("b6", num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def efficientnet_b7(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> EfficientNet:
    """EfficientNet-B7 (Tan & Le 2019, arXiv:1905.11946), 600 px, 66,347,960 parameters at 1000 classes."""
    return _efficientnet("b7", num_classes=num_classes, weights=weights, **kwargs)
