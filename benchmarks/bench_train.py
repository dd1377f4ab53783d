"""Training throughput of ``cvlib.train.fit`` against a hand-written plain PyTorch fp32 loop.

Both train the same model on the same synthetic data (CIFAR-sized 3x32x32 for ResNet-18 with the
CIFAR stem, MNIST-sized 1x32x32 for LeNet-5), with the same batch size, SGD with momentum and
weight decay. Images/s are measured after a warm-up run; the two loops alternate ``--repeats``
times (swapping the order every repeat) and the best time of each is kept (this machine is shared,
so the best run is the least disturbed one); the ratio of process CPU times is reported too.
Ratio = cvlib / plain: on a CPU (fp32 both) it shows the loop's overhead (target >= 0.95); on a
CUDA GPU it shows what AMP + channels_last + device-resident data buy (target >= 2.5).

Also runs ``benchmarks/bench_knn.py``'s ``run()`` (k-NN queries/s vs scikit-learn) if present.

Usage:
    .venv/bin/python benchmarks/bench_train.py              # CPU here: a few minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train.py   # on a CPU shared with others
    .venv/bin/python benchmarks/bench_train.py --steps 50   # more steps, steadier figures
Writes ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import cvlib
from cvlib.train import fit

HERE = Path(__file__).resolve().parent
# Timed steps per run: short runs, many interleaved repeats (best of each kept) on a shared CPU.
STEPS = {"cpu": {"resnet18": 4, "lenet5": 16}, "cuda": {"resnet18": 100, "lenet5": 200}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(name: str) -> tuple[nn.Module, tuple[int, int, int], str]:
    from cvlib.models import create_model

    if name == "resnet18":
        model = create_model("resnet18", num_classes=10, small_input=True)
        return model, (3, 32, 32), "resnet18 (CIFAR stem)"
    if name == "lenet5":
        return create_model("lenet5"), (1, 32, 32), "lenet5"
    raise ValueError(f"model must be 'resnet18' or 'lenet5', got {name!r}")


def _plain_loop(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, lr: float
) -> tuple[float, float]:
    """The reference: a textbook fp32 loop (random batches by index, SGD); returns (wall, CPU) seconds."""
    device = x.device
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    model.train()
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    perm = torch.randperm(len(x), device=device)
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def _cvlib_fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, lr: float
) -> tuple[float, float]:
    device = x.device
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fit(model, (x, y), epochs=1, batch_size=batch_size, lr=lr, device=device, progress=False)
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def bench_model(name: str, device: torch.device, batch_size: int, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    net, shape, label = _model(name)
    n = batch_size * steps
    x = torch.rand(n, *shape, device=device)
    y = torch.randint(0, 10, (n,), device=device)
    torch.manual_seed(0)
    plain_model = _model(name)[0].to(device)
    cvlib_model = net.to(device)
    # warm-up (allocator, kernels, lazy imports), excluded from the timing
    warm = min(n, 2 * batch_size)
    _plain_loop(plain_model, x[:warm], y[:warm], batch_size, 0.01)
    _cvlib_fit(cvlib_model, x[:warm], y[:warm], batch_size, 0.01)
    plain_t, cvlib_t = [], []
    for r in range(repeats):  # interleave (and swap the order), so both see the same machine load
        if r % 2 == 0:
            plain_t.append(_plain_loop(plain_model, x, y, batch_size, 0.01))
        cvlib_t.append(_cvlib_fit(cvlib_model, x, y, batch_size, 0.01))
        if r % 2 == 1:
            plain_t.append(_plain_loop(plain_model, x, y, batch_size, 0.01))
    plain_ips, cvlib_ips = n / min(t[0] for t in plain_t), n / min(t[0] for t in cvlib_t)
    # CPU seconds of this process: on a shared CPU less disturbed by other jobs than wall time
    plain_cpu, cvlib_cpu = min(t[1] for t in plain_t), min(t[1] for t in cvlib_t)
    return {
        "model": label,
        "input": list(shape),
        "batch_size": batch_size,
        "steps": steps,
        "repeats": repeats,
        "plain_fp32_images_per_s": round(plain_ips, 1),
        "cvlib_fit_images_per_s": round(cvlib_ips, 1),
        "ratio": round(cvlib_ips / plain_ips, 3),
        "ratio_cpu_time": round(plain_cpu / cvlib_cpu, 3),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _knn(device: torch.device) -> dict | None:
    path = HERE / "bench_knn.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("bench_knn", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    if not hasattr(mod, "run"):
        return None
    try:
        res = mod.run(device=str(device))
    except TypeError:  # a run() without a device argument
        res = mod.run()
    return res if isinstance(res, dict) else {"result": res}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None, help="cpu / cuda / mps (default: cvlib.get_device())")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per run (default: see STEPS)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--models", default="resnet18,lenet5")
    ap.add_argument("--no-knn", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args(argv)
    device = cvlib.get_device(args.device)
    on_gpu = device.type == "cuda"
    steps = {m: args.steps or STEPS["cuda" if on_gpu else "cpu"][m] for m in STEPS["cpu"]}
    batch = {"resnet18": 256 if on_gpu else 64, "lenet5": 512 if on_gpu else 256}
    results = {
        "command": (
            f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
        )
        + "python benchmarks/bench_train.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "device": _device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cvlib": cvlib.__version__,
        "target": ">= 2.5 (CUDA: AMP + channels_last + resident data)"
        if on_gpu
        else ">= 0.95 (CPU: no overhead)",
        "train": [],
    }
    print(f"device: {results['device']} | torch {torch.__version__} | python {results['python']}")
    for name in args.models.split(","):
        r = bench_model(name, device, batch[name], steps[name], args.repeats)
        results["train"].append(r)
        print(
            f"{r['model']:<32} batch {r['batch_size']:>4}: "
            f"plain fp32 {r['plain_fp32_images_per_s']:>9.1f} img/s | "
            f"cvlib fit {r['cvlib_fit_images_per_s']:>9.1f} img/s | ratio {r['ratio']:.3f} "
            f"(by CPU time {r['ratio_cpu_time']:.3f})"
        )
    if not args.no_knn:
        knn = _knn(device)
        if knn is None:
            print("k-NN: benchmarks/bench_knn.py with run() not found; skipped")
        else:
            results["knn"] = knn
            shown = {k: knn[k] for k in ("cvlib_qps", "sklearn_qps", "ratio") if k in knn} or knn
            print(
                "k-NN (cvlib vs scikit-learn brute force): " + ", ".join(f"{k} {v}" for k, v in shown.items())
            )
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
