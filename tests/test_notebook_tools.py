"""The notebook plumbing: pairs agree, cells executed, nbval catches an edited checked output,
and the table of contents covers every chapter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nb as nbtool  # noqa: E402

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Toy chapter

```{code-cell} ipython3
:tags: [nbval-check-output]
print(sum(range(5)))
```
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nbs")
    md = folder / "ch99_toy.md"
    md.write_text(HEADER)
    side = tmp_path_factory.mktemp("status")
    status, page = side / "status.json", side / "status.md"
    nbtool.STATUS_FILE, nbtool.STATUS_PAGE = status, page  # keep the book's status files untouched
    nbtool.build(md)
    return folder, md


def test_build_executes_and_check_passes(built):
    folder, md = built
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "10\n"
    assert code[0].metadata["tags"] == ["nbval-check-output"]
    assert nbtool.check(folder) == []
    assert "ch99_toy" in json.loads(nbtool.STATUS_FILE.read_text())


def test_check_reports_drift_unexecuted_and_missing_pair(built, tmp_path):
    folder, md = built
    work = tmp_path / "w"
    work.mkdir()
    (work / "ch99_toy.md").write_text(md.read_text().replace("range(5)", "range(6)"))
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    nb.cells[-1].execution_count = None
    nbformat.write(nb, work / "ch99_toy.ipynb")
    (work / "ch98_lonely.md").write_text(HEADER)
    problems = "\n".join(nbtool.check(work))
    assert "ch99_toy.ipynb inputs differ" in problems
    assert "never executed" in problems
    assert "ch98_lonely.md has no executed .ipynb pair" in problems


GLUE_MD = (
    HEADER
    + """
```{code-cell} ipython3
from myst_nb import glue
glue("total", sum(range(5)), display=False)
```

The sum is {glue:text}`total` and the mean is {glue:text}`mean:.1f`.
"""
)


def test_check_reports_a_glue_key_missing_from_the_stored_outputs(built, tmp_path):
    md = tmp_path / "ch97_glue.md"
    md.write_text(GLUE_MD)
    nbtool.build(md)
    problems = "\n".join(nbtool.check(tmp_path))
    assert "'mean'" in problems and "glue key" in problems
    assert "'total'" not in problems  # glued by the cell, so not reported
    md.write_text(GLUE_MD.replace(" and the mean is {glue:text}`mean:.1f`", ""))
    nbtool.build(md)
    assert nbtool.check(tmp_path) == []


def _nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax", str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
    )


def test_nbval_fails_when_a_checked_output_is_edited(built, tmp_path):
    _, md = built
    good = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    nbformat.write(good, tmp_path / "good.ipynb")
    assert _nbval(tmp_path / "good.ipynb").returncode == 0
    good.cells[-1].outputs[0]["text"] = "11\n"
    nbformat.write(good, tmp_path / "tampered.ipynb")
    result = _nbval(tmp_path / "tampered.ipynb")
    assert result.returncode != 0, result.stdout


def test_toc_lists_every_chapter_and_only_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f
    chapters = {f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("ch*.md")}
    assert chapters, "no chapter notebooks found: nbval would collect nothing"
    assert chapters <= set(files), f"chapters missing from _toc.yml: {sorted(chapters - set(files))}"
