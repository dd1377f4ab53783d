"""Pretrained-weight tables and loading for the classification families.

A factory's ``weights=`` argument is a short tag (``"imagenet"``) looked up in that family's table of
:class:`WeightSpec`. The file is fetched into ``<cache_dir>/weights/<file name>``, its sha256 checked,
and loaded with ``strict=True``. torchvision publishes only the first 8 hex digits of each file's
sha256 (in the file name), so a spec's ``sha256`` may be such a prefix; the check then compares the
prefix. Downloads go through ``cvlib.data._download.download_url`` (atomic, checksummed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cvlib.data._download import cache_dir, download_url, expected_sha256, sha256sum

__all__ = [
    "WeightSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "resolve_num_classes",
    "load_weights",
    "weights_path",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TV_URL = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class WeightSpec:
    """One published weight file.

    Attributes:
        url: where to download it.
        sha256: the file's sha256 in hex, or a prefix of it (at least 8 digits).
        num_classes: classes of the classifier head the weights fix.
        mean, std: the input normalisation the weights were trained with (RGB, [0, 1] images).
        top1: published ImageNet-1k top-1 accuracy (%), from the source's model card.
        recipe: where the weights come from (and the chapter that uses them).
    """

    url: str
    sha256: str
    num_classes: int = 1000
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    top1: float | None = None
    recipe: str = "torchvision IMAGENET1K_V1"


def resolve_num_classes(
    table: dict[str, WeightSpec], weights: str | None, num_classes: int | None, default: int
) -> int:
    """The head size to build: the weights' class count if weights are given, else ``num_classes``.

    Raises:
        ValueError: for an unknown tag, or a ``num_classes`` that differs from the weights'.
    """
    if weights is None:
        return default if num_classes is None else num_classes
    if weights not in table:
        raise ValueError(f"weights must be one of {tuple(table)} or None, got {weights!r}")
    spec = table[weights]
    if num_classes is not None and num_classes != spec.num_classes:
        raise ValueError(
            f"weights={weights!r} has {spec.num_classes} classes but num_classes={num_classes} was given; "
            "load the weights, then replace the head"
        )
    return spec.num_classes


def _cache_dir() -> Path:
    return cache_dir()


def weights_path(spec: WeightSpec) -> Path:
    """Where the file of ``spec`` is cached: ``<cache_dir>/weights/<file name of the URL>``."""
    return _cache_dir() / "weights" / spec.url.rsplit("/", 1)[-1]


def _fetch(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to ``dest`` atomically, checking the (possibly prefix-only) sha256."""
    download_url(url, dest, sha256)


def load_weights(model: nn.Module, table: dict[str, WeightSpec], weights: str) -> nn.Module:
    """Fetch (or reuse the cached copy of) ``table[weights]``, check its hash, load it with strict=True.

    Raises:
        ValueError: if the cached or downloaded file's sha256 does not match the table.
    """
    spec = table[weights]
    dest = weights_path(spec)
    want = expected_sha256(dest.name, spec.sha256).lower()  # published, unless the test-only override
    if not (dest.is_file() and sha256sum(dest).startswith(want)):
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch(spec.url, dest, want)
        got = sha256sum(dest)
        if not got.startswith(want):
            raise ValueError(
                f"sha256 of {dest} is {got}, expected it to start with {want}; delete it and retry"
            )
    state = torch.load(dest, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model
