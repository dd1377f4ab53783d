"""Fixtures for the data tests: the test-only checksum override for files written by the tests."""

import json
from pathlib import Path

import pytest

from cvlib.data._download import CHECKSUMS_OVERRIDE_ENV, sha256sum


@pytest.fixture
def trust(tmp_path_factory, monkeypatch):
    """``trust(*paths, base=None)``: accept these fixture files through ``$CVLIB_CHECKSUMS_OVERRIDE``.

    Each file is keyed by its name, and by its path relative to ``base`` when given (as the ISBI
    loader looks up ``image/0.png``). Directories add every file below them.
    """
    table: dict[str, str] = {}
    override = tmp_path_factory.mktemp("override") / "checksums.json"

    def add(*paths, base=None):
        for p in map(Path, paths):
            for f in [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()):
                digest = sha256sum(f)
                table[f.name] = digest
                if base is not None:
                    table[f.relative_to(base).as_posix()] = digest
        override.write_text(json.dumps(table))
        monkeypatch.setenv(CHECKSUMS_OVERRIDE_ENV, str(override))
        return table

    return add
