"""VGG-11/13/16/19 with and without batch norm (Simonyan and Zisserman 2015, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", arXiv:1409.1556).

Layout as torchvision (``features.N``, ``classifier.0/3/6``), so its ImageNet weights load with
``strict=True``: 3x3 convolutions (padding 1) + ReLU (+ BN for ``_bn``), 2x2 max-pools, adaptive
average pooling to 7x7, then FC 4096 - 4096 - K with dropout 0.5. vgg16 has 138,357,544 parameters,
89% of them in the classifier.

Departures: the ``_bn`` variants are torchvision's addition (BN postdates the paper); the adaptive
pool lets any input size >= 32 reach the classifier. ``small_input=True`` (32x32) pools to 1x1 and
uses 512-wide hidden FC layers, the usual CIFAR adaptation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model
from cvlib.models.classification._weights import TV_URL, WeightSpec, load_weights, resolve_num_classes

__all__ = [
    "VGG",
    "CONFIGS",
    "make_features",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

# The paper's Table 1, columns A (11), B (13), D (16), E (19); "M" = 2x2 max-pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def make_features(cfg: list[int | str], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The convolutional part of a VGG column: Tensor[B, 3, H, W] -> Tensor[B, 512, H/32, W/32]."""
    layers: list[nn.Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(c, int(v), 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        c = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG network (Simonyan and Zisserman 2015, arXiv:1409.1556).

    Args:
        cfg (list[int | str]): a column of the paper's Table 1 (see ``CONFIGS``).
        num_classes (int): K.
        batch_norm (bool): BN after every convolution.
        dropout (float): dropout after each hidden FC layer.
        small_input (bool): 1x1 adaptive pool and 512-wide FC layers for 32x32 inputs.

    Shapes: input Tensor[B, 3, H, W] (224 for ImageNet, H, W >= 32) -> logits Tensor[B, K].
    ``forward_features`` returns the output of each of the five max-pools (reductions 2 ... 32).
    """

    def __init__(
        self,
        cfg: list[int | str],
        *,
        num_classes: int = 1000,
        batch_norm: bool = False,
        dropout: float = 0.5,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.features = make_features(cfg, batch_norm)
        side, hidden = (1, 512) if small_input else (7, 4096)
        self.avgpool = nn.AdaptiveAvgPool2d(side)
        self.classifier = nn.Sequential(
            nn.Linear(512 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        self._pool_idx = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        chans = [v for i, v in enumerate(cfg) if v != "M" and (i + 1 == len(cfg) or cfg[i + 1] == "M")]
        self.feature_info = [
            dict(channels=int(c), reduction=2 ** (k + 1), module=f"features.{i}")
            for k, (i, c) in enumerate(zip(self._pool_idx, chans))
        ]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. 2015 (arXiv:1502.01852), as torchvision
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):  # the paper's N(0, 0.01) for the FC layers
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The five max-pool outputs, channels and reductions as in ``feature_info``."""
        feats = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in self._pool_idx:
                feats.append(x)
        return feats

    def forward_head(self, x: Tensor) -> Tensor:
        """Adaptive pool + classifier: Tensor[B, 512, h, w] -> Tensor[B, K]."""
        return self.classifier(torch.flatten(self.avgpool(x), 1))  # [B, 512 * 7 * 7]

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4:
            raise ValueError(f"x must be [B, 3, H, W], got {tuple(x.shape)}")
        return self.forward_head(self.features(x))


def _spec(file: str, top1: float) -> dict[str, WeightSpec]:
    return {"imagenet": WeightSpec(TV_URL + file, file.rsplit("-", 1)[1].split(".")[0], top1=top1)}


WEIGHTS = {
    "vgg11": _spec("vgg11-8a719046.pth", 69.020),
    "vgg11_bn": _spec("vgg11_bn-6002323d.pth", 70.370),
    "vgg13": _spec("vgg13-19584684.pth", 69.928),
    "vgg13_bn": _spec("vgg13_bn-abd245e5.pth", 71.586),
    "vgg16": _spec("vgg16-397923af.pth", 71.592),
    "vgg16_bn": _spec("vgg16_bn-6c64b313.pth", 73.360),
    "vgg19": _spec("vgg19-dcbb9e9d.pth", 72.376),
    "vgg19_bn": _spec("vgg19_bn-c79401a0.pth", 74.218),
}


def _vgg(
    arch: str,
    cfg: str,
    batch_norm: bool,
    num_classes: int | None,
    weights: str | None,
    dropout: float,
    small_input: bool,
) -> VGG:
    table = WEIGHTS[arch]
    n = resolve_num_classes(table, weights, num_classes, default=1000)
    if weights is not None and small_input:
        raise ValueError("small_input=True changes the classifier, so ImageNet weights cannot be loaded")
    model = VGG(CONFIGS[cfg], num_classes=n, batch_norm=batch_norm, dropout=dropout, small_input=small_input)
    return load_weights(model, table, weights) if weights is not None else model


@register_model(task="classification")
def vgg11(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-11, column A (arXiv:1409.1556), 132,863,336 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg11", "A", False, num_classes, weights, dropout, small_input)


@register_model(task="classification")
def vgg11_bn(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-11 with BN (arXiv:1409.1556), 132,868,840 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg11_bn", "A", True, num_classes, weights, dropout, small_input)


@register_model(task="classification")
def vgg13(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-13, column B (arXiv:1409.1556), 133,047,848 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg13", "B", False, num_classes, weights, dropout, small_input)


@register_model(task="classification")
def vgg13_bn(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-13 with BN (arXiv:1409.1556), 133,053,736 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg13_bn", "B", True, num_classes, weights, dropout, small_input)


@register_model(task="classification")
def vgg16(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-16, column D (arXiv:1409.1556), 138,357,544 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg16", "D", False, num_classes, weights, dropout, small_input)


@register_model(task="classification")
def vgg16_bn(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-16 with BN (arXiv:1409.1556), 138,365,992 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg16_bn", "D", True, num_classes, weights, dropout, small_input)


@register_model(task="classification")
def vgg19(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-19, column E (arXiv:1409.1556), 143,667,240 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg19", "E", False, num_classes, weights, dropout, small_input)


@register_model(task="classification")
def vgg19_bn(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    small_input: bool = False,
) -> VGG:
    """VGG-19 with BN (arXiv:1409.1556), 143,678,248 params; [B, 3, 224, 224] -> [B, K]."""
    return _vgg("vgg19_bn", "E", True, num_classes, weights, dropout, small_input)
