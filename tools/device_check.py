"""The GPU checks of the course as one prepared run, for a session that is lent a GPU machine.

What it measures (the GPU items of the issues "The GPU reader's path" and "Performance"):

* ``env``: GPU, memory, driver, torch and torchvision versions.
* ``train``: ``benchmarks/bench_train.py`` on CUDA: ``fit`` (AMP, channels_last, device-resident
  data) against a plain fp32 loop, images/s and their ratio (target >= 2.5).
* ``chapters``: every ``notebooks/ch*.ipynb`` executed again, outputs discarded, with
  ``CVLIB_SIZE=small CVLIB_DEVICE=cuda``: wall seconds, peak GPU memory, peak host memory, first
  error (any device mismatch or CUDA-only failure shows here).
* ``tests``: the unit tests that exercise CUDA where it exists (AMP, k-NN, COCO mAP on the
  device, segmentation models, transforms, explanations, the device contract), on the GPU.
* ``perf``: ``benchmarks/bench_perf.py`` on the GPU (the k-NN distance step, NMS and RoIAlign
  against torchvision's CUDA kernels, COCO mAP on the detections' device).
* ``full``: one chapter at ``CVLIB_SIZE=full`` on real data carried in ``--data`` (default
  ``ch02_cnn_basics``: all of MNIST in its idx files, no ImageNet weights needed).

Everything goes to ``--out`` (``$OUT`` on the device machine): ``device_check.json`` is rewritten
after every step, so a run stopped at its time limit keeps what finished, and ``bench_train.json``
/ ``bench_perf.json`` hold the benchmark results. Back here, ``--record`` writes the chapter rows
into ``book/_execution_gpu.json`` (shown on the execution-status page).

The device machine has PyTorch and torchvision but no Jupyter kernel stack and no network, so the
kernel packages travel as wheels (``tools/device_kit.sh`` downloads them into ``.whl/``). A stand-in
for ``myst_nb.glue`` is put on the kernel's path when myst-nb is absent. One call::

    bash tools/device_kit.sh                         # here, once (PyPI): .whl/, .device_data/
    # device tool: run(carry=[".whl", ".device_data"], timeout_s=590, command=
    #   "python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    #    && PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 tools/device_check.py --out $OUT
    #    --data .device_data --budget 540")
    python tools/device_check.py --record /work/.device/<files_at>/device_check.json   # here

On a machine without CUDA it runs on the CPU (``--device cpu``), which is how it is tested.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # kernel_runner
CUDA_TESTS = [  # the test files with CUDA cases (skipped without a GPU)
    "tests/train/test_amp.py",
    "tests/test_knn.py",
    "tests/metrics/test_detection_device.py",
    "tests/ops/test_profile.py",
    "tests/models/test_segmentation.py",
    "tests/data/test_transforms.py",
    "tests/data/test_shapes.py",
    "tests/viz/test_explain.py",
    "tests/test_device_contract.py",
]
GPU_STATUS = ROOT / "book" / "_execution_gpu.json"
_GLUE_SHIM = '''"""Stand-in for myst_nb.glue on a machine without myst-nb: shows the value, stores nothing."""
def glue(name, variable, display=True):
    if display:
        from IPython.display import display as _show
        _show(variable)
'''
_PROBE = """
import json as _j, resource as _r, torch as _t
_peak = _t.cuda.max_memory_allocated() if _t.cuda.is_available() else 0
_rss = _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024
print("DEVICE-PROBE", _j.dumps({"gpu_peak_mib": round(_peak / 2**20), "host_peak_mib": round(_rss)}))
"""


def _env(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "device": device}
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        info["torchvision"] = f"not importable ({type(e).__name__})"
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        info |= {"gpu": p.name, "gpu_memory_gib": round(p.total_memory / 2**30, 1)}
        smi = subprocess.run(["nvidia-smi", "-q", "-d", "DRIVER"], capture_output=True, text=True)
        info["nvidia_smi"] = " ".join(smi.stdout.split())[:300] if smi.returncode == 0 else "unavailable"
    info["cpu_count"] = os.cpu_count()
    return info


def _shim_dir() -> str | None:
    """A folder with a ``myst_nb`` stand-in when myst-nb is not installed (else None)."""
    try:
        import myst_nb  # noqa: F401

        return None
    except ImportError:
        d = Path(tempfile.mkdtemp(prefix="device-shim-")) / "myst_nb"
        d.mkdir()
        (d / "__init__.py").write_text(_GLUE_SHIM)
        return str(d.parent)


def run_notebook(ipynb: Path, env: dict[str, str], timeout: int) -> dict:
    """Execute ``ipynb``'s code cells in a fresh kernel (``tools/kernel_runner.py``); the notebook
    is not written back. Cells tagged ``raises-exception`` may raise; any other error stops the run."""
    import nbformat
    from kernel_runner import Kernel, run_cells

    nb = nbformat.read(ipynb, as_version=4)
    out: dict = {"chapter": ipynb.stem, "ok": True}
    t0 = time.perf_counter()
    with Kernel(env, cwd=ipynb.parent) as kernel:
        _, failures = run_cells(kernel, nb.cells, timeout)
        out["seconds"] = round(time.perf_counter() - t0, 1)
        if kernel.km.is_alive():
            for line in kernel.execute(_PROBE, timeout=60).text.splitlines():
                if line.startswith("DEVICE-PROBE "):
                    out |= json.loads(line.split(" ", 1)[1])
    if failures:
        out |= {"ok": False, "error": failures[0].error[:1500]}
    return out


def _kernel_env(size: str, device: str, data: Path | None) -> dict[str, str]:
    env = {"CVLIB_SIZE": size, "CVLIB_DEVICE": device, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    shim = _shim_dir()
    paths = [p for p in (shim, str(ROOT), os.environ.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if data is not None:
        env["CVLIB_DATA"] = str(data.resolve())
    return env


def _script(args: list[str], timeout: float) -> dict:
    """Run a benchmark script; its last 40 lines of output and exit status."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 1)
        )
        res = {"returncode": p.returncode, "tail": (p.stdout + p.stderr).splitlines()[-40:]}
    except subprocess.TimeoutExpired:
        res = {"returncode": None, "tail": [f"stopped after {timeout:.0f} s"]}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="folder for the results ($OUT on the device machine)")
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--steps", nargs="+", default=["env", "train", "tests", "chapters", "perf", "full"])
    ap.add_argument("--chapters", nargs="*", default=None, help="chapter stems (default: all)")
    ap.add_argument("--full", default="ch02_cnn_basics", help="the chapter run at full size")
    ap.add_argument("--data", type=Path, default=None, help="CVLIB_DATA for the full-size chapter")
    ap.add_argument("--budget", type=float, default=540, help="seconds for all steps together")
    ap.add_argument("--cell-timeout", type=int, default=300)
    ap.add_argument("--record", type=Path, default=None, help="device_check.json to record here")
    a = ap.parse_args(argv)
    if a.record is not None:
        return record(json.loads(a.record.read_text()))
    if a.out is None:
        ap.error("--out is required (unless --record)")
    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    a.out.mkdir(parents=True, exist_ok=True)
    deadline = time.perf_counter() + a.budget
    res: dict = {"started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "steps": {}}

    def save() -> None:
        (a.out / "device_check.json").write_text(json.dumps(res, indent=1) + "\n")

    def left() -> float:
        return deadline - time.perf_counter()

    for step in a.steps:
        if left() < 20:
            res["steps"][step] = {"skipped": "time budget spent"}
            save()
            continue
        print(f"[device_check] {step} ({left():.0f} s left)", flush=True)
        if step == "env":
            res["env"] = _env(device)
        elif step == "train":
            res["steps"]["train"] = _script(
                ["benchmarks/bench_train.py", "--device", device, "--repeats", "5", "--no-knn", "--out",
                 str(a.out / "bench_train.json")],
                min(left(), 150),
            )  # fmt: skip
        elif step == "tests":
            res["steps"]["tests"] = _script(
                ["-m", "pytest", "-q", "-p", "no:cacheprovider", *CUDA_TESTS], min(left(), 150)
            )
        elif step == "perf":  # results.json is written in the checkout: copied to --out after
            res["steps"]["perf"] = _script(
                ["benchmarks/bench_perf.py", "--only", "knn", "coco", "torchvision", "--coco-images", "1000"],
                min(left(), 150),
            )
            results = ROOT / "benchmarks" / "results.json"
            if results.exists():
                (a.out / "bench_perf.json").write_text(results.read_text())
        elif step == "chapters":
            names = a.chapters or sorted(p.stem for p in (ROOT / "notebooks").glob("ch*.ipynb"))
            rows = res["steps"].setdefault("chapters", [])
            env = _kernel_env("small", device, None)
            for name in names:
                if left() < 30:
                    rows.append({"chapter": name, "ok": None, "skipped": "time budget spent"})
                    continue
                rows.append(run_notebook(ROOT / "notebooks" / f"{name}.ipynb", env, a.cell_timeout))
                print(f"  {json.dumps(rows[-1])[:300]}", flush=True)
                save()
        elif step == "full":
            env = _kernel_env("full", device, a.data)
            res["steps"]["full"] = run_notebook(ROOT / "notebooks" / f"{a.full}.ipynb", env, a.cell_timeout)
        save()
    res["finished_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    save()
    chapters = res["steps"].get("chapters", [])
    return 0 if all(r.get("ok") is not False for r in chapters) else 1


def record(res: dict) -> int:
    """Merge the chapter rows of a device check into ``book/_execution_gpu.json``."""
    env = res.get("env", {})
    gpu = env.get("gpu", "CPU")
    date = res.get("started_utc", "")[:10]
    status = json.loads(GPU_STATUS.read_text()) if GPU_STATUS.exists() else {}
    rows = list(res.get("steps", {}).get("chapters", []))
    full = res.get("steps", {}).get("full")
    for r in rows + ([full | {"size": "full"}] if full else []):
        if r.get("ok") is None:
            continue
        status[f"{r['chapter']}|{r.get('size', 'small')}"] = {
            "chapter": r["chapter"],
            "size": r.get("size", "small"),
            "device": gpu,
            "ok": r["ok"],
            "seconds": r.get("seconds"),
            "gpu_peak_mib": r.get("gpu_peak_mib"),
            "host_peak_mib": r.get("host_peak_mib"),
            "error": r.get("error"),
            "torch": env.get("torch"),
            "date": date,
        }
    GPU_STATUS.write_text(json.dumps(dict(sorted(status.items())), indent=1) + "\n")
    sys.path.insert(0, str(ROOT / "tools"))
    from nb import STATUS_FILE, write_status_page

    write_status_page(json.loads(STATUS_FILE.read_text()))
    print(f"recorded {len(status)} rows in {GPU_STATUS} and the execution-status page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
