"""The root conftest keeps each notebook in one pytest-xdist worker, whatever the command line."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xdist") is None or importlib.util.find_spec("nbval") is None,
    reason="needs pytest-xdist and nbval",
)


def _load_root_conftest():
    spec = importlib.util.spec_from_file_location("cvlib_root_conftest", ROOT / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_notebook_cells_share_one_scope_and_tests_do_not():
    scope = _load_root_conftest()._notebook_scope
    assert (
        scope("notebooks/ch01.ipynb::Cell 0")
        == scope("notebooks/ch01.ipynb::Cell 17")
        == "notebooks/ch01.ipynb"
    )
    assert scope("notebooks/ch02.ipynb::Cell 0") != scope("notebooks/ch01.ipynb::Cell 0")
    assert scope("tests/test_a.py::test_x") != scope("tests/test_a.py::test_y")  # balanced one by one
    assert scope("tests/test_a.py::test_x[a@b]") == "tests/test_a.py::test_x[a@b]"
    assert scope("tests/test_a.py::test_x@grp") == scope("tests/test_b.py::test_z@grp") == "grp"


def test_loadfile_keeps_files_whole_but_splits_the_chapter_runs():
    scope = _load_root_conftest()._file_scope
    assert scope("tests/test_a.py::test_x") == scope("tests/test_a.py::test_y") == "tests/test_a.py"
    assert scope("notebooks/ch01.ipynb::Cell 3") == "notebooks/ch01.ipynb"
    run = "tests/fastdev/test_fastdev.py::test_chapter_full_configuration"
    assert scope(f"{run}[ch07_segmentation]") != scope(f"{run}[ch08_detection]")
    other = "tests/fastdev/test_fastdev.py::test_loaders_read_the_fixture_cache"
    assert scope(other) == "tests/fastdev/test_fastdev.py"


def test_dash_n_without_dist_keeps_a_notebook_in_one_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # Only the first cell defines the name: any later cell run in another worker's kernel fails.
    cells = ["value = 41"] + [f"value += 0  # cell {i}" for i in range(9)]
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")  # the rootdir conftest, as in the repo
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "-n",
        "2",
        "-q",
        "tiny.ipynb",
    ]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    out = r.stdout + r.stderr
    assert "NameError" not in out, out[-3000:]
    assert r.returncode == 0 and "10 passed" in out, out[-3000:]
