"""tools/device_check.py: the prepared GPU run executes notebooks, reports errors and memory, and
records its chapter rows on the execution-status page (tested on the CPU)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import device_check  # noqa: E402
import nb as nbtool  # noqa: E402


def _notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def test_run_notebook_reports_the_first_error_and_the_memory_probe(tmp_path):
    env = device_check._kernel_env("small", "cpu", None)
    ok = _notebook(tmp_path / "ok.ipynb", ["import torch\nx = torch.ones(1000, 1000)", "print(x.sum())"])
    r = device_check.run_notebook(ok, env, timeout=120)
    assert r["ok"] and r["chapter"] == "ok" and r["host_peak_mib"] > 10 and r["gpu_peak_mib"] == 0
    bad = _notebook(
        tmp_path / "bad.ipynb", ["y = 1", "raise RuntimeError('Expected all tensors on one device')"]
    )
    r = device_check.run_notebook(bad, env, timeout=120)
    assert r["ok"] is False and r["error"].startswith("RuntimeError: Expected all tensors")


def test_kernel_env_sets_size_device_and_data(tmp_path):
    env = device_check._kernel_env("full", "cuda", tmp_path)
    assert env["CVLIB_SIZE"] == "full" and env["CVLIB_DEVICE"] == "cuda"
    assert env["CVLIB_DATA"] == str(tmp_path.resolve())
    assert str(ROOT) in env["PYTHONPATH"].split(":")


def test_glue_stand_in_shows_the_value():
    ns: dict = {}
    exec(device_check._GLUE_SHIM, ns)  # noqa: S102 - the stand-in's own source
    shown = []
    import IPython.display

    real = IPython.display.display
    IPython.display.display = shown.append
    try:
        ns["glue"]("k", 3)
        ns["glue"]("k", 4, display=False)
    finally:
        IPython.display.display = real
    assert shown == [3]


def test_record_puts_the_gpu_rows_on_the_status_page(tmp_path, monkeypatch):
    gpu_file, page, status = tmp_path / "gpu.json", tmp_path / "status.md", tmp_path / "exec.json"
    status.write_text(json.dumps({"ch01_knn": {"size": "small", "device": "CPU", "seconds": 9.0,
                                               "torch": "2.13", "date": "2026-11-30"}}))  # fmt: skip
    monkeypatch.setattr(device_check, "GPU_STATUS", gpu_file)
    monkeypatch.setattr(nbtool, "GPU_STATUS_FILE", gpu_file)
    monkeypatch.setattr(nbtool, "STATUS_PAGE", page)
    monkeypatch.setattr(nbtool, "STATUS_FILE", status)
    res = {
        "started_utc": "2026-12-01 10:00",
        "env": {"gpu": "NVIDIA H200", "torch": "2.11.0+cu130"},
        "steps": {
            "chapters": [
                {
                    "chapter": "ch01_knn",
                    "ok": True,
                    "seconds": 12.3,
                    "gpu_peak_mib": 2048,
                    "host_peak_mib": 900,
                },
                {"chapter": "ch07_segmentation", "ok": False, "seconds": 3.0, "error": "RuntimeError: boom"},
                {"chapter": "ch08_detection", "ok": None, "skipped": "time budget spent"},
            ],
            "full": {"chapter": "ch12_explanations", "ok": True, "seconds": 95.0, "gpu_peak_mib": 4000},
        },
    }
    assert device_check.record(res) == 0
    text = page.read_text()
    assert "| {doc}`../notebooks/ch01_knn` | small | NVIDIA H200 | ok | 12 s | 2,048 MiB | 900 MiB" in text
    assert "| failed: RuntimeError: boom |" in text
    assert "ch08_detection` | small" not in text  # skipped chapters are not recorded
    assert "ch12_explanations` | full | NVIDIA H200 | ok | 95 s" in text
    assert "| {doc}`../notebooks/ch01_knn` | small | CPU | 9 s |" in text  # the CPU table is kept


def test_page_says_when_no_gpu_run_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(nbtool, "GPU_STATUS_FILE", tmp_path / "missing.json")
    assert "No GPU run has been recorded yet" in nbtool.gpu_section()


def test_out_is_required(capsys):
    with pytest.raises(SystemExit):
        device_check.main(["--steps", "env"])
    assert "--out is required" in capsys.readouterr().err
