"""The ``fastdev`` marker and the session-wide fixture cache of the fast-dev-run (see fixtures.py).

Select or skip the chapter runs with ``-m fastdev`` / ``-m "not fastdev"``.
"""

from __future__ import annotations

import pytest

from tests.fastdev import fixtures


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fastdev: runs a chapter's full-size configuration, every loop capped to one step, offline "
        "(tests/fastdev; minutes on a CPU)",
    )


@pytest.fixture(scope="session")
def fastdev_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every dataset the chapters read, in its on-disk format, and the ImageNet weight files they
    load, written once into a temporary cache; returns the kernels' environment variables."""
    root = tmp_path_factory.mktemp("fastdev")
    return fixtures.build_cache(root, fixtures.weight_models_for(fixtures.chapters()))
