"""Compare cvlib's classification models with torchvision's: state-dict layout and eval-mode outputs.

Run it in an environment where torchvision imports (cvlib is pure PyTorch and imports there too):

    PYTHONPATH=. $TV/python tools/compare_torchvision.py --manifest tests/data/torchvision_manifest.json
    PYTHONPATH=. $TV/python tools/compare_torchvision.py --compare [--size 224] [--models resnet18 ...]

where ``$TV`` is that environment's ``bin`` directory (here ``/tmp/tvenv/bin``).

``--manifest`` writes the key names and shapes of every torchvision model that cvlib also has (random
init, nothing downloaded); tests/models/test_torchvision_layout.py checks cvlib against it without
torchvision. ``--compare`` builds each torchvision model with random weights (and random BN running
statistics, so that BN is not the identity), loads its state dict into the cvlib model with
``strict=True`` and prints the max abs difference of the fp32 eval-mode outputs on a random input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

TOLERANCE = 1e-5


def shared_names() -> list[str]:
    """Names that both torchvision.models and the cvlib registry have (classification)."""
    import torchvision.models as tvm

    from cvlib.models import list_models

    tv = set(tvm.list_models(module=tvm))
    return [n for n in list_models(task="classification") if n in tv]


def tv_model(name: str) -> torch.nn.Module:
    import torchvision.models as tvm

    kw = {"init_weights": True} if name == "googlenet" else {}
    return tvm.get_model(name, weights=None, **kw)


def layout(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def write_manifest(path: Path, names: list[str]) -> None:
    import torchvision

    out = {"torchvision": torchvision.__version__, "torch": torch.__version__, "models": {}}
    for name in names:
        torch.manual_seed(0)
        out["models"][name] = layout(tv_model(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    # one line per model, shapes as "64x3x11x11": small and diff-friendly
    lines = [f'"{k}": {json.dumps(v)}' for k, v in out.items() if k != "models"]
    models = [
        f'  "{n}": {json.dumps({k: "x".join(map(str, s)) for k, s in d.items()}, separators=(",", ":"))}'
        for n, d in sorted(out["models"].items())
    ]
    path.write_text("{" + ", ".join(lines) + ', "models": {\n' + ",\n".join(models) + "\n}}\n")
    print(f"wrote {len(names)} models to {path}")


def compare_one(name: str, size: int) -> tuple[float, int]:
    """Max abs diff of eval outputs after loading torchvision's random weights into cvlib's model."""
    from cvlib.models import create_model

    torch.manual_seed(0)
    ref = tv_model(name).eval()
    with torch.no_grad():  # random BN statistics so that normalisation is exercised
        for m in ref.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    ours = create_model(name).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(x) - ref(x)).abs().max().item()
    return diff, sum(p.numel() for p in ours.parameters())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, help="write the key/shape manifest to this JSON file")
    ap.add_argument("--compare", action="store_true", help="compare eval outputs model by model")
    ap.add_argument("--models", nargs="*", help="restrict to these names")
    ap.add_argument("--size", type=int, default=224, help="input resolution for --compare")
    args = ap.parse_args(argv)
    names = shared_names()
    if args.models:
        names = [n for n in names if n in args.models]
    if args.manifest:
        write_manifest(args.manifest, names)
    if not args.compare:
        return 0
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"{'model':<18}{'params':>14}{'max |diff|':>14}{'seconds':>9}  ok")
    bad = 0
    for name in names:
        t0 = time.perf_counter()
        diff, n = compare_one(name, args.size)
        ok = diff <= TOLERANCE
        bad += not ok
        print(
            f"{name:<18}{n:>14,}{diff:>14.2e}{time.perf_counter() - t0:>9.1f}  {'yes' if ok else 'NO'}",
            flush=True,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
