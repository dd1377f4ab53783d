"""DenseNet-121/169/201 (Huang et al. 2017, "Densely Connected Convolutional Networks", arXiv:1608.06993).

Each layer of a dense block receives the concatenation of all earlier feature maps of the block and adds
``growth_rate`` new channels (the "DenseNet-BC" form: a 1x1 bottleneck of ``bn_size * growth_rate``
channels before each 3x3, and transitions that halve the channels, compression 0.5). Layer names and
state-dict keys follow torchvision (``features.conv0``, ``features.denseblock1.denselayer1.norm1``,
``features.transition1.conv``, ``features.norm5``, ``classifier``), so its ImageNet weights load with
``strict=True``.

Departures: ``memory_efficient=True`` recomputes each bottleneck in the backward pass with
``torch.utils.checkpoint`` (Pleiss et al. 2017, arXiv:1707.06990): same outputs, less activation memory.
``small_input=True`` replaces the 7x7/2 stem and its max-pool by a 3x3/1 convolution for 32x32 inputs.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model
from cvlib.models.classification._weights import TV_URL, WeightSpec, load_weights, resolve_num_classes

__all__ = [
    "DenseLayer",
    "DenseBlock",
    "Transition",
    "DenseNet",
    "WEIGHTS",
    "densenet121",
    "densenet169",
    "densenet201",
]


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 (to ``bn_size * growth_rate``) -> BN-ReLU-Conv3x3 (to ``growth_rate``).

    Shapes: a list of Tensor[B, C_i, H, W] (all earlier maps of the block) -> Tensor[B, growth_rate, H, W].
    """

    def __init__(
        self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float, memory_efficient: bool
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def bottleneck(self, *inputs: Tensor) -> Tensor:
        x = torch.cat(inputs, dim=1)  # [B, sum C_i, H, W]
        return self.conv1(self.relu1(self.norm1(x)))

    def forward(self, inputs: list[Tensor]) -> Tensor:
        if self.memory_efficient and self.training and any(t.requires_grad for t in inputs):
            out = cp.checkpoint(self.bottleneck, *inputs, use_reentrant=False)
        else:
            out = self.bottleneck(*inputs)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` DenseLayers (``denselayer1``...); the output concatenates the input and every layer's
    ``growth_rate`` new channels: Tensor[B, C, H, W] -> Tensor[B, C + num_layers * growth_rate, H, W]."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int, **kw) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, **kw)

    def forward(self, x: Tensor) -> Tensor:
        maps = [x]
        for layer in self.values():
            maps.append(layer(maps))
        return torch.cat(maps, dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1-AvgPool2x2 between dense blocks: [B, C_in, H, W] -> [B, C_out, H/2, W/2]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


# The published checkpoints predate PyTorch 0.4's ban on dots in module names and spell
# "denselayer1.norm1.weight" as "denselayer1.norm.1.weight"; this maps them to the current names.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$"
)


def _rename_legacy_keys(state_dict: dict, prefix: str, *args) -> None:
    for key in list(state_dict):
        m = _LEGACY_KEY.match(key)
        if m is not None and key.startswith(prefix):
            state_dict[f"{m.group(1)}{m.group(2)}.{m.group(3)}"] = state_dict.pop(key)


class DenseNet(nn.Module):
    """DenseNet-BC (Huang et al. 2017, arXiv:1608.06993) for images Tensor[B, 3, H, W] -> logits [B, K].

    Args:
        growth_rate (int): channels each dense layer adds (k in the paper).
        block_config (tuple[int, ...]): dense layers per block.
        num_init_features (int): stem channels.
        bn_size (int): bottleneck width as a multiple of ``growth_rate``.
        drop_rate (float): dropout after each dense layer.
        num_classes (int): K.
        memory_efficient (bool): checkpoint the bottlenecks (less memory, slower backward).
        small_input (bool): 3x3/1 stem without max-pool, for 32x32 images.
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        memory_efficient: bool = False,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if not block_config or any(not isinstance(n, int) or n <= 0 for n in block_config):
            raise ValueError(f"block_config must be a non-empty tuple of positive ints, got {block_config!r}")
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.features = nn.Sequential()
        if small_input:
            self.features.add_module("conv0", nn.Conv2d(3, num_init_features, 3, padding=1, bias=False))
        else:
            self.features.add_module("conv0", nn.Conv2d(3, num_init_features, 7, 2, padding=3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        if not small_input:
            self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
        reduction = 1 if small_input else 4
        channels = num_init_features
        self.feature_info: list[dict] = []
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(
                num_layers,
                channels,
                growth_rate,
                bn_size,
                drop_rate=drop_rate,
                memory_efficient=memory_efficient,
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            channels += num_layers * growth_rate
            last = i == len(block_config) - 1
            module = "features.norm5" if last else f"features.denseblock{i + 1}"
            self.feature_info.append(dict(channels=channels, reduction=reduction, module=module))
            if not last:
                self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                channels //= 2
                reduction *= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)
        self._init_weights()
        self._register_load_state_dict_pre_hook(_rename_legacy_keys)

    def _init_weights(self) -> None:
        # He init for convolutions (arXiv:1502.01852), as the reference implementation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """One map per dense block, Tensor[B, feature_info[i]["channels"], H / r_i, W / r_i]; the last is
        ``relu(norm5(.))``."""
        outs = []
        for name, module in self.features.named_children():
            x = module(x)
            if name.startswith("denseblock") and name != f"denseblock{len(self.feature_info)}":
                outs.append(x)
        outs.append(F.relu(x))
        return outs

    def forward_head(self, x: Tensor) -> Tensor:
        """Tensor[B, C, h, w] (after norm5 and ReLU) -> logits Tensor[B, K]."""
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must be [B, 3, H, W], got {tuple(x.shape)}")
        return self.forward_head(F.relu(self.features(x)))


# Block configurations from Table 1 of the paper (growth rate k = 32, 64 stem channels).
_CONFIGS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


# torchvision's ImageNet weights (IMAGENET1K_V1); top-1 from its model cards.
WEIGHTS: dict[str, dict[str, WeightSpec]] = {
    "densenet121": {"imagenet": WeightSpec(TV_URL + "densenet121-a639ec97.pth", "a639ec97", top1=74.434)},
    "densenet169": {"imagenet": WeightSpec(TV_URL + "densenet169-b2777c0a.pth", "b2777c0a", top1=75.600)},
    "densenet201": {"imagenet": WeightSpec(TV_URL + "densenet201-c1103571.pth", "c1103571", top1=76.896)},
}


def _densenet(depth: int, *, num_classes: int | None, weights: str | None, **kwargs) -> DenseNet:
    table = WEIGHTS[f"densenet{depth}"]
    n = resolve_num_classes(table, weights, num_classes, default=1000)
    if weights is not None and kwargs.get("small_input"):
        raise ValueError("small_input=True changes conv0, so ImageNet weights cannot be loaded")
    model = DenseNet(32, _CONFIGS[depth], 64, num_classes=n, **kwargs)
    return load_weights(model, table, weights) if weights is not None else model


@register_model(task="classification")
def densenet121(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017, arXiv:1608.06993), 7,978,856 parameters at 1000 classes;
    ``weights="imagenet"`` loads torchvision's ImageNet-1k weights."""
    return _densenet(121, num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def densenet169(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> DenseNet:
    """DenseNet-169 (Huang et al. 2017, arXiv:1608.06993), 14,149,480 parameters at 1000 classes;
    ``weights="imagenet"`` loads torchvision's ImageNet-1k weights."""
    return _densenet(169, num_classes=num_classes, weights=weights, **kwargs)


@register_model(task="classification")
def densenet201(*, num_classes: int | None = None, weights: str | None = None, **kwargs) -> DenseNet:
    """DenseNet-201 (Huang et al. 2017, arXiv:1608.06993), 20,013,928 parameters at 1000 classes;
    ``weights="imagenet"`` loads torchvision's ImageNet-1k weights."""
    return _densenet(201, num_classes=num_classes, weights=weights, **kwargs)
