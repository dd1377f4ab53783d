"""The small real subsets shipped inside the package (``cvlib/data/bundled/``), in their original
on-disk formats, read by the same loaders as the full datasets.

``bundled/manifest.json`` lists every file with its source, licence, the transformation applied
and its SHA-256; :func:`bundled_path` and :func:`bundled_dir` check the digests before a loader
reads the files, so a damaged installation fails loudly instead of training on corrupt data.
``tools/make_bundled_data.py`` regenerates the folder from ``../shared/data``.

Which subset a loader reads is chosen by :func:`resolve_subset`: an explicit ``subset=`` wins,
else the size switch (:func:`cvlib.runtime.size`): ``"small"`` -> the bundled files,
``"full"`` -> the full dataset (downloaded into the cache when missing).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from cvlib.data._download import ChecksumError, sha256sum
from cvlib.runtime import size

__all__ = ["BUNDLED_DIR", "SUBSETS", "bundled_manifest", "bundled_path", "bundled_dir", "resolve_subset"]

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
SUBSETS = ("small", "full")


@functools.lru_cache(maxsize=1)
def _manifest() -> dict[str, dict]:
    path = BUNDLED_DIR / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"the bundled data manifest {path} is missing: the installation of cvlib is incomplete "
            f"(reinstall it, or run tools/make_bundled_data.py in a clone)"
        )
    return json.loads(path.read_text())["files"]


def bundled_manifest() -> dict[str, dict]:
    """A copy of the manifest: relative path -> ``{source, licence, transform, bytes, sha256}``."""
    return {k: dict(v) for k, v in _manifest().items()}


def bundled_path(rel: str) -> Path:
    """The verified path of one bundled file (``rel`` as in the manifest, e.g. ``"photos/coffee.png"``).

    Raises:
        KeyError: ``rel`` is not in the manifest.
        FileNotFoundError: the file is listed but missing.
        ChecksumError: the file's SHA-256 differs from the manifest.
    """
    files = _manifest()
    if rel not in files:
        raise KeyError(f"{rel!r} is not a bundled file; see cvlib/data/bundled/manifest.json")
    path = BUNDLED_DIR / rel
    if not path.is_file():
        raise FileNotFoundError(f"bundled file {path} is missing: reinstall cvlib")
    actual = sha256sum(path)
    if actual != files[rel]["sha256"]:
        raise ChecksumError(
            f"bundled file {path} is damaged: sha256 {actual}, the manifest says {files[rel]['sha256']}. "
            f"Reinstall cvlib (or run tools/make_bundled_data.py in a clone)."
        )
    return path


def bundled_dir(prefix: str) -> Path:
    """The folder ``bundled/<prefix>`` after verifying every manifest entry under it.

    Raises:
        KeyError: no bundled file lives under ``prefix``.
        FileNotFoundError / ChecksumError: as :func:`bundled_path`.
    """
    prefix = prefix.strip("/")
    names = [rel for rel in _manifest() if rel.startswith(prefix + "/")]
    if not names:
        raise KeyError(f"no bundled data under {prefix!r}")
    for rel in names:
        bundled_path(rel)
    return BUNDLED_DIR / prefix


def resolve_subset(subset: str | None, root: object = None) -> str:
    """``subset`` checked, or chosen by the size switch when None.

    With an explicit ``root`` and no ``subset``, the files under ``root`` are read (``"full"``).

    Raises:
        ValueError: ``subset`` is not ``"small"``, ``"full"`` or None, or ``subset="small"`` is
            combined with a ``root`` (the small subset is the bundled one).
    """
    if subset is None:
        return "full" if root is not None else size()
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS} or None (chosen by the size), got {subset!r}")
    if subset == "small" and root is not None:
        raise ValueError(
            f"subset='small' reads the bundled files and takes no root, got root={str(root)!r}; "
            f"pass subset='full' (or None) to read root"
        )
    return subset
