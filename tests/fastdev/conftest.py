"""The ``fastdev`` marker and the session-wide fixture cache of the fast-dev-run (see fixtures.py).

The chapter runs take minutes, so tests marked ``fastdev`` run only when asked for: ``make fastdev``,
``pytest -m fastdev``, or ``CVLIB_FASTDEV=1`` in the environment (to include them in the single CI
pytest run). Otherwise they are skipped with a note saying how to run them.
"""

from __future__ import annotations

import os

import pytest

from tests.fastdev import fixtures

ENABLE_ENV = "CVLIB_FASTDEV"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fastdev: runs a chapter's full-size configuration, every loop capped to one step, offline "
        f"(tests/fastdev; minutes on a CPU; run with make fastdev, -m fastdev or {ENABLE_ENV}=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(ENABLE_ENV, "").strip() not in ("", "0") or "fastdev" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason=f"fast-dev-run of the chapters: run with make fastdev or {ENABLE_ENV}=1")
    for item in items:
        if item.get_closest_marker("fastdev") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fastdev_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every dataset the chapters read, in its on-disk format, and the ImageNet weight files they
    load, written once into a temporary cache; returns the kernels' environment variables."""
    root = tmp_path_factory.mktemp("fastdev")
    return fixtures.build_cache(root, fixtures.weight_models_for(fixtures.chapters()))
