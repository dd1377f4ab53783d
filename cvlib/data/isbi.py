"""The ISBI 2012 EM segmentation challenge training set (Arganda-Carreras et al. 2015,
doi:10.3389/fnana.2015.00142), the data of the U-Net paper (Ronneberger et al. 2015,
arXiv:1505.04597): 30 serial-section electron-microscopy images of 512x512 pixels with binary
membrane masks.

On disk (the layout of the zhixuhao/unet repository, MIT licence, which redistributes the
challenge's training volume as PNG files): ``train/image/N.png`` (8-bit grey) and
``train/label/N.png`` (8-bit, 0 = membrane, 255 = cell interior), N = 0..29.

Mask convention returned here: **membrane = 1, cell interior = 0** (the thin structure is the
positive class; label pixels below 128 count as membrane). Downloads come from
the zhixuhao/unet repository at the fixed commit :data:`ISBI_COMMIT` (:data:`ISBI_URL`; the
``master`` branch is a fallback mirror), file by file, each checked against the SHA-256 below
(computed from a copy of that folder) and written atomically, so an interrupted download resumes
where it stopped: files already present and verified are kept, the rest fetched.

Files on disk are checked against the same table (keys ``image/N.png``, ``label/N.png``).

Subsets: at ``CVLIB_SIZE=small`` (or ``subset="small"``) the first 8 pairs (0..7), bundled
inside the package byte for byte (``cvlib/data/bundled/isbi2012/``), are read by the same code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from cvlib.data._bundled import bundled_dir, resolve_subset
from cvlib.data._download import (
    DownloadError,
    cache_dir,
    check_root,
    download_any,
    expected_sha256,
    verify_file,
)

__all__ = ["ISBI_COMMIT", "ISBI_URL", "ISBI_MIRRORS", "ISBI_SHA256", "load_isbi2012"]

# A fixed commit of github.com/zhixuhao/unet holding data/membrane/train/{image,label}/N.png, so the
# URL does not follow a moving branch; the digests below are checked on every file either way.
ISBI_COMMIT = "909ae9b5fefd8a55900e24a771b073b1d4ef70ff"
ISBI_URL = f"https://raw.githubusercontent.com/zhixuhao/unet/{ISBI_COMMIT}/data/membrane/train/"
ISBI_MIRRORS = (ISBI_URL, "https://raw.githubusercontent.com/zhixuhao/unet/master/data/membrane/train/")

# path under train/ -> sha256
_TABLE = """
image/0.png 12c0ed6f42fc09f512abf6b354f217c950e4c8223b57a0315449b62a14556523
image/1.png 2cfc7ee635a6f85d5faf5c82a71d3a37bf5af4784b554964e3e07193e3ee2166
image/2.png fe60d8d4f93102666a23a18d718b4b59fab8e616987d11c5072f4a87fac7301f
image/3.png 636d16cbb02f99dda4c9fb6db98dfba066142afa981ffdcfaf54453982e8250c
image/4.png 991fb3a8e4abc73da1d6159ca28fa4397f0a8351f30a8ba3669c86414d2ce239
image/5.png 7e9d9fb787664336d6f2cd68b23986f04527e7f8f494410983b4d70c6de1de3b
image/6.png 7c0a87933ffc72f4ff02f5996d9c3f69fe9a0b5277507415743ad8afb5e5d308
image/7.png 19f2c25716107d41008c83ba8a814ae47a090e00dea766dde38dce1f00899270
image/8.png a8979e4abd1a10af9ca75e614d97875659adbd8ee3a68eba483bf556cfe3023d
image/9.png 730ebf435ab0f6e625d342552ad03736799fd660d0c6af744674c61a46aa082a
image/10.png 7c3717bcd48c4b7e5c878d7f0b809b8687a4e6fac471f3863de320a82ee72b8a
image/11.png dd7857b25ca1417f87c282750e22c50947f75e81fa032d4e0c96b902c9dc9757
image/12.png 9f8eff9239bb764d51524a998387a7babcff9f62161804651b030b81aabd5ab8
image/13.png 377e5cdbcd7f0ac7336f482fc7ead7446887863f26769b3841fe98aadca77dad
image/14.png f50d2d77acd2df564c5f0f40b1b24cd929f5944460aa4cd90c422cb5cef33a59
image/15.png 3e13fdea09accc14f46fb2f3ffa1e882cdd9c53b28a6842c4c10229692c7d1a4
image/16.png ffc951c12450f94129582c16fd0d4b165c4a31469b0c42d966f07c183d3132e2
image/17.png 0f4f7e8e0619e4c7d517ac68d3789a3b6248253747717eac418bb7d32bef4de3
image/18.png 1bb1edd50595861743d14e1955dfa5d3c9395fb87563eca6dc81433bf9df49de
image/19.png 999b55633f8d7082add72082656e9532c5c3d97203b376eb317f09ba88a5a5b7
image/20.png 9153d14bfd15955fab576ea23281c4f23104b45dceed6e03e0b254607f50a1b2
image/21.png 9ad07cf4f67984f17a08aa63e6d92d395ce55f5132e6ff4fa6d95d6890ea7f97
image/22.png 6278609b4c42a7cb43212de0e2e2ceded758bafe0856fb56214ce658a61668e4
image/23.png 9ef4e9fbc838b9791af83a36918d729a0ea2e90ebc71c4a3c4554059f9379756
image/24.png f0f917b9c3e9c96d16ea287aff9b05ecf4de88bc61d478e4aefcb64932fba70c
image/25.png e0154737e76392e8bf94fb2c0dfa5ddad4b53aeec942a0a8cdd8ba63443e6072
image/26.png d0ff11e09b0ee0c817334946e746a38ab621161d5f9c46af95c68b851f8d9a1a
image/27.png eed8e8bee1db8fe7af39b5b43ecf14282c5c33eca0959726eea06f662027eacc
image/28.png 974df4b51e8905bdaabe61e80496cbf331f5c9aa9ddc2cb94113f58c2b7d2837
image/29.png d9ae868509c610a69acbf3d69cde4f36a8e344cbbc444f93c917bf7b9f3e784f
label/0.png 13b67edd7607a1f284c09170c96a27d38422b0ffaf88024ea5b689acb5e1b4b0
label/1.png cff60a00de2901e67165c91d7708d784e4c5bcc9d1c8c677922c905d63bbc3d1
label/2.png a578af998c017f56763b81941c4dc612dde5731809b2cea0e8ebc37aecb84dbb
label/3.png c8ae3b843fed02e09411a24c10850160922c331041b17c2674025f05a99b8834
label/4.png a2f19c01b5d982a97923a0d29e64127a05e3f496731480ac9d9d302b5427f7ff
label/5.png 2dd5779118f6f4d87f88ec112f1cea20663b50acb8c748b0db1f23eda82b5118
label/6.png 2b0984e9f31fb41d4c5f4a754a3e080036b7321a0cbd9591a62010d20a574ce7
label/7.png 2ebc8c835999589bfd7d80d81f83d24e5c41138362b0faafef0f009e1ce82144
label/8.png db979010ca4fbdb38c8b32d455aed0da90d598153f2a0046b63d02a6efa32b9e
label/9.png 8ee6c79adbb740595c4d61776e065e7164c00d52c7dd7562b5279041e7f3567b
label/10.png b0156cc8186b0ee521927ac95645b406a42d27564607a6fea3a59c34add78f7c
label/11.png e47b3aa0cfb3106476af1666e631d45bd16dbf2aff88260ee65d16e4134332db
label/12.png 85a7a899c0b72b81633ad122887ba5161d650385d7775a5b3074eb00131b3620
label/13.png 88549c22fd647312d6b37e17d33e90800d347d60ccb1156a8dde5e67394f9f3d
label/14.png bcd775017eb4fdbdfe7ad6cc6420b2f16aa9d0576894d08370edcf564b46680a
label/15.png 59a854887b504ff00a5b4b93b2299bbc0bf0cbe54dea58d2b31969229b28b369
label/16.png b34eb88cdc3313a6f4190f5753465df7f69d8f3c243a5c25427b1b99ecfe2499
label/17.png 4fa076cbeb744803d987dc46cf308dc3026408e7a5188838e30e25fe3ea67dbe
label/18.png bd009dda57f204804732f592ed1d41ba18961d83c492413fe71548efa4a288d9
label/19.png bf38407c55b6033c1677230228ecb100a11294aa74a7b92e5edfdc4abadcfef9
label/20.png 7af7296f2e892866669d4e4f9c0d4178987e6ec6e7d0751ec238d1bbe2da9c55
label/21.png 772c722acb2eac01769b53fa5037a3d62745e53102398bf9b2202df605cadda4
label/22.png b19f5533ec24077a2395a085fe53af75dd350ef03798c4ff40ba9ebecb2ee0ad
label/23.png 2d8f1df5c9ee83e59eb2d709eb153b0570f12e726690f586154b01b0a88bb540
label/24.png 6ab02d922b5c937ecfe2a479be87a5d3e5ef950dc48da09d31f37b47d899ca9c
label/25.png c5ea59aca7789dd507ac31c4a82bbd4c172f9e3544f8e040442c20d1dfa9e16d
label/26.png b056fae9f358111b6c9e2494bdba645f206be581959b8d3763e97d62a65dd961
label/27.png 5be3823a57c82b632cead6eb09f438c6010a244dc0975f2a3e466f45d2c06840
label/28.png c0b0e2a2b7aad46919d1afc980f7d5e39101fb07948ce65d9cac802d8b47682e
label/29.png 1e8839a97178914171defd6a97158f06fcac1fc3f0d45f2acdff9c49ab3fced9
"""
ISBI_SHA256: dict[str, str] = dict(line.split() for line in _TABLE.strip().splitlines())


def _numeric_key(path: Path) -> tuple[int, str]:
    m = re.fullmatch(r"(\d+)", path.stem)
    return (int(m.group(1)) if m else 1 << 30, path.stem)


def _read_grey(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"{path} is not a readable image: {e}") from e


def load_isbi2012(
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = False,
    *,
    subset: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ISBI 2012 training images with their membrane masks: 30 pairs (full) or the bundled
    first 8 (small).

    Args:
        root: an existing directory holding ``train/image/*.png`` and ``train/label/*.png`` (for
            example ``../shared/data/isbi2012_membrane``), read as the full set. Default
            ``cache_dir() / "isbi2012"``.
        download: fetch missing or damaged files (60 PNGs, each sha256-checked and written
            atomically); an interrupted download resumes.
        progress: show per-file progress bars.
        subset: ``"small"`` (bundled), ``"full"``, or None: chosen by :func:`cvlib.size`
            (``"full"`` when ``root`` is given).

    Returns:
        images (Tensor[N, 1, H, W], float32 in [0, 1]) and masks (Tensor[N, H, W], int64,
        1 = membrane, 0 = cell interior), in numeric file order 0, 1, ...

    Raises:
        FileNotFoundError: files missing and ``download=False``.
        NotADirectoryError: ``root`` is not an existing directory.
        ChecksumError: a file on disk is not the published one.
        ValueError: an image without a label (or the reverse), or differing sizes.
    """
    if resolve_subset(subset, root) == "small":
        folder = bundled_dir("isbi2012")  # verified against the bundle manifest
        checked = True
    else:
        folder = check_root(root, cache_dir() / "isbi2012")
        checked = False
    img_dir, lab_dir = folder / "train" / "image", folder / "train" / "label"
    if not checked and download:
        for rel, sha in ISBI_SHA256.items():  # present and verified files are kept: resumes
            try:
                download_any(
                    [m + rel for m in ISBI_MIRRORS],
                    folder / "train" / rel,
                    expected_sha256(rel, sha),
                    progress,
                )
            except DownloadError as e:
                raise DownloadError(f"ISBI 2012: {e}") from e
    if not (img_dir.is_dir() and any(img_dir.glob("*.png"))):
        raise FileNotFoundError(
            f"ISBI 2012: no PNG images in {img_dir}; pass download=True or root= a directory holding "
            f"train/image/N.png and train/label/N.png"
        )
    images = sorted(img_dir.glob("*.png"), key=_numeric_key)
    labels = {p.name for p in lab_dir.glob("*.png")} if lab_dir.is_dir() else set()
    missing = [p.name for p in images if p.name not in labels]
    if missing:
        raise ValueError(
            f"ISBI 2012: images without a label in {lab_dir}: {missing[:5]}"
            + ("; pass download=True to fetch the missing files" if not download else "")
        )
    extra = sorted(labels - {p.name for p in images})
    if extra:
        raise ValueError(f"ISBI 2012: labels without an image in {img_dir}: {extra[:5]}")
    xs, ms = [], []
    for p in images:
        if not checked:
            for kind in ("image", "label"):
                rel = f"{kind}/{p.name}"
                if rel not in ISBI_SHA256 and expected_sha256(rel, "") == "":
                    raise ValueError(
                        f"ISBI 2012: {folder / 'train' / rel} is not one of the 30 published files "
                        f"(image/0.png ... image/29.png), so it cannot be checked"
                    )
                verify_file(
                    folder / "train" / rel,
                    expected_sha256(rel, ISBI_SHA256.get(rel, "")),
                    f"the ISBI 2012 file {rel}",
                )
        img, lab = _read_grey(p), _read_grey(lab_dir / p.name)
        if img.shape != lab.shape or (xs and img.shape != xs[0].shape):
            raise ValueError(
                f"ISBI 2012: {p.name}: image {img.shape} and label {lab.shape} must share one size "
                f"with the other images {xs[0].shape if xs else img.shape}"
            )
        xs.append(img)
        ms.append(lab < 128)  # black = membrane
    x = torch.from_numpy(np.stack(xs)).unsqueeze(1).float().div_(255.0)  # [N, 1, H, W]
    m = torch.from_numpy(np.stack(ms)).to(torch.int64)  # [N, H, W]
    return x, m
