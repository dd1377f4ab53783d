"""Convolutionalization: turn a classifier's fully connected layers into equivalent convolutions, so the
network takes inputs of any size (at least its training size) and returns a map of class scores.

This is the first step of the fully convolutional networks for semantic segmentation (Long, Shelhamer
and Darrell 2015, "Fully Convolutional Networks for Semantic Segmentation", arXiv:1411.4038, Sec. 3.1);
the same equivalence made OverFeat's sliding-window classifier efficient (Sermanet et al. 2014,
arXiv:1312.6229).

A fully connected layer that reads a flattened ``[C, h, w]`` map computes, for output unit o,
``sum_{c, i, j} W[o, c * h * w + i * w + j] * x[c, i, j] + b[o]``: exactly a convolution with an
``h x w`` kernel ``W.view(O, C, h, w)`` evaluated at one position. Every later fully connected layer
reads a vector, which is a ``1 x 1`` convolution. For VGG-16: fc6 (25088 = 512 * 7 * 7 -> 4096)
becomes a 7 x 7 convolution with 512 input channels, fc7 (4096 -> 4096) and fc8 (4096 -> K) become
1 x 1 convolutions. On a 224 x 224 input the convolutional features are 7 x 7 and the score map is
1 x 1, equal to the classifier's logits; on a larger input the 7 x 7 kernel slides over the feature
map with a stride of 32 input pixels (the features' total stride), so a 384 x 384 input (12 x 12
features) gives a 6 x 6 score map.

The adaptive average pool between the features and the classifier (``avgpool`` in the cvlib and
torchvision VGG/AlexNet) is dropped: at the training size it is the identity (VGG: 7 x 7 in, 7 x 7
out; AlexNet: 6 x 6), so the logits there are unchanged; at larger sizes it would squeeze the whole
image into one 7 x 7 window, which is what the score map avoids. Score ``[:, :, i, j]`` is the
classifier head applied to the feature window ``[i : i + 7, j : j + 7]`` (exactly), i.e. to the input
window of 224 pixels starting at ``(32 i, 32 j)`` - up to the zero padding of the convolutions at the
window's borders, which the whole image replaces by real neighbouring pixels.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from cvlib.ops.conv_arith import conv_output_size, receptive_field

__all__ = ["fc_to_conv", "convolutionalize", "ConvolutionalizedNet"]


def fc_to_conv(linear: nn.Linear, in_shape: tuple[int, int, int]) -> nn.Conv2d:
    """The convolution equivalent to a fully connected layer over a flattened ``[C, h, w]`` map.

    Args:
        linear (nn.Linear): with ``in_features == C * h * w`` (flattened in PyTorch's C, h, w order).
        in_shape (tuple[int, int, int]): ``(C, h, w)`` of the map the layer reads; ``(C, 1, 1)`` for a
            layer that reads a vector (a 1 x 1 convolution).

    Returns:
        nn.Conv2d: ``Conv2d(C, out_features, (h, w))`` with the weights reshaped (copied, not shared)
        and the same bias, on the layer's device and dtype. Applied to a ``[B, C, h, w]`` map it returns
        ``[B, out_features, 1, 1]`` equal to ``linear(x.flatten(1))``; larger maps give a score map.

    Raises:
        TypeError: if ``linear`` is not an ``nn.Linear``. ValueError: if the shapes do not match.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    if len(in_shape) != 3 or any(not isinstance(v, int) or v < 1 for v in in_shape):
        raise ValueError(f"in_shape must be (C, h, w) with positive ints, got {tuple(in_shape)!r}")
    c, h, w = in_shape
    if c * h * w != linear.in_features:
        raise ValueError(
            f"in_shape {tuple(in_shape)} has {c * h * w} values but the layer reads "
            f"in_features = {linear.in_features}"
        )
    w_ = linear.weight
    conv = nn.Conv2d(c, linear.out_features, (h, w), bias=linear.bias is not None)
    conv = conv.to(device=w_.device, dtype=w_.dtype)
    with torch.no_grad():
        conv.weight.copy_(w_.view(linear.out_features, c, h, w))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


class ConvolutionalizedNet(nn.Module):
    """A classifier's convolutional ``features`` followed by its fully connected head as convolutions.

    Attributes:
        features (nn.Module): the classifier's feature extractor (a copy).
        head (nn.Sequential): the converted head: the first fully connected layer as a ``window x
            window`` convolution, later ones as 1 x 1 convolutions; ReLU and dropout kept in place.
        window (int): the first layer's kernel, in feature cells (7 for VGG, 6 for AlexNet).
        stride (int): input pixels between adjacent score-map cells (the features' total stride).
        receptive_field (int): input pixels seen by one score (the features' receptive field
            extended by the window).
        min_input_size (int): the smallest square input giving a 1 x 1 score map (224 for VGG,
            223 for AlexNet).

    Shapes: Tensor[B, 3, H, W] with H, W >= ``min_input_size`` -> score map Tensor[B, K, h, w]; for
    VGG ``h = H // 32 - 6``.
    """

    def __init__(self, features: nn.Module, head: nn.Sequential, window: int) -> None:
        super().__init__()
        self.features, self.head, self.window = features, head, window
        rf, jump, _ = receptive_field(features)[-1]
        self.stride = jump
        self.receptive_field = rf + (window - 1) * jump
        self.min_input_size = next(n for n in range(1, 8193) if _feature_size(n, features) >= window)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be [B, 3, H, W], got {shape}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a float image batch, got {x.dtype}; convert with x.float() / 255")
        f = self.features(x)
        if min(f.shape[-2:]) < self.window:
            raise ValueError(
                f"x of size {tuple(x.shape[-2:])} gives a {tuple(f.shape[-2:])} feature map, smaller than "
                f"the {self.window} x {self.window} window of the first converted layer; inputs need "
                f"at least {self.min_input_size} x {self.min_input_size} pixels"
            )
        return self.head(f)


def _feature_size(n: int, features: nn.Module) -> int:
    try:
        return conv_output_size(n, features)[-1]
    except ValueError:  # too small for some layer
        return 0


def convolutionalize(model: nn.Module) -> ConvolutionalizedNet:
    """Replace the fully connected head of a VGG or AlexNet by equivalent convolutions.

    The model must have ``features`` (convolutions and pools), ``avgpool`` (an
    ``nn.AdaptiveAvgPool2d`` to ``s x s``) and ``classifier`` (an ``nn.Sequential`` of ``nn.Linear``,
    ReLU and dropout layers): the cvlib (and torchvision) VGG-11 ... VGG-19 with or without BN, their
    ``small_input`` variants (s = 1) and AlexNet. The first linear layer becomes an ``s x s``
    convolution (:func:`fc_to_conv`), the others 1 x 1 convolutions; the adaptive pool is dropped (the
    identity at the training size, see the module docstring). The original model is not modified.

    Args:
        model (nn.Module): e.g. ``create_model("vgg16", weights="imagenet")``.

    Returns:
        ConvolutionalizedNet: Tensor[B, 3, H, W] -> score map Tensor[B, K, h, w]; in eval mode at the
        training size (224 x 224) ``out[:, :, 0, 0]`` equals ``model(x)``.

    Raises:
        TypeError: for a model without that structure (e.g. a ResNet, whose global average pool is
        not the identity at 224), naming what is missing.

    Example:
        >>> net = convolutionalize(create_model("vgg16")).eval()
        >>> net(torch.rand(1, 3, 384, 384)).shape
        torch.Size([1, 1000, 6, 6])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    features = getattr(model, "features", None)
    pool = getattr(model, "avgpool", None)
    classifier = getattr(model, "classifier", None)
    if not isinstance(features, nn.Module) or not isinstance(classifier, nn.Sequential):
        raise TypeError(
            "model must have `features` and an nn.Sequential `classifier` of Linear/ReLU/Dropout layers "
            f"(VGG, AlexNet), got {type(model).__name__}"
        )
    if not isinstance(pool, nn.AdaptiveAvgPool2d):
        raise TypeError(
            "model must pool its features with an nn.AdaptiveAvgPool2d `avgpool` before the classifier, "
            f"got {type(pool).__name__}"
        )
    side = pool.output_size
    side = side if isinstance(side, int) else side[0]
    if not isinstance(side, int) or pool.output_size not in (side, (side, side)):
        raise TypeError(f"avgpool must pool to a square s x s, got output_size={pool.output_size!r}")
    layers: list[nn.Module] = []
    first = True
    for i, m in enumerate(classifier):
        if isinstance(m, nn.Linear):
            if first:
                if m.in_features % (side * side):
                    raise TypeError(
                        f"classifier[{i}] reads {m.in_features} features, not a multiple of {side} x {side}"
                    )
                layers.append(fc_to_conv(m, (m.in_features // (side * side), side, side)))
                first = False
            else:
                layers.append(fc_to_conv(m, (m.in_features, 1, 1)))
        elif isinstance(m, (nn.ReLU, nn.Dropout, nn.Identity)):
            layers.append(copy.deepcopy(m))
        else:
            raise TypeError(
                f"classifier[{i}] is a {type(m).__name__}; only Linear, ReLU and Dropout can be converted"
            )
    if first:
        raise TypeError("classifier has no nn.Linear layer to convert")
    net = ConvolutionalizedNet(copy.deepcopy(features), nn.Sequential(*layers), side)
    return net.train(model.training)
