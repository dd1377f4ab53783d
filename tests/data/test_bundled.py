"""The bundled real subsets (cvlib/data/bundled): manifest, provenance, the raccoon set and photos."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from cvlib.data import RACCOON_CLASSES, bundled_manifest, list_photos, load_photo, load_raccoon
from cvlib.data._bundled import BUNDLED_DIR, bundled_path
from cvlib.data._download import ChecksumError, sha256sum

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_manifest_lists_every_file_with_provenance():
    files = bundled_manifest()
    on_disk = {p.relative_to(BUNDLED_DIR).as_posix() for p in BUNDLED_DIR.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(files)
    for rel, meta in files.items():
        assert meta["source"] and meta["licence"] and meta["transform"], rel
        assert sha256sum(BUNDLED_DIR / rel) == meta["sha256"], rel
    total = sum(m["bytes"] for m in files.values())
    assert total < 15.5e6  # the repository growth stays modest


def test_damaged_bundled_file_is_refused(tmp_path, monkeypatch):
    from cvlib.data import _bundled

    (tmp_path / "photos").mkdir()
    data = bytearray((BUNDLED_DIR / "photos" / "coffee.png").read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "photos" / "coffee.png").write_bytes(bytes(data))
    monkeypatch.setattr(_bundled, "BUNDLED_DIR", tmp_path)
    with pytest.raises(ChecksumError, match=r"coffee\.png is damaged"):
        load_photo("coffee")
    with pytest.raises(KeyError, match="not a bundled file"):
        bundled_path("photos/nope.png")


def test_raccoon_split_and_targets():
    train, test = load_raccoon("train"), load_raccoon("test")
    assert (len(train), len(test), len(load_raccoon("all"))) == (128, 32, 160)
    assert not set(train.ids) & set(test.ids)
    assert train.classes == RACCOON_CLASSES
    n_boxes = 0
    for ds in (train, test):
        for i in range(0, len(ds), 7):
            image, t = ds[i]
            h, w = image.shape[-2:]
            assert image.dtype == torch.float32 and image.shape[0] == 3 and max(h, w) == 224
            boxes = t["boxes"]
            assert boxes.dtype == torch.float32 and boxes.shape[1] == 4 and len(boxes) >= 1
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
            assert boxes[:, 2].max() <= w and boxes[:, 3].max() <= h
            assert t["labels"].dtype == torch.int64 and (t["labels"] == 0).all()
            n_boxes += len(boxes)
    assert n_boxes >= 25
    with pytest.raises(ValueError, match="split must be one of"):
        load_raccoon("val")


@pytest.mark.skipif(not (SHARED / "raccoon").is_dir(), reason="../shared/data/raccoon not present")
def test_raccoon_boxes_are_the_rescaled_originals():
    full = load_raccoon("test", root=SHARED / "raccoon")
    small = load_raccoon("test")
    assert full.ids == small.ids
    for i in (0, 5, 31):
        (xf, tf), (xs, ts) = full[i], small[i]
        scale = xs.shape[-1] / xf.shape[-1]
        assert abs(xs.shape[-2] - xf.shape[-2] * scale) <= 1
        torch.testing.assert_close(ts["boxes"], tf["boxes"] * scale, atol=1.0, rtol=0)
        # the XML is VOC: width/height updated with the resized image
        root = ET.parse(BUNDLED_DIR / "raccoon" / "annotations" / f"{small.ids[i]}.xml").getroot()
        assert int(root.find("size/width").text) == xs.shape[-1]


def test_photos():
    names = list_photos()
    assert set(names) >= {"astronaut", "chelsea", "coffee", "rocket"}
    for name in names:
        x = load_photo(name)
        assert x.ndim == 3 and x.shape[0] == 3 and min(x.shape[1:]) >= 256 and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.1
        meta = bundled_manifest()[next(r for r in bundled_manifest() if Path(r).stem == name)]
        assert "CC0" in meta["licence"] or "public domain" in meta["licence"]
    raw = load_photo("chelsea", dtype=torch.uint8)
    assert raw.dtype == torch.uint8 and raw.shape == (3, 300, 451)
    with pytest.raises(ValueError, match="name must be one of"):
        load_photo("lena")
