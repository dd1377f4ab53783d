"""GoogLeNet / Inception v1 (Szegedy et al. 2015, "Going Deeper with Convolutions", arXiv:1409.4842).

Layout as torchvision (``conv1.conv``/``conv1.bn``, ``inception3a.branch1`` ... ``inception5b``,
``aux1``, ``aux2``, ``fc``) so its ImageNet weights load with ``strict=True``. Inception filter counts
are the paper's Table 1. In training mode with ``aux_logits=True`` the model returns
``GoogLeNetOutputs(logits, aux2, aux1)``; ``cvlib.train``'s default loss then adds 0.3 x the
auxiliary cross-entropies, as the paper does. In eval mode it returns the logits only.

Departures from the paper, as in torchvision (needed for its weights):

* every convolution is followed by batch norm (eps 1e-3, BN postdates the paper) and has no bias;
* the "5x5" branch uses a 3x3 convolution (``branch3_kernel=5`` restores the paper, changing shapes);
* the auxiliary heads average-pool adaptively to 4x4 (the paper: 5x5/3 average pool, same result at
  224x224) and use dropout 0.7; the main head's dropout is 0.2 (the paper: 0.4).

6,624,904 parameters without the auxiliary heads (torchvision's count), 13,004,888 with them.
``small_input=True`` (32x32): 3x3/1 first convolution and no max-pool before inception3a.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model
from cvlib.models.classification._weights import TV_URL, WeightSpec, load_weights, resolve_num_classes

__all__ = [
    "BasicConv2d",
    "Inception",
    "InceptionAux",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "INCEPTION_TABLE",
    "googlenet",
]


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output: main logits and the two auxiliary heads' logits, each Tensor[B, K]."""

    logits: Tensor
    aux_logits2: Tensor
    aux_logits1: Tensor


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BN (eps 1e-3) -> ReLU, with children ``conv`` and ``bn``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Inception module (paper Fig. 2b): four parallel branches concatenated along channels.

    branch1: 1x1; branch2: 1x1 reduce -> 3x3; branch3: 1x1 reduce -> "5x5" (3x3 by default, see the
    module docstring); branch4: 3x3/1 max-pool -> 1x1 projection.

    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W].
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch3_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1),
            BasicConv2d(ch5x5red, ch5x5, branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_channels, pool_proj, 1)
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (paper section 5): pool to 4x4, 1x1 conv to 128, FC 1024, dropout 0.7, FC K.

    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, K].
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(nn.functional.adaptive_avg_pool2d(x, (4, 4)))  # [B, 128, 4, 4]
        x = torch.relu(self.fc1(torch.flatten(x, 1)))  # [B, 1024]
        return self.fc2(self.dropout(x))


# The paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (input channels first).
INCEPTION_TABLE: dict[str, tuple[int, ...]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """GoogLeNet (Szegedy et al. 2015, arXiv:1409.4842).

    Args:
        num_classes (int): K.
        aux_logits (bool): build the two auxiliary classifiers (used in training mode only).
        transform_input (bool): map ImageNet-normalised input to the (x - 0.5) / 0.5 scaling the
            torchvision weights were trained with (set by ``weights="imagenet"``).
        dropout (float): dropout before the final FC layer.
        small_input (bool): 32x32 stem (see the module docstring).
        branch3_kernel (int): 3 (torchvision) or 5 (paper) for the "5x5" branch.

    Shapes: input Tensor[B, 3, H, W] (224 for ImageNet) -> logits Tensor[B, K] in eval mode;
    ``GoogLeNetOutputs`` of three Tensor[B, K] in training mode with ``aux_logits``.
    ``forward_features`` returns the outputs of conv3 (after maxpool2), inception3b, 4e and 5b.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float = 0.2,
        small_input: bool = False,
        branch3_kernel: int = 3,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if branch3_kernel not in (3, 5):
            raise ValueError(f"branch3_kernel must be 3 or 5, got {branch3_kernel}")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        if small_input:
            self.conv1 = BasicConv2d(3, 64, 3, stride=1, padding=1)
            self.maxpool1: nn.Module = nn.Identity()
            self.maxpool2: nn.Module = nn.Identity()
        else:
            self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        for name, cfg in INCEPTION_TABLE.items():
            setattr(self, f"inception{name}", Inception(*cfg, branch3_kernel=branch3_kernel))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        r = 1 if small_input else 8
        self.feature_info = [
            dict(channels=192, reduction=r, module="conv3"),
            dict(channels=480, reduction=r, module="inception3b"),
            dict(channels=832, reduction=2 * r, module="inception4e"),
            dict(channels=1024, reduction=4 * r, module="inception5b"),
        ]
        for m in self.modules():  # truncated normal, std 0.01, as torchvision
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform(self, x: Tensor) -> Tensor:
        if not self.transform_input:
            return x
        mean = x.new_tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
        std = x.new_tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
        return (x * std + mean - 0.5) / 0.5

    def _body(self, x: Tensor) -> tuple[list[Tensor], Tensor | None, Tensor | None]:
        x = self.maxpool1(self.conv1(self._transform(x)))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        feats = [x]
        x = self.inception3b(self.inception3a(x))
        feats.append(x)
        x = self.inception4a(self.maxpool3(x))
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.inception4e(x)
        feats.append(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        feats.append(x)
        return feats, aux1, aux2

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Four maps, channels 192/480/832/1024 (before maxpool3/maxpool4 where they apply)."""
        return self._body(x)[0]

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pool, dropout, fc: Tensor[B, 1024, h, w] -> Tensor[B, K]."""
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        x = check_model_input(self, x)
        if x.ndim != 4:
            raise ValueError(f"x must be [B, 3, H, W], got {tuple(x.shape)}")
        feats, aux1, aux2 = self._body(x)
        logits = self.forward_head(feats[-1])
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits


WEIGHTS = {"imagenet": WeightSpec(TV_URL + "googlenet-1378be20.pth", "1378be20", top1=69.778)}


@register_model(task="classification")
def googlenet(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    aux_logits: bool = True,
    dropout: float = 0.2,
    small_input: bool = False,
    branch3_kernel: int = 3,
) -> GoogLeNet:
    """GoogLeNet (arXiv:1409.4842), 6,624,904 params without aux heads; [B, 3, 224, 224] -> [B, K].

    With ``weights="imagenet"`` ``transform_input`` is switched on, as torchvision does; the aux heads
    are loaded (the file has them) and dropped afterwards if ``aux_logits=False``.
    """
    n = resolve_num_classes(WEIGHTS, weights, num_classes, default=1000)
    if weights is None:
        return GoogLeNet(
            num_classes=n,
            aux_logits=aux_logits,
            dropout=dropout,
            small_input=small_input,
            branch3_kernel=branch3_kernel,
        )
    if small_input or branch3_kernel != 3:
        raise ValueError("weights need the torchvision layout: small_input=False, branch3_kernel=3")
    model = load_weights(GoogLeNet(num_classes=n, transform_input=True, dropout=dropout), WEIGHTS, weights)
    if not aux_logits:  # the file holds the aux heads; drop them after a strict load
        model.aux1 = model.aux2 = None
        model.aux_logits = False
    return model
