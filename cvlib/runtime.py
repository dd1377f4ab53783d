"""Run-time choices made once per process: the size switch, the device, seeding.

The size switch is the environment variable ``CVLIB_SIZE``:

* unset or ``full``: real datasets, full-size models, the GPU if there is one;
* ``small``: bundled or generated data, few steps, small resolution, CPU in minutes.

CI sets ``CVLIB_SIZE=small``. Notebooks never hard-code a size: they call :func:`pick`
(or :func:`size`) and run the same code at both sizes.

``CVLIB_FAST_DEV_RUN=N`` (:func:`fast_dev_run`) caps every training epoch to ``N`` steps, every
evaluation/prediction loop to ``N`` batches, ``fit`` to one epoch and the timing loops of
:mod:`cvlib.ops.profile` to one repetition: a smoke run of the full configuration.

:func:`run_on` is the device contract of every cvlib function that takes a model and data: run
the model on a device, then give it back where (and in the mode) it was found.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import textwrap
from collections.abc import Iterator
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
    "fast_dev_run",
    "fast_dev_batch",
    "FAST_DEV_RUN_ENV",
    "FAST_DEV_BATCH",
    "run_on",
    "module_device",
]

SIZE_ENV = "CVLIB_SIZE"
FAST_DEV_RUN_ENV = "CVLIB_FAST_DEV_RUN"
FAST_DEV_BATCH = 2  # samples per batch under the fast dev run (2, so batch norm still trains)
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


def seed_everything(seed: int = 0, deterministic: bool | None = None) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU ``torch.Generator`` seeded alike.

    What seeding guarantees: on a CPU, the same seed gives the same numbers run after run. On a GPU
    it fixes the initial weights, the data order and the augmentations, but cuDNN may pick
    different (faster) convolution algorithms and several CUDA kernels accumulate with atomics, so
    two runs agree closely, not bit for bit. ``deterministic=True`` switches cuDNN autotuning off and
    asks for deterministic algorithms (bit-identical reruns on the same machine, slower training).

    Args:
        seed: the seed.
        deterministic: True: force cuDNN's deterministic mode; False: PyTorch's defaults (cuDNN's
            fast, possibly non-deterministic algorithms); None (default): deterministic only at
            ``CVLIB_SIZE=small``, so full-size training is not slowed down.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if deterministic is not None and not isinstance(deterministic, bool):
        raise TypeError(f"deterministic must be a bool or None, got {type(deterministic).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic is None:
        deterministic = is_small()
    torch.backends.cudnn.benchmark = False  # autotuning re-runs for every new input shape
    torch.backends.cudnn.deterministic = deterministic
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def fast_dev_run() -> int | None:
    """The step cap from ``$CVLIB_FAST_DEV_RUN`` (an int >= 1), or None when unset/empty/0.

    When set, :func:`cvlib.train.fit` runs at most one epoch of at most ``N`` steps (validation: ``N``
    batches), :func:`cvlib.train.evaluate`/:func:`cvlib.train.predict` look at ``N`` batches, every
    batch they make holds at most :data:`FAST_DEV_BATCH` samples (:func:`fast_dev_batch`), and the
    timing loops of :mod:`cvlib.ops.profile` run once. Models, resolutions and data formats stay
    those of the configuration. Meant for CI smoke runs of the full configuration: numbers computed
    under it are not meaningful.

    Raises:
        ValueError: if the variable holds anything other than a non-negative integer.
    """
    raw = os.environ.get(FAST_DEV_RUN_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"{FAST_DEV_RUN_ENV} must be an integer >= 1 (or 0/unset for off), got {raw!r}")
    return n or None


def fast_dev_batch(batch_size: int) -> int:
    """``batch_size``, capped to :data:`FAST_DEV_BATCH` samples when :func:`fast_dev_run` is set.

    The batches of :func:`cvlib.train.fit`, :func:`~cvlib.train.evaluate` and
    :func:`~cvlib.train.predict` go through it: a smoke run of the full configuration keeps the full
    models and resolutions but computes two samples per step. A user's own ``DataLoader`` keeps its
    batch size.
    """
    return batch_size if fast_dev_run() is None else min(batch_size, FAST_DEV_BATCH)


def module_device(model: torch.nn.Module) -> torch.device | None:
    """The device of ``model``'s first parameter (else first buffer), or None for a model with neither."""
    t = next(iter(model.parameters()), None)
    if t is None:
        t = next(iter(model.buffers()), None)
    return t.device if t is not None else None


@contextlib.contextmanager
def run_on(
    model: torch.nn.Module, device: str | torch.device | None = None, *, train: bool | None = None
) -> Iterator[torch.device]:
    """Run ``model`` on ``device`` inside the block; afterwards put it back where it was found.

    The device contract of cvlib: a function that takes a model and data runs it on ``device``
    (default :func:`get_device`), moves its inputs there, and on exit (also after an exception) moves
    the model back to the device of its first parameter before the block and restores its
    train/eval mode. Results should be moved to the caller's device (the inputs' device) by the caller.

    Args:
        model: the module (moved in place with ``model.to``).
        device: where to run; None: :func:`get_device`.
        train: set ``model.train(train)`` inside the block (None: leave the mode alone).

    Yields:
        torch.device: the device the model runs on (move inputs there).

    Example:
        >>> with run_on(model, "cpu", train=False) as dev:
        ...     out = model(x.to(dev))
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    dev = get_device(device) if device is not None else get_device()
    home = module_device(model)
    was_training = model.training
    moved = home is not None and home != dev
    if moved:
        model.to(dev)
    if train is not None:
        model.train(train)
    try:
        yield dev
    finally:
        if moved:
            model.to(home)
        if train is not None:
            model.train(was_training)


def run_info(dataset: str, device: torch.device | str | None = None) -> str:
    """Which device, size and dataset produce a notebook's outputs, one short line per fact.

    Every chapter prints this first, so a reader knows where the stored outputs came from.
    Each line stays within the book's column (about 80 characters): long dataset descriptions
    are wrapped.
    """
    dev = torch.device(device) if device is not None else get_device()
    name = str(dev)
    if dev.type == "cuda":
        name += f" ({torch.cuda.get_device_name(dev)})"
    elif dev.type == "cpu":
        n = torch.get_num_threads()
        name += f" ({platform.machine()}, {n} thread{'' if n == 1 else 's'})"
    data = textwrap.wrap(str(dataset), width=72) or [""]
    lines = [f"device: {name}", f"size:   {size()}   torch {torch.__version__}", f"data:   {data[0]}"]
    lines += [f"        {rest}" for rest in data[1:]]
    return "\n".join(lines)
