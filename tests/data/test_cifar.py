"""cvlib.data.cifar: the binary CIFAR-10 format, written here as a tiny tar.gz."""

import io
import tarfile

import numpy as np
import pytest
import torch

from cvlib.data import cifar
from cvlib.data._bundled import BUNDLED_DIR
from cvlib.data._download import ChecksumError
from cvlib.data.cifar import CIFAR10_CLASSES, load_cifar10, read_cifar_bin


def _records(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    raw = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1).tobytes()
    return raw, images, labels


def _write_archive(path, n_per_batch=2):
    expected = {}
    with tarfile.open(path, "w:gz") as tf:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for seed, name in enumerate(names):
            raw, images, labels = _records(n_per_batch, seed)
            expected[name] = (images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
        meta = "\n".join(CIFAR10_CLASSES).encode()
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(meta)
        tf.addfile(info, io.BytesIO(meta))
    return expected


def test_record_layout(tmp_path):
    # one hand-made record: label 7, red plane all 10, green 20, blue = row index
    rec = np.concatenate([[7], np.full(1024, 10), np.full(1024, 20), np.repeat(np.arange(32), 32)]).astype(
        np.uint8
    )
    (tmp_path / "one.bin").write_bytes(rec.tobytes())
    x, y = read_cifar_bin(tmp_path / "one.bin")
    assert x.shape == (1, 3, 32, 32) and y.tolist() == [7]
    assert int(x[0, 0].unique()) == 10 and int(x[0, 1].unique()) == 20
    assert x[0, 2, :, 0].tolist() == list(range(32)) and x[0, 2, 5].unique().tolist() == [5]


def test_load_from_archive(tmp_path, trust):
    expected = _write_archive(tmp_path / "cifar-10-binary.tar.gz")
    trust(tmp_path / "cifar-10-binary.tar.gz")
    x, y = load_cifar10(root=tmp_path, train=True, download=False)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    want = np.concatenate([expected[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    np.testing.assert_allclose(x.numpy() * 255, want, atol=1e-4)
    assert y.tolist() == np.concatenate([expected[f"data_batch_{i}.bin"][1] for i in range(1, 6)]).tolist()
    xt, yt = load_cifar10(root=tmp_path, train=False, download=False, dtype=torch.uint8)
    assert torch.equal(xt, torch.from_numpy(expected["test_batch.bin"][0]))
    assert (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").read_text().split() == list(
        CIFAR10_CLASSES
    )


def test_truncated_archive_and_batch(tmp_path, trust):
    _write_archive(tmp_path / "cifar-10-binary.tar.gz", n_per_batch=40)
    data = (tmp_path / "cifar-10-binary.tar.gz").read_bytes()
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(data[: len(data) // 2])
    trust(tmp_path / "cifar-10-binary.tar.gz")  # a truncated file with a matching digest
    with pytest.raises(ValueError, match=r"cifar-10-binary\.tar\.gz .*(corrupt|truncated)"):
        load_cifar10(root=tmp_path, download=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-binary.tar.gz"]
    raw, _, _ = _records(2, 0)
    (tmp_path / "cut.bin").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match=r"cut\.bin: size 6145 bytes is not a positive multiple of the 3073"):
        read_cifar_bin(tmp_path / "cut.bin")
    bad = bytearray(raw)
    bad[3073] = 12
    (tmp_path / "label.bin").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="record 1 has label 12"):
        read_cifar_bin(tmp_path / "label.bin")


def test_missing_and_download_checksum(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="download=True or root="):
        load_cifar10(root=tmp_path, download=False)
    calls = []
    monkeypatch.setattr(
        cifar, "download_url", lambda url, dest, sha256, progress: calls.append((url, sha256))
    )
    with pytest.raises(FileNotFoundError):  # the fake download wrote nothing
        load_cifar10(root=tmp_path)
    assert calls == [("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                      "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")]  # fmt: skip


def test_local_archive_checked_before_extraction(tmp_path):
    _write_archive(tmp_path / "cifar-10-binary.tar.gz")
    with pytest.raises(ChecksumError, match=r"cifar-10-binary\.tar\.gz is not the CIFAR-10 binary archive"):
        load_cifar10(root=tmp_path, download=False)
    assert not (tmp_path / "cifar-10-batches-bin").exists()  # nothing unpacked


def test_unpacked_batches_checked_on_later_loads(tmp_path, trust):
    _write_archive(tmp_path / "cifar-10-binary.tar.gz")
    trust(tmp_path / "cifar-10-binary.tar.gz")
    load_cifar10("test", root=tmp_path, download=False)
    batch = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    data = bytearray(batch.read_bytes())
    data[100] ^= 1  # one flipped bit
    batch.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="test_batch.bin"):
        load_cifar10("test", root=tmp_path, download=False)


def test_interrupted_unpacking_is_finished(tmp_path, trust):
    expected = _write_archive(tmp_path / "cifar-10-binary.tar.gz")
    trust(tmp_path / "cifar-10-binary.tar.gz")
    (tmp_path / "cifar-10-batches-bin").mkdir()  # a folder without its digest record
    (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").write_bytes(b"partial")
    x, y = load_cifar10(root=tmp_path, download=False, dtype=torch.uint8)
    assert torch.equal(x[:2], torch.from_numpy(expected["data_batch_1.bin"][0]))


@pytest.mark.parametrize("split,n", [("train", 2000), ("test", 500)])
def test_bundled_subset_same_reader(split, n):
    x, y = load_cifar10(split, subset="small", dtype=torch.uint8)
    assert x.shape == (n, 3, 32, 32) and x.dtype == torch.uint8 and y.shape == (n,)
    counts = torch.bincount(y, minlength=10)
    assert counts.min() > n // 20  # all ten classes present, roughly balanced
    # the bundled file is the official record format, read back byte for byte
    path = (
        BUNDLED_DIR
        / "cifar10"
        / "cifar-10-batches-bin"
        / ("data_batch_1.bin" if split == "train" else "test_batch.bin")
    )
    xr, yr = read_cifar_bin(path)
    assert torch.equal(xr, x) and torch.equal(yr, y)
    assert float(x.float().std()) > 40  # real photos, not a constant


def test_size_switch_chooses_the_subset(monkeypatch):
    monkeypatch.setenv("CVLIB_SIZE", "small")
    x, _ = load_cifar10("test")
    assert x.shape[0] == 500
    with pytest.raises(ValueError, match="subset must be one of"):
        load_cifar10(subset="tiny")
    with pytest.raises(ValueError, match="split must be one of"):
        load_cifar10("val")
    with pytest.raises(ValueError, match="contradicts"):
        load_cifar10("test", train=True)


def test_wrong_root_creates_nothing(tmp_path):
    missing = tmp_path / "typo" / "cifar"
    with pytest.raises(NotADirectoryError, match="not an existing directory"):
        load_cifar10(root=missing, download=True)
    assert not (tmp_path / "typo").exists()
