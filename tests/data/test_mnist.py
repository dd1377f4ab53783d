"""cvlib.data.mnist: idx parsing on files written here, errors, and the real files when present."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from cvlib.data import mnist
from cvlib.data.mnist import load_fashion_mnist, load_mnist, read_idx

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _idx_bytes(arr: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, data in ((f"{prefix}-images-idx3-ubyte", _idx_bytes(images, 0x08)),
                       (f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels, 0x08))):  # fmt: skip
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)


@pytest.mark.parametrize(
    "dtype,code",
    [
        (np.uint8, 0x08),
        (np.int8, 0x09),
        (np.int16, 0x0B),
        (np.int32, 0x0C),
        (np.float32, 0x0D),
        (np.float64, 0x0E),
    ],  # fmt: skip
)
def test_read_idx_all_dtypes(tmp_path, dtype, code):
    arr = (np.arange(24).reshape(2, 3, 4) * (1 if dtype in (np.uint8, np.int8) else -1000)).astype(dtype)
    p = tmp_path / "a.idx"
    p.write_bytes(_idx_bytes(arr, code))
    out = read_idx(p)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.numpy(), arr)


def test_load_tiny_split(tmp_path, trust):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    _write_split(tmp_path, "t10k", images, labels)
    trust(tmp_path)
    x, y = load_mnist(root=tmp_path, train=False, download=False)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_allclose(x[:, 0].numpy() * 255, images, atol=1e-4)
    assert y.tolist() == [3, 1, 4, 1, 5]
    raw, _ = load_fashion_mnist(root=tmp_path, train=False, download=False, dtype=torch.uint8)
    assert torch.equal(raw[:, 0], torch.from_numpy(images))
    # uncompressed files are read as well
    _write_split(tmp_path / "plain", "train", images, labels, gz=False)
    trust(tmp_path / "plain")
    assert torch.equal(load_mnist(root=tmp_path / "plain", dtype=torch.uint8, download=False)[0], raw)


def test_bad_files_give_clear_errors(tmp_path):
    arr = np.zeros((4, 28, 28), dtype=np.uint8)
    good = _idx_bytes(arr, 0x08)
    cases = {
        "magic.idx": (b"\x01\x02" + good[2:], "magic number must start with 0x0000"),
        "code.idx": (good[:2] + b"\x07" + good[3:], "unknown idx dtype code 0x07"),
        "short.idx": (
            good[:-5],
            r"header says shape \(4, 28, 28\) of uint8 \(3136 bytes of data\), "
            r"but the file holds 3131 bytes",
        ),  # fmt: skip
        "long.idx": (good + b"\x00", "but the file holds 3137 bytes"),
        "hdr.idx": (good[:9], "truncated idx header"),
    }
    for name, (data, msg) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=msg) as info:
            read_idx(tmp_path / name)
        assert name in str(info.value)
    gz = gzip.compress(good)
    (tmp_path / "cut.idx.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match=r"cut\.idx\.gz could not be decompressed"):
        read_idx(tmp_path / "cut.idx.gz")


def test_mismatched_pair_and_missing_files(tmp_path, trust):
    _write_split(tmp_path, "train", np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.uint8))
    trust(tmp_path)
    with pytest.raises(ValueError, match="expected 3 labels"):
        load_mnist(root=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\(\.gz\) not found .*download=True"):
        load_mnist(root=tmp_path, train=False, download=False)


def test_download_uses_mirrors_and_checksums(tmp_path, monkeypatch):
    """Offline: the loader asks download_any for each mirror in turn with the published hash."""
    seen = []

    def fake_download_any(urls, dest, sha256, progress):
        seen.append((list(urls), Path(dest).name, sha256))
        raise mnist.DownloadError("offline")

    monkeypatch.setattr(mnist, "download_any", fake_download_any)
    with pytest.raises(mnist.DownloadError, match="mnist: offline"):
        load_mnist(root=tmp_path, train=False)
    urls, name, sha = seen[0]
    assert name == "t10k-images-idx3-ubyte.gz" and urls[0].startswith(
        "https://ossci-datasets.s3.amazonaws.com/"
    )
    assert sha == "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/data/mnist not present")
def test_real_mnist_files():
    x, y = load_mnist(root=SHARED / "mnist", train=False, download=False, dtype=torch.uint8)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8
    # published class counts of the MNIST test set
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    ytr = read_idx(SHARED / "mnist" / "train-labels-idx1-ubyte.gz")
    assert torch.bincount(ytr.long()).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_files_on_disk_are_checked_without_override(tmp_path):
    rng = np.random.default_rng(1)
    _write_split(
        tmp_path, "t10k", rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.arange(5, dtype=np.uint8)
    )
    with pytest.raises(mnist.ChecksumError, match=r"t10k-images-idx3-ubyte\.gz is not mnist's"):
        load_mnist("test", root=tmp_path, download=False)


@pytest.mark.parametrize(
    "loader,name,n", [(load_fashion_mnist, "fashion_mnist", 2000), (load_mnist, "mnist", 2000)]
)
def test_bundled_subset_is_the_real_data(loader, name, n):
    x, y = loader("train", subset="small", dtype=torch.uint8)
    assert x.shape == (n, 1, 28, 28) and y.shape == (n,)
    assert torch.bincount(y, minlength=10).min() >= n // 20  # every class, roughly balanced
    xt, yt = loader("test", subset="small")
    assert xt.shape == (1000, 1, 28, 28) and xt.dtype == torch.float32 and float(xt.max()) <= 1.0
    if (SHARED / name).is_dir():  # the bundle is the head of the official files
        full_x, full_y = loader("test", root=SHARED / name, download=False, dtype=torch.uint8)
        assert torch.equal(full_x[:1000], (xt * 255).round().to(torch.uint8)) and torch.equal(
            full_y[:1000], yt
        )


def test_size_switch_and_split_spellings(monkeypatch):
    monkeypatch.setenv("CVLIB_SIZE", "small")
    a = load_fashion_mnist("test")
    b = load_fashion_mnist(train=False)
    assert a[0].shape[0] == 1000 and torch.equal(a[1], b[1])
    assert not torch.equal(load_mnist("test")[1], a[1])  # digits are not clothes
    with pytest.raises(TypeError, match="split must be 'train' or 'test'.*root="):
        load_mnist(Path("/tmp"))
    with pytest.raises(ValueError, match="subset='small' reads the bundled files"):
        load_mnist(root="/tmp", subset="small")


def test_bundle_damage_is_detected(monkeypatch, tmp_path):
    import shutil

    from cvlib.data import _bundled

    copy = tmp_path / "bundled"
    shutil.copytree(_bundled.BUNDLED_DIR / "fashion_mnist", copy / "fashion_mnist")
    shutil.copy(_bundled.BUNDLED_DIR / "manifest.json", copy / "manifest.json")
    f = copy / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(f.read_bytes())
    data[-12] ^= 0x01
    f.write_bytes(bytes(data))
    monkeypatch.setattr(_bundled, "BUNDLED_DIR", copy)
    with pytest.raises(mnist.ChecksumError, match="t10k-labels-idx1-ubyte.gz is damaged"):
        load_fashion_mnist("test", subset="small")


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/data/mnist not present")
def test_fashion_root_with_mnist_files_fails_clearly():
    with pytest.raises(mnist.ChecksumError, match="is not fashion_mnist's t10k-images-idx3-ubyte"):
        load_fashion_mnist("test", root=SHARED / "mnist", download=True)


@pytest.mark.skipif(
    not (SHARED / "fashion_mnist").is_dir(), reason="../shared/data/fashion_mnist not present"
)
def test_recompressed_copy_accepted_flipped_byte_refused(tmp_path):
    src = SHARED / "fashion_mnist"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        raw = gzip.decompress((src / name).read_bytes())
        (tmp_path / name).write_bytes(gzip.compress(raw, compresslevel=1))  # another compression
    x, y = load_fashion_mnist("test", root=tmp_path, download=False)
    assert x.shape == (10000, 1, 28, 28)
    raw = bytearray(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[500] = (raw[500] + 1) % 10  # a wrong label, still a valid file
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(mnist.ChecksumError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist("test", root=tmp_path, download=False)


def test_damaged_cache_file_is_fetched_again_but_a_users_root_is_not(tmp_path, monkeypatch, trust):
    rng = np.random.default_rng(2)
    images, labels = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.arange(4, dtype=np.uint8)
    good = tmp_path / "good"
    _write_split(good, "t10k", images, labels)
    trust(good)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CVLIB_DATA", str(cache))
    _write_split(cache / "mnist", "t10k", images[::-1].copy(), labels)  # damaged images file
    fetched = []

    def fake_download_any(urls, dest, sha256, progress):
        fetched.append(Path(dest).name)
        Path(dest).write_bytes((good / Path(dest).name).read_bytes())
        return Path(dest)

    monkeypatch.setattr(mnist, "download_any", fake_download_any)
    x, _ = load_mnist("test", dtype=torch.uint8, subset="full")
    assert fetched == ["t10k-images-idx3-ubyte.gz"] and torch.equal(x[:, 0], torch.from_numpy(images))
    _write_split(tmp_path / "mine", "t10k", images[::-1].copy(), labels)
    with pytest.raises(mnist.ChecksumError, match="t10k-images-idx3-ubyte.gz is not mnist's"):
        load_mnist("test", root=tmp_path / "mine", download=True)
    assert fetched == ["t10k-images-idx3-ubyte.gz"]  # the user's files are never replaced


def test_wrong_root_creates_nothing(tmp_path):
    with pytest.raises(NotADirectoryError, match="not an existing directory"):
        load_fashion_mnist(root=tmp_path / "typo" / "fmnist", download=True)
    assert list(tmp_path.iterdir()) == []
