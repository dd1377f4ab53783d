"""cvlib.data.isbi: PNG pairs written here, and the real data when ../shared/data is present."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvlib.data import isbi
from cvlib.data._download import ChecksumError, sha256sum
from cvlib.data.isbi import load_isbi2012

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _write(root, n=3, size=16, names=None):
    rng = np.random.default_rng(0)
    (root / "train/image").mkdir(parents=True)
    (root / "train/label").mkdir(parents=True)
    imgs, labs = [], []
    for i in names or range(n):
        img = rng.integers(0, 256, (size, size), dtype=np.uint8)
        lab = np.where(rng.random((size, size)) < 0.3, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"train/image/{i}.png")
        Image.fromarray(lab).save(root / f"train/label/{i}.png")
        imgs.append(img)
        labs.append(lab)
    return imgs, labs


def test_load_pairs_in_numeric_order(tmp_path, trust):
    imgs, labs = _write(tmp_path, names=[0, 1, 2, 10])  # "10" sorts after "2" numerically
    trust(tmp_path / "train", base=tmp_path / "train")
    x, m = load_isbi2012(root=tmp_path, download=False)
    assert x.shape == (4, 1, 16, 16) and x.dtype == torch.float32 and m.shape == (4, 16, 16)
    assert m.dtype == torch.int64
    np.testing.assert_allclose(x[3, 0].numpy() * 255, imgs[3], atol=1e-3)
    assert torch.equal(m[3], torch.from_numpy((labs[3] == 0).astype(np.int64)))  # black = membrane = 1


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True or root="):
        load_isbi2012(root=tmp_path, download=False)
    _write(tmp_path, n=2)
    (tmp_path / "train/label/1.png").unlink()
    with pytest.raises(ValueError, match=r"images without a label .*\['1\.png'\]"):
        load_isbi2012(root=tmp_path, download=False)


def test_download_table(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(isbi, "download_any", lambda urls, dest, sha, progress: calls.append(urls[0]))
    with pytest.raises(FileNotFoundError):  # the fake downloads wrote nothing
        load_isbi2012(root=tmp_path)
    assert len(calls) == 60 and calls[0].startswith("https://raw.githubusercontent.com/zhixuhao/unet/")
    assert isbi.ISBI_COMMIT in calls[0] and "/master/" not in calls[0]  # pinned, not a moving branch


@pytest.mark.skipif(not (SHARED / "isbi2012_membrane").is_dir(), reason="../shared/data not present")
def test_real_isbi():
    root = SHARED / "isbi2012_membrane"
    x, m = load_isbi2012(root=root, download=False)
    assert x.shape == (30, 1, 512, 512) and m.shape == (30, 512, 512)
    frac = m.float().mean().item()
    assert 0.15 < frac < 0.3  # membranes are the thin minority class (~22 %)
    # the copy is the one the download table describes
    for rel in ("image/0.png", "label/29.png"):
        assert sha256sum(root / "train" / rel) == isbi.ISBI_SHA256[rel]


def _server(tmp_path):
    """60 fixture PNGs in the repository layout, and a fake urlopen serving them."""
    src = tmp_path / "server"
    _write(src, n=30, size=8)
    return src


def test_interrupted_download_resumes(tmp_path, monkeypatch, trust):
    import io
    import urllib.request

    src = _server(tmp_path)
    trust(src / "train", base=src / "train")
    served = []

    def fake_urlopen(url, timeout=None):
        rel = url.removeprefix(isbi.ISBI_URL)
        if len(served) == 45 and not resumed:
            raise KeyboardInterrupt  # Ctrl-C part way through the labels
        served.append(rel)
        data = (src / "train" / rel).read_bytes()
        r = io.BytesIO(data)
        r.headers = {"Content-Length": str(len(data))}
        return r

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    dest = tmp_path / "cache"
    dest.mkdir()
    resumed = False
    with pytest.raises(KeyboardInterrupt):
        load_isbi2012(root=dest)
    with pytest.raises(ValueError, match="images without a label.*pass download=True"):
        load_isbi2012(root=dest, download=False)  # the partial state is named
    resumed = True
    x, m = load_isbi2012(root=dest)
    assert x.shape == (30, 1, 8, 8) and m.shape == (30, 8, 8)
    assert len(served) == 60  # the first 45 files were not fetched twice
    assert not list(dest.rglob("*.part"))


def test_files_on_disk_are_checked(tmp_path):
    _write(tmp_path, n=2)  # fixture files that are not the published ones, no override
    with pytest.raises(ChecksumError, match=r"image/0\.png is not the ISBI 2012 file image/0\.png"):
        load_isbi2012(root=tmp_path, download=False)


def test_wrong_root_creates_nothing(tmp_path):
    with pytest.raises(NotADirectoryError):
        load_isbi2012(root=tmp_path / "typo", download=True)
    assert list(tmp_path.iterdir()) == []


def test_bundled_pairs():
    x, m = load_isbi2012(subset="small")
    assert x.shape == (8, 1, 512, 512) and m.shape == (8, 512, 512)
    frac = m.float().mean().item()
    assert 0.15 < frac < 0.3  # real membranes: the thin minority class
    assert 0.2 < x.mean().item() < 0.8 and x.std().item() > 0.1
    from cvlib.data._bundled import BUNDLED_DIR

    for rel in ("image/0.png", "label/7.png"):  # byte copies of the published files
        assert sha256sum(BUNDLED_DIR / "isbi2012" / "train" / rel) == isbi.ISBI_SHA256[rel]
