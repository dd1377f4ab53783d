"""pix2pix: image-to-image translation with a conditional GAN (Isola et al. 2017, arXiv:1611.07004).

* Generator: a U-Net of 4x4 stride-2 convolutions (encoder ``C64-C128-C256-C512-...``, BN except
  on the first layer, LeakyReLU 0.2) and 4x4 stride-2 transposed convolutions (decoder, BN, ReLU,
  dropout 0.5 on the innermost three), each decoder level concatenated with its mirror encoder
  level; ``tanh`` output (paper, appendix 6.1.1).
* Discriminator: the 70x70 PatchGAN ``C64-C128-C256-C512`` on the concatenated (condition, image)
  pair, one logit per overlapping patch (appendix 6.1.2).
* Objective: ``L_cGAN(G, D) + lambda * L1(y, G(x))`` with ``lambda = 100`` (equation 4).

:class:`Pix2Pix` packs both networks so that ``cvlib.train.fit`` can drive it with one optimizer
(``takes_targets = True``): in training mode ``model(x, y)`` returns ``{"loss_d", "loss_g_gan",
"loss_l1"}``. The discriminator loss sees the fake image *detached*, and the generator's
adversarial loss is computed through a copy of the discriminator with *detached* parameters, so
summing the three losses and taking one Adam step updates D on its loss and G on its loss, the
simultaneous form of the paper's alternating updates. In eval mode ``model(x)`` returns images.

Images are ``[0, 1]`` outside the model and ``[-1, 1]`` inside (the tanh range).
Departures: ``depth`` (8 for 256x256 in the paper) and ``width`` (64) shrink the nets for 32-64 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model

__all__ = ["UNetGenerator", "PatchGAN", "Pix2Pix", "masks_to_onehot", "pix2pix", "pix2pix_small"]


def masks_to_onehot(masks: Tensor, num_classes: int) -> Tensor:
    """Int64 masks Tensor[B, H, W] -> float one-hot Tensor[B, K, H, W] (the pix2pix condition)."""
    if masks.dim() != 3 or masks.is_floating_point():
        raise ValueError(f"masks must be int [B, H, W], got {tuple(masks.shape)} {masks.dtype}")
    if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) >= num_classes):
        raise ValueError(
            f"mask values must be in [0, {num_classes}), got [{int(masks.min())}, {int(masks.max())}]"
        )
    return F.one_hot(masks, num_classes).permute(0, 3, 1, 2).float()


class UNetGenerator(nn.Module):
    """pix2pix's U-Net generator (appendix 6.1.1). Shapes: Tensor[B, C_in, H, W] -> Tensor[B, C_out, H, W]
    in [-1, 1], with H and W divisible by ``2**depth``."""

    def __init__(
        self, in_channels: int, out_channels: int = 3, width: int = 64, depth: int = 8, dropout: float = 0.5
    ) -> None:
        super().__init__()
        widths = [min(width * 2**i, 8 * width) for i in range(depth)]
        self.depth = depth
        self.down = nn.ModuleList()
        c = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=False)]
            layers.append(nn.Conv2d(c, w, 4, 2, 1, bias=not (0 < i < depth - 1)))
            if 0 < i < depth - 1:  # no BN on the first layer nor on the 1x1 bottleneck
                layers.append(nn.BatchNorm2d(w))
            self.down.append(nn.Sequential(*layers))
            c = w
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            cin = widths[i] if i == depth - 1 else 2 * widths[i]
            cout = widths[i - 1] if i > 0 else out_channels
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
                if i >= depth - 3:  # dropout on the three innermost decoder layers
                    layers.append(nn.Dropout(dropout))
            else:
                layers.append(nn.Tanh())
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        m = 2**self.depth
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"H and W must be multiples of 2**depth = {m}, got {tuple(x.shape[-2:])}")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([skips.pop(), x], dim=1)  # [B, 2C, 2h, 2w]
        return x


class PatchGAN(nn.Module):
    """The PatchGAN discriminator (appendix 6.1.2): ``n_layers=3`` is the 70x70 receptive-field net.

    Shapes: Tensor[B, C, H, W] -> patch logits Tensor[B, 1, H', W'].
    """

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_layers + 1):
            w = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, w, 4, stride, 1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            c = w
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Pix2Pix(nn.Module):
    """Generator + discriminator + the pix2pix losses, trainable by ``cvlib.train.fit``.

    Args:
        in_channels: channels of the condition ``x`` (e.g. K for one-hot masks).
        out_channels: image channels.
        width, depth: generator size; ``disc_width``, ``disc_layers``: PatchGAN size.
        l1_weight: lambda of the L1 term (100 in the paper).
        gan_weight: weight of the generator's adversarial term (1 in the paper; 0 gives the
            "L1 only" baseline of the paper's Table 1, with D still trained but ignored).

    Forward:
        training mode, ``model(x, y)`` with x Tensor[B, C_in, H, W], y Tensor[B, C_out, H, W] in
        [0, 1]: dict of scalar losses ``loss_d``, ``loss_g_gan``, ``loss_l1`` (already weighted).
        eval mode, ``model(x)``: generated images Tensor[B, C_out, H, W] in [0, 1].
    """

    takes_targets = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        *,
        width: int = 64,
        depth: int = 8,
        disc_width: int = 64,
        disc_layers: int = 3,
        l1_weight: float = 100.0,
        gan_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.generator = UNetGenerator(in_channels, out_channels, width, depth)
        self.discriminator = PatchGAN(in_channels + out_channels, disc_width, disc_layers)
        self.l1_weight = l1_weight
        self.gan_weight = gan_weight

    def generate(self, x: Tensor) -> Tensor:
        """G(x) mapped to [0, 1]."""
        return (self.generator(x) + 1) / 2

    def forward(
        self,
        x: Tensor,
        y: Tensor | None = None,
    ) -> Tensor | dict[str, Tensor]:
        x = check_model_input(self, x)
        if x.dim() != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        if not self.training or y is None:
            return self.generate(x)
        if y.shape[0] != x.shape[0] or y.shape[-2:] != x.shape[-2:]:
            got, x_shape = tuple(y.shape), tuple(x.shape)
            msg = f"y must be [B, C_out, H, W] matching x {x_shape}"
            raise ValueError(f"{msg}, got {got}")
        real = y * 2 - 1  # [0, 1] -> [-1, 1]
        fake = self.generator(x)
        d_real = self.discriminator(torch.cat([x, real], 1))
        d_fake = self.discriminator(torch.cat([x, fake.detach()], 1))
        bce = F.binary_cross_entropy_with_logits
        loss_real = bce(d_real, torch.ones_like(d_real))
        loss_fake = bce(d_fake, torch.zeros_like(d_fake))
        loss_d = 0.5 * (loss_real + loss_fake)
        # G's adversarial term through D with detached parameters:
        # no gradient reaches D
        d = self.discriminator
        frozen = {k: v.detach() for k, v in d.named_parameters()}
        frozen.update(dict(d.named_buffers()))
        d_gen = functional_call(d, frozen, (torch.cat([x, fake], 1),))
        loss_g = bce(d_gen, torch.ones_like(d_gen))
        return {
            "loss_d": loss_d,
            "loss_g_gan": self.gan_weight * loss_g,
            "loss_l1": self.l1_weight * F.l1_loss(fake, real),
        }


@register_model(task="generation")
def pix2pix(
    *, in_channels: int = 3, out_channels: int = 3, l1_weight: float = 100.0, gan_weight: float = 1.0
) -> Pix2Pix:
    """pix2pix (Isola et al. 2017, arXiv:1611.07004) for 256x256 images: depth-8 U-Net + 70x70 PatchGAN."""
    return Pix2Pix(in_channels, out_channels, l1_weight=l1_weight, gan_weight=gan_weight)


@register_model(task="generation")
def pix2pix_small(
    *, in_channels: int = 5, out_channels: int = 3, l1_weight: float = 100.0, gan_weight: float = 1.0
) -> Pix2Pix:
    """pix2pix for 32-64 px images: depth-5 U-Net of width 16, 2-layer PatchGAN of width 16."""
    return Pix2Pix(
        in_channels,
        out_channels,
        width=16,
        depth=5,
        disc_width=16,
        disc_layers=2,
        l1_weight=l1_weight,
        gan_weight=gan_weight,
    )
