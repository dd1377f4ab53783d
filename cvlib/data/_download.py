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

Robustness: a transfer shorter than its ``Content-Length`` (or cut off part way) is a
:class:`DownloadError`, so :func:`download_any` moves on to the next mirror; reads time out after
``timeout`` seconds and a transfer slower than ``min_rate`` bytes/s on average (after a grace
period) is abandoned; ``.part`` files and ``.extract`` folders left by a killed process are removed
once they are older than :data:`ORPHAN_AGE_S`. Files already on disk are checked with
:func:`verify_file` before they are used.

Test-only override: ``$CVLIB_CHECKSUMS_OVERRIDE`` may name a JSON file mapping file names (or a
loader's relative paths, e.g. ``"image/0.png"``) to SHA-256 digests; :func:`expected_sha256`
returns those instead of the published values. It exists so that tests (and the fast-dev-run of
the full configuration) can use fixture files they wrote themselves. **Never set it otherwise**:
unset, every file is checked against the published digest.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
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
    "CHECKSUMS_OVERRIDE_ENV",
    "ORPHAN_AGE_S",
    "expected_sha256",
    "verify_file",
    "check_root",
    "clean_orphans",
    "download_url",
    "download_any",
    "extract_archive",
]

DATA_ENV = "CVLIB_DATA"
CHECKSUMS_OVERRIDE_ENV = "CVLIB_CHECKSUMS_OVERRIDE"
ORPHAN_AGE_S = 600.0  # a .part / .extract untouched this long belongs to no live download
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


def expected_sha256(name: str, published: str) -> str:
    """The SHA-256 a file must have: ``published``, unless the test-only override names ``name``.

    Args:
        name: the file name or the loader's relative path (``"train-images-idx3-ubyte.gz"``).
        published: the digest published by the data's authors.

    Raises:
        ValueError: ``$CVLIB_CHECKSUMS_OVERRIDE`` is set but is not a readable JSON object of
            name -> hex digest.
    """
    path = os.environ.get(CHECKSUMS_OVERRIDE_ENV, "").strip()
    if not path:
        return published
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"${CHECKSUMS_OVERRIDE_ENV}={path!r} is not a readable JSON file: {e}") from e
    if not isinstance(table, dict):
        raise ValueError(f"${CHECKSUMS_OVERRIDE_ENV}={path!r} must hold a JSON object name -> sha256")
    for key in (name, Path(name).name):
        if key in table:
            return _check_sha256(table[key])
    return published


def verify_file(path: str | os.PathLike, sha256: str | Sequence[str], what: str = "") -> Path:
    """Check a file already on disk against its expected SHA-256 (or one of several).

    Raises:
        FileNotFoundError: no such file.
        ChecksumError: the digest differs; the message names the file, the expected and the
            actual digest, and what the file was supposed to be.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    accepted = [_check_sha256(s) for s in ([sha256] if isinstance(sha256, str) else sha256)]
    actual = sha256sum(path)
    if not any(actual.startswith(a) for a in accepted):
        raise ChecksumError(
            f"{path} is not {what or 'the expected file'}: its sha256 is {actual}, expected "
            f"{' or '.join(accepted)}. Check that root= points at the right dataset, or delete the file "
            f"to download it again."
        )
    return path


def check_root(root: str | os.PathLike | None, default: Path, argument: str = "root") -> Path:
    """Validate a loader's ``root``: None gives ``default``; otherwise an existing directory.

    Nothing is created here, so a mistyped ``root`` never leaves folders in the wrong place.

    Raises:
        TypeError: ``root`` is not a str or path.
        NotADirectoryError: ``root`` does not exist or is not a directory.
    """
    if root is None:
        return default
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{argument} must be a str or os.PathLike, got {type(root).__name__}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise NotADirectoryError(
            f"{argument}={str(root)!r} is not an existing directory; create it first, or leave "
            f"{argument}=None to use the cache ({default}, set ${DATA_ENV} to move it)"
        )
    return path


def clean_orphans(folder: str | os.PathLike, max_age_s: float = ORPHAN_AGE_S) -> list[Path]:
    """Remove ``.part`` files and ``.extract`` folders left in ``folder`` by killed downloads.

    Only entries not modified for ``max_age_s`` seconds are removed (a live download in another
    process keeps writing to its own). Returns the removed paths.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for entry in folder.iterdir():
        if not entry.name.startswith(".") or not entry.name.endswith((".part", ".extract", ".tmp")):
            continue
        try:
            if now - entry.stat().st_mtime < max_age_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:  # pragma: no cover - raced with another cleaner
            continue
    return removed


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
    min_rate: float = 1024.0,
    grace_s: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, verify its SHA-256 and move it into place atomically.

    If ``dest`` already exists with the right checksum nothing is downloaded.

    Args:
        url: the address to fetch (``http(s)://`` or ``file://``).
        dest: the final file path; its parent directory is created.
        sha256: the expected SHA-256 (64 hex digits) of the downloaded bytes, or a prefix of at
            least 8 digits where only that is published (torchvision's weight files).
        progress: show a ``tqdm.auto`` progress bar.
        timeout: socket timeout in seconds (connecting, and each read).
        min_rate: after ``grace_s`` seconds, abandon a transfer whose average rate falls below
            this many bytes per second (a stalled or trickling server).
        grace_s: seconds before ``min_rate`` is enforced.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: the URL could not be fetched, the transfer was cut short (fewer bytes
            than its ``Content-Length``) or too slow; the message names the URL and the
            ``root=`` / ``$CVLIB_DATA`` overrides.
        ChecksumError: the bytes do not hash to ``sha256``; nothing is left at ``dest``.
    """
    expected = _check_sha256(sha256)
    dest = Path(dest)
    if dest.is_file() and sha256sum(dest).startswith(expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(dest.parent)
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
                expected_len = int(total) if total and total.isdigit() else None
                received = 0
                start = time.monotonic()
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
                        received += len(chunk)
                        elapsed = time.monotonic() - start
                        if elapsed > grace_s and received < min_rate * elapsed:
                            raise DownloadError(
                                f"download of {url} is too slow ({received} bytes in {elapsed:.0f} s, "
                                f"below {min_rate:.0f} B/s); abandoned. Try again later, or pass root= a "
                                f"directory with a local copy (or set ${DATA_ENV})."
                            )
                if expected_len is not None and received != expected_len:
                    raise DownloadError(
                        f"download of {url} was cut short: {received} of {expected_len} bytes "
                        f"(Content-Length). Try again, or pass root= a directory with a local copy."
                    )
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

    A mirror that fails, cuts the transfer short, stalls, or serves bytes with another checksum
    is skipped; the next one is tried.

    Raises:
        ChecksumError: no mirror served the expected bytes and at least one served different
            ones (a changed file is news: the message lists each mirror and what went wrong).
        DownloadError: every mirror failed (the message lists each URL and its error).
    """
    if isinstance(urls, str) or len(urls) == 0:
        raise ValueError(f"urls must be a non-empty sequence of URLs, got {urls!r}")
    errors = []
    mismatch = False
    for url in urls:
        try:
            return download_url(url, dest, sha256, progress=progress)
        except DownloadError as e:
            errors.append(f"  {url}: {e.__cause__ or e}")
        except ChecksumError as e:
            mismatch = True
            errors.append(f"  {url}: {e}")
    if mismatch:
        raise ChecksumError(
            f"no mirror served {Path(dest).name} with the published sha256:\n" + "\n".join(errors)
        )
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
    clean_orphans(dest_dir)
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
