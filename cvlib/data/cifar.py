"""CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images") from its
*binary* distribution, so no pickle is ever loaded.

``cifar-10-binary.tar.gz`` (https://www.cs.toronto.edu/~kriz/cifar.html) unpacks to
``cifar-10-batches-bin/`` with ``data_batch_1.bin`` ... ``data_batch_5.bin`` (training, 10,000
images each), ``test_batch.bin`` and ``batches.meta.txt`` (class names). Each record is 3,073
bytes: one label byte (0..9), then 1,024 red, 1,024 green and 1,024 blue bytes, each plane a
32x32 image in row-major order.

SHA-256 of the archive as published (cross-checked with TensorFlow Datasets' checksum list); the
page's own MD5 is ``c32a1d4ab5d03f1284b67883e8d87530``. A local archive is checked before it is
unpacked; after unpacking, the digest of each batch file is recorded next to the folder
(``.cifar-10-batches-bin.sha256.json``) and checked on every later load. A batch folder placed by
hand without an archive or record is read as it is (its sizes are checked by the reader).

Subsets: at ``CVLIB_SIZE=small`` (or ``subset="small"``) the first 2,000 records of
``data_batch_1.bin`` and the first 500 of ``test_batch.bin``, bundled inside the package in the
same binary format (``cvlib/data/bundled/cifar10/``), are read by the same code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from cvlib.data._bundled import bundled_dir, resolve_subset
from cvlib.data._download import (
    cache_dir,
    check_root,
    download_url,
    expected_sha256,
    extract_archive,
    sha256sum,
    verify_file,
)
from cvlib.data.mnist import _resolve_split

__all__ = ["CIFAR10_CLASSES", "CIFAR10_URL", "CIFAR10_SHA256", "read_cifar_bin", "load_cifar10"]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
_ARCHIVE = "cifar-10-binary.tar.gz"
_FOLDER = "cifar-10-batches-bin"
_RECORD = 1 + 3 * 32 * 32
_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_TEST_FILES = ("test_batch.bin",)
_RECORD_FILE = ".cifar-10-batches-bin.sha256.json"


def read_cifar_bin(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one CIFAR-10 binary batch file.

    Returns:
        images (Tensor[N, 3, 32, 32], uint8) and labels (Tensor[N], int64).

    Raises:
        ValueError: the size is not a multiple of 3,073 bytes, or a label is outside 0..9.
    """
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise ValueError(
            f"{path}: size {raw.size} bytes is not a positive multiple of the {_RECORD}-byte CIFAR-10 "
            f"record (1 label byte + 3072 pixel bytes); truncated or not a CIFAR-10 binary file"
        )
    records = raw.reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{path}: record {bad} has label {labels[bad]}, expected 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # planes R, G, B; rows of 32
    return torch.from_numpy(images.copy()), torch.from_numpy(labels)


def _unpack(folder: Path, download: bool, progress: bool) -> None:
    """Verify (or fetch) the archive, unpack it and record the batch files' digests."""
    archive = folder / _ARCHIVE
    sha = expected_sha256(_ARCHIVE, CIFAR10_SHA256)
    if archive.is_file():
        verify_file(archive, sha, "the CIFAR-10 binary archive")
    elif not download:
        raise FileNotFoundError(
            f"CIFAR-10: neither {folder / _FOLDER} nor {archive} exists; pass download=True or root= a "
            f"directory holding {_FOLDER}/ or {_ARCHIVE}"
        )
    else:
        download_url(CIFAR10_URL, archive, sha, progress=progress)
    record = folder / _RECORD_FILE
    record.unlink(missing_ok=True)
    extract_archive(archive, folder)
    batches = folder / _FOLDER
    if not batches.is_dir():
        raise ValueError(f"{archive} did not contain the folder {_FOLDER}/")
    digests = {p.name: sha256sum(p) for p in sorted(batches.glob("*.bin"))}
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(digests, indent=1))
    os.replace(tmp, record)


def _verified_batches(folder: Path, download: bool, progress: bool) -> Path:
    batches = folder / _FOLDER
    record = folder / _RECORD_FILE
    if not batches.is_dir() or (not record.is_file() and (folder / _ARCHIVE).is_file()):
        _unpack(folder, download, progress)  # also finishes an unpacking cut short
    if record.is_file():
        digests = json.loads(record.read_text())
        for name, sha in digests.items():
            verify_file(batches / name, sha, f"the CIFAR-10 batch {name} unpacked from {_ARCHIVE}")
    return batches


def load_cifar10(
    split: str | None = None,
    root: str | os.PathLike | None = None,
    download: bool = True,
    subset: str | None = None,
    *,
    train: bool | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10: 50,000 training or 10,000 test colour images of 32x32 in 10 classes (full), or
    the bundled 2,000 training and 500 test images (small).

    Args:
        split: ``"train"`` (default) or ``"test"``.
        root: an existing directory holding ``cifar-10-batches-bin/`` (or the
            ``cifar-10-binary.tar.gz`` archive, checked and unpacked on first use). Default
            ``cache_dir() / "cifar10"``.
        download: fetch the archive (sha256-checked, atomic) when neither is present.
        subset: ``"small"`` (bundled), ``"full"``, or None: chosen by :func:`cvlib.size`
            (``"full"`` when ``root`` is given).
        train: the older spelling of ``split``.
        dtype: ``torch.uint8`` for raw pixels, or a float dtype for values in [0, 1].
        progress: show a download progress bar.

    Returns:
        images (Tensor[N, 3, 32, 32]) and labels (Tensor[N], int64, index into
        :data:`CIFAR10_CLASSES`).

    Raises:
        FileNotFoundError: data missing and ``download=False``, or a batch file missing.
        NotADirectoryError: ``root`` is not an existing directory.
        ChecksumError: the archive or an unpacked batch differs from its digest.
        ValueError: a bad argument or a malformed batch file.
    """
    if dtype not in (torch.uint8, torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be torch.uint8 or a float dtype, got {dtype}")
    is_train = _resolve_split(split, train)
    if resolve_subset(subset, root) == "small":
        batches = bundled_dir("cifar10") / _FOLDER
        names: tuple[str, ...] = ("data_batch_1.bin",) if is_train else _TEST_FILES
    else:
        folder = check_root(root, cache_dir() / "cifar10")
        batches = _verified_batches(folder, download, progress)
        names = _TRAIN_FILES if is_train else _TEST_FILES
    parts = []
    for name in names:
        path = batches / name
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10 batch file {path} is missing")
        parts.append(read_cifar_bin(path))
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    if dtype != torch.uint8:
        images = images.to(dtype) / 255.0
    return images, labels
