"""Regenerate ``cvlib/data/bundled/`` (the small real subsets shipped inside the package).

Deterministic: the same sources give byte-identical files (gzip with mtime 0, fixed JPEG
settings, sorted manifest). Sources:

* ``../shared/data`` (see its README): MNIST, Fashion-MNIST, the CIFAR-10 lossless subset,
  ISBI 2012 membranes, the raccoon detection set;
* the example photos shipped inside scikit-image's wheel (``skimage/data``), found through
  ``--skimage-data DIR`` or an importable ``skimage``; without either, already bundled photos are
  kept as they are (their manifest entries too).

Usage::

    .venv/bin/python tools/make_bundled_data.py [--shared ../shared/data] [--skimage-data DIR]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "cvlib" / "data" / "bundled"

N_IDX = {"train": 2000, "t10k": 1000}  # MNIST and Fashion-MNIST records kept per split
N_CIFAR = {"data_batch_1.bin": 2000, "test_batch.bin": 500}
CIFAR_SOURCE = {
    "data_batch_1.bin": "data_batch_1.first4000.bin",
    "test_batch.bin": "test_batch.first1000.bin",
}
ISBI_PAIRS = 8  # 0.png .. 7.png
RACCOON_SIDE = 224  # longest side after resizing
RACCOON_QUALITY = 85
RACCOON_TEST = 32  # the last 32 images (by number) form the test split
PHOTOS = {
    "astronaut.png": (
        "public domain (NASA Great Images database, https://flic.kr/p/r9qvLn)",
        "Eileen Collins, NASA astronaut",
    ),
    "chelsea.png": ("CC0 (photographer Stefan van der Walt)", "Chelsea the cat"),
    "coffee.png": ("CC0 (photographer Rachel Michetti)", "a cup of coffee"),
    "rocket.jpg": (
        "public domain (SpaceX, https://www.flickr.com/photos/spacexphotos/16511594820/)",
        "Falcon 9 launch carrying DSCOVR",
    ),
}


MIT_TEXT = """MIT License

{copyright}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

README = """# Bundled real data (read at CVLIB_SIZE=small)

Small real subsets in their original on-disk formats, read by the same cvlib loaders as the full
datasets. `manifest.json` lists every file with its source, licence, the transformation applied
and its SHA-256 (checked by the loaders). Regenerate with `tools/make_bundled_data.py`.

- `fashion_mnist/`: first 2,000 train + 1,000 test records, idx `.gz`; MIT (Zalando SE),
  see `fashion_mnist/LICENSE`.
- `mnist/`: first 2,000 train + 1,000 test records, idx `.gz`; as published by LeCun, Cortes, Burges.
- `cifar10/`: first 2,000 records of `data_batch_1.bin` and 500 of `test_batch.bin` (binary
  records); as published, cite Krizhevsky 2009.
- `isbi2012/`: ISBI 2012 EM pairs 0..7 (PNG, byte copies); MIT (zhixuhao/unet), see `isbi2012/LICENSE`.
- `raccoon/`: the 160 annotated raccoon photos, longest side 224 px, VOC XML boxes rescaled;
  `train.txt` (128) and `test.txt` (32); MIT (Dat Tran), see `raccoon/LICENSE`.
- `photos/`: astronaut, chelsea, coffee, rocket from scikit-image; public domain / CC0 (manifest).
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    return buf.getvalue()


def idx_head(raw: bytes, n: int) -> bytes:
    """The first ``n`` records of an uncompressed idx file, header rewritten."""
    ndim = raw[3]
    dims = list(np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    record = int(np.prod(dims[1:], dtype=np.int64)) if ndim > 1 else 1
    if dims[0] < n:
        raise SystemExit(f"idx file holds {dims[0]} records, {n} requested")
    header = raw[:4] + np.array([n, *dims[1:]], dtype=">u4").tobytes()
    start = 4 + 4 * ndim
    return header + raw[start : start + n * record]


class Bundle:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.entries: dict[str, dict] = {}

    def write(self, rel: str, data: bytes, **meta: str) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.entries[rel] = {**meta, "bytes": len(data), "sha256": sha256(data)}


def make_idx(bundle: Bundle, shared: Path, name: str, licence: str, url: str) -> None:
    for split, n in N_IDX.items():
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            stem = f"{split}-{kind}"
            src = shared / name / f"{stem}.gz"
            raw = gzip.decompress(src.read_bytes())
            bundle.write(
                f"{name}/{stem}.gz",
                gzip_bytes(idx_head(raw, n)),
                source=f"{url}{stem}.gz (copy in ../shared/data/{name}/{stem}.gz)",
                licence=licence,
                transform=f"first {n} records of the official idx file, header count rewritten, gzip -9",
            )


def make_licences(bundle: Bundle, shared: Path) -> None:
    bundle.write(
        "fashion_mnist/LICENSE",
        MIT_TEXT.format(copyright="Copyright (c) 2017 Zalando SE, https://tech.zalando.com").encode(),
        source="https://github.com/zalandoresearch/fashion-mnist/blob/master/LICENSE",
        licence="MIT (Zalando SE)",
        transform="the MIT licence text with the repository's copyright line",
    )
    bundle.write(
        "isbi2012/LICENSE",
        (shared / "isbi2012_membrane" / "LICENSE").read_bytes(),
        source="https://github.com/zhixuhao/unet/blob/master/LICENSE "
        "(../shared/data/isbi2012_membrane/LICENSE)",
        licence="MIT (zhixuhao/unet)",
        transform="none (byte copy)",
    )
    bundle.write(
        "README.md",
        README.encode(),
        source="cvlib",
        licence="MIT (cvlib)",
        transform="generated by tools/make_bundled_data.py",
    )


def make_cifar(bundle: Bundle, shared: Path) -> None:
    for name, n in N_CIFAR.items():
        raw = (shared / "cifar10_subset" / CIFAR_SOURCE[name]).read_bytes()
        bundle.write(
            f"cifar10/cifar-10-batches-bin/{name}",
            raw[: n * 3073],
            source=f"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz: {name} "
            f"(../shared/data/cifar10_subset/{CIFAR_SOURCE[name]})",
            licence="as published by the authors; cite Krizhevsky 2009, Learning Multiple Layers of "
            "Features from Tiny Images",
            transform=f"first {n} records of the official binary batch, bytes unchanged",
        )


def make_isbi(bundle: Bundle, shared: Path) -> None:
    for i in range(ISBI_PAIRS):
        for kind in ("image", "label"):
            rel = f"train/{kind}/{i}.png"
            bundle.write(
                f"isbi2012/{rel}",
                (shared / "isbi2012_membrane" / rel).read_bytes(),
                source=f"https://github.com/zhixuhao/unet data/membrane/{rel} "
                f"(../shared/data/isbi2012_membrane/{rel})",
                licence="MIT (zhixuhao/unet); ISBI 2012 EM segmentation challenge data",
                transform="none (byte copy)",
            )


def _scaled_xml(xml: bytes, scale: float, width: int, height: int) -> bytes:
    root = ET.fromstring(xml)
    size = root.find("size")
    size.find("width").text = str(width)
    size.find("height").text = str(height)
    for node in root.iter("path"):
        node.text = node.text.rsplit("/", 1)[-1] if node.text else node.text
    for box in root.iter("bndbox"):
        for tag, limit in (("xmin", width), ("ymin", height), ("xmax", width), ("ymax", height)):
            v = float(box.find(tag).text) * scale
            box.find(tag).text = str(int(round(min(max(v, 0.0), float(limit)))))
    return ET.tostring(root, encoding="utf-8")


def make_raccoon(bundle: Bundle, shared: Path) -> None:
    src = shared / "raccoon"
    stems = sorted((p.stem for p in (src / "annotations").glob("*.xml")), key=lambda s: int(s.split("-")[1]))
    licence = "MIT (datitran/raccoon_dataset, Copyright (c) 2017 Dat Tran)"
    for stem in stems:
        with Image.open(src / "images" / f"{stem}.jpg") as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = RACCOON_SIDE / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            small = im.resize((nw, nh), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=RACCOON_QUALITY, optimize=True)
        base = "https://github.com/datitran/raccoon_dataset"
        bundle.write(
            f"raccoon/images/{stem}.jpg",
            buf.getvalue(),
            source=f"{base} images/{stem}.jpg (../shared/data/raccoon/images/{stem}.jpg)",
            licence=licence,
            transform=f"resized {w}x{h} -> {nw}x{nh} (Lanczos), JPEG quality {RACCOON_QUALITY}",
        )
        xml = (src / "annotations" / f"{stem}.xml").read_bytes()
        bundle.write(
            f"raccoon/annotations/{stem}.xml",
            _scaled_xml(xml, nw / w, nw, nh),
            source=f"{base} annotations/{stem}.xml (../shared/data/raccoon/annotations/{stem}.xml)",
            licence=licence,
            transform=f"size set to {nw}x{nh}, box corners scaled by {nw / w:.6f} and rounded, path "
            f"reduced to the file name",
        )
    for split, names in (("train", stems[:-RACCOON_TEST]), ("test", stems[-RACCOON_TEST:])):
        bundle.write(
            f"raccoon/{split}.txt",
            ("\n".join(names) + "\n").encode(),
            source="cvlib: fixed split by image number (last 32 numbers = test)",
            licence="MIT (cvlib)",
            transform="list of image stems",
        )
    bundle.write(
        "raccoon/LICENSE",
        (src / "LICENSE").read_bytes(),
        source=f"{base}/blob/master/LICENSE",
        licence=licence,
        transform="none (byte copy)",
    )


def find_skimage_data(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    try:
        import skimage.data  # noqa: PLC0415

        return Path(skimage.data.__file__).parent
    except ImportError:
        return None


def make_photos(bundle: Bundle, skdata: Path | None, old: dict[str, dict]) -> None:
    for name, (licence, what) in PHOTOS.items():
        rel = f"photos/{name}"
        if skdata is not None:
            data = (skdata / name).read_bytes()
            bundle.write(
                rel,
                data,
                source=f"scikit-image skimage/data/{name} ({what})",
                licence=licence,
                transform="none (byte copy)",
            )
        elif rel in old and (OUT / rel).is_file():
            data = (OUT / rel).read_bytes()
            if sha256(data) != old[rel]["sha256"]:
                raise SystemExit(f"{rel} differs from its manifest entry; pass --skimage-data")
            bundle.entries[rel] = old[rel]
        else:
            raise SystemExit(f"{rel}: pass --skimage-data DIR (skimage/data of a scikit-image wheel)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--skimage-data", default=None)
    args = ap.parse_args()
    shared = Path(args.shared)
    manifest_path = OUT / "manifest.json"
    old = json.loads(manifest_path.read_text())["files"] if manifest_path.is_file() else {}
    photos = {
        rel: (OUT / rel).read_bytes() for rel in old if rel.startswith("photos/") and (OUT / rel).is_file()
    }
    if OUT.exists():
        shutil.rmtree(OUT)
    for rel, data in photos.items():  # kept when skimage is absent
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        (OUT / rel).write_bytes(data)
    bundle = Bundle(OUT)
    make_idx(
        bundle,
        shared,
        "fashion_mnist",
        "MIT (Zalando Research, Xiao, Rasul, Vollgraf 2017)",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    )
    make_idx(
        bundle,
        shared,
        "mnist",
        "as published by the authors (LeCun, Cortes, Burges)",
        "http://yann.lecun.com/exdb/mnist/",
    )
    make_cifar(bundle, shared)
    make_licences(bundle, shared)
    make_isbi(bundle, shared)
    make_raccoon(bundle, shared)
    make_photos(bundle, find_skimage_data(args.skimage_data), old)
    manifest = {
        "description": "Small real subsets bundled with cvlib; regenerate with tools/make_bundled_data.py",
        "files": dict(sorted(bundle.entries.items())),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(e["bytes"] for e in bundle.entries.values())
    print(f"{len(bundle.entries)} files, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
