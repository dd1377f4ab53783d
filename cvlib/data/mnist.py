"""MNIST (LeCun et al. 1998, doi:10.1109/5.726791) and Fashion-MNIST (Xiao et al. 2017,
arXiv:1708.07747) read from their original idx files.

The idx format: a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the values in C order, big-endian. Dtype codes:
0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. Files may be
gzip-compressed (``.gz``), as distributed.

Sources (all serve byte-identical copies of the original ``.gz`` files; SHA-256 values from
the files as published, cross-checked with TensorFlow Datasets' checksum list):

* MNIST: ``https://ossci-datasets.s3.amazonaws.com/mnist/`` (the PyTorch mirror),
  ``https://storage.googleapis.com/cvdf-datasets/mnist/`` (the CVDF mirror) and the original
  ``http://yann.lecun.com/exdb/mnist/`` (often unavailable), tried in that order.
* Fashion-MNIST: ``https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/``
  (the files in Zalando's repository, over https), then Zalando's S3 website
  ``http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/`` as a fallback.

Subsets: at ``CVLIB_SIZE=small`` (or ``subset="small"``) the loaders read the first 2,000
training and 1,000 test records, bundled inside the package as idx ``.gz`` files
(``cvlib/data/bundled/{mnist,fashion_mnist}/``, verified against the bundle manifest); at full
size the complete files (downloaded into the cache when missing).

Files already on disk are checked before use: a ``.gz`` file must hash to the published SHA-256,
or (a re-compressed copy) its decompressed bytes must hash to the SHA-256 of the official
uncompressed file; an uncompressed file must match the latter. So ``root=`` pointing at MNIST
files fails clearly when Fashion-MNIST is asked for, and a flipped byte fails.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from cvlib.data._bundled import bundled_dir, resolve_subset
from cvlib.data._download import (
    ChecksumError,
    DownloadError,
    cache_dir,
    check_root,
    download_any,
    expected_sha256,
    sha256sum,
)

__all__ = [
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "MNIST_MIRRORS",
    "FASHION_MNIST_MIRRORS",
    "read_idx",
    "load_mnist",
    "load_fashion_mnist",
]

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

# file stem -> SHA-256 of the published .gz file
_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
_FASHION_SHA256 = {
    "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

# file stem -> SHA-256 of the uncompressed idx file (accepts re-compressed copies of the right data)
_MNIST_RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_FASHION_RAW_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_SPLITS = ("train", "test")
logger = logging.getLogger(__name__)

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path} could not be decompressed (corrupt or truncated gzip file): {e}") from e


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read one idx file (optionally ``.gz``) into a tensor of its stored shape and dtype.

    Returns:
        Tensor with the file's dims (e.g. ``[60000, 28, 28]`` uint8 for MNIST images, ``[60000]``
        for labels); big-endian values are converted to native order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic number, unknown dtype code, or a payload whose length does not
            match the header (truncated or padded file); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"idx file {path} does not exist")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path} is too short to be an idx file ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path} is not an idx file: magic number must start with 0x0000, got {raw[:4].hex()}"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown idx dtype code 0x{code:02X}; expected one of "
            f"{', '.join(f'0x{c:02X}' for c in _IDX_DTYPES)}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: idx header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header ({len(raw)} bytes, {ndim} dims need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: idx header says shape {dims} of {dtype.name} ({expected} bytes of data), "
            f"but the file holds {len(raw) - header} bytes (truncated or corrupt)"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return torch.from_numpy(arr.astype(dtype.newbyteorder("="), copy=True))


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    return None


def _verify_idx(path: Path, name: str, stem: str, gz_sha: str, raw_sha: str) -> None:
    """Check an idx file on disk: published .gz digest, else the uncompressed content's digest."""
    gz_expected = expected_sha256(stem + ".gz", gz_sha)
    raw_expected = expected_sha256(stem, raw_sha)
    if path.suffix == ".gz":
        if sha256sum(path).startswith(gz_expected):
            return
        actual = hashlib.sha256(_read_bytes(path)).hexdigest()
    else:
        actual = sha256sum(path)
    if not actual.startswith(raw_expected):
        raise ChecksumError(
            f"{path} is not {name}'s {stem}: neither the file nor its decompressed content has the "
            f"published sha256 (content sha256 {actual}, expected {raw_expected}). Check that root= "
            f"points at {name} (not another idx dataset), or delete the file to download it again."
        )


def _resolve_split(split: str | None, train: bool | None) -> bool:
    if split is not None and not isinstance(split, str):
        raise TypeError(
            f"split must be 'train' or 'test', got {type(split).__name__} {split!r}"
            + ("; pass the directory as root=" if isinstance(split, os.PathLike) else "")
        )
    if split is not None and split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if train is not None and not isinstance(train, bool):
        raise TypeError(f"train must be a bool, got {type(train).__name__}")
    if split is not None and train is not None and (split == "train") != train:
        raise ValueError(f"split={split!r} contradicts train={train}; pass only split")
    if split is not None:
        return split == "train"
    return True if train is None else train


def _load_idx_pair(
    name: str,
    split: str | None,
    root: str | os.PathLike | None,
    download: bool,
    subset: str | None,
    train: bool | None,
    dtype: torch.dtype,
    mirrors: tuple[str, ...],
    hashes: dict[str, str],
    raw_hashes: dict[str, str],
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    if dtype not in (torch.uint8, torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be torch.uint8 or a float dtype, got {dtype}")
    is_train = _resolve_split(split, train)
    prefix = "train" if is_train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    if resolve_subset(subset, root) == "small":
        folder = bundled_dir(name)  # verified against the bundle manifest
        paths = [folder / (stem + ".gz") for stem in stems]
    else:
        folder = check_root(root, cache_dir() / name)
        paths = []
        for stem in stems:
            path = _find(folder, stem)
            if path is not None and root is None and download:
                try:
                    _verify_idx(path, name, stem, hashes[stem], raw_hashes[stem])
                except ChecksumError:
                    # a damaged file in the cache (not the user's own root): fetch it again
                    logger.warning("%s is damaged; downloading it again", path)
                    path = None
            if path is None:
                if not download:
                    raise FileNotFoundError(
                        f"{name}: {stem}(.gz) not found in {folder}; pass download=True or root= a "
                        f"directory holding the idx files"
                    )
                try:
                    path = download_any(
                        [m + stem + ".gz" for m in mirrors],
                        folder / (stem + ".gz"),
                        expected_sha256(stem + ".gz", hashes[stem]),
                        progress,
                    )
                except DownloadError as e:
                    raise DownloadError(f"{name}: {e}") from e
            elif root is not None or not download:
                _verify_idx(path, name, stem, hashes[stem], raw_hashes[stem])
            paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"{paths[0]}: expected uint8 images [N, H, W], got {images.dtype} {tuple(images.shape)}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{paths[1]}: expected {images.shape[0]} labels to match {paths[0].name}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.numel() and int(labels.max()) > 9:
        raise ValueError(f"{paths[1]}: labels must be 0..9, found {int(labels.max())}")
    images = images.unsqueeze(1)  # [N, 1, H, W]
    if dtype != torch.uint8:
        images = images.to(dtype) / 255.0
    return images, labels.to(torch.int64)


def load_mnist(
    split: str | None = None,
    root: str | os.PathLike | None = None,
    download: bool = True,
    subset: str | None = None,
    *,
    train: bool | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST handwritten digits: 60,000 training or 10,000 test images of 28x28 (full), or the
    bundled first 2,000 / 1,000 (small).

    Args:
        split: ``"train"`` (default) or ``"test"``.
        root: a directory with the idx files (``train-images-idx3-ubyte[.gz]`` ...), read as the
            full set; must exist. Default: ``cache_dir() / "mnist"``, filled by downloading.
        download: fetch missing files (sha256-checked, atomic) into the folder.
        subset: ``"small"`` (the bundled files), ``"full"``, or None: chosen by
            :func:`cvlib.size` (``"full"`` when ``root`` is given).
        train: the older spelling of ``split`` (``train=False`` is ``split="test"``).
        dtype: ``torch.uint8`` for raw 0..255 pixels, or a float dtype for values in [0, 1].
        progress: show a download progress bar.

    Returns:
        images (Tensor[N, 1, 28, 28]) and labels (Tensor[N], int64, 0..9).

    Raises:
        FileNotFoundError: files missing and ``download=False``.
        NotADirectoryError: ``root`` is not an existing directory.
        DownloadError: offline / every mirror failed (names the URLs and the ``root=`` override).
        ChecksumError: a file on disk is not the published one (wrong dataset, damaged).
        ValueError: a bad argument, or a corrupt or malformed file.
    """
    return _load_idx_pair(
        "mnist", split, root, download, subset, train, dtype, MNIST_MIRRORS, _MNIST_SHA256,
        _MNIST_RAW_SHA256, progress,
    )  # fmt: skip


def load_fashion_mnist(
    split: str | None = None,
    root: str | os.PathLike | None = None,
    download: bool = True,
    subset: str | None = None,
    *,
    train: bool | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST (Xiao et al. 2017): the same format and sizes as MNIST, ten clothing classes
    (:data:`FASHION_MNIST_CLASSES`); small size: the bundled first 2,000 training and 1,000 test
    images. Arguments, returns and errors as :func:`load_mnist`; the default directory is
    ``cache_dir() / "fashion_mnist"``.
    """
    return _load_idx_pair(
        "fashion_mnist", split, root, download, subset, train, dtype, FASHION_MNIST_MIRRORS,
        _FASHION_SHA256, _FASHION_RAW_SHA256, progress,
    )  # fmt: skip
