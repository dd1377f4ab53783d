"""ResNet-18/34/50/101/152 (He et al. 2016, "Deep Residual Learning for Image Recognition", arXiv:1512.03385).

State-dict keys and shapes follow torchvision (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layerN.0.downsample.0/1``, ``fc``), so torchvision's ImageNet weights load with ``strict=True``.

Departures from the paper, noted where they occur:

* ``Bottleneck`` puts the stride on the 3x3 convolution ("ResNet V1.5", as torchvision and most
  re-implementations do); the paper strides the first 1x1, which skips 3/4 of the input positions.
  V1.5 costs a little more compute (resnet50: 4.09 vs 3.8 GMACs) and is about 0.5% more accurate.
* Shortcuts that change shape are 1x1 convolutions + BN (the paper's option B).
* ``small_input=True`` replaces the 7x7/2 stem and the max-pool by one 3x3/1 convolution, the usual
  adaptation to 32x32 inputs (CIFAR); it changes ``conv1.weight``'s shape, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model
from cvlib.models.classification._weights import TV_URL, WeightSpec, load_weights, resolve_num_classes

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

NormLayer = Callable[[int], nn.Module]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with "same" padding and no bias (a BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or projection) shortcut; ResNet-18/34 (paper Fig. 5 left).

    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, planes, H / stride, W / stride].
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand (x4) with a shortcut; ResNet-50/101/152 (paper Fig. 5 right).

    The stride sits on the 3x3 convolution (V1.5, see the module docstring).

    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, 4 * planes, H / stride, W / stride].
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride)  # V1.5: stride here, not on conv1
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def residual(self, x: Tensor) -> Tensor:
        """The residual branch F(x) before the addition, Tensor[B, 4 * planes, H', W']."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(x) + identity)


class ResNet(nn.Module):
    """ResNet for ImageNet-style inputs (He et al. 2016, arXiv:1512.03385).

    Args:
        block: ``BasicBlock`` or ``Bottleneck`` (or a subclass with the same constructor).
        layers (tuple[int, int, int, int]): blocks per stage (the paper's Table 1).
        num_classes (int): K, outputs of the classifier.
        zero_init_residual (bool): start each block's last BN at gamma = 0, so that every residual
            block begins as the identity (Goyal et al. 2017, arXiv:1706.02677).
        small_input (bool): 3x3/1 stem without max-pool for 32x32 inputs.
        in_channels (int): image channels.
        norm_layer (Callable[[int], nn.Module]): normalisation after each convolution.

    Shapes: input Tensor[B, in_channels, H, W] (H, W >= 32; 224 for ImageNet) -> logits Tensor[B, K].
    ``forward_features`` returns the four stage outputs at reductions 4, 8, 16, 32 (1, 2, 4, 8 with
    ``small_input``).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, ...],
        *,
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        small_input: bool = False,
        in_channels: int = 3,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {tuple(layers)}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self._norm_layer = norm_layer
        self.in_planes = 64
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        r0 = 1 if small_input else 4
        self.feature_info = [
            dict(channels=c * block.expansion, reduction=r0 * 2**i, module=f"layer{i + 1}")
            for i, c in enumerate((64, 128, 256, 512))
        ]
        self._init_weights(zero_init_residual)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, n: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.in_planes, planes * block.expansion, stride),
                self._norm_layer(planes * block.expansion),
            )
        blocks = [block(self.in_planes, planes, stride, downsample, self._norm_layer)]
        self.in_planes = planes * block.expansion
        blocks += [block(self.in_planes, planes, norm_layer=self._norm_layer) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He et al. 2015 (arXiv:1502.01852) normal init, fan_out form as in torchvision.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                last = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else getattr(m, "bn2", None)
                if isinstance(m, (BasicBlock, Bottleneck)) and last is not None and last.weight is not None:
                    nn.init.zeros_(last.weight)

    def stem(self, x: Tensor) -> Tensor:
        """conv1, bn1, relu, maxpool: Tensor[B, C, H, W] -> Tensor[B, 64, H/4, W/4] (H, W if small_input)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The four stage outputs, channels and reductions as in ``feature_info``."""
        x = self.stem(x)
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pool + fc: Tensor[B, C, h, w] -> Tensor[B, K]."""
        return self.fc(torch.flatten(self.avgpool(x), 1))  # [B, C]

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x)[-1])


# torchvision's published ImageNet-1k weights (sha256 prefix = the hex digits in the file name).
WEIGHTS: dict[str, dict[str, WeightSpec]] = {
    "resnet18": {"imagenet": WeightSpec(TV_URL + "resnet18-f37072fd.pth", "f37072fd", top1=69.758)},
    "resnet34": {"imagenet": WeightSpec(TV_URL + "resnet34-b627a593.pth", "b627a593", top1=73.314)},
    "resnet50": {
        "imagenet": WeightSpec(TV_URL + "resnet50-0676ba61.pth", "0676ba61", top1=76.130),
        "imagenet_v2": WeightSpec(
            TV_URL + "resnet50-11ad3fa6.pth", "11ad3fa6", top1=80.858, recipe="torchvision IMAGENET1K_V2"
        ),
    },
    "resnet101": {"imagenet": WeightSpec(TV_URL + "resnet101-63fe2227.pth", "63fe2227", top1=77.374)},
    "resnet152": {"imagenet": WeightSpec(TV_URL + "resnet152-394f9c45.pth", "394f9c45", top1=78.312)},
}

# Blocks per stage: the paper's Table 1.
STAGES = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}


def _resnet(arch: str, num_classes: int | None, weights: str | None, **kwargs) -> ResNet:
    table = WEIGHTS[arch]
    n = resolve_num_classes(table, weights, num_classes, default=1000)
    if weights is not None and kwargs.get("small_input"):
        raise ValueError("small_input=True changes conv1, so ImageNet weights cannot be loaded")
    block, layers = STAGES[arch]
    model = ResNet(block, layers, num_classes=n, **kwargs)
    return load_weights(model, table, weights) if weights is not None else model


@register_model(task="classification")
def resnet18(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> ResNet:
    """ResNet-18 (He et al. 2016, arXiv:1512.03385), 11,689,512 params; [B, 3, H, W] -> [B, K]."""
    return _resnet("resnet18", num_classes, weights, **kwargs)


@register_model(task="classification")
def resnet34(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> ResNet:
    """ResNet-34 (He et al. 2016, arXiv:1512.03385), 21,797,672 params; [B, 3, H, W] -> [B, K]."""
    return _resnet("resnet34", num_classes, weights, **kwargs)


@register_model(task="classification")
def resnet50(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> ResNet:
    """ResNet-50 (He et al. 2016, arXiv:1512.03385), V1.5, 25,557,032 params; [B, 3, H, W] -> [B, K]."""
    return _resnet("resnet50", num_classes, weights, **kwargs)


@register_model(task="classification")
def resnet101(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> ResNet:
    """ResNet-101 (He et al. 2016, arXiv:1512.03385), V1.5, 44,549,160 params; [B, 3, H, W] -> [B, K]."""
    return _resnet("resnet101", num_classes, weights, **kwargs)


@register_model(task="classification")
def resnet152(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> ResNet:
    """ResNet-152 (He et al. 2016, arXiv:1512.03385), V1.5, 60,192,808 params; [B, 3, H, W] -> [B, K]."""
    return _resnet("resnet152", num_classes, weights, **kwargs)
