"""DeepLab v3+ (Chen, Zhu, Papandreou, Schroff & Adam 2018, arXiv:1802.02611).

* Atrous backbone: the last stride(s) of the backbone become dilation, so features come out at
  output stride 16 (or 8) instead of 32 (DeepLab, arXiv:1606.00915).
* ASPP (arXiv:1706.05587): a 1x1 branch, three 3x3 atrous branches with rates (6, 12, 18) at
  output stride 16 (doubled at 8), and an image-pooling branch; 256 channels each, concatenated and
  projected by a 1x1 conv. In v3+ the atrous branches are atrous *depthwise-separable* convolutions.
* Decoder: the ASPP output upsampled 4x is concatenated with the backbone's stride-4 features
  reduced to 48 channels by a 1x1 conv, refined by two 3x3 separable convs, classified by a 1x1
  conv and upsampled 4x to the input.

Backbones: ResNet-50 from ``cvlib.models.classification.resnet`` (the paper's ResNet-101 variant
uses the same code; the paper's best model uses Aligned Xception), or :class:`SmallXception`, a
tiny Xception-like stack of separable convolutions for CPU experiments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._layers import ConvNormAct, check_model_input
from cvlib.models._registry import register_model
from cvlib.models.segmentation.fcn import _ResNetTrunk, dilate_resnet
from cvlib.ops.sampling import DepthwiseSeparableConv2d

__all__ = [
    "ASPP",
    "DeepLabV3PlusDecoder",
    "SmallXception",
    "DeepLabV3Plus",
    "deeplabv3plus_resnet50",
    "deeplabv3plus_small",
]

#: ASPP atrous rates at output stride 16 (paper, section 3 / arXiv:1706.05587); doubled at 8.
ASPP_RATES_OS16 = (6, 12, 18)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling with image pooling (DeepLab v3/v3+).

    Shapes: Tensor[B, C_in, h, w] -> Tensor[B, out_channels, h, w].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: tuple[int, ...] = ASPP_RATES_OS16,
        separable: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ConvNormAct(in_channels, out_channels, 1)])
        for r in rates:
            if separable:
                self.branches.append(DepthwiseSeparableConv2d(in_channels, out_channels, 3, dilation=r))
            else:
                self.branches.append(ConvNormAct(in_channels, out_channels, 3, dilation=r))
        # image pooling: global context; no norm layer, which fails for a 1x1 map with batch size 1
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True)
        )
        n = len(self.branches) + 1
        self.project = nn.Sequential(ConvNormAct(n * out_channels, out_channels, 1), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))  # [B, C, 1, 1] -> [B, C, h, w]
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    """Low-level 1x1 (-> 48 ch) + concat with upsampled ASPP output + two 3x3 separable convs + 1x1.

    Shapes: (Tensor[B, C_aspp, h, w], Tensor[B, C_low, 4h, 4w]) -> Tensor[B, K, 4h, 4w].
    """

    def __init__(
        self, low_channels: int, aspp_channels: int, num_classes: int, low_out: int = 48, channels: int = 256
    ) -> None:
        super().__init__()
        self.reduce = ConvNormAct(low_channels, low_out, 1)
        self.refine = nn.Sequential(
            DepthwiseSeparableConv2d(aspp_channels + low_out, channels, 3),
            DepthwiseSeparableConv2d(channels, channels, 3),
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor, low: Tensor) -> Tensor:
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.refine(torch.cat([x, self.reduce(low)], dim=1)))


class _XceptionBlock(nn.Module):
    """Three separable convs (the last strided, or dilated instead) with a 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            DepthwiseSeparableConv2d(cin, cout, 3, dilation=dilation),
            DepthwiseSeparableConv2d(cout, cout, 3, dilation=dilation),
            DepthwiseSeparableConv2d(cout, cout, 3, stride, dilation, activation=None),
        )
        # The 1x1 stride-s shortcut is computed as "take every s-th pixel, then a 1x1 conv" (the same
        # function and parameters): oneDNN's CPU backward of a strided 1x1 conv with fewer than 16 input
        # channels on a channels_last input segfaults (torch 2.x), and this form never reaches that kernel.
        self.shortcut = ConvNormAct(cin, cout, 1, activation=None)
        self.shortcut_stride = stride

    def forward(self, x: Tensor) -> Tensor:
        s = self.shortcut_stride
        skip = x if s == 1 else x[:, :, ::s, ::s].contiguous()
        return F.relu(self.convs(x) + self.shortcut(skip))


class SmallXception(nn.Module):
    """A tiny Xception-like backbone (Chollet 2017, arXiv:1610.02357) with an output-stride switch.

    Stem (two 3x3 convs, stride 2) then four separable blocks at reductions 4, 8, 16, 32; for
    output stride 16 (8) the last (two) strides become dilation 2 (2 and 4).

    Shapes: ``forward_features``: Tensor[B, 3, H, W] -> four maps, ``feature_info`` gives channels
    and reductions.
    """

    def __init__(
        self, widths: tuple[int, ...] = (32, 64, 96, 128), output_stride: int = 16, in_channels: int = 3
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        stem = widths[0] // 2
        self.stem = nn.Sequential(ConvNormAct(in_channels, stem, 3, stride=2), ConvNormAct(stem, stem, 3))
        self.blocks = nn.ModuleList()
        self.feature_info = []
        c, reduction, dilation = stem, 2, 1
        for i, w in enumerate(widths):
            if reduction * 2 > output_stride:
                stride, dilation = 1, dilation * 2
            else:
                stride, reduction = 2, reduction * 2
            self.blocks.append(_XceptionBlock(c, w, stride, dilation))
            self.feature_info.append(dict(channels=w, reduction=reduction, module=f"blocks.{i}"))
            c = w

    def forward_features(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class DeepLabV3Plus(nn.Module):
    """DeepLab v3+ on any backbone with ``forward_features`` (Chen et al. 2018).

    Args:
        backbone: module whose ``forward_features(x)`` returns maps whose first is at reduction 4
            (the low-level features) and last is at the output stride.
        low_channels, high_channels: channels of those two maps.
        num_classes: K.
        output_stride: 16 or 8 (sets the ASPP rates: (6, 12, 18) times 16 / output_stride).
        aspp_channels: 256 in the paper.

    Shapes: Tensor[B, 3, H, W] -> logits Tensor[B, K, H, W].
    """

    def __init__(
        self,
        backbone: nn.Module,
        low_channels: int,
        high_channels: int,
        *,
        num_classes: int,
        output_stride: int = 16,
        aspp_channels: int = 256,
        decoder_channels: int = 256,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        rates = tuple(r * 16 // output_stride for r in ASPP_RATES_OS16)
        self.backbone = backbone
        self.aspp = ASPP(high_channels, aspp_channels, rates)
        self.decoder = DeepLabV3PlusDecoder(
            low_channels, aspp_channels, num_classes, channels=decoder_channels
        )
        self.output_stride = output_stride

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.dim() != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        feats = self.backbone.forward_features(x)
        out = self.decoder(self.aspp(feats[-1]), feats[0])  # [B, K, H/4, W/4]
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


@register_model(task="segmentation")
def deeplabv3plus_resnet50(
    *, num_classes: int = 21, output_stride: int = 16, backbone_weights: str | None = None
) -> DeepLabV3Plus:
    """DeepLab v3+ (arXiv:1802.02611) on a dilated ResNet-50 (low-level features from ``layer1``)."""
    from cvlib.models.classification.resnet import resnet50

    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
    flags = (False, output_stride == 8, True)
    trunk = _ResNetTrunk(dilate_resnet(resnet50(weights=backbone_weights), flags))
    return DeepLabV3Plus(trunk, 256, 2048, num_classes=num_classes, output_stride=output_stride)


@register_model(task="segmentation")
def deeplabv3plus_small(
    *, num_classes: int = 5, output_stride: int = 16, in_channels: int = 3
) -> DeepLabV3Plus:
    """DeepLab v3+ on :class:`SmallXception` with 64-channel ASPP and decoder, for CPU experiments."""
    backbone = SmallXception((16, 32, 48, 64), output_stride=output_stride, in_channels=in_channels)
    return DeepLabV3Plus(
        backbone,
        16,
        64,
        num_classes=num_classes,
        output_stride=output_stride,
        aspp_channels=64,
        decoder_channels=64,
    )
