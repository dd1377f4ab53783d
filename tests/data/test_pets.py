"""cvlib.data.pets: Oxford-IIIT Pet archives written here in the real layout."""

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from cvlib.data import pets
from cvlib.data._download import ChecksumError
from cvlib.data.pets import OxfordIIITPet, read_pet_list

# name, CLASS-ID, SPECIES, BREED-ID: two cat breeds and one dog breed, as in list.txt
ROWS = [("Abyssinian_1", 1, 1, 1), ("Abyssinian_2", 1, 1, 1), ("Bengal_7", 6, 1, 6), ("boxer_3", 10, 2, 3)]
TRAINVAL, TEST = ROWS[:3], ROWS[3:]


def _png_bytes(arr, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _add(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _make(root, h=20, w=30):
    rng = np.random.default_rng(0)
    expected = {}
    with tarfile.open(root / "images.tar.gz", "w:gz") as tf:
        for i, (name, *_) in enumerate(ROWS):
            # one greyscale photo: the loader must convert it to RGB
            arr = rng.integers(0, 256, (h, w) if i == 2 else (h, w, 3), dtype=np.uint8)
            expected[name] = arr
            _add(tf, f"images/{name}.jpg", _png_bytes(arr))  # PNG bytes: lossless, PIL sniffs the format
    lines = lambda rows: "".join(f"{n} {c} {s} {b}\n" for n, c, s, b in rows)  # noqa: E731
    with tarfile.open(root / "annotations.tar.gz", "w:gz") as tf:
        _add(
            tf,
            "annotations/list.txt",
            ("#Image CLASS-ID SPECIES BREED ID\n#comment\n" + lines(ROWS)).encode(),
        )
        _add(tf, "annotations/trainval.txt", lines(TRAINVAL).encode())
        _add(tf, "annotations/test.txt", lines(TEST).encode())
        for name, *_ in ROWS:
            tri = np.full((h, w), 2, np.uint8)  # background
            tri[5:15, 8:22] = 3  # border ring
            tri[7:13, 10:20] = 1  # pet
            _add(tf, f"annotations/trimaps/{name}.png", _png_bytes(tri))
    return expected


def test_labels_and_masks(tmp_path, trust):
    expected = _make(tmp_path)
    trust(tmp_path / "images.tar.gz", tmp_path / "annotations.tar.gz")
    ds = OxfordIIITPet(root=tmp_path, split="trainval", target="all", download=False)
    assert len(ds) == 3 and ds.classes[0] == "Abyssinian" and ds.classes[5] == "Bengal"
    image, t = ds[0]
    assert image.shape == (3, 20, 30) and image.dtype == torch.float32
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy() * 255, expected["Abyssinian_1"], atol=1e-3)
    assert t["breed"].item() == 0 and t["species"].item() == 0 and t["mask"].dtype == torch.int64
    mask = t["mask"]
    assert mask[0, 0] == 0 and mask[10, 15] == 1 and mask[5, 8] == 255
    assert int((mask == 1).sum()) == 60 and int((mask == 255).sum()) == 140 - 60
    grey, _ = ds[2]  # the greyscale photo: three equal channels
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    test = OxfordIIITPet(root=tmp_path, split="test", target="species", download=False)
    assert len(test) == 1 and test[0][1].item() == 1 and test.classes[9] == "boxer"
    assert OxfordIIITPet(root=tmp_path, split="all", download=False)[3][1].item() == 9  # breed label
    # the archives were unpacked next to themselves, nothing else left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "annotations",
        "annotations.tar.gz",
        "images",
        "images.tar.gz",
    ]


def test_resize_and_border_value(tmp_path, trust):
    _make(tmp_path)
    trust(tmp_path / "images.tar.gz", tmp_path / "annotations.tar.gz")
    ds = OxfordIIITPet(root=tmp_path, target="mask", image_size=(10, 15), border_value=2, download=False)
    image, mask = ds[0]
    assert image.shape == (3, 10, 15) and mask.shape == (10, 15)
    assert set(mask.unique().tolist()) == {0, 1, 2}  # nearest resizing adds no new values


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        OxfordIIITPet(root=tmp_path, split="val", download=False)
    with pytest.raises(FileNotFoundError, match="download=True or root="):
        OxfordIIITPet(root=tmp_path, download=False)
    bad = tmp_path / "list.txt"
    bad.write_text("#header\nAbyssinian_1 1 1\n")
    with pytest.raises(
        ValueError, match=r"list\.txt:2: expected 'Image CLASS-ID SPECIES BREED-ID', got 3 fields"
    ):
        read_pet_list(bad)
    bad.write_text("Abyssinian_1 40 1 1\n")
    with pytest.raises(ValueError, match=r"list\.txt:1: CLASS-ID must be 1..37"):
        read_pet_list(bad)


def test_truncated_archive(tmp_path, trust):
    _make(tmp_path)
    data = (tmp_path / "images.tar.gz").read_bytes()
    (tmp_path / "images.tar.gz").write_bytes(data[: len(data) // 2])
    trust(tmp_path / "images.tar.gz", tmp_path / "annotations.tar.gz")
    with pytest.raises(ValueError, match=r"images\.tar\.gz .*(corrupt|truncated)"):
        OxfordIIITPet(root=tmp_path, download=False)
    assert not (tmp_path / "images").exists()


def test_download_requests_published_hashes(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pets, "download_any", lambda urls, dest, sha, progress: calls.append((urls, sha)))
    with pytest.raises(FileNotFoundError):
        OxfordIIITPet(root=tmp_path)
    assert calls[0] == (
        (
            "https://thor.robots.ox.ac.uk/~vgg/data/pets/images.tar.gz",  # the current host first
            "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        ),
        "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
    )


def test_local_archive_is_checked(tmp_path):
    _make(tmp_path)  # fixture archives, not the published ones
    with pytest.raises(ChecksumError, match=r"images\.tar\.gz is not the Oxford-IIIT Pet images\.tar\.gz"):
        OxfordIIITPet(root=tmp_path, download=False)
    assert not (tmp_path / "images").exists()


def test_docstring_breed_counts():
    # 12 cat breeds and 25 dog breeds (the dataset README swaps them)
    assert "1..12 for the 12 cat breeds, 1..25 for the 25 dog breeds" in pets.__doc__
