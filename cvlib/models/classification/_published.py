"""Published ImageNet-1k figures of the classification models, for comparison with measured ones.

Sources:

- torchvision model cards (``torchvision.models.<Arch>_Weights.IMAGENET1K_V1.meta``, torchvision 0.29):
  ``acc@1``/``acc@5`` (single centre crop, 224 px unless ``eval_size`` says otherwise), ``num_params``
  and ``_ops`` (GFLOPS in torchvision's table, which are multiply-accumulates, GMACs).
- MobileNetV2 width multipliers (:data:`MOBILENET_V2_WIDTHS`): the table of the authors' reference
  implementation (TensorFlow-slim ``nets/mobilenet/README.md``, 224 px): MACs (millions), parameters
  (millions, their counting) and top-1 (%).
- SE-ResNet-50, which torchvision does not ship: Hu et al. 2018 ("Squeeze-and-Excitation Networks",
  arXiv:1709.01507), Table 2, single 224 crop (top-1 error 23.29%, top-5 error 6.62%, 3.87 GFLOPs as
  MACs); the parameter count is that of the architecture (the paper rounds it to 28.1M).

Figures are accuracies in percent, MACs in units of 10^9 at the listed evaluation size.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PublishedResult", "PUBLISHED", "MOBILENET_V2_WIDTHS", "published"]

_TV = "torchvision model card (IMAGENET1K_V1)"


@dataclass(frozen=True)
class PublishedResult:
    """One model's published ImageNet-1k figures."""

    top1: float
    top5: float
    params: int
    gmacs: float
    eval_size: int = 224
    source: str = _TV


PUBLISHED: dict[str, PublishedResult] = {
    "alexnet": PublishedResult(56.522, 79.066, 61_100_840, 0.714),
    "vgg16": PublishedResult(71.592, 90.382, 138_357_544, 15.47),
    "googlenet": PublishedResult(69.778, 89.530, 6_624_904, 1.498),
    "resnet18": PublishedResult(69.758, 89.078, 11_689_512, 1.814),
    "resnet50": PublishedResult(76.130, 92.862, 25_557_032, 4.089),
    "densenet121": PublishedResult(74.434, 91.972, 7_978_856, 2.834),
    "densenet169": PublishedResult(75.600, 92.806, 14_149_480, 3.360),
    "densenet201": PublishedResult(76.896, 93.370, 20_013_928, 4.291),
    "se_resnet50": PublishedResult(
        76.71, 93.38, 28_088_024, 3.87, source="Hu et al. 2018 (arXiv:1709.01507), Table 2"
    ),
    "mobilenet_v2": PublishedResult(71.878, 90.286, 3_504_872, 0.301),
    "efficientnet_b0": PublishedResult(77.692, 93.532, 5_288_548, 0.386),
    "efficientnet_b1": PublishedResult(78.642, 94.186, 7_794_184, 0.687, eval_size=240),
    "efficientnet_b2": PublishedResult(80.608, 95.310, 9_109_994, 1.088, eval_size=288),
    "efficientnet_b3": PublishedResult(82.008, 96.054, 12_233_232, 1.827, eval_size=300),
    "efficientnet_b4": PublishedResult(83.384, 96.594, 19_341_616, 4.394, eval_size=380),
    "efficientnet_b5": PublishedResult(83.444, 96.628, 30_389_784, 10.266, eval_size=456),
    "efficientnet_b6": PublishedResult(84.008, 96.916, 43_040_704, 19.068, eval_size=528),
    "efficientnet_b7": PublishedResult(84.122, 96.908, 66_347_960, 37.746, eval_size=600),
}

# width_mult -> (MMACs, parameters in millions, top-1 %), MobileNetV2 at 224 px (reference implementation).
MOBILENET_V2_WIDTHS: dict[float, tuple[int, float, float]] = {
    0.35: (59, 1.66, 60.3),
    0.5: (97, 1.95, 65.4),
    0.75: (209, 2.61, 69.8),
    1.0: (300, 3.47, 71.8),
    1.4: (582, 6.06, 75.0),
}


def published(name: str) -> PublishedResult:
    """The published figures of a registered model name (e.g. ``"resnet50"``).

    Raises:
        ValueError: if no published figures are recorded for ``name``.
    """
    if name not in PUBLISHED:
        raise ValueError(f"no published figures for {name!r}; known: {sorted(PUBLISHED)}")
    return PUBLISHED[name]
