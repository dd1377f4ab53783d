"""AlexNet (Krizhevsky, Sutskever and Hinton 2012, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS; the single-tower variant of Krizhevsky 2014, arXiv:1404.5997).

The layout is torchvision's single-tower one: ``features.0`` ... ``features.12`` (5 convolutions with
64/192/384/256/256 filters, ReLU, 3 max-pools), adaptive average pooling to 6x6, and
``classifier.0`` ... ``classifier.6`` (dropout, 4096, 4096, K). 61,100,840 parameters for K = 1000.

Departures from the 2012 paper, each documented:

* one tower with the 2014 filter counts instead of the two-GPU split with 96/256/384/384/256 filters
  (chapter 3 shows the split as grouped convolutions, ``groups=2``);
* no local response normalisation by default. ``lrn=True`` inserts the paper's LRN (Sec. 3.3:
  n = 5, k = 2, alpha = 1e-4, beta = 0.75) after the first two ReLUs, which shifts the ``features.N``
  indices (``features.3`` becomes ``features.4`` ...), so torchvision weights then do not load. The
  paper multiplies the sum of squares by alpha, ``b_c = a_c / (k + alpha * sum a^2)^beta``, while
  ``nn.LocalResponseNorm`` multiplies it by ``alpha / n``; the layer is therefore built with
  ``alpha = n * 1e-4 = 5e-4`` (:func:`local_response_norm`);
* ``width`` (64 in the paper's single tower) scales every convolution: the five layers have
  ``width * (1, 3, 6, 4, 4)`` filters, for small experiments (torchvision weights need 64);
* ``small_input=True`` (32x32 inputs): a 3x3/1 first convolution, 2x2 max-pools and a 2x2 adaptive
  pool, so the classifier sees 256 * 2 * 2 = 1024 features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model
from cvlib.models.classification._weights import TV_URL, WeightSpec, load_weights, resolve_num_classes

__all__ = ["AlexNet", "alexnet", "local_response_norm"]


def local_response_norm(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> nn.Module:
    """Local response normalisation as written in Krizhevsky et al. 2012, Sec. 3.3 (the defaults are
    the paper's n, alpha, beta, k): ``b_c = a_c / (k + alpha * sum_{|c' - c| <= size // 2} a_{c'}^2)^beta``,
    built as an ``nn.LocalResponseNorm``, which divides its ``alpha`` by ``size`` (hence ``alpha * size``).

    Args:
        size (int): n, the number of neighbouring channels summed (odd, >= 1).
        alpha (float): the paper's alpha (multiplies the sum itself); beta (float); k (float).

    Returns:
        nn.LocalResponseNorm mapping Tensor[B, C, H, W] to Tensor[B, C, H, W].
    """
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 1 (channels summed, centred), got {size!r}")
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


class AlexNet(nn.Module):
    """AlexNet, single tower (torchvision layout).

    Args:
        num_classes (int): K.
        dropout (float): dropout before the two hidden FC layers (0.5 in the paper).
        lrn (bool): add the paper's local response normalisation after conv1 and conv2.
        small_input (bool): the 32x32 variant described in the module docstring.
        hidden (int): width of the two hidden FC layers (4096 in the paper).
        width (int): filters of conv1 (64); conv2 ... conv5 have 3, 6, 4 and 4 times as many.

    Shapes: input Tensor[B, 3, H, W] (224x224 for ImageNet; 32x32 with ``small_input``)
    -> logits Tensor[B, K]. ``forward_features`` returns the output of each max-pool stage.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        dropout: float = 0.5,
        lrn: bool = False,
        small_input: bool = False,
        hidden: int = 4096,
        width: int = 64,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"width must be an int >= 1 (conv1 filters, 64 in the paper), got {width!r}")
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
            raise ValueError(f"hidden must be an int >= 1 (FC width, 4096 in the paper), got {hidden!r}")
        c1, c2, c3, c4, c5 = (width * m for m in (1, 3, 6, 4, 4))  # 64, 192, 384, 256, 256
        if small_input:
            conv1 = nn.Conv2d(3, c1, 3, stride=1, padding=1)
            pool = (2, 2)
        else:
            conv1 = nn.Conv2d(3, c1, 11, stride=4, padding=2)
            pool = (3, 2)

        def lrn_layer() -> list[nn.Module]:
            return [local_response_norm()] if lrn else []  # the paper's n=5, alpha=1e-4, beta, k

        layers: list[nn.Module] = [conv1, nn.ReLU(inplace=True), *lrn_layer(), nn.MaxPool2d(*pool)]
        layers += [nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True), *lrn_layer(), nn.MaxPool2d(*pool)]
        layers += [nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(*pool)]
        self.features = nn.Sequential(*layers)
        side = 2 if small_input else 6
        self.avgpool = nn.AdaptiveAvgPool2d(side)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c5 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        r0 = 1 if small_input else 4
        self.feature_info = [
            dict(channels=c, reduction=r0 * 2 ** (k + 1), module=f"features.{i}")
            for k, (i, c) in enumerate(zip(pools, (c1, c2, c5)))
        ]
        self._pool_idx = pools

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The three max-pool outputs (64, 192, 256 channels at ``width=64``), see ``feature_info``."""
        feats = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in self._pool_idx:
                feats.append(x)
        return feats

    def forward_head(self, x: Tensor) -> Tensor:
        """Adaptive pool + classifier: Tensor[B, 4 * width, h, w] -> Tensor[B, K]."""
        return self.classifier(torch.flatten(self.avgpool(x), 1))  # [B, 4 * width * 6 * 6]

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4:
            raise ValueError(f"x must be [B, 3, H, W], got {tuple(x.shape)}")
        return self.forward_head(self.features(x))


WEIGHTS = {"imagenet": WeightSpec(TV_URL + "alexnet-owt-7be5be79.pth", "7be5be79", top1=56.522)}


@register_model(task="classification")
def alexnet(
    *,
    num_classes: int | None = None,
    weights: str | None = None,
    dropout: float = 0.5,
    lrn: bool = False,
    small_input: bool = False,
    hidden: int = 4096,
    width: int = 64,
) -> AlexNet:
    """AlexNet (Krizhevsky et al. 2012; arXiv:1404.5997), 61,100,840 params; [B, 3, 224, 224] -> [B, K].

    ``lrn=True`` adds the paper's local response normalisation (:func:`local_response_norm`); ``width`` and
    ``hidden`` shrink the convolutions and the FC layers for small experiments."""
    n = resolve_num_classes(WEIGHTS, weights, num_classes, default=1000)
    if weights is not None and (lrn or small_input or hidden != 4096 or width != 64):
        raise ValueError(
            "weights need the torchvision layout: lrn=False, small_input=False, hidden=4096, width=64; "
            f"got lrn={lrn}, small_input={small_input}, hidden={hidden}, width={width}"
        )
    model = AlexNet(
        num_classes=n, dropout=dropout, lrn=lrn, small_input=small_input, hidden=hidden, width=width
    )
    return load_weights(model, WEIGHTS, weights) if weights is not None else model
