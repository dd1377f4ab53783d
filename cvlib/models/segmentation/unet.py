"""U-Net (Ronneberger, Fischer & Brox 2015, arXiv:1505.04597) and a same-padding variant.

``unet_valid`` is the paper's network: each level has two *unpadded* ("valid") 3x3 convolutions
with ReLU, 2x2 max-pooling going down, a 2x2 "up-convolution" halving the channels going up, and
the encoder map *cropped* to the decoder's size before concatenation (Fig. 1). Because nothing is
padded, the output is smaller than the input (572 -> 388 with four levels) and every output pixel
sees real context. Large images are therefore predicted tile by tile, the missing context at the
image border filled by mirroring (the overlap-tile strategy, Fig. 2): :func:`predict_tiled`.

``unet`` is the variant most code uses today: same padding (output size = input size), batch
norm after every convolution, no cropping.

Departures: the paper's dropout at the end of the contracting path is an argument (default 0);
``width`` scales all levels (paper: 64), ``depth`` sets the number of poolings (paper: 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib._validate import check_image, check_int
from cvlib.models._registry import register_model

__all__ = [
    "UNet",
    "unet_valid_output_size",
    "unet_valid_input_size",
    "predict_tiled",
    "mirror_pad",
    "unet",
    "unet_small",
    "unet_valid",
]


def unet_valid_output_size(size: int, depth: int = 4) -> int:
    """Output side of the valid U-Net for an input side ``size`` (572 -> 388 for depth 4).

    Raises:
        ValueError: if a pooling would see an odd size or the map would vanish.
    """
    n = size
    for level in range(depth):
        n -= 4
        if n <= 0 or n % 2:
            raise ValueError(
                f"input size {size} gives an odd or empty map ({n}) before pooling {level + 1}; "
                f"use unet_valid_input_size() to pick a valid size"
            )
        n //= 2
    n -= 4
    if n <= 0:
        raise ValueError(f"input size {size} is too small for depth {depth}")
    for _ in range(depth):
        n = 2 * n - 4
    return n


def unet_valid_input_size(out_size: int, depth: int = 4) -> int:
    """The smallest valid input side whose output side is at least ``out_size`` (388 -> 572)."""
    n = max(out_size, 1)
    for _ in range(depth):
        n = (n + 4 + 1) // 2  # invert "2n - 4", rounding up
    n += 4
    for _ in range(depth):
        n = 2 * n + 4
    return n


def _crop_center(x: Tensor, size: tuple[int, int]) -> Tensor:
    dh, dw = x.shape[-2] - size[0], x.shape[-1] - size[1]
    return x[..., dh // 2 : dh // 2 + size[0], dw // 2 : dw // 2 + size[1]]


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, padding: int, norm: bool) -> None:
        layers: list[nn.Module] = []
        for c in (cin, cout):
            layers.append(nn.Conv2d(c, cout, 3, padding=padding, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net encoder-decoder with skip concatenations (Ronneberger et al. 2015).

    Args:
        num_classes: K (2 in the paper: membrane / cell).
        in_channels: image channels (1 in the paper).
        width: channels of the first level (64 in the paper); level ``i`` has ``width * 2**i``.
        depth: number of poolings (4 in the paper).
        padding: ``"valid"`` (the paper: output smaller than input, crop-and-copy skips) or ``"same"``.
        norm: batch norm after each convolution (not in the paper; default for ``"same"``).
        dropout: dropout at the end of the contracting path (the paper uses it; default 0).

    Shapes: Tensor[B, in_channels, H, W] -> logits Tensor[B, K, H', W'] with ``H' = H`` for
    ``"same"`` (H, W any size; padded to a multiple of ``2**depth`` and cropped back) and
    ``H' = unet_valid_output_size(H, depth)`` for ``"valid"``.
    """

    def __init__(
        self,
        *,
        num_classes: int = 2,
        in_channels: int = 1,
        width: int = 64,
        depth: int = 4,
        padding: str = "valid",
        norm: bool | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        allowed = ("valid", "same")
        if padding not in allowed:
            raise ValueError(f"padding must be one of {allowed}, got {padding!r}")
        if depth < 1 or width < 1 or num_classes < 1:
            raise ValueError(f"depth, width, num_classes must be >= 1, got {depth}, {width}, {num_classes}")
        self.padding, self.depth, self.in_channels = padding, depth, in_channels
        norm = (padding == "same") if norm is None else norm
        pad = 1 if padding == "same" else 0
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(_DoubleConv(c, w, pad, norm))
            c = w
        self.dropout = nn.Dropout2d(dropout)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)
        )
        self.up_conv = nn.ModuleList(_DoubleConv(2 * widths[i], widths[i], pad, norm) for i in range(depth))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def output_size(self, size: int) -> int:
        """Output side for an input side ``size``."""
        return size if self.padding == "same" else unet_valid_output_size(size, self.depth)

    def forward(self, x: Tensor) -> Tensor:
        x = check_image(x, "x")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels [B, C, H, W], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if self.padding == "valid":
            self.output_size(h), self.output_size(w)  # raises with advice for sizes that do not fit
        else:
            m = 2**self.depth
            x = F.pad(x, (0, -w % m, 0, -h % m))
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)  # [B, C, h/2, w/2]
            x = block(x)
            skips.append(x)
        x = self.dropout(skips.pop())
        for i in reversed(range(self.depth)):
            x = self.up[i](x)  # [B, C/2, 2h, 2w]
            skip = _crop_center(skips[i], x.shape[-2:])  # copy and crop (a no-op for "same")
            x = self.up_conv[i](torch.cat([skip, x], dim=1))
        out = self.head(x)
        return out[..., :h, :w] if self.padding == "same" else out


def mirror_pad(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """Reflect-pad ``x`` by ``(left, right, top, bottom)``, any amount (repeats the reflection).

    Shapes: Tensor[B, C, H, W] -> Tensor[B, C, H + top + bottom, W + left + right].
    """
    if any(p < 0 for p in pad):
        raise ValueError(f"pad must be >= 0, got {pad}")
    left, right, top, bottom = pad
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        if h < 2 or w < 2:
            raise ValueError(f"cannot mirror a map of size {h}x{w}")
        step = (min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1))
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = (p - s for p, s in zip((left, right, top, bottom), step))
    return x


@torch.no_grad()
def predict_tiled(model: UNet, image: Tensor, *, tile: int | None = None, batch_size: int = 4) -> Tensor:
    """Overlap-tile prediction (Ronneberger et al. 2015, Fig. 2): the output covers the whole image.

    The image is mirror-padded by the network's border loss and cut into input tiles whose output
    tiles cover it. A valid U-Net of depth ``d`` only produces output sides ``2**d * (b - 4) + 4``
    (``4 mod 2**d``: 388 for ``d = 4``), so ``tile`` is rounded up to the next such size, and tiles
    are placed every ``step`` pixels, ``step`` = the tile rounded down to a multiple of ``2**d``:
    every tile then sees the same pooling grid as one pass over the padded image, and neighbouring
    output tiles overlap by ``tile - step`` pixels holding the same values. The result equals running
    the network once on the mirror-padded image, whatever the depth.

    The tiles run on the model's device; the result is returned on ``image``'s device.

    Args:
        model: a :class:`UNet` (``"valid"`` or ``"same"``) in the mode you want (call ``.eval()``).
        image (Tensor[B, C, H, W]): float images (``C = model``'s input channels).
        tile: output tile side (default 388, the paper's), rounded up to a valid output size
            (``"valid"``) or a multiple of ``2**depth`` (``"same"``).
        batch_size: tiles per forward pass.

    Returns:
        Tensor[B, K, H, W]: logits for every pixel, on ``image``'s device.
    """
    if not isinstance(model, UNet):
        raise TypeError(
            f"model must be a cvlib UNet (create_model('unet_valid')), got {type(model).__name__}"
        )
    image = check_image(image, "image")
    if image.shape[-3] != model.in_channels:
        raise ValueError(
            f"image has {image.shape[-3]} channels, the model expects {model.in_channels} "
            f"(image shape {tuple(image.shape)})"
        )
    if image.numel() == 0:
        raise ValueError(f"image must not be empty, got shape {tuple(image.shape)}")
    tile = check_int(388 if tile is None else tile, "tile", min=1)
    batch_size = check_int(batch_size, "batch_size", min=1)
    m = 2**model.depth
    if model.padding == "valid":
        tile = unet_valid_output_size(unet_valid_input_size(tile, model.depth), model.depth)
        in_tile = unet_valid_input_size(tile, model.depth)
        step = max(tile - tile % m, m)
    else:
        tile = -(-tile // m) * m
        in_tile, step = tile, tile
    margin = (in_tile - tile) // 2
    b, _, h, w = image.shape
    ny = 1 + max(0, -(-(h - tile) // step))
    nx = 1 + max(0, -(-(w - tile) // step))
    full_h, full_w = (ny - 1) * step + tile, (nx - 1) * step + tile
    param = next(model.parameters(), None)
    device = param.device if param is not None else image.device
    padded = mirror_pad(image.to(device), (margin, margin + full_w - w, margin, margin + full_h - h))
    crops = [(i, j) for i in range(ny) for j in range(nx)]
    out = None
    for start in range(0, len(crops), batch_size):
        chunk = crops[start : start + batch_size]
        x = torch.cat(
            [padded[..., i * step : i * step + in_tile, j * step : j * step + in_tile] for i, j in chunk]
        )
        y = model(x)  # [len(chunk) * B, K, tile, tile]
        if out is None:
            out = y.new_zeros(b, y.shape[1], full_h, full_w)
        for k, (i, j) in enumerate(chunk):
            out[..., i * step : i * step + tile, j * step : j * step + tile] = y[k * b : (k + 1) * b]
    return out[..., :h, :w].to(image.device)


@register_model(task="segmentation")
def unet_valid(
    *,
    num_classes: int = 2,
    in_channels: int = 1,
    width: int = 64,
    depth: int = 4,
    dropout: float = 0.0,
    norm: bool = False,
) -> UNet:
    """The paper's U-Net (Ronneberger et al. 2015, arXiv:1505.04597): valid convolutions, 572 -> 388.

    Output is smaller than the input: use :func:`predict_tiled` for whole images. ``norm=True``
    adds batch norm (not in the paper; short runs from scratch train faster).
    """
    return UNet(
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
        depth=depth,
        padding="valid",
        norm=norm,
        dropout=dropout,
    )


@register_model(task="segmentation")
def unet(*, num_classes: int = 2, in_channels: int = 3, width: int = 64, depth: int = 4) -> UNet:
    """U-Net with same padding and batch norm: output size = input size."""
    return UNet(num_classes=num_classes, in_channels=in_channels, width=width, depth=depth, padding="same")


@register_model(task="segmentation")
def unet_small(*, num_classes: int = 5, in_channels: int = 3, width: int = 16, depth: int = 3) -> UNet:
    """Same-padding U-Net at width 16 and depth 3, for CPU experiments on small images."""
    return UNet(num_classes=num_classes, in_channels=in_channels, width=width, depth=depth, padding="same")
