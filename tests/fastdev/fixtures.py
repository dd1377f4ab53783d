"""The fast-dev-run of the full configuration: fixture data in the real on-disk formats, random
ImageNet weight files in torchvision's layout, an offline kernel, and a notebook runner.

Every chapter runs with ``CVLIB_SIZE=full`` (full models and resolutions) and
``CVLIB_FAST_DEV_RUN=1`` (every ``fit``/``evaluate``/``predict`` loop capped to one step, the timing
loops of ``cvlib.ops.profile`` to one repetition), on the CPU, with no network. The data cache
(``$CVLIB_DATA``) is filled beforehand, as a download would leave it:

* ``mnist/`` and ``fashion_mnist/``: the four idx ``.gz`` files each (byte-identical between the two:
  the checksum override is keyed by file name, and both datasets use the same names);
* ``cifar10/cifar-10-binary.tar.gz``: the binary distribution (``cifar-10-batches-bin/``), unpacked by
  the loader on first use;
* ``oxford_pets/images.tar.gz`` and ``annotations.tar.gz``: JPEG photos of all 37 breeds, ``list.txt``,
  ``trainval.txt``, ``test.txt`` and trimaps, unpacked by the loader;
* ``isbi2012/train/{image,label}/N.png``: all 30 pairs at 512x512 (the loader fetches file by file);
* ``voc/VOCtrainval_06-Nov-2007.tar`` and ``VOCtest_06-Nov-2007.tar``: ``VOCdevkit/VOC2007/`` with
  ``Annotations``, ``JPEGImages`` and ``ImageSets/Main`` (split lists and per-class lists);
* ``weights/<torchvision file name>``: a state dict with torchvision's keys and shapes
  (``tests/data/torchvision_manifest.json``) and random values, for the models the chapters load
  with ``weights=``/``weights_backbone=``.

The loaders check the fixture files through the test-only ``$CVLIB_CHECKSUMS_OVERRIDE`` (a JSON file
name -> sha256 written here); the published digests in ``cvlib`` are untouched. The kernel gets a
``sitecustomize`` that refuses every non-loopback connection and DNS lookup, and proxy variables
that point at a closed port, so any attempt to download fails loudly instead of going online.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))  # kernel_runner
NOTEBOOKS = ROOT / "notebooks"
MANIFEST = ROOT / "tests" / "data" / "torchvision_manifest.json"
FAST_DEV_STEPS = 1

# Oxford-IIIT Pet: the 12 cat breeds (capitalised) and 25 dog breeds; CLASS-ID is the
# case-insensitive alphabetical rank, BREED-ID the rank within the species.
PET_CATS = (
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau", "Maine_Coon",
    "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx",
)  # fmt: skip
PET_DOGS = (
    "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "boxer", "chihuahua",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
    "japanese_chin", "keeshond", "leonberger", "miniature_pinscher", "newfoundland", "pomeranian", "pug",
    "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "staffordshire_bull_terrier",
    "wheaten_terrier", "yorkshire_terrier",
)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# small helpers


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _image_bytes(arr: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_000_000_000  # fixed: the archives (and their digests) are reproducible
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 1_000_000_000
    tf.addfile(info)


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random colour image (compresses like a photo, unlike white noise)."""
    small = rng.integers(0, 256, (max(h // 16, 2), max(w // 16, 2), 3), dtype=np.uint8)
    big = np.kron(small, np.ones((16, 16, 1), dtype=np.uint8))[:h, :w]
    pad_h, pad_w = h - big.shape[0], w - big.shape[1]
    if pad_h or pad_w:
        big = np.pad(big, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    noise = rng.integers(0, 24, (h, w, 3), dtype=np.uint8)
    return np.clip(big.astype(np.int16) + noise - 12, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# dataset writers (each returns {file name or relative path: sha256} for the checksum override)


def _idx_gz(arr: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return gzip.compress(header + arr.astype(">u1").tobytes(), mtime=0)


def write_mnist(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> dict[str, str]:
    """The four MNIST idx ``.gz`` files (28x28 uint8 images, uint8 labels 0..9 cycling). Each class is
    a fixed random template plus noise, so that, as with the real digits and clothes, raw-pixel
    nearest neighbours classify well (a chapter may check that lesson)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 28, 28)).astype(np.int16)
    table = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        noise = rng.integers(-40, 41, (n, 28, 28))
        images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        for stem, arr, code, ndim in (
            (f"{prefix}-images-idx3-ubyte", images, 0x08, 3),
            (f"{prefix}-labels-idx1-ubyte", labels, 0x08, 1),
        ):
            assert arr.ndim == ndim
            path = folder / f"{stem}.gz"
            path.write_bytes(_idx_gz(arr, code))
            table[path.name] = _sha256(path)
    return table


def write_cifar10(folder: Path, n_per_batch: int = 60, n_test: int = 100, seed: int = 0) -> dict[str, str]:
    """``cifar-10-binary.tar.gz`` with ``cifar-10-batches-bin/data_batch_{1..5}.bin``,
    ``test_batch.bin`` (3,073-byte records: label, then R, G, B planes of 32x32) and
    ``batches.meta.txt``, as distributed."""
    from cvlib.data.cifar import CIFAR10_CLASSES

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    archive = folder / "cifar-10-binary.tar.gz"
    with (
        open(archive, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tf,
    ):
        _add_dir(tf, "cifar-10-batches-bin")
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in names:
            n = n_test if name == "test_batch.bin" else n_per_batch
            labels = (np.arange(n) % 10).astype(np.uint8)
            images = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
            _add(tf, f"cifar-10-batches-bin/{name}", np.concatenate([labels[:, None], images], 1).tobytes())
        _add(tf, "cifar-10-batches-bin/batches.meta.txt", ("\n".join(CIFAR10_CLASSES) + "\n\n").encode())
        _add(tf, "cifar-10-batches-bin/readme.html", b"<meta HTTP-EQUIV='REFRESH'>\n")
    return {archive.name: _sha256(archive)}


def pet_rows(per_split: int = 1) -> dict[str, list[tuple[str, int, int, int]]]:
    """``(image, CLASS-ID, SPECIES, BREED-ID)`` rows of trainval and test: ``per_split`` photos of
    every breed in each split."""
    cats = [(b, 1, i + 1) for i, b in enumerate(PET_CATS)]
    dogs = [(b, 2, i + 1) for i, b in enumerate(PET_DOGS)]
    breeds = sorted(cats + dogs, key=lambda r: r[0].lower())
    rows: dict[str, list[tuple[str, int, int, int]]] = {"trainval": [], "test": []}
    for class_id, (breed, species, breed_id) in enumerate(breeds, start=1):
        for k in range(2 * per_split):
            split = "trainval" if k < per_split else "test"
            rows[split].append((f"{breed}_{100 + k}", class_id, species, breed_id))
    return rows


def write_pets(folder: Path, per_split: int = 1, seed: int = 0) -> dict[str, str]:
    """``images.tar.gz`` (``images/<Breed>_<n>.jpg``, photos of 500x375 or 375x500, one greyscale)
    and ``annotations.tar.gz`` (``annotations/list.txt``, ``trainval.txt``, ``test.txt`` and
    ``annotations/trimaps/<image>.png`` with 1 = pet, 2 = background, 3 = border)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = pet_rows(per_split)
    every = sorted(rows["trainval"] + rows["test"], key=lambda r: (r[1], r[0]))
    sizes = {}
    images = folder / "images.tar.gz"
    with tarfile.open(images, "w:gz", format=tarfile.GNU_FORMAT) as tf:
        _add_dir(tf, "images")
        for i, (name, *_) in enumerate(every):
            h, w = (375, 500) if i % 2 == 0 else (500, 375)
            arr = _photo(rng, h, w)
            sizes[name] = (h, w)
            _add(tf, f"images/{name}.jpg", _image_bytes(arr[..., 0] if i == 3 else arr, "JPEG"))
    lines = lambda rs: "".join(f"{n} {c} {s} {b}\n" for n, c, s, b in rs)  # noqa: E731
    header = (
        "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
        "#BREED ID: 1-25:Cat 1:12:Dog\n#All images with 1st letter as captial are cat images\n"
        "#images with small first letter are dog images\n"
    )
    annotations = folder / "annotations.tar.gz"
    with tarfile.open(annotations, "w:gz", format=tarfile.GNU_FORMAT) as tf:
        _add_dir(tf, "annotations")
        _add(tf, "annotations/README", b"Oxford-IIIT Pet fixture\n")
        _add(tf, "annotations/list.txt", (header + lines(every)).encode())
        _add(tf, "annotations/trainval.txt", lines(rows["trainval"]).encode())
        _add(tf, "annotations/test.txt", lines(rows["test"]).encode())
        _add_dir(tf, "annotations/trimaps")
        for name, (h, w) in sizes.items():
            tri = np.full((h, w), 2, np.uint8)
            tri[h // 6 : -h // 6, w // 6 : -w // 6] = 3
            tri[h // 5 : -h // 5, w // 5 : -w // 5] = 1
            _add(tf, f"annotations/trimaps/{name}.png", _image_bytes(tri, "PNG"))
    return {images.name: _sha256(images), annotations.name: _sha256(annotations)}


def write_isbi(folder: Path, seed: int = 0) -> dict[str, str]:
    """``train/image/N.png`` (8-bit grey) and ``train/label/N.png`` (0 = membrane, 255 = cell),
    N = 0..29, 512x512: the 30 files the loader fetches one by one, already in place."""
    rng = np.random.default_rng(seed)
    table = {}
    yy, xx = np.mgrid[:512, :512]
    for i in range(30):
        img = ((np.sin(xx / (7 + i)) + np.cos(yy / 11)) * 60 + 128).astype(np.uint8)
        img = np.clip(img.astype(np.int16) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
        lab = np.where((xx + 3 * i) % 37 < 3, 0, 255).astype(np.uint8) & np.where(yy % 41 < 3, 0, 255).astype(
            np.uint8
        )
        for kind, arr in (("image", img), ("label", lab)):
            path = folder / "train" / kind / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_image_bytes(arr, "PNG"))
            table[f"{kind}/{i}.png"] = _sha256(path)
    return table


def _voc_xml(image_id: str, h: int, w: int, objects: list[tuple[str, tuple, int, int]]) -> bytes:
    objs = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>{trunc}</truncated>\n"
        f"\t\t<difficult>{diff}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>\n"
        f"\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, (x1, y1, x2, y2), trunc, diff in objects
    )
    return (
        f"<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>{image_id}.jpg</filename>\n"
        f"\t<source>\n\t\t<database>The VOC2007 Database</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
        f"\t<segmented>0</segmented>\n{objs}</annotation>\n"
    ).encode()


def _voc_tar(path: Path, ids: dict[str, list[str]], first: int, rng: np.random.Generator) -> None:
    from cvlib.data.voc import VOC_CLASSES

    base = "VOCdevkit/VOC2007"
    every = sorted({i for v in ids.values() for i in v})
    present: dict[str, set[str]] = {}
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for d in ("VOCdevkit", base, f"{base}/Annotations", f"{base}/JPEGImages", f"{base}/ImageSets",
                  f"{base}/ImageSets/Main"):  # fmt: skip
            _add_dir(tf, d)
        for k, image_id in enumerate(every):
            h, w = (375, 500) if k % 2 == 0 else (500, 333)
            objects = []
            for j in range(1 + k % 3):
                cls = VOC_CLASSES[(first + 3 * k + j) % len(VOC_CLASSES)]
                x1, y1 = int(rng.integers(1, w // 2)), int(rng.integers(1, h // 2))
                x2, y2 = int(rng.integers(x1 + 20, w + 1)), int(rng.integers(y1 + 20, h + 1))
                objects.append((cls, (x1, y1, x2, y2), int(x2 == w), int(j == 2)))  # some difficult
                present.setdefault(image_id, set()).add(cls)
            _add(tf, f"{base}/Annotations/{image_id}.xml", _voc_xml(image_id, h, w, objects))
            _add(tf, f"{base}/JPEGImages/{image_id}.jpg", _image_bytes(_photo(rng, h, w), "JPEG"))
        for split, members in ids.items():  # split lists, then per-class lists (1 / -1)
            _add(tf, f"{base}/ImageSets/Main/{split}.txt", "".join(f"{i}\n" for i in members).encode())
            for cls in VOC_CLASSES:
                body = "".join(f"{i} {1 if cls in present[i] else -1:>2}\n" for i in members)
                _add(tf, f"{base}/ImageSets/Main/{cls}_{split}.txt", body.encode())


def write_voc2007(
    folder: Path, n_train: int = 6, n_val: int = 6, n_test: int = 8, seed: int = 0
) -> dict[str, str]:
    """``VOCtrainval_06-Nov-2007.tar`` (splits train, val, trainval) and ``VOCtest_06-Nov-2007.tar``
    (test), each holding ``VOCdevkit/VOC2007/{Annotations,JPEGImages,ImageSets/Main}`` with 1-based
    inclusive boxes, truncated and difficult flags, as the originals."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train = [f"{2 * k + 12:06d}" for k in range(n_train)]
    val = [f"{2 * k + 13:06d}" for k in range(n_val)]
    test = [f"{2 * k + 1:06d}" for k in range(n_test)]
    trainval_tar, test_tar = folder / "VOCtrainval_06-Nov-2007.tar", folder / "VOCtest_06-Nov-2007.tar"
    _voc_tar(trainval_tar, {"train": train, "val": val, "trainval": sorted(train + val)}, 0, rng)
    _voc_tar(test_tar, {"test": test}, 7, rng)
    return {p.name: _sha256(p) for p in (trainval_tar, test_tar)}


# ----------------------------------------------------------------------------------------------
# ImageNet weights in torchvision's layout


def weight_specs() -> dict[str, list[tuple[str, object]]]:
    """Model name -> [(tag, WeightSpec)] for every classification family with a weight table."""
    import importlib
    import pkgutil

    import cvlib.models.classification as cls_pkg
    from cvlib.models.classification._weights import WeightSpec

    manifest = json.loads(MANIFEST.read_text())["models"]
    found: dict[str, dict[str, object]] = {}

    def walk(obj, tag=None):
        if isinstance(obj, WeightSpec):
            stem = obj.url.rsplit("/", 1)[-1]
            names = [m for m in manifest if re.match(rf"{re.escape(m)}[-_]", stem)]
            if names:
                found.setdefault(max(names, key=len), {})[tag or "imagenet"] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, k if isinstance(v, WeightSpec) else tag)

    for info in pkgutil.iter_modules(cls_pkg.__path__):
        mod = importlib.import_module(f"{cls_pkg.__name__}.{info.name}")
        for value in vars(mod).values():
            if isinstance(value, dict):
                walk(value)
    return {k: sorted(v.items()) for k, v in found.items()}


def random_state_dict(model: str, seed: int = 0) -> dict:
    """A state dict with torchvision's keys and shapes for ``model`` and random values (running
    variances positive, ``num_batches_tracked`` an int64 scalar)."""
    import torch

    layout = json.loads(MANIFEST.read_text())["models"][model]
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        size = [int(d) for d in shape.split("x")] if shape else []
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(size, generator=g) + 0.5
        elif key.endswith("running_mean") or key.endswith(".bias"):
            state[key] = torch.randn(size, generator=g) * 0.01
        elif len(size) > 1:  # conv / linear weights: variance 1 / fan-in
            state[key] = torch.randn(size, generator=g) / float(np.prod(size[1:])) ** 0.5
        else:  # norm scales
            state[key] = 1 + 0.01 * torch.randn(size, generator=g)
    return state


def write_weights(folder: Path, models: list[str]) -> dict[str, str]:
    """``<folder>/weights/<torchvision file name>`` for every tag of each model, as
    ``cvlib.models.classification._weights.weights_path`` expects them."""
    import torch

    from cvlib.models.classification._weights import weights_path

    specs = weight_specs()
    table = {}
    for model in models:
        if model not in specs:
            raise KeyError(f"no weight table names {model!r}; known: {sorted(specs)}")
        state = random_state_dict(model)
        for _, spec in specs[model]:
            dest = folder / "weights" / weights_path(spec).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, dest)
            table[dest.name] = _sha256(dest)
    return table


def models_with_weights(md: Path) -> list[str]:
    """The models whose ImageNet weights a chapter loads (``weights=``/``weights_backbone=``),
    read from its code cells: model names quoted in a cell that passes ``weights=``; the
    ResNet-50 backbone when ``weights_backbone`` (detectors) or ``backbone_weights`` (DeepLab) is
    passed."""
    known = set(json.loads(MANIFEST.read_text())["models"])
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", md.read_text(), flags=re.S)
    found = set()
    for cell in cells:
        # detectors' weights_backbone= and DeepLab's backbone_weights= load an ImageNet ResNet-50
        if re.search(r"(weights_backbone|backbone_weights)[\"']?\s*[=:]\s*(?!None\b)[\"'A-Za-z]", cell):
            found.add("resnet50")
        if re.search(r"(?<![\w])weights[\"']?\s*[=:]\s*(?!None\b)[\"'A-Za-z]", cell):  # a tag is passed
            found |= {m for m in re.findall(r"[\"']([a-z0-9_]+)[\"']", cell) if m in known}
    return sorted(found)


# ----------------------------------------------------------------------------------------------
# the offline cache and the kernel's environment

_SITECUSTOMIZE = '''\
"""fast-dev-run: no network. Every non-loopback connection and DNS lookup is refused."""
import socket as _socket

_LOCAL = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")


def _is_local(host):
    host = host.decode() if isinstance(host, bytes) else str(host)
    return host in _LOCAL or host.startswith("127.") or host.endswith(".localhost")


def _refuse(what):
    raise OSError(101, f"fast-dev-run is offline: refused {what} (a cvlib download was attempted; "
                       f"the fixture cache must hold every file)")


_connect, _connect_ex, _getaddrinfo = _socket.socket.connect, _socket.socket.connect_ex, _socket.getaddrinfo


def connect(self, address):
    if self.family in (_socket.AF_INET, _socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"a connection to {address!r}")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (_socket.AF_INET, _socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"a connection to {address!r}")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_local(host):
        raise _socket.gaierror(-2, f"fast-dev-run is offline: refused the DNS lookup of {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


_socket.socket.connect, _socket.socket.connect_ex, _socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''


def build_cache(root: Path, weight_models: list[str]) -> dict[str, str]:
    """Write every dataset and the weight files into ``root/data`` and the offline shim into
    ``root/offline``; return the environment variables the notebooks' kernels need."""
    data = root / "data"
    table: dict[str, str] = {}
    table |= write_mnist(data / "mnist")
    table |= write_mnist(data / "fashion_mnist")  # the same bytes: the override is keyed by file name
    table |= write_cifar10(data / "cifar10")
    table |= write_pets(data / "oxford_pets")
    table |= write_isbi(data / "isbi2012")
    table |= write_voc2007(data / "voc")
    table |= write_weights(data, weight_models)
    override = root / "checksums_override.json"
    override.write_text(json.dumps(table, indent=1, sort_keys=True))
    offline = root / "offline"
    offline.mkdir(exist_ok=True)
    (offline / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    (root / "home").mkdir(exist_ok=True)  # an empty home: nothing comes from a user's caches
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, every proxied request fails
    return {
        "CVLIB_SIZE": "full",
        "CVLIB_FAST_DEV_RUN": str(FAST_DEV_STEPS),
        "CVLIB_DATA": str(data),
        "CVLIB_DEVICE": "cpu",
        "CVLIB_CHECKSUMS_OVERRIDE": str(override),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(offline)] + [p for p in [os.environ.get("PYTHONPATH", "")] if p]),
        "TORCH_HOME": str(root / "torch_home"),  # nothing may come from a user's torch cache
        "HOME": str(root / "home"),
        "MPLBACKEND": "Agg",
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
    }


# ----------------------------------------------------------------------------------------------
# running a chapter


@dataclass
class RunResult:
    """One chapter's fast-dev-run: seconds, per-cell seconds, and the first error (if any)."""

    chapter: str
    seconds: float = 0.0
    cell_seconds: dict[int, float] = field(default_factory=dict)
    error_cell: int | None = None
    error: str | None = None
    error_source: str | None = None
    error_trace: str | None = None
    cpu_seconds: float | None = None
    peak_rss_mib: int | None = None
    later_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def slowest(self, n: int = 3) -> list[tuple[int, float]]:
        return sorted(self.cell_seconds.items(), key=lambda kv: -kv[1])[:n]

    def summary(self) -> str:
        state = "pass" if self.ok else f"FAIL at cell {self.error_cell}: {self.error}"
        if self.later_errors:
            state += f" (then {len(self.later_errors)} more: " + "; ".join(self.later_errors) + ")"
        slow = ", ".join(f"cell {i} {s:.1f}s" for i, s in self.slowest())
        cost = f"{self.seconds:.1f} s wall, {self.cpu_seconds} s CPU, peak {self.peak_rss_mib} MiB"
        return f"{self.chapter}: {state} ({cost}; slowest {slow})"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _trace(traceback: list[str]) -> str:
    return "\n".join(_ANSI.sub("", "\n".join(traceback)).strip().splitlines()[-25:])


def run_chapter(md: Path, env: dict[str, str], timeout: int = 600, keep_going: bool = False) -> RunResult:
    """Execute ``md`` (jupytext MyST) in a fresh kernel with ``env`` added, in ``md``'s folder; the
    notebook is not written back. Cells tagged ``raises-exception`` may raise; any other error stops
    the run and is recorded with its cell index (0-based, over all cells of the notebook).
    ``keep_going``: run every cell anyway and list the later errors too (diagnosis only).

    The kernel is driven by ``tools/kernel_runner.py`` (jupyter_client's blocking client), not
    nbclient: under pytest-xdist nbclient's asyncio client sometimes waited minutes for a reply the
    idle kernel had already sent."""
    import jupytext
    from kernel_runner import Kernel, run_cells

    nb = jupytext.read(md, fmt="md:myst")
    result = RunResult(md.stem)
    t0 = time.perf_counter()
    with Kernel(env, cwd=md.parent) as kernel:
        result.cell_seconds, failures = run_cells(kernel, nb.cells, timeout, keep_going)
        result.seconds = round(time.perf_counter() - t0, 1)
        if kernel.km.is_alive():
            _probe(kernel, result)
    if failures:
        first = failures[0]
        result.error_cell, result.error, result.error_source = first.index, first.error[:2000], first.source
        result.error_trace = _trace(first.traceback)
        result.later_errors = [f"cell {f.index} {f.error[:200]}" for f in failures[1:]]
    return result


_PROBE = """
import json as _json, resource as _resource
_self, _kids = _resource.getrusage(_resource.RUSAGE_SELF), _resource.getrusage(_resource.RUSAGE_CHILDREN)
_cpu = _self.ru_utime + _self.ru_stime + _kids.ru_utime + _kids.ru_stime
_rss = max(_self.ru_maxrss, _kids.ru_maxrss) / 1024
print("FASTDEV-PROBE", _json.dumps({"cpu_s": _cpu, "peak_rss_mib": _rss}))
"""


def _probe(kernel, result: RunResult) -> None:
    """The kernel's CPU seconds (with its children) and peak resident memory, after the chapter."""
    for line in kernel.execute(_PROBE, timeout=60).text.splitlines():
        if line.startswith("FASTDEV-PROBE "):
            probe = json.loads(line.split(" ", 1)[1])
            result.cpu_seconds = round(probe["cpu_s"], 1)
            result.peak_rss_mib = round(probe["peak_rss_mib"])


def chapters() -> list[Path]:
    return sorted(NOTEBOOKS.glob("ch*.md"))


def weight_models_for(mds: list[Path]) -> list[str]:
    return sorted({m for md in mds for m in models_with_weights(md)})


def main(argv: list[str] | None = None) -> int:
    """``python tools/fastdev.py [chapter.md ...] [--keep DIR]``: build the cache, run, report."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description="fast-dev-run of the full configuration of the chapters")
    ap.add_argument("md", nargs="*", type=Path, help="chapters (default: notebooks/ch*.md)")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the cache (default: a temp dir)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--keep-going", action="store_true", help="run every cell; list every error")
    ap.add_argument("--trace", action="store_true", help="print the end of each traceback")
    args = ap.parse_args(argv)
    mds = args.md or chapters()
    root = args.dir or Path(tempfile.mkdtemp(prefix="cvlib-fastdev-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    env = build_cache(root, weight_models_for(mds))
    print(f"fixture cache in {root} ({time.perf_counter() - t0:.1f} s)", flush=True)
    results = []
    for md in mds:
        r = run_chapter(md, env, args.timeout, keep_going=args.keep_going)
        results.append(r)
        print(r.summary(), flush=True)
        if not r.ok and r.error_source:
            print("    " + r.error_source.replace("\n", "\n    ")[:1500], flush=True)
            if args.trace and r.error_trace:
                print("    " + r.error_trace.replace("\n", "\n    "), flush=True)
    total = sum(r.seconds for r in results)
    print(f"total {total:.1f} s, {sum(r.ok for r in results)}/{len(results)} passed")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
