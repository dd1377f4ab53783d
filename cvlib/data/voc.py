"""Pascal VOC detection annotations (Everingham et al. 2010, doi:10.1007/s11263-009-0275-4): an
XML parser and a Dataset over any VOC-format folder, plus VOC2007 with download.

Layouts understood by :class:`VOCDetection`:

* VOC: ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml``, optional
  ``ImageSets/Main/<image_set>.txt`` listing the ids of a split;
* flat, as in the raccoon data set (datitran/raccoon_dataset): ``images/<id>.jpg`` and
  ``annotations/<id>.xml`` (every XML file is a sample).

Box convention. VOC stores ``xmin, ymin, xmax, ymax`` as **1-based, inclusive pixel indices**
(a box covering only the top-left pixel is ``1, 1, 1, 1``). cvlib boxes are xyxy in continuous
0-based pixel coordinates, where pixel ``i`` spans ``[i, i + 1)``. The conversion is
``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax`` (so the width is ``xmax - xmin + 1``
pixels), then clamped to ``[0, width] x [0, height]`` because some annotation tools write 0.

VOC2007 tar files: the official ``host.robots.ox.ac.uk`` server, with the pjreddie.com copy as a
mirror; SHA-256 values from TensorFlow Datasets' checksum list.
"""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
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

__all__ = ["VOC_CLASSES", "VOC2007_FILES", "parse_voc_xml", "VOCDetection", "load_voc2007"]

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

# tar name -> (mirrors, sha256); thor.robots.ox.ac.uk is the current host (host.robots.ox.ac.uk only
# redirects there, pjreddie's mirror is gone); the old hosts stay as fallbacks, same sha256.
VOC2007_FILES = {
    "VOCtrainval_06-Nov-2007.tar": (
        (
            "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
            "http://pjreddie.com/media/files/VOCtrainval_06-Nov-2007.tar",
        ),
        "7d8cd951101b0957ddfd7a530bdc8a94f06121cfc1e511bb5937e973020c7508",
    ),
    "VOCtest_06-Nov-2007.tar": (
        (
            "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
            "http://pjreddie.com/media/files/VOCtest_06-Nov-2007.tar",
        ),
        "6836888e2e01dca84577a849d339fa4f73e1e4f135d312430c4856b5609b4892",
    ),
}
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


def _text(node: ET.Element, field: str, path: Path, required: bool = True) -> str | None:
    child = node.find(field)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise ValueError(f"{path}: missing or empty <{field}>")
        return None
    return child.text.strip()


def _number(node: ET.Element, field: str, path: Path, where: str) -> float:
    value = _text(node, field, path)
    try:
        return float(value)
    except ValueError as e:
        raise ValueError(f"{path}: {where}<{field}> must be a number, got {value!r}") from e


def parse_voc_xml(path: str | os.PathLike, classes: tuple[str, ...] | list[str] | None = None) -> dict:
    """Parse one VOC annotation file.

    Args:
        path: the ``.xml`` file.
        classes: class names; when given, ``labels`` are indices into it and an unknown name is
            an error. When None, ``labels`` is omitted.

    Returns:
        A dict with ``filename`` (str), ``width``/``height`` (int, 0 if absent), ``boxes``
        (Tensor[N, 4] float32, xyxy absolute 0-based pixels: see the module docstring), ``names``
        (list[str]), ``difficult`` and ``truncated`` (Tensor[N] bool) and, with ``classes``,
        ``labels`` (Tensor[N] int64).

    Raises:
        ValueError: malformed XML, a missing field, a non-numeric coordinate, ``xmax < xmin``, or
            an unknown class; the message names the file and the field (and object index).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: malformed XML: {e}") from e
    if root.tag != "annotation":
        raise ValueError(f"{path}: root element must be <annotation>, got <{root.tag}>")
    filename = _text(root, "filename", path, required=False) or ""
    size = root.find("size")
    width = height = 0
    if size is not None:
        width = int(_number(size, "width", path, "size/"))
        height = int(_number(size, "height", path, "size/"))
    boxes, names, difficult, truncated = [], [], [], []
    for i, obj in enumerate(root.iter("object")):
        name = _text(obj, "name", path)
        bnd = obj.find("bndbox")
        if bnd is None:
            raise ValueError(f"{path}: object {i} ({name}) has no <bndbox>")
        where = f"object {i} bndbox/"
        xmin, ymin, xmax, ymax = (_number(bnd, f, path, where) for f in ("xmin", "ymin", "xmax", "ymax"))
        if xmax < xmin or ymax < ymin:
            raise ValueError(
                f"{path}: object {i} ({name}) has xmax < xmin or ymax < ymin: {(xmin, ymin, xmax, ymax)}"
            )
        boxes.append((xmin - 1.0, ymin - 1.0, xmax, ymax))  # 1-based inclusive -> 0-based continuous
        names.append(name)
        difficult.append(_text(obj, "difficult", path, required=False) in ("1", "true", "True"))
        truncated.append(_text(obj, "truncated", path, required=False) in ("1", "true", "True"))
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if width > 0 and height > 0:
        b[:, 0::2] = b[:, 0::2].clamp(0, width)
        b[:, 1::2] = b[:, 1::2].clamp(0, height)
    else:
        b = b.clamp_min(0)
    out = {
        "filename": filename,
        "width": width,
        "height": height,
        "boxes": b,
        "names": names,
        "difficult": torch.tensor(difficult, dtype=torch.bool),
        "truncated": torch.tensor(truncated, dtype=torch.bool),
    }
    if classes is not None:
        index = {c: j for j, c in enumerate(classes)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ValueError(f"{path}: unknown class name {unknown[0]!r} in <name>; known: {tuple(classes)}")
        out["labels"] = torch.tensor([index[n] for n in names], dtype=torch.int64)
    return out


class VOCDetection(Dataset):
    """Images and boxes from a Pascal-VOC-format folder (VOC itself, or the raccoon layout).

    Args:
        root: the folder holding ``JPEGImages/`` + ``Annotations/`` (VOC) or ``images/`` +
            ``annotations/`` (flat layout).
        image_set: for VOC layouts, the split file ``ImageSets/Main/<image_set>.txt``; ignored
            when that folder does not exist (then every XML file is a sample).
        classes: class names (label = index). Default: :data:`VOC_CLASSES` for the VOC layout,
            else the sorted set of names found in the annotations.
        keep_difficult: keep objects flagged ``difficult`` (the flags are returned either way).
        transforms: optional callable ``(image, target) -> (image, target)``.

    Items:
        ``(image, target)``: image Tensor[3, H, W] float in [0, 1]; target dict with ``boxes``
        (Tensor[N, 4] float32, xyxy absolute pixels, see the module docstring), ``labels``
        (Tensor[N] int64), ``difficult`` (Tensor[N] bool) and ``image_id`` (str).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        image_set: str = "trainval",
        classes: tuple[str, ...] | list[str] | None = None,
        keep_difficult: bool = True,
        transforms=None,
    ) -> None:
        self.root = Path(root)
        if (self.root / "Annotations").is_dir():
            self.image_dir, self.ann_dir = self.root / "JPEGImages", self.root / "Annotations"
            default_classes: tuple[str, ...] | None = VOC_CLASSES
        elif (self.root / "annotations").is_dir():
            self.image_dir, self.ann_dir = self.root / "images", self.root / "annotations"
            default_classes = None
        else:
            raise FileNotFoundError(
                f"{self.root} is not a VOC-format folder: expected Annotations/ + JPEGImages/ "
                f"or annotations/ + images/"
            )
        split_file = self.root / "ImageSets" / "Main" / f"{image_set}.txt"
        if split_file.is_file():
            self.ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
        elif (self.root / "ImageSets" / "Main").is_dir():
            raise FileNotFoundError(f"split file {split_file} does not exist")
        else:
            self.ids = sorted((p.stem for p in self.ann_dir.glob("*.xml")), key=_natural_key)
        if not self.ids:
            raise ValueError(f"no annotations found in {self.ann_dir}")
        if classes is None and default_classes is None:
            found = set()
            for i in self.ids:
                found.update(parse_voc_xml(self.ann_dir / f"{i}.xml")["names"])
            classes = tuple(sorted(found))
        self.classes = tuple(classes if classes is not None else default_classes)
        self.keep_difficult = keep_difficult
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, i: int) -> Path:
        """The image file of sample ``i`` (``<id>.jpg``, other extensions, or the XML filename)."""
        image_id = self.ids[i]
        for ext in _IMAGE_EXTS:
            p = self.image_dir / f"{image_id}{ext}"
            if p.is_file():
                return p
        name = parse_voc_xml(self.ann_dir / f"{image_id}.xml")["filename"]
        if name and (self.image_dir / name).is_file():
            return self.image_dir / name
        raise FileNotFoundError(f"no image for annotation {image_id}.xml in {self.image_dir}")

    def annotation(self, i: int) -> dict:
        """The parsed annotation of sample ``i`` (see :func:`parse_voc_xml`), difficult objects
        removed when ``keep_difficult=False``."""
        ann = parse_voc_xml(self.ann_dir / f"{self.ids[i]}.xml", self.classes)
        if not self.keep_difficult:
            keep = ~ann["difficult"]
            for key in ("boxes", "labels", "difficult", "truncated"):
                ann[key] = ann[key][keep]
            ann["names"] = [n for n, k in zip(ann["names"], keep.tolist()) if k]
        return ann

    def __getitem__(self, i: int):
        from PIL import Image

        ann = self.annotation(i)
        with Image.open(self.image_path(i)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        image = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)  # [3, H, W]
        h, w = image.shape[-2:]
        boxes = ann["boxes"]
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)  # the XML size can disagree with the file
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        target = {
            "boxes": boxes,
            "labels": ann["labels"],
            "difficult": ann["difficult"],
            "image_id": self.ids[i],
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def _natural_key(s: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def load_voc2007(
    root: str | os.PathLike | None = None,
    image_set: str = "trainval",
    download: bool = True,
    keep_difficult: bool = True,
    progress: bool = True,
) -> VOCDetection:
    """Pascal VOC 2007 detection as a :class:`VOCDetection`.

    Args:
        root: a directory holding ``VOCdevkit/VOC2007`` (or the tar files). Default
            ``cache_dir() / "voc"``.
        image_set: ``"train"``, ``"val"``, ``"trainval"`` or ``"test"``.
        download: fetch the needed tar (trainval 460 MB or test 451 MB), sha256-checked.
        keep_difficult: see :class:`VOCDetection`.
        progress: show a download progress bar.
    """
    allowed = ("train", "val", "trainval", "test")
    if image_set not in allowed:
        raise ValueError(f"image_set must be one of {allowed}, got {image_set!r}")
    folder = check_root(root, cache_dir() / "voc")
    voc = folder / "VOCdevkit" / "VOC2007"
    tar = "VOCtest_06-Nov-2007.tar" if image_set == "test" else "VOCtrainval_06-Nov-2007.tar"
    if not (voc / "ImageSets" / "Main" / f"{image_set}.txt").is_file():
        archive = folder / tar
        urls, published = VOC2007_FILES[tar]
        if archive.is_file():
            verify_file(archive, expected_sha256(tar, published), f"the Pascal VOC 2007 archive {tar}")
        else:
            if not download:
                raise FileNotFoundError(
                    f"VOC2007 {image_set}: {voc} not found; pass download=True or root= a directory "
                    f"holding VOCdevkit/VOC2007 or {tar}"
                )
            download_any(urls, archive, expected_sha256(tar, published), progress=progress)
        tmp = folder / f".{tar}.unpacked"
        extract_archive(archive, tmp)  # -> tmp/VOCdevkit/VOC2007/...; merge into folder
        src = tmp / "VOCdevkit" / "VOC2007"
        if not src.is_dir():
            raise ValueError(f"{archive} did not contain VOCdevkit/VOC2007/")
        voc.mkdir(parents=True, exist_ok=True)
        # split lists last: their presence marks a complete merge
        files = sorted((p for p in src.rglob("*") if p.is_file()), key=lambda p: ("ImageSets" in p.parts, p))
        for sub in files:
            dest = voc / sub.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(sub, dest)
        shutil.rmtree(tmp, ignore_errors=True)
    return VOCDetection(voc, image_set=image_set, keep_difficult=keep_difficult)
