"""Run-time choices made once per process: the size switch, the device, seeding.

The size switch is the environment variable ``CVLIB_SIZE``:

* unset or ``full``: real datasets, full-size models, the GPU if there is one;
* ``small``: bundled or generated data, few steps, small resolution, CPU in minutes.

CI sets ``CVLIB_SIZE=small``. Notebooks never hard-code a size: they call :func:`pick`
(or :func:`size`) and run the same code at both sizes.
"""

from __future__ import annotations

import os
import platform
import random
from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "SIZE_ENV",
    "SIZES",
    "size",
    "is_small",
    "pick",
    "get_device",
    "seed_everything",
    "run_info",
]

SIZE_ENV = "CVLIB_SIZE"
SIZES = ("small", "full")
T = TypeVar("T")


def size() -> str:
    """The configured size, ``"small"`` or ``"full"`` (read from ``$CVLIB_SIZE`` on each call).

    Raises:
        ValueError: if ``CVLIB_SIZE`` holds anything other than ``small``, ``full`` or nothing.
    """
    value = os.environ.get(SIZE_ENV, "").strip().lower() or "full"
    if value not in SIZES:
        raise ValueError(f"{SIZE_ENV} must be one of {SIZES} (or unset for 'full'), got {value!r}")
    return value


def is_small() -> bool:
    """True when ``CVLIB_SIZE=small``."""
    return size() == "small"


def pick(small: T, full: T) -> T:
    """Return ``small`` or ``full`` according to the size switch.

    Example:
        >>> cfg = pick(small=dict(epochs=2, n_train=500), full=dict(epochs=30, n_train=None))
    """
    return small if is_small() else full


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``prefer`` if given, else CUDA, then MPS, then CPU.

    Args:
        prefer: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a ``torch.device`` or None.
            The environment variable ``CVLIB_DEVICE`` is used when ``prefer`` is None.

    Raises:
        RuntimeError: if the preferred device is not available here.
    """
    prefer = prefer if prefer is not None else (os.environ.get("CVLIB_DEVICE") or None)
    if prefer is not None:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {str(dev)!r} requested but CUDA is not available; use 'cpu'")
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise RuntimeError(f"device {str(dev)!r} requested but MPS is not available; use 'cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU ``torch.Generator`` seeded alike.

    With ``deterministic=True`` cuDNN autotuning is switched off so that two runs on the same
    machine give identical results (on CPU this is always the case).
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def run_info(dataset: str, device: torch.device | str | None = None) -> str:
    """One line saying which device, size and dataset produce a notebook's outputs.

    Every chapter prints this first, so a reader knows where the stored outputs came from.
    """
    dev = torch.device(device) if device is not None else get_device()
    name = str(dev)
    if dev.type == "cuda":
        name += f" ({torch.cuda.get_device_name(dev)})"
    elif dev.type == "cpu":
        name += f" ({platform.machine()}, {torch.get_num_threads()} threads)"
    return f"device: {name} | size: {size()} | data: {dataset} | torch {torch.__version__}"
