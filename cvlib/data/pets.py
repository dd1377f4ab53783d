"""The Oxford-IIIT Pet dataset (Parkhi et al. 2012, "Cats and Dogs", CVPR): 7,349 photos of 37
cat and dog breeds with a species label, a breed label and a pixel trimap.

Files (https://www.robots.ox.ac.uk/~vgg/data/pets/; the archives are served from
``https://thor.robots.ox.ac.uk/~vgg/data/pets/``, the old ``www.robots.ox.ac.uk`` address kept
as a fallback with the same sha256):

* ``images.tar.gz`` -> ``images/<Breed_name>_<n>.jpg``;
* ``annotations.tar.gz`` -> ``annotations/list.txt`` (all), ``trainval.txt``, ``test.txt`` with
  lines ``Image CLASS-ID SPECIES BREED-ID`` (CLASS-ID 1..37, SPECIES 1 = cat, 2 = dog, BREED-ID
  1..12 for the 12 cat breeds, 1..25 for the 25 dog breeds; ``#`` lines are comments; the
  dataset's own README swaps the two counts, a known mistake), and ``annotations/trimaps/<Image>.png``
  with 1 = pet, 2 = background, 3 = border (unsure).

Labels returned here are 0-based: ``species`` 0 = cat, 1 = dog; ``breed`` = CLASS-ID - 1 in
0..36 (alphabetical, cats capitalised). Masks: 0 = background, 1 = pet, and the border pixels
get ``border_value`` (255 by default, the ``ignore_index`` of cvlib's losses and metrics).

SHA-256 of both archives as published (cross-checked with TensorFlow Datasets' checksum list).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from cvlib.data._download import (
    cache_dir,
    check_root,
    download_any,
    expected_sha256,
    extract_archive,
    verify_file,
)

__all__ = ["PETS_URLS", "SPECIES", "read_pet_list", "OxfordIIITPet"]

# part -> (mirrors, sha256)
PETS_URLS = {
    "images": (
        (
            "https://thor.robots.ox.ac.uk/~vgg/data/pets/images.tar.gz",
            "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        ),
        "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
    ),
    "annotations": (
        (
            "https://thor.robots.ox.ac.uk/~vgg/data/pets/annotations.tar.gz",
            "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
        ),
        "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
    ),
}
SPECIES = ("cat", "dog")
_SPLITS = ("trainval", "test", "all")
_TARGETS = ("breed", "species", "mask", "all")


def read_pet_list(path: str | os.PathLike) -> list[tuple[str, int, int, int]]:
    """Parse ``list.txt`` / ``trainval.txt`` / ``test.txt``.

    Returns:
        ``(image_name, class_id, species, breed_id)`` per line, as written in the file (1-based).

    Raises:
        ValueError: a line does not have 4 fields or has values out of range (names file and line).
    """
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4:
            raise ValueError(
                f"{path}:{lineno}: expected 'Image CLASS-ID SPECIES BREED-ID', "
                f"got {len(fields)} fields: {line!r}"
            )
        try:
            class_id, species, breed_id = (int(f) for f in fields[1:])
        except ValueError as e:
            raise ValueError(
                f"{path}:{lineno}: CLASS-ID, SPECIES and BREED-ID must be integers: {line!r}"
            ) from e
        if not (1 <= class_id <= 37 and species in (1, 2) and breed_id >= 1):
            raise ValueError(
                f"{path}:{lineno}: CLASS-ID must be 1..37 and SPECIES 1 or 2, got {class_id} and {species}"
            )
        rows.append((fields[0], class_id, species, breed_id))
    return rows


def _ensure_downloaded(folder: Path, download: bool, progress: bool) -> None:
    for part, (urls, published) in PETS_URLS.items():
        if (folder / part).is_dir():
            continue
        archive = folder / f"{part}.tar.gz"
        sha = expected_sha256(archive.name, published)
        if archive.is_file():
            verify_file(archive, sha, f"the Oxford-IIIT Pet {archive.name}")
        else:
            if not download:
                raise FileNotFoundError(
                    f"Oxford-IIIT Pet: {folder / part} not found; pass download=True or root= a "
                    f"directory holding images/ and annotations/ (or images.tar.gz and annotations.tar.gz)"
                )
            download_any(urls, archive, sha, progress=progress)
        extract_archive(archive, folder)
        if not (folder / part).is_dir():
            raise ValueError(f"{archive} did not contain the folder {part}/")


class OxfordIIITPet(Dataset):
    """Oxford-IIIT Pet (Parkhi et al. 2012): images with species, breed and trimap labels.

    Args:
        root: directory with ``images/`` and ``annotations/`` (or their ``.tar.gz`` archives).
            Default ``cache_dir() / "oxford_pets"``.
        split: ``"trainval"`` (3,680 images), ``"test"`` (3,669) or ``"all"`` (``list.txt``).
        target: what ``__getitem__`` returns next to the image: ``"breed"`` (int64 0..36),
            ``"species"`` (int64, 0 = cat, 1 = dog), ``"mask"`` (Tensor[H, W] int64) or ``"all"``
            (a dict with the three).
        image_size: resize images (bilinear) and masks (nearest) to this square size or (H, W);
            ``None`` keeps each photo's own size.
        border_value: mask value for trimap border pixels (255 = ignored by the losses).
        download: fetch missing archives (sha256-checked, atomic).
        progress: show download progress bars.

    Items:
        ``(image, target)`` with image Tensor[3, H, W] float in [0, 1] (greyscale/RGBA photos are
        converted to RGB).

    Attributes:
        classes: the 37 breed names (index = breed label). samples: ``(name, breed, species)``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "trainval",
        target: str = "breed",
        image_size: int | tuple[int, int] | None = None,
        border_value: int = 255,
        download: bool = True,
        progress: bool = True,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if target not in _TARGETS:
            raise ValueError(f"target must be one of {_TARGETS}, got {target!r}")
        if image_size is not None:
            image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
            if len(image_size) != 2 or not all(isinstance(s, int) and s > 0 for s in image_size):
                raise ValueError(f"image_size must be a positive int or (H, W), got {image_size!r}")
        self.root = check_root(root, cache_dir() / "oxford_pets")
        _ensure_downloaded(self.root, download, progress)
        list_name = "list.txt" if split == "all" else f"{split}.txt"
        rows = read_pet_list(self.root / "annotations" / list_name)
        self.split, self.target, self.image_size, self.border_value = split, target, image_size, border_value
        self.samples = [(name, class_id - 1, species - 1) for name, class_id, species, _ in rows]
        names: dict[int, str] = {}
        for name, breed, _ in self.samples:
            names.setdefault(breed, name.rsplit("_", 1)[0])
        self.classes = [names.get(i, f"class_{i}") for i in range(37)]

    def __len__(self) -> int:
        return len(self.samples)

    def _load_image(self, name: str) -> torch.Tensor:
        from PIL import Image

        path = self.root / "images" / f"{name}.jpg"
        with Image.open(path) as im:
            im = im.convert("RGB")
            if self.image_size is not None:
                im = im.resize(self.image_size[::-1], Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)  # [3, H, W]

    def _load_mask(self, name: str) -> torch.Tensor:
        from PIL import Image

        path = self.root / "annotations" / "trimaps" / f"{name}.png"
        with Image.open(path) as im:
            if self.image_size is not None:
                im = im.resize(self.image_size[::-1], Image.NEAREST)
            tri = np.asarray(im)
        if tri.ndim != 2 or not np.isin(tri, (1, 2, 3)).all():
            raise ValueError(
                f"{path}: a trimap must be one channel with values 1, 2, 3, got {np.unique(tri)[:5]}"
            )
        mask = np.zeros(tri.shape, dtype=np.int64)  # background (2) -> 0
        mask[tri == 1] = 1
        mask[tri == 3] = self.border_value
        return torch.from_numpy(mask)

    def __getitem__(self, i: int):
        name, breed, species = self.samples[i]
        image = self._load_image(name)
        if self.target == "breed":
            return image, torch.tensor(breed)
        if self.target == "species":
            return image, torch.tensor(species)
        mask = self._load_mask(name)
        if self.target == "mask":
            return image, mask
        return image, {"breed": torch.tensor(breed), "species": torch.tensor(species), "mask": mask}
