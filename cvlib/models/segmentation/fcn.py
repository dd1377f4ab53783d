"""Fully convolutional networks (Long, Shelhamer & Darrell 2015, arXiv:1411.4038).

* ``fcn32s`` / ``fcn16s`` / ``fcn8s``: the paper's VGG-16 net (Simonyan & Zisserman 2015,
  arXiv:1409.1556, Table 1 column D) with ``fc6``/``fc7`` turned into convolutions. FCN-32s
  upsamples the stride-32 class scores in one step; FCN-16s adds a 1x1 score layer on ``pool4``
  (zero-initialised, as in the paper) after a learnable 2x upsampling; FCN-8s adds ``pool3`` too.
  Every transposed convolution starts as bilinear interpolation, and the last one stays fixed.
  The VGG part is an ``nn.Sequential`` named ``backbone`` whose indices match torchvision's
  ``vgg16().features``, so ImageNet VGG-16 weights load into it.
* ``fcn_resnet50``: torchvision's ``fcn_resnet50`` layout (``backbone`` = ResNet-50 without its
  head, strides of ``layer3``/``layer4`` replaced by dilation 2/4 so the output stride is 8;
  ``classifier`` = 3x3 conv 2048->512 + BN + ReLU + dropout + 1x1; ``aux_classifier`` on
  ``layer3``), 35,322,218 parameters with the auxiliary head for 21 classes, 32,957,013 without.

Departures from the paper, noted where they occur:

* The paper pads the first convolution by 100 pixels and crops the scores afterwards; here ``fc6``
  is padded ("same") and inputs are zero-padded to a multiple of 32 and the scores cropped back, so
  the output is exactly ``[B, K, H, W]`` for any ``H, W``.
* ``width`` and ``fc_channels`` shrink the network for CPU experiments (paper: 64 and 4096).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model
from cvlib.models.classification.vgg import CONFIGS, make_features
from cvlib.ops.sampling import BilinearUpsample2d

__all__ = [
    "VGG16_CFG",
    "vgg16_features",
    "FCN",
    "FCNHead",
    "FCNResNet",
    "dilate_resnet",
    "fcn32s",
    "fcn16s",
    "fcn8s",
    "fcn_resnet50",
]

#: VGG-16 convolution widths and max-pools ("M"): Simonyan & Zisserman 2015, Table 1, column D
#: (the same table the classifier in :mod:`cvlib.models.classification.vgg` is built from).
VGG16_CFG: tuple[int | str, ...] = tuple(CONFIGS["D"])


def vgg16_features(width: int = 64, in_channels: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """VGG-16's 13 conv+ReLU layers and 5 max-pools; indices as in torchvision's ``vgg16().features``
    (``vgg16_bn().features`` with ``batch_norm=True``).

    Args:
        width: channels of the first stage (64 in the paper); later stages scale with it.
        batch_norm: BN after each convolution (not in the paper; trains from scratch much faster).

    Shapes: Tensor[B, in_channels, H, W] -> Tensor[B, 8 * width, H / 32, W / 32].
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    cfg = [v if v == "M" else int(v) * width // 64 for v in VGG16_CFG]
    return make_features(cfg, batch_norm=batch_norm, in_channels=in_channels)


class FCN(nn.Module):
    """FCN-32s/16s/8s on VGG-16 (Long et al. 2015).

    Args:
        num_classes: K (21 for PASCAL VOC: 20 classes + background).
        variant: ``"32s"``, ``"16s"`` or ``"8s"`` (the stride of the finest skip).
        width: first-stage width of VGG-16 (64 in the paper).
        fc_channels: channels of ``fc6``/``fc7`` (4096 in the paper).
        fc_kernel: kernel of ``fc6`` (7 in the paper, matching VGG's 7x7 pool5 grid).
        dropout: dropout after ``fc6`` and ``fc7`` (0.5 in the paper).
        in_channels: image channels.
        batch_norm: BN after every convolution of the backbone and of ``fc6``/``fc7`` (a departure
            from the paper, which fine-tunes ImageNet weights; it lets small FCNs train from scratch).

    Shapes: Tensor[B, in_channels, H, W] -> logits Tensor[B, K, H, W].
    """

    def __init__(
        self,
        *,
        num_classes: int = 21,
        variant: str = "8s",
        width: int = 64,
        fc_channels: int = 4096,
        fc_kernel: int = 7,
        dropout: float = 0.5,
        in_channels: int = 3,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        allowed = ("32s", "16s", "8s")
        if variant not in allowed:
            raise ValueError(f"variant must be one of {allowed}, got {variant!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.variant = variant
        self.backbone = vgg16_features(width, in_channels, batch_norm)
        # positions of pool3, pool4, pool5 in the Sequential (16, 23, 30 without BN)
        self._taps = [i for i, m in enumerate(self.backbone) if isinstance(m, nn.MaxPool2d)][2:]
        c3, c4, c5 = 4 * width, 8 * width, 8 * width

        def fc(cin: int, k: int) -> nn.Sequential:
            norm = [nn.BatchNorm2d(fc_channels)] if batch_norm else []
            conv = nn.Conv2d(cin, fc_channels, k, padding=k // 2)
            return nn.Sequential(conv, *norm, nn.ReLU(inplace=True), nn.Dropout2d(dropout))

        self.fc6 = fc(c5, fc_kernel)
        self.fc7 = fc(fc_channels, 1)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        final = {"32s": 32, "16s": 16, "8s": 8}[variant]
        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(c4, num_classes, 1)
            self.upscore2 = BilinearUpsample2d(num_classes, 2, learnable=True)
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(c3, num_classes, 1)
            self.upscore_pool4 = BilinearUpsample2d(num_classes, 2, learnable=True)
        self.upscore_final = BilinearUpsample2d(num_classes, final, learnable=False)
        for name in ("score_pool4", "score_pool3"):  # the paper zero-initialises the skip scores
            if hasattr(self, name):
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """pool3, pool4 and pool5 outputs (reductions 8, 16, 32)."""
        feats = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i in self._taps:
                feats.append(x)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.dim() != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        # pad to a multiple of 32 (the paper crops instead)
        x = F.pad(x, (0, -w % 32, 0, -h % 32))
        pool3, pool4, pool5 = self.forward_features(x)
        score = self.score_fr(self.fc7(self.fc6(pool5)))  # [B, K, H/32, W/32]
        if self.variant != "32s":
            score = self.upscore2(score) + self.score_pool4(pool4)  # [B, K, H/16, W/16]
        if self.variant == "8s":
            score = self.upscore_pool4(score) + self.score_pool3(pool3)  # [B, K, H/8, W/8]
        return self.upscore_final(score)[..., :h, :w]  # [B, K, H, W]


def dilate_resnet(resnet: nn.Module, replace_stride_with_dilation: tuple[bool, bool, bool]) -> nn.Module:
    """Turn the strides of ``layer2..4`` into dilation, in place (DeepLab's atrous trick, arXiv:1606.00915).

    Follows torchvision's ``replace_stride_with_dilation``: in a dilated stage the strided 3x3
    convolution gets stride 1 and the previous dilation, every later 3x3 gets twice that; the
    shortcut's 1x1 convolution loses its stride. Parameters and state-dict keys are unchanged,
    so ImageNet weights still fit. Works for ``Bottleneck`` and ``BasicBlock`` stages.

    Args:
        resnet: a module with ``layer2``, ``layer3``, ``layer4`` (``cvlib`` or torchvision ResNet).
        replace_stride_with_dilation: one flag per stage; once a stage is dilated the later ones must be.

    Returns:
        the same module.
    """
    flags = tuple(bool(f) for f in replace_stride_with_dilation)
    if len(flags) != 3 or any(a and not b for a, b in zip(flags, flags[1:])):
        raise ValueError(
            f"replace_stride_with_dilation must be 3 flags, monotone (e.g. (False, True, True)), "
            f"got {replace_stride_with_dilation}"
        )
    dilation = 1
    for name, flag in zip(("layer2", "layer3", "layer4"), flags):
        if not flag:
            continue
        prev, dilation = dilation, dilation * 2
        for i, block in enumerate(getattr(resnet, name)):
            d = prev if i == 0 else dilation
            for m in block.children():
                if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                    strided = m.stride != (1, 1)
                    m.stride, m.dilation, m.padding = (1, 1), (d, d), (d, d)
                    if strided:
                        d = dilation  # 3x3 convs after the (former) stride see the finer grid
            down = getattr(block, "downsample", None)
            if down is not None:
                down[0].stride = (1, 1)
    return resnet


class _ResNetTrunk(nn.Module):
    """A ResNet without avgpool/fc (keys ``conv1``, ``bn1``, ``layer1..4`` as in torchvision)."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(resnet, name))

    def forward_features(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats


class FCNHead(nn.Sequential):
    """3x3 conv (C -> C/4) + BN + ReLU + dropout 0.1 + 1x1 conv to K classes (torchvision's ``FCNHead``)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        mid = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
            nn.Conv2d(mid, num_classes, 1),
        )


class FCNResNet(nn.Module):
    """FCN head on a dilated ResNet (output stride 8), the layout of torchvision's ``fcn_resnet50``.

    In training mode with ``aux_loss=True`` the forward returns ``(logits, aux_logits)`` (``fit``'s
    default loss adds ``0.3 * CE(aux)``); in eval mode it returns the logits only.

    Shapes: Tensor[B, 3, H, W] -> logits Tensor[B, K, H, W].
    """

    def __init__(self, backbone: nn.Module, num_classes: int, aux_loss: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = FCNHead(2048, num_classes)
        self.aux_classifier = FCNHead(1024, num_classes) if aux_loss else None

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        x = check_model_input(self, x)
        if x.dim() != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        size = x.shape[-2:]
        _, _, c3, c4 = self.backbone.forward_features(x)
        out = F.interpolate(self.classifier(c4), size=size, mode="bilinear", align_corners=False)
        if self.training and self.aux_classifier is not None:
            aux = F.interpolate(self.aux_classifier(c3), size=size, mode="bilinear", align_corners=False)
            return out, aux
        return out


def _fcn(variant: str, **kwargs) -> FCN:
    return FCN(variant=variant, **kwargs)


@register_model(task="segmentation")
def fcn32s(*, num_classes: int = 21, **kwargs) -> FCN:
    """FCN-32s (Long et al. 2015, arXiv:1411.4038): VGG-16, one 32x bilinear upsampling."""
    return _fcn("32s", num_classes=num_classes, **kwargs)


@register_model(task="segmentation")
def fcn16s(*, num_classes: int = 21, **kwargs) -> FCN:
    """FCN-16s (Long et al. 2015): FCN-32s + a pool4 skip, final 16x upsampling."""
    return _fcn("16s", num_classes=num_classes, **kwargs)


@register_model(task="segmentation")
def fcn8s(*, num_classes: int = 21, **kwargs) -> FCN:
    """FCN-8s (Long et al. 2015): FCN-16s + a pool3 skip, final 8x upsampling."""
    return _fcn("8s", num_classes=num_classes, **kwargs)


@register_model(task="segmentation")
def fcn_resnet50(
    *, num_classes: int = 21, aux_loss: bool = True, backbone_weights: str | None = None
) -> FCNResNet:
    """FCN on a dilated ResNet-50 (torchvision's ``fcn_resnet50`` layout and parameter count).

    Args:
        num_classes: K.
        aux_loss: add the auxiliary FCN head on ``layer3``.
        backbone_weights: weights tag of ``cvlib.models.classification.resnet50`` (e.g. ``"imagenet"``).
    """
    from cvlib.models.classification.resnet import resnet50

    trunk = dilate_resnet(resnet50(weights=backbone_weights), (False, True, True))
    return FCNResNet(_ResNetTrunk(trunk), num_classes, aux_loss)
