"""SegNet (Badrinarayanan, Kendall & Cipolla 2017, arXiv:1511.00561).

The encoder is VGG-16's 13 convolutions (each followed by batch norm and ReLU) with five 2x2
max-pools that keep their argmax *indices*. The decoder mirrors it: each stage first max-unpools
with the indices of the matching encoder pool (so boundaries come back at the positions where the
strongest responses were), then densifies the sparse map with convolutions. Nothing is copied
across except the indices, which is what makes SegNet lighter than U-Net at inference.

Departures: ``width`` scales all stages for CPU experiments (paper: 64). Odd sizes work because
each unpooling is given the size of the map before the matching pool.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._layers import ConvNormAct, check_model_input
from cvlib.models._registry import register_model

__all__ = ["SegNet", "segnet", "segnet_small"]

# Convolutions per encoder stage and their widths (VGG-16, Simonyan & Zisserman 2015, Table 1 D).
_STAGES: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


class SegNet(nn.Module):
    """SegNet encoder-decoder with pooling indices (Badrinarayanan et al. 2017).

    Args:
        num_classes: K.
        in_channels: image channels.
        width: first-stage width (64 in the paper); other stages scale with it.

    Shapes: Tensor[B, in_channels, H, W] (H, W >= 32) -> logits Tensor[B, K, H, W].
    """

    def __init__(self, *, num_classes: int = 21, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if num_classes < 1 or width < 1:
            raise ValueError(f"num_classes and width must be >= 1, got {num_classes}, {width}")
        widths = [c * width // 64 for _, c in _STAGES]
        self.encoder = nn.ModuleList()
        c = in_channels
        for (n, _), out in zip(_STAGES, widths):
            self.encoder.append(nn.Sequential(*[ConvNormAct(c if i == 0 else out, out, 3) for i in range(n)]))
            c = out
        # decoder stage j mirrors encoder stage 4 - j; its last conv maps to the next (shallower) width
        self.decoder = nn.ModuleList()
        for j in range(len(_STAGES) - 1, -1, -1):
            n, out = _STAGES[j][0], widths[j]
            nxt = widths[j - 1] if j > 0 else out
            convs = [ConvNormAct(out, out, 3) for _ in range(n - 1)] + [ConvNormAct(out, nxt, 3)]
            self.decoder.append(nn.Sequential(*convs))
        self.classifier = nn.Conv2d(widths[0], num_classes, 3, padding=1)
        self.num_classes = num_classes

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.dim() != 4 or min(x.shape[-2:]) < 32:
            raise ValueError(f"x must be [B, C, H, W] with H, W >= 32, got {tuple(x.shape)}")
        indices, sizes = [], []
        for stage in self.encoder:
            x = stage(x)
            sizes.append(x.shape[-2:])
            # x: [B, C, H/2, W/2]; idx: the argmax positions the decoder unpools to
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(idx)
        for stage, idx, size in zip(self.decoder, reversed(indices), reversed(sizes)):
            x = F.max_unpool2d(x, idx, 2, 2, output_size=size)  # sparse [B, C, 2h, 2w]
            x = stage(x)
        return self.classifier(x)  # [B, K, H, W]


@register_model(task="segmentation")
def segnet(*, num_classes: int = 21, in_channels: int = 3, width: int = 64) -> SegNet:
    """SegNet (Badrinarayanan et al. 2017, arXiv:1511.00561) with the VGG-16 encoder."""
    return SegNet(num_classes=num_classes, in_channels=in_channels, width=width)


@register_model(task="segmentation")
def segnet_small(*, num_classes: int = 5, in_channels: int = 3, width: int = 16) -> SegNet:
    """SegNet at a quarter of the width, for CPU experiments on small images."""
    return SegNet(num_classes=num_classes, in_channels=in_channels, width=width)
