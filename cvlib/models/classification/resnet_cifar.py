"""The CIFAR-10 ResNets and their plain twins (He et al. 2016, arXiv:1512.03385, section 4.2).

Network of 6n + 2 weighted layers: a 3x3 convolution with 16 filters, three stages of n basic blocks
(two 3x3 convolutions each) with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps, global average
pooling and a K-way fully connected layer. Shortcuts are identities; where the shape changes they
subsample by 2 and zero-pad the new channels (the paper's option A), so ResNet-n and plain-n have
exactly the same parameters. ``plainN`` drops the shortcuts: it is the network of the degradation
experiment (paper Fig. 6), whose training error *rises* with depth.

Parameter counts (measured; the paper's Table 6 rounds them): resnet20 269,722 (0.27M),
resnet32 464,154 (0.46M), resnet44 658,586 (0.66M), resnet56 853,018 (0.85M),
resnet110 1,727,962 (1.7M), for 10 classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model

__all__ = [
    "CifarBlock",
    "CifarResNet",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "plain20",
    "plain32",
    "plain44",
    "plain56",
    "plain110",
]


class CifarBlock(nn.Module):
    """Two 3x3 conv-BN layers; with ``shortcut=True`` the input is added back before the last ReLU.

    The option-A shortcut subsamples by ``stride`` and zero-pads channels, adding no parameters.

    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, C_out, H / stride, W / stride].
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut
        self.stride = stride
        self.pad = out_channels - in_channels

    def _identity(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]  # [B, C_in, H/2, W/2]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))  # zero channels appended: [B, C_out, H', W']
        return x

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            out = out + self._identity(x)
        return self.relu(out)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) / plain-(6n+2) for 32x32 images (He et al. 2016, arXiv:1512.03385, section 4.2).

    Args:
        depth (int): 6n + 2 weighted layers (20, 32, 44, 56, 110, ...).
        num_classes (int): K.
        shortcut (bool): True for the ResNet, False for its plain twin.
        in_channels (int): image channels.
        widths (tuple[int, int, int]): filters per stage, (16, 32, 64) in the paper.

    Shapes: input Tensor[B, in_channels, H, W] (32x32 in the paper) -> logits Tensor[B, K].
    ``forward_features`` returns the three stage outputs at reductions 1, 2, 4.
    """

    def __init__(
        self,
        depth: int,
        *,
        num_classes: int = 10,
        shortcut: bool = True,
        in_channels: int = 3,
        widths: tuple[int, int, int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {depth}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        c = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks = [CifarBlock(c if j == 0 else w, w, stride if j == 0 else 1, shortcut) for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        self.feature_info = [
            dict(channels=w, reduction=2**i, module=f"layer{i + 1}") for i, w in enumerate(widths)
        ]
        for m in self.modules():  # He et al. 2015 (arXiv:1502.01852) init, as the paper says
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The three stage outputs, Tensor[B, 16, H, W], [B, 32, H/2, W/2], [B, 64, H/4, W/4]."""
        x = self.relu(self.bn1(self.conv1(x)))
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3):
            x = layer(x)
            feats.append(x)
        return feats

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pool + fc: Tensor[B, 64, h, w] -> Tensor[B, K]."""
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x)[-1])


def _cifar(depth: int, shortcut: bool, num_classes: int, **kwargs) -> CifarResNet:
    kwargs.pop("small_input", None)  # always a 32x32 network
    return CifarResNet(depth, num_classes=num_classes, shortcut=shortcut, **kwargs)


@register_model(task="classification")
def resnet20(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """CIFAR ResNet-20 (arXiv:1512.03385, sec. 4.2), 269,722 params; [B, 3, 32, 32] -> [B, K]."""
    return _cifar(20, True, num_classes, **kwargs)


@register_model(task="classification")
def resnet32(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """CIFAR ResNet-32 (arXiv:1512.03385, sec. 4.2), 464,154 params; [B, 3, 32, 32] -> [B, K]."""
    return _cifar(32, True, num_classes, **kwargs)


@register_model(task="classification")
def resnet44(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """CIFAR ResNet-44 (arXiv:1512.03385, sec. 4.2), 658,586 params; [B, 3, 32, 32] -> [B, K]."""
    return _cifar(44, True, num_classes, **kwargs)


@register_model(task="classification")
def resnet56(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """CIFAR ResNet-56 (arXiv:1512.03385, sec. 4.2), 853,018 params; [B, 3, 32, 32] -> [B, K]."""
    return _cifar(56, True, num_classes, **kwargs)


@register_model(task="classification")
def resnet110(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """CIFAR ResNet-110 (arXiv:1512.03385, sec. 4.2), 1,727,962 params; [B, 3, 32, 32] -> [B, K]."""
    return _cifar(110, True, num_classes, **kwargs)


@register_model(task="classification")
def plain20(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """Plain-20: ResNet-20 without shortcuts (arXiv:1512.03385, Fig. 6); [B, 3, 32, 32] -> [B, K]."""
    return _cifar(20, False, num_classes, **kwargs)


@register_model(task="classification")
def plain32(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """Plain-32: ResNet-32 without shortcuts (arXiv:1512.03385, Fig. 6); [B, 3, 32, 32] -> [B, K]."""
    return _cifar(32, False, num_classes, **kwargs)


@register_model(task="classification")
def plain44(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """Plain-44: ResNet-44 without shortcuts (arXiv:1512.03385, Fig. 6); [B, 3, 32, 32] -> [B, K]."""
    return _cifar(44, False, num_classes, **kwargs)


@register_model(task="classification")
def plain56(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """Plain-56: ResNet-56 without shortcuts (arXiv:1512.03385, Fig. 6); [B, 3, 32, 32] -> [B, K]."""
    return _cifar(56, False, num_classes, **kwargs)


@register_model(task="classification")
def plain110(*, num_classes: int = 10, **kwargs) -> CifarResNet:
    """Plain-110: ResNet-110 without shortcuts (arXiv:1512.03385, Fig. 6); [B, 3, 32, 32] -> [B, K]."""
    return _cifar(110, False, num_classes, **kwargs)
