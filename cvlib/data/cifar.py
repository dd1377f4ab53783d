"""CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images") from its
*binary* distribution, so no pickle is ever loaded.

``cifar-10-binary.tar.gz`` (https://www.cs.toronto.edu/~kriz/cifar.html) unpacks to
``cifar-10-batches-bin/`` with ``data_batch_1.bin`` ... ``data_batch_5.bin`` (training, 10,000
images each), ``test_batch.bin`` and ``batches.meta.txt`` (class names). Each record is 3,073
bytes: one label byte (0..9), then 1,024 red, 1,024 green and 1,024 blue bytes, each plane a
32x32 image in row-major order.

SHA-256 of the archive as published (cross-checked with TensorFlow Datasets' checksum list); the
page's own MD5 is ``c32a1d4ab5d03f1284b67883e8d87530``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cvlib.data._download import cache_dir, download_url, extract_archive

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


def load_cifar10(
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool = True,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10: 50,000 training or 10,000 test colour images of 32x32 in 10 classes.

    Args:
        root: a directory holding ``cifar-10-batches-bin/`` (or the ``cifar-10-binary.tar.gz``
            archive, unpacked on first use). Default ``cache_dir() / "cifar10"``.
        train: the five training batches (else ``test_batch.bin``).
        download: fetch the archive (sha256-checked, atomic) when neither is present.
        dtype: ``torch.uint8`` for raw pixels, or a float dtype for values in [0, 1].
        progress: show a download progress bar.

    Returns:
        images (Tensor[N, 3, 32, 32]) and labels (Tensor[N], int64, index into
        :data:`CIFAR10_CLASSES`).
    """
    if dtype not in (torch.uint8, torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be torch.uint8 or a float dtype, got {dtype}")
    folder = Path(root) if root is not None else cache_dir() / "cifar10"
    batches = folder / _FOLDER
    if not batches.is_dir():
        archive = folder / _ARCHIVE
        if not archive.is_file():
            if not download:
                raise FileNotFoundError(
                    f"CIFAR-10: neither {batches} nor {archive} exists; pass download=True or root= a "
                    f"directory holding {_FOLDER}/ or {_ARCHIVE}"
                )
            download_url(CIFAR10_URL, archive, CIFAR10_SHA256, progress=progress)
        extract_archive(archive, folder)
        if not batches.is_dir():
            raise ValueError(f"{archive} did not contain the folder {_FOLDER}/")
    parts = []
    for name in _TRAIN_FILES if train else _TEST_FILES:
        path = batches / name
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10 batch file {path} is missing")
        parts.append(read_cifar_bin(path))
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    if dtype != torch.uint8:
        images = images.to(dtype) / 255.0
    return images, labels
