"""Small teaching classifiers for the CNN-basics chapter: a linear classifier, an MLP, a simple CNN.

The linear classifier is one fully connected layer on flattened pixels (its weights read as one
"template" per class; CS231n-style linear classification). The MLP adds hidden ReLU layers
(Rumelhart, Hinton & Williams 1986). The simple CNN stacks conv-BN-ReLU-max-pool stages
(LeCun et al. 1998; batch norm: Ioffe & Szegedy 2015, arXiv:1502.03167) and ends with either
global average pooling (Lin et al. 2013, "Network in Network", arXiv:1312.4400) or a flatten +
fully connected head, so the chapter can compare the two heads' parameter counts and their
behaviour when the input is shifted.

``in_shape`` (linear, MLP) and the flatten head's input size may be left ``None``: the first
layer is then an ``nn.LazyLinear`` that takes its size from the first batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model

__all__ = ["LinearClassifier", "MLP", "SimpleCNN", "linear_classifier", "mlp", "simple_cnn"]


def _check_in_shape(in_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    if in_shape is None:
        return None
    shape = tuple(in_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"in_shape must be (C, H, W) with positive ints, got {in_shape!r}")
    return shape


def _linear(in_features: int | None, out_features: int) -> nn.Module:
    return nn.LazyLinear(out_features) if in_features is None else nn.Linear(in_features, out_features)


class LinearClassifier(nn.Module):
    """Scores ``s = W x + b`` on the flattened image: one weight row (a "template") per class.

    Args:
        num_classes: K.
        in_shape: (C, H, W) of the inputs, or None to infer it from the first batch.

    Shapes:
        input ``[B, C, H, W]`` -> logits ``[B, K]``.
    """

    def __init__(self, num_classes: int = 10, in_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.in_shape = _check_in_shape(in_shape)
        self.flatten = nn.Flatten()
        self.fc = _linear(
            None if self.in_shape is None else int(torch.tensor(self.in_shape).prod()), num_classes
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.in_shape is None:
            self.in_shape = tuple(x.shape[1:])
        return self.fc(self.flatten(x))  # [B, C*H*W] -> [B, K]

    def templates(self) -> Tensor:
        """The weights reshaped to images: Tensor[K, C, H, W] (a detached copy)."""
        if self.in_shape is None:
            raise RuntimeError("in_shape is unknown: pass in_shape= or run one batch through the model first")
        return self.fc.weight.detach().reshape(-1, *self.in_shape).clone()


class MLP(nn.Module):
    """Multi-layer perceptron on the flattened image: (Linear -> ReLU [-> Dropout]) x n -> Linear.

    Args:
        num_classes: K.
        in_shape: (C, H, W) of the inputs, or None to infer it from the first batch.
        hidden: widths of the hidden layers (may be empty: then it is a linear classifier).
        dropout: dropout probability after each hidden ReLU (0 disables it).

    Shapes:
        input ``[B, C, H, W]`` -> logits ``[B, K]``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_shape: Sequence[int] | None = None,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_shape = _check_in_shape(in_shape)
        if not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = None if self.in_shape is None else int(torch.tensor(self.in_shape).prod())
        for h in hidden:
            layers += [_linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(_linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # [B, C, H, W] -> [B, K]


class SimpleCNN(nn.Module):
    """A few (conv 3x3 -> norm -> ReLU -> max-pool 2x2) stages, then a GAP or flatten head.

    Args:
        num_classes: K.
        in_channels: C of the input.
        channels: output channels of each stage; stage i halves the resolution (reduction 2**(i+1)).
        head: ``"gap"`` (global average pooling -> Linear(channels[-1], K)) or ``"flatten"``
            (flatten the last map -> Linear(channels[-1] * h * w, K)).
        in_size: (H, W) of the input; needed only to size the flatten head up front (None: lazy).
        norm_layer: callable ``norm_layer(channels)`` after each conv, or None for no normalisation.

    Attributes:
        feature_info: one dict per stage with ``channels``, ``reduction`` and ``module``.

    Shapes:
        input ``[B, C, H, W]`` -> ``forward_features``: ``[B, channels[i], H / 2**(i+1), W / 2**(i+1)]``
        per stage (floor division) -> logits ``[B, K]``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        channels: Sequence[int] = (16, 32, 64),
        head: str = "gap",
        in_size: int | Sequence[int] | None = None,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        allowed = ("gap", "flatten")
        if head not in allowed:
            raise ValueError(f"head must be one of {allowed}, got {head!r}")
        if len(channels) == 0 or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
        self.head_type = head
        stages, self.feature_info, c_in = [], [], in_channels
        for i, c in enumerate(channels):
            layers = [nn.Conv2d(c_in, c, 3, padding=1, bias=norm_layer is None)]
            layers += [norm_layer(c)] if norm_layer is not None else []
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            stages.append(nn.Sequential(*layers))
            self.feature_info.append(dict(channels=c, reduction=2 ** (i + 1), module=f"stages.{i}"))
            c_in = c
        self.stages = nn.ModuleList(stages)
        if head == "gap":
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c_in, num_classes)
        else:
            self.pool = nn.Identity()
            if in_size is None:
                self.fc = nn.LazyLinear(num_classes)
            else:
                h, w = (in_size, in_size) if isinstance(in_size, int) else tuple(in_size)
                r = 2 ** len(channels)
                if h // r < 1 or w // r < 1:
                    raise ValueError(f"in_size {(h, w)} is too small for {len(channels)} pooling stages")
                self.fc = nn.Linear(c_in * (h // r) * (w // r), num_classes)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Feature maps after each stage: list of Tensor[B, channels[i], H_i, W_i]."""
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward_head(self, x: Tensor) -> Tensor:
        """Last feature map ``[B, C, h, w]`` -> logits ``[B, K]``."""
        return self.fc(torch.flatten(self.pool(x), 1))  # [B, C] (gap) or [B, C*h*w] (flatten)

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.dim() != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x)[-1])


@register_model(task="classification")
def linear_classifier(*, num_classes: int = 10, in_shape: Sequence[int] | None = None) -> LinearClassifier:
    """One fully connected layer on flattened pixels: ``[B, C, H, W] -> [B, K]``."""
    return LinearClassifier(num_classes=num_classes, in_shape=in_shape)


@register_model(task="classification")
def mlp(
    *,
    num_classes: int = 10,
    in_shape: Sequence[int] | None = None,
    hidden: Sequence[int] = (256,),
    dropout: float = 0.0,
) -> MLP:
    """MLP on flattened pixels with ReLU hidden layers of widths ``hidden``: ``[B, C, H, W] -> [B, K]``."""
    return MLP(num_classes=num_classes, in_shape=in_shape, hidden=hidden, dropout=dropout)


@register_model(task="classification")
def simple_cnn(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    channels: Sequence[int] = (16, 32, 64),
    head: str = "gap",
    in_size: int | Sequence[int] | None = None,
    norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
) -> SimpleCNN:
    """Conv-BN-ReLU-pool stages + GAP (``head="gap"``) or flatten head: ``[B, C, H, W] -> [B, K]``."""
    return SimpleCNN(
        num_classes=num_classes,
        in_channels=in_channels,
        channels=channels,
        head=head,
        in_size=in_size,
        norm_layer=norm_layer,
    )
