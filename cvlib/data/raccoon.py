"""The raccoon detection set (Dat Tran 2017, github.com/datitran/raccoon_dataset, MIT licence):
200 photos of raccoons with Pascal VOC XML boxes of one class, of which the 160 annotated ones
are used here; and a few real photographs for illustrations.

The whole raccoon set ships inside the package (``cvlib/data/bundled/raccoon/``) in its original
layout, ``images/raccoon-N.jpg`` + ``annotations/raccoon-N.xml``, resized so that the longest
side is 224 pixels (JPEG re-encoded, box corners scaled and rounded; see the bundle manifest), so
both sizes read the same files. ``root=`` reads a folder in the original layout at its original
resolution (for example ``../shared/data/raccoon``) with the same code.

Split (fixed, by image number): the 32 highest-numbered of the 160 annotated images form the test
split, the other 128 the training split (``train.txt`` / ``test.txt`` in the bundle; for a
``root`` without those files the same rule is applied to its annotations).

Photos (:func:`list_photos`, :func:`load_photo`): ``astronaut`` (NASA, public domain),
``chelsea`` (a cat; CC0, Stefan van der Walt), ``coffee`` (CC0, Rachel Michetti) and ``rocket``
(SpaceX, public domain), the example images shipped with scikit-image, byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cvlib.data._bundled import BUNDLED_DIR, bundled_dir, bundled_manifest, bundled_path
from cvlib.data._download import check_root
from cvlib.data.voc import VOCDetection, _natural_key

__all__ = ["RACCOON_CLASSES", "RACCOON_TEST_SIZE", "load_raccoon", "list_photos", "load_photo"]

RACCOON_CLASSES = ("raccoon",)
RACCOON_TEST_SIZE = 32
_SPLITS = ("train", "test", "all")


def _split_ids(folder: Path, split: str) -> list[str]:
    if split != "all" and (folder / f"{split}.txt").is_file():
        return [line.strip() for line in (folder / f"{split}.txt").read_text().splitlines() if line.strip()]
    ids = sorted((p.stem for p in (folder / "annotations").glob("*.xml")), key=_natural_key)
    if split == "all":
        return ids
    if len(ids) <= RACCOON_TEST_SIZE:
        raise ValueError(
            f"{folder / 'annotations'} holds {len(ids)} annotations; the fixed split needs more than "
            f"{RACCOON_TEST_SIZE} (pass split='all')"
        )
    return ids[:-RACCOON_TEST_SIZE] if split == "train" else ids[-RACCOON_TEST_SIZE:]


def load_raccoon(
    split: str = "train", root: str | os.PathLike | None = None, transforms=None
) -> VOCDetection:
    """The raccoon detection set as a :class:`~cvlib.data.voc.VOCDetection`.

    Args:
        split: ``"train"`` (128 images), ``"test"`` (32) or ``"all"`` (160).
        root: an existing directory in the original layout (``images/`` + ``annotations/``), read
            instead of the bundled, resized copy. Default: the bundled copy (sha256-checked).
        transforms: optional callable ``(image, target) -> (image, target)``.

    Returns:
        A dataset of ``(image, target)``: image Tensor[3, H, W] float in [0, 1] (longest side 224
        for the bundled copy); target dict with ``boxes`` (Tensor[N, 4] float32, xyxy absolute
        pixels), ``labels`` (Tensor[N] int64, 0 = raccoon), ``difficult`` (Tensor[N] bool) and
        ``image_id`` (str, e.g. ``"raccoon-12"``).

    Raises:
        ValueError: an unknown ``split``.
        NotADirectoryError: ``root`` is not an existing directory.
        ChecksumError: a bundled file is damaged.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    folder = bundled_dir("raccoon") if root is None else check_root(root, BUNDLED_DIR / "raccoon")
    ds = VOCDetection(folder, classes=RACCOON_CLASSES, transforms=transforms)
    ids = _split_ids(folder, split)
    known = set(ds.ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"{folder}: split {split!r} names images without an annotation: {unknown[:5]}")
    ds.ids = ids
    return ds


def _photo_files() -> dict[str, str]:
    return {Path(rel).stem: rel for rel in bundled_manifest() if rel.startswith("photos/")}


def list_photos() -> list[str]:
    """Names of the bundled illustration photos (``load_photo(name)``), sorted."""
    return sorted(_photo_files())


def load_photo(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One bundled real photograph (see the module docstring for sources and licences).

    Args:
        name: one of :func:`list_photos` (``"astronaut"``, ``"chelsea"``, ``"coffee"``, ``"rocket"``).
        dtype: ``torch.uint8`` for raw 0..255 values, or a float dtype for values in [0, 1].

    Returns:
        Tensor[3, H, W] in RGB.

    Raises:
        ValueError: an unknown name or dtype.
        ChecksumError: the bundled file is damaged.
    """
    from PIL import Image

    files = _photo_files()
    if not isinstance(name, str) or name not in files:
        raise ValueError(f"name must be one of {sorted(files)}, got {name!r}")
    if dtype not in (torch.uint8, torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be torch.uint8 or a float dtype, got {dtype}")
    with Image.open(bundled_path(files[name])) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()
    return x if dtype == torch.uint8 else x.to(dtype) / 255.0
