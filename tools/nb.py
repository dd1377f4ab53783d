"""Notebook pairs: build an executed ``.ipynb`` from its MyST ``.md``, and check that pairs agree.

The ``.md`` (jupytext MyST) is the source people edit; the ``.ipynb`` beside it carries the
outputs the book shows and nbval compares. ``jupytext --sync`` is not used: it takes inputs from
whichever file is newer and can silently drop an edit. Here the direction is always md -> ipynb.

Usage::

    python tools/nb.py build notebooks/ch01_knn.md [more.md ...]   # convert + execute + write .ipynb
    python tools/nb.py check [notebooks]                            # pairs agree, every cell executed

``check`` also fails when the ``.md`` uses a glue key (``{glue:text}`key` ``) that no cell of the
stored ``.ipynb`` glued (see ``tools/prose_numbers.py``).

``build`` executes with the current environment (``make nb`` sets ``CVLIB_SIZE=small`` unless it is
set already) and records a per-notebook runtime in ``book/_execution.json`` for the execution-status
page. Outputs carry no timestamps, so rebuilding an unchanged notebook gives an identical file
(up to the outputs themselves).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prose_numbers import missing_glue_keys  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STATUS_FILE = ROOT / "book" / "_execution.json"
STATUS_PAGE = ROOT / "book" / "execution_status.md"
GPU_STATUS_FILE = ROOT / "book" / "_execution_gpu.json"  # written by tools/device_check.py --record
# Cell metadata that jupytext round-trips and that matters for the book and nbval.
_KEEP_META = ("tags", "mystnb", "editable", "slideshow")


def _inputs(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """The comparable part of a notebook: (cell type, source, sorted tags) per cell."""
    out = []
    for c in nb.cells:
        src = c.source.strip("\n") if isinstance(c.source, str) else "".join(c.source).strip("\n")
        out.append((c.cell_type, src, sorted(c.get("metadata", {}).get("tags", []))))
    return out


def read_md(md: Path) -> nbformat.NotebookNode:
    nb = jupytext.read(md, fmt="md:myst")
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for c in nb.cells:
        c.metadata = {k: v for k, v in c.metadata.items() if k in _KEEP_META}
        c.pop("id", None)
    return nb


def _clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop run-specific noise: timing metadata, cell ids, execution timestamps."""
    nb.metadata.pop("papermill", None)
    for i, c in enumerate(nb.cells):
        c.metadata.pop("execution", None)
        c["id"] = f"cell-{i}"
    return nb


def build(md: Path, timeout: int = 900) -> float:
    if md.suffix != ".md":
        raise SystemExit(f"build takes the .md source, got {md}")
    nb = read_md(md)
    t0 = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(md.parent)}},
        record_timing=False,
        store_widget_state=True,
    )
    client.execute()
    seconds = time.perf_counter() - t0
    nb = _clean(nb)
    out = md.with_suffix(".ipynb")
    tmp = out.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out)
    _record(md, seconds)
    return seconds


def _record(md: Path, seconds: float) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from cvlib.runtime import get_device, size

    status = json.loads(STATUS_FILE.read_text()) if STATUS_FILE.exists() else {}
    dev = get_device()
    threads = torch.get_num_threads()
    device = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU ({platform.machine()}, {threads} thread{'s' if threads > 1 else ''})"
    )
    status[md.stem] = {
        "size": size(),
        "device": device,
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    STATUS_FILE.write_text(json.dumps(dict(sorted(status.items())), indent=1) + "\n")
    write_status_page(status)


def write_status_page(status: dict) -> None:
    """Regenerate book/execution_status.md from the recorded runs (and the GPU runs, if any)."""
    rows = "\n".join(
        f"| {{doc}}`../notebooks/{k}` | {v['size']} | {v['device']} | {v['seconds']:.0f} s "
        f"| {v['torch']} | {v['date']} |"
        for k, v in sorted(status.items())
    )
    STATUS_PAGE.write_text(
        "(execution-status)=\n# Execution status\n\n"
        "Where the stored outputs of each chapter came from: the size switch, the device, the time the\n"
        "whole notebook took to execute, the PyTorch version and the date. This page is written by\n"
        "`tools/nb.py build` each time a notebook is executed (`make nb NB=...`).\n\n"
        "CI checks these outputs (nbval) and also runs every chapter at its full-size configuration,\n"
        "with full models and resolutions, on data and weight files written in the real formats, with\n"
        "every training, evaluation and timing loop cut to one step of two samples\n"
        "(`CVLIB_FAST_DEV_RUN=1`, `tests/fastdev`). That run finds crashes in the full-size code;\n"
        "it measures nothing.\n\n"
        "| chapter | size | device | runtime | torch | date |\n| --- | --- | --- | --- | --- | --- |\n"
        f"{rows}\n\n{gpu_section()}"
    )


def gpu_section() -> str:
    """The "On a GPU" part of the page, from ``book/_execution_gpu.json`` (``tools/device_check.py``)."""
    head = (
        "## On a GPU\n\n"
        "Each chapter executed again on a CUDA GPU by `tools/device_check.py` (outputs not kept: the\n"
        "stored outputs above stay the CPU ones that CI checks), with its wall time and peak GPU and\n"
        "host memory.\n\n"
    )
    runs = json.loads(GPU_STATUS_FILE.read_text()) if GPU_STATUS_FILE.exists() else {}
    if not runs:
        return head + (
            "No GPU run has been recorded yet: the machines this course was built on had no GPU. A\n"
            "session with one runs `tools/device_check.py` (prepared by `tools/device_kit.sh`) and\n"
            "records the result with `python tools/device_check.py --record device_check.json`.\n"
        )
    rows = "\n".join(
        f"| {{doc}}`../notebooks/{v['chapter']}` | {v['size']} | {v['device']} "
        f"| {'ok' if v['ok'] else 'failed: ' + (v.get('error') or '')[:80]} | {v['seconds']:.0f} s "
        f"| {v.get('gpu_peak_mib') or 0:,} MiB | {v.get('host_peak_mib') or 0:,} MiB "
        f"| {v['torch']} | {v['date']} |"
        for _, v in sorted(runs.items())
    )
    return head + (
        "| chapter | size | device | result | runtime | GPU memory | host memory | torch | date |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{rows}\n"
    )


def check(folder: Path) -> list[str]:
    """Problems with the pairs in ``folder``: missing partner, drifted inputs, unexecuted cells."""
    problems: list[str] = []
    mds = {p.with_suffix("") for p in folder.glob("*.md") if p.name.lower() != "readme.md"}
    ipynbs = {p.with_suffix("") for p in folder.glob("*.ipynb")}
    problems += [f"{p}.md has no executed .ipynb pair (run: make nb NB={p}.md)" for p in sorted(mds - ipynbs)]
    problems += [f"{p}.ipynb has no .md source" for p in sorted(ipynbs - mds)]
    for stem in sorted(mds & ipynbs):
        md, ipynb = stem.with_suffix(".md"), stem.with_suffix(".ipynb")
        want = _inputs(read_md(md))
        got_nb = nbformat.read(ipynb, as_version=4)
        got = _inputs(got_nb)
        if want != got:
            first = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
            problems.append(
                f"{ipynb} inputs differ from {md} (first at cell {first}; {len(want)} vs {len(got)} cells): "
                f"rebuild with: make nb NB={md}"
            )
        unrun = [
            i
            for i, c in enumerate(got_nb.cells)
            if c.cell_type == "code" and c.source.strip() and c.get("execution_count") is None
        ]
        if unrun:
            problems.append(f"{ipynb}: code cells {unrun} were never executed: make nb NB={md}")
        errors = [
            i
            for i, c in enumerate(got_nb.cells)
            if c.cell_type == "code"
            and "raises-exception" not in c.metadata.get("tags", [])
            and any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ]
        if errors:
            problems.append(f"{ipynb}: code cells {errors} stored an error output")
        problems += missing_glue_keys(md, ipynb)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="convert .md to .ipynb and execute it")
    b.add_argument("md", nargs="+", type=Path)
    b.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    c = sub.add_parser("check", help="check that every pair agrees and was executed")
    c.add_argument("folder", nargs="?", type=Path, default=ROOT / "notebooks")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        for md in args.md:
            seconds = build(md, args.timeout)
            size = os.environ.get("CVLIB_SIZE", "")
            print(f"built {md.with_suffix('.ipynb')} in {seconds:.1f} s (CVLIB_SIZE={size})")
        return 0
    problems = check(args.folder)
    for p in problems:
        print("ERROR:", p, file=sys.stderr)
    n = len(list(args.folder.glob("*.md")))
    if not problems:
        print(f"{n} notebook pair(s) agree and were executed")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
