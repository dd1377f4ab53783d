"""SE-ResNet-50 (Hu, Shen, Albanie, Sun and Wu 2018, "Squeeze-and-Excitation Networks", arXiv:1709.01507).

A ResNet-50 (``cvlib.models.classification.resnet``, V1.5 strides) whose bottlenecks rescale the
residual branch's channels with a squeeze-and-excitation block (reduction ratio r = 16, the paper's
default) before the shortcut is added (the paper's Fig. 3, "SE-ResNet module"). The SE block is
``cvlib.models._layers.SqueezeExcite`` (1x1 convolutions ``fc1``/``fc2`` with bias), so the keys
(``layer1.0.se.fc1.weight``, ...) follow timm's ``seresnet50``: 28,088,024 parameters.
"""

from __future__ import annotations

from torch import Tensor, nn

from cvlib.models._layers import SqueezeExcite
from cvlib.models._registry import register_model
from cvlib.models.classification.resnet import Bottleneck, NormLayer, ResNet

__all__ = ["SEBottleneck", "se_resnet50"]

SE_REDUCTION = 16  # the paper's section 6.1 ablation picks r = 16


class SEBottleneck(Bottleneck):
    """ResNet bottleneck with squeeze-and-excitation on the residual branch (paper Fig. 3).

    Shapes: Tensor[B, C_in, H, W] -> Tensor[B, 4 * planes, H / stride, W / stride].
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(in_channels, planes, stride, downsample, norm_layer)
        c = planes * self.expansion
        self.se = SqueezeExcite(c, c // SE_REDUCTION)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.se(self.residual(x)) + identity)


@register_model(task="classification")
def se_resnet50(
    *, num_classes: int = 1000, small_input: bool = False, zero_init_residual: bool = False
) -> ResNet:
    """SE-ResNet-50 (arXiv:1709.01507), 28,088,024 params; [B, 3, 224, 224] -> [B, K].

    The per-channel gates of block ``layerS.i`` are ``model.layerS[i].se.scale(residual)``,
    Tensor[B, C, 1, 1] in (0, 1).
    """
    return ResNet(
        SEBottleneck,
        (3, 4, 6, 3),
        num_classes=num_classes,
        small_input=small_input,
        zero_init_residual=zero_init_residual,
    )
