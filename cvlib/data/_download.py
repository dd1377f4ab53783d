"""Downloading and unpacking datasets safely: checksums, atomic writes, safe archive extraction.

Every real dataset in :mod:`cvlib.data` is fetched through :func:`download_url`, which

* streams the file into a temporary file in the destination directory,
* hashes it on the fly and compares the SHA-256 with the published value,
* only then moves it into place with :func:`os.replace` (atomic on one file system).

On any failure (network error, checksum mismatch, ``KeyboardInterrupt``) the temporary file is
removed, so the cache never holds a half-written or unverified file. Archives are unpacked by
:func:`extract_archive` into a temporary directory first and renamed into place afterwards, and
members that would land outside the target (absolute paths, ``..``, links) are refused.

The cache directory is ``$CVLIB_DATA`` when set, else ``~/.cache/cvlib``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

__all__ = [
    "DATA_ENV",
    "ChecksumError",
    "DownloadError",
    "cache_dir",
    "sha256sum",
    "download_url",
    "download_any",
    "extract_archive",
]

DATA_ENV = "CVLIB_DATA"
_CHUNK = 1 << 20
logger = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A file could not be fetched (offline, URL gone, server error)."""


class ChecksumError(RuntimeError):
    """A file's SHA-256 differs from the published value."""


def cache_dir() -> Path:
    """The directory datasets are cached in: ``$CVLIB_DATA`` if set, else ``~/.cache/cvlib``.

    The directory is not created here; the loaders create the sub-directory they write to.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cvlib"


def sha256sum(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a str, got {type(sha256).__name__}")
    value = sha256.strip().lower()
    if not 8 <= len(value) <= 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"sha256 must be 64 hex digits (or a prefix of at least 8), got {sha256!r}")
    return value


def download_url(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, verify its SHA-256 and move it into place atomically.

    If ``dest`` already exists with the right checksum nothing is downloaded.

    Args:
        url: the address to fetch (``http(s)://`` or ``file://``).
        dest: the final file path; its parent directory is created.
        sha256: the expected SHA-256 (64 hex digits) of the downloaded bytes, or a prefix of at
            least 8 digits where only that is published (torchvision's weight files).
        progress: show a ``tqdm.auto`` progress bar.
        timeout: socket timeout in seconds.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: the URL could not be fetched; the message names the URL and the
            ``root=`` / ``$CVLIB_DATA`` overrides.
        ChecksumError: the bytes do not hash to ``sha256``; nothing is left at ``dest``.
    """
    expected = _check_sha256(sha256)
    dest = Path(dest)
    if dest.is_file() and sha256sum(dest).startswith(expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (fixed URLs)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise DownloadError(
                    f"could not download {url}: {e}. If you are offline, download the file yourself "
                    f"and pass root= the directory that holds it, or set ${DATA_ENV} to a directory "
                    f"with a copy of the data."
                ) from e
            with response:
                total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                bar = tqdm(
                    total=int(total) if total and total.isdigit() else None,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                    leave=False,
                )
                with bar:
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                            raise DownloadError(
                                f"download of {url} failed part way: {e}. Try again, or pass root= a "
                                f"directory with a local copy (or set ${DATA_ENV})."
                            ) from e
                        if not chunk:
                            break
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
        actual = h.hexdigest()
        if not actual.startswith(expected):
            raise ChecksumError(
                f"checksum mismatch for {dest.name} downloaded from {url}: expected sha256 {expected}, "
                f"got {actual}. The file was deleted; the download was corrupted or the source changed."
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("downloaded %s to %s", url, dest)
    return dest


def download_any(urls: Sequence[str], dest: str | os.PathLike, sha256: str, progress: bool = True) -> Path:
    """Try mirrors in order with :func:`download_url`; the first verified download wins.

    Raises:
        DownloadError: every mirror failed (the message lists each URL and its error).
        ChecksumError: a mirror served different bytes (not retried: a changed file is news).
    """
    if isinstance(urls, str) or len(urls) == 0:
        raise ValueError(f"urls must be a non-empty sequence of URLs, got {urls!r}")
    errors = []
    for url in urls:
        try:
            return download_url(url, dest, sha256, progress=progress)
        except DownloadError as e:
            errors.append(f"  {url}: {e.__cause__ or e}")
    raise DownloadError(
        f"could not download {Path(dest).name} from any mirror:\n" + "\n".join(errors) + "\n"
        f"If you are offline, pass root= a directory with a local copy of the data, or set ${DATA_ENV}."
    )


def _safe_target(base: Path, name: str, archive: Path) -> Path:
    target = (base / name).resolve()
    if os.path.isabs(name) or (target != base and base not in target.parents):
        raise ValueError(f"archive {archive} has a member outside the target directory: {name!r}")
    return target


def extract_archive(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Unpack a ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` archive into ``dest_dir``, all or nothing.

    Members are extracted into a temporary directory inside ``dest_dir``; only after the whole
    archive has been read are its top-level entries renamed into ``dest_dir`` (replacing old
    entries of the same name). A corrupt or truncated archive leaves ``dest_dir`` unchanged.
    Absolute paths, ``..`` components, links and device files are refused.

    Returns:
        The top-level paths created in ``dest_dir``, sorted.

    Raises:
        FileNotFoundError: ``archive`` does not exist.
        ValueError: the archive is corrupt, truncated, of an unknown type or unsafe.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".extract", dir=dest_dir))
    try:
        base = tmp.resolve()
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, base)
        else:
            _extract_tar(archive, base)
        created = []
        for entry in sorted(base.iterdir()):
            target = dest_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
            created.append(target)
        return created
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract_zip(archive: Path, base: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ValueError(f"archive {archive} is corrupt: member {bad!r} fails its CRC check")
            for info in zf.infolist():
                _safe_target(base, info.filename, archive)
            zf.extractall(base)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
        raise ValueError(f"archive {archive} is corrupt or truncated: {e}") from e


def _extract_tar(archive: Path, base: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                if not (member.isfile() or member.isdir()):
                    raise ValueError(
                        f"archive {archive} has a link or special file, refused: {member.name!r}"
                    )
                target = _safe_target(base, member.name, archive)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                if src is None:  # pragma: no cover - isfile() members always have data
                    raise ValueError(f"archive {archive}: cannot read member {member.name!r}")
                with src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
    except tarfile.ReadError as e:
        raise ValueError(
            f"archive {archive} is not a readable tar archive (corrupt or truncated): {e}"
        ) from e
    except (EOFError, OSError, zlib.error, tarfile.TarError) as e:
        raise ValueError(f"archive {archive} is corrupt or truncated: {e}") from e
