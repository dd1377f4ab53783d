"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
arXiv:1801.04381).

Each ``InvertedResidual`` expands a narrow input by a factor ``t`` with a 1x1 convolution (ReLU6), filters
it with a 3x3 depthwise convolution (ReLU6) and projects it back to a narrow output with a *linear* 1x1
convolution (no activation: the "linear bottleneck"); the shortcut joins the narrow ends. The stage
table is Table 2 of the paper. Layer names follow torchvision (``features.N.conv...``, ``classifier.1``),
so its ImageNet weights load with ``strict=True``.

Departure: ``small_input=True`` (for 32x32 images) makes the stem and the second stage stride 1, so the
network reduces by 8 instead of 32, as in the usual CIFAR adaptations.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cvlib.models._layers import ConvNormAct, check_model_input, make_divisible
from cvlib.models._registry import register_model
from cvlib.models.classification._weights import TV_URL, WeightSpec, load_weights, resolve_num_classes

__all__ = ["InvertedResidual", "MobileNetV2", "MOBILENET_V2_STAGES", "WEIGHTS", "mobilenet_v2"]


class InvertedResidual(nn.Module):
    """Inverted residual with linear bottleneck (Sandler et al. 2018, Fig. 3b and Table 1).

    ``conv`` is [1x1 expand ConvNormAct (skipped when ``expand_ratio == 1``), 3x3 depthwise ConvNormAct,
    1x1 projection Conv2d, BatchNorm2d]; the shortcut is used when ``stride == 1`` and the channel
    counts agree.

    Shapes: Tensor[B, in_channels, H, W] -> Tensor[B, out_channels, H / stride, W / stride].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: int,
        norm_layer=nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(in_channels, hidden, 1, norm_layer=norm_layer, activation=nn.ReLU6))
        layers += [
            ConvNormAct(hidden, hidden, 3, stride, groups=hidden, norm_layer=norm_layer, activation=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # linear bottleneck: no activation
            norm_layer(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


# Table 2 of the paper: expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381): images Tensor[B, 3, H, W] -> logits [B, K].

    Args:
        num_classes (int): K.
        width_mult (float): multiplies every layer's width (rounded by ``make_divisible``); the last
            1x1 convolution keeps 1280 channels for ``width_mult < 1`` (paper, Sec. 5.1).
        round_nearest (int): channel counts are multiples of this.
        dropout (float): dropout before the classifier (0.2 as in torchvision).
        small_input (bool): stride-1 stem and second stage, for 32x32 images.
        stages (tuple): ``(t, c, n, s)`` rows; default :data:`MOBILENET_V2_STAGES`.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        round_nearest: int = 8,
        dropout: float = 0.2,
        small_input: bool = False,
        stages: tuple[tuple[int, int, int, int], ...] = MOBILENET_V2_STAGES,
        norm_layer=nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if not stages or any(len(row) != 4 for row in stages):
            raise ValueError(f"stages must be a non-empty sequence of (t, c, n, s) rows, got {stages!r}")
        in_ch = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        stem_stride = 1 if small_input else 2
        features: list[nn.Module] = [
            ConvNormAct(3, in_ch, 3, stem_stride, norm_layer=norm_layer, activation=nn.ReLU6)
        ]
        reduction = stem_stride
        self.feature_info: list[dict] = []
        for i, (t, c, n, s) in enumerate(stages):
            if s not in (1, 2) or n <= 0 or t <= 0:
                raise ValueError(f"stages[{i}] must have t > 0, n > 0 and s in (1, 2), got {(t, c, n, s)}")
            if small_input and i == 1:
                s = 1
            if s == 2 and len(features) > 1:  # the map before each downsampling ends a pyramid level
                self.feature_info.append(
                    dict(channels=in_ch, reduction=reduction, module=f"features.{len(features) - 1}")
                )
            out_ch = make_divisible(c * width_mult, round_nearest)
            for j in range(n):
                features.append(InvertedResidual(in_ch, out_ch, s if j == 0 else 1, t, norm_layer))
                in_ch = out_ch
            reduction *= s
        self.feature_info.append(
            dict(channels=in_ch, reduction=reduction, module=f"features.{len(features) - 1}")
        )
        features.append(ConvNormAct(in_ch, self.last_channel, 1, norm_layer=norm_layer, activation=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
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
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """One map per resolution, Tensor[B, feature_info[i]["channels"], H / r_i, W / r_i]."""
        wanted = {int(f["module"].split(".")[1]) for f in self.feature_info}
        outs = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in wanted:
                outs.append(x)
            if i == max(wanted):
                break
        return outs

    def forward_head(self, x: Tensor) -> Tensor:
        """Last map of :meth:`forward_features` Tensor[B, C_last, h, w] -> logits Tensor[B, K].

        Runs the blocks of ``features`` after the last reported stage (the 1x1 conv to 1280
        channels), pools and classifies, so ``forward_head(forward_features(x)[-1]) == forward(x)``.
        """
        last = int(self.feature_info[-1]["module"].split(".")[1])
        x = self.features[last + 1 :](x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must be [B, 3, H, W], got {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x)[-1])


# torchvision's ImageNet weights; top-1 from its model cards (v2: its improved training recipe).
WEIGHTS: dict[str, WeightSpec] = {
    "imagenet": WeightSpec(TV_URL + "mobilenet_v2-b0353104.pth", "b0353104", top1=71.878),
    "imagenet_v2": WeightSpec(
        TV_URL + "mobilenet_v2-7ebf99e0.pth", "7ebf99e0", top1=72.154, recipe="torchvision IMAGENET1K_V2"
    ),
}


@register_model(task="classification")
def mobilenet_v2(
    *, num_classes: int | None = None, width_mult: float = 1.0, weights: str | None = None, **kwargs
) -> MobileNetV2:
    """MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381); 3,504,872 parameters at width 1.0, 1000
    classes. ``small_input=True`` for 32x32 images; ``weights="imagenet"`` (or ``"imagenet_v2"``) loads
    torchvision's ImageNet-1k weights (width 1.0 only)."""
    n = resolve_num_classes(WEIGHTS, weights, num_classes, default=1000)
    if weights is not None and (kwargs.get("small_input") or width_mult != 1.0):
        raise ValueError(
            f"ImageNet weights need width_mult=1.0 and small_input=False, got width_mult={width_mult}"
        )
    model = MobileNetV2(num_classes=n, width_mult=width_mult, **kwargs)
    return load_weights(model, WEIGHTS, weights) if weights is not None else model
