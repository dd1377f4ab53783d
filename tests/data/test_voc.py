"""cvlib.data.voc: VOC XML parsing, both folder layouts, errors, and the raccoon data when present."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvlib.data import voc
from cvlib.data.voc import VOC_CLASSES, VOCDetection, load_voc2007, parse_voc_xml

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _xml(filename, w, h, objects):
    objs = "".join(
        f"<object><name>{n}</name><pose>Left</pose><truncated>{t}</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d, t in objects
    )
    return (
        f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>"
        f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>"
    )


def test_parse_converts_one_based_inclusive(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(_xml("a.jpg", 50, 40, [("dog", (1, 1, 1, 1), 0, 0), ("cat", (10, 5, 50, 40), 1, 1)]))
    ann = parse_voc_xml(p, VOC_CLASSES)
    # the single top-left pixel is [0, 1) x [0, 1); a box to the last pixel ends at the image edge
    assert ann["boxes"].tolist() == [[0.0, 0.0, 1.0, 1.0], [9.0, 4.0, 50.0, 40.0]]
    assert ann["boxes"].dtype == torch.float32
    assert ann["labels"].tolist() == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("cat")]
    assert ann["labels"].dtype == torch.int64
    assert ann["difficult"].tolist() == [False, True] and ann["truncated"].tolist() == [False, True]
    assert (ann["filename"], ann["width"], ann["height"]) == ("a.jpg", 50, 40)
    # boxes are clamped to the image (some tools write 0 for the first pixel)
    p.write_text(_xml("a.jpg", 50, 40, [("dog", (0, 0, 60, 40), 0, 0)]))
    assert parse_voc_xml(p)["boxes"].tolist() == [[0.0, 0.0, 50.0, 40.0]]
    p.write_text("<annotation><filename>e.jpg</filename></annotation>")
    assert parse_voc_xml(p, VOC_CLASSES)["boxes"].shape == (0, 4)


@pytest.mark.parametrize(
    "text,msg",
    [
        ("<annotation><object>", r"bad\.xml: malformed XML"),
        ("<foo/>", r"bad\.xml: root element must be <annotation>"),
        (
            _xml("x", 9, 9, [("dog", ("a", 1, 2, 2), 0, 0)]),
            r"bad\.xml: object 0 bndbox/<xmin> must be a number",
        ),
        (_xml("x", 9, 9, [("dog", (5, 1, 2, 2), 0, 0)]), r"bad\.xml: object 0 \(dog\) has xmax < xmin"),
        (_xml("x", 9, 9, [("", (1, 1, 2, 2), 0, 0)]), r"bad\.xml: missing or empty <name>"),
        (_xml("x", 9, 9, [("unicorn", (1, 1, 2, 2), 0, 0)]), r"bad\.xml: unknown class name 'unicorn'"),
        ("<annotation><object><name>dog</name></object></annotation>", r"object 0 \(dog\) has no <bndbox>"),
        ("<annotation><size><width>9</width></size></annotation>", r"missing or empty <height>"),
    ],
)
def test_malformed_xml_names_file_and_field(tmp_path, text, msg):
    (tmp_path / "bad.xml").write_text(text)
    with pytest.raises(ValueError, match=msg):
        parse_voc_xml(tmp_path / "bad.xml", VOC_CLASSES)


def _voc_folder(root):
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets/Main").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, objs in {"000001": [("dog", (2, 3, 10, 12), 0, 0), ("person", (1, 1, 4, 4), 1, 0)],
                    "000002": [("car", (5, 5, 20, 15), 0, 0)]}.items():  # fmt: skip
        Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(root / f"JPEGImages/{i}.jpg")
        (root / f"Annotations/{i}.xml").write_text(_xml(f"{i}.jpg", 24, 16, objs))
    (root / "ImageSets/Main/trainval.txt").write_text("000001\n000002\n")
    (root / "ImageSets/Main/test.txt").write_text("000002\n")


def test_voc_layout_dataset(tmp_path):
    _voc_folder(tmp_path)
    ds = VOCDetection(tmp_path)
    assert len(ds) == 2 and ds.classes == VOC_CLASSES
    image, target = ds[0]
    assert (
        image.shape == (3, 16, 24) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    )
    assert target["boxes"].tolist() == [[1.0, 2.0, 10.0, 12.0], [0.0, 0.0, 4.0, 4.0]]
    assert target["labels"].tolist() == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")]
    assert target["difficult"].tolist() == [False, True] and target["image_id"] == "000001"
    easy = VOCDetection(tmp_path, keep_difficult=False)[0][1]
    assert easy["labels"].tolist() == [VOC_CLASSES.index("dog")] and easy["boxes"].shape == (1, 4)
    assert VOCDetection(tmp_path, image_set="test").ids == ["000002"]
    with pytest.raises(FileNotFoundError, match="val.txt does not exist"):
        VOCDetection(tmp_path, image_set="val")


def test_flat_layout_infers_classes(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / "images/raccoon-2.jpg")
    Image.new("RGB", (30, 20)).save(tmp_path / "images/raccoon-10.jpg")
    (tmp_path / "annotations/raccoon-2.xml").write_text(
        _xml("raccoon-2.jpg", 30, 20, [("raccoon", (1, 1, 5, 5), 0, 0)])
    )
    (tmp_path / "annotations/raccoon-10.xml").write_text(_xml("x.jpg", 30, 20, [("fox", (2, 2, 9, 9), 0, 0)]))
    ds = VOCDetection(tmp_path)
    assert ds.ids == ["raccoon-2", "raccoon-10"] and ds.classes == ("fox", "raccoon")
    assert ds[1][1]["labels"].tolist() == [0]
    with pytest.raises(FileNotFoundError, match="not a VOC-format folder"):
        VOCDetection(tmp_path / "images")


def test_voc2007_download_request(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(voc, "download_any", lambda urls, dest, sha, progress: calls.append((urls[0], sha)))
    with pytest.raises(FileNotFoundError):  # nothing was really downloaded
        load_voc2007(root=tmp_path, image_set="test")
    assert calls == [("https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
                      "6836888e2e01dca84577a849d339fa4f73e1e4f135d312430c4856b5609b4892")]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="download=True or root="):
        load_voc2007(root=tmp_path, download=False)


@pytest.mark.skipif(not (SHARED / "raccoon").is_dir(), reason="../shared/data not present")
def test_real_raccoon_matches_its_csv():
    root = SHARED / "raccoon"
    ds = VOCDetection(root)
    assert len(ds) == 160 and ds.classes == ("raccoon",)
    with open(root / "train_labels.csv") as f:
        rows = list(csv.DictReader(f))
    by_file = {}
    for r in rows:
        by_file.setdefault(r["filename"], []).append([float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
    n_boxes = 0
    for i in range(len(ds)):
        ann = ds.annotation(i)
        csv_boxes = torch.tensor(by_file[ds.image_path(i).name])
        w, h = ann["width"], ann["height"]
        want = torch.stack([(csv_boxes[:, 0] - 1).clamp(0, w), (csv_boxes[:, 1] - 1).clamp(0, h),
                            csv_boxes[:, 2].clamp(0, w), csv_boxes[:, 3].clamp(0, h)], 1)  # fmt: skip
        torch.testing.assert_close(ann["boxes"], want)
        n_boxes += len(want)
    assert n_boxes == len(rows) == 173
    image, target = ds[0]
    assert image.shape[0] == 3 and target["boxes"][:, 2:].max() <= max(image.shape[1:])


def test_local_archive_checked_before_extraction(tmp_path):
    from cvlib.data._download import ChecksumError

    (tmp_path / "VOCtest_06-Nov-2007.tar").write_bytes(b"not the VOC archive")
    with pytest.raises(ChecksumError, match=r"VOCtest_06-Nov-2007\.tar is not the Pascal VOC 2007 archive"):
        load_voc2007(root=tmp_path, image_set="test", download=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VOCtest_06-Nov-2007.tar"]
