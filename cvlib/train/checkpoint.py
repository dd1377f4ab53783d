"""Checkpoints: atomic saves, exact resumption, safe loading.

A checkpoint is a plain dict of tensors and Python numbers, loaded with
``torch.load(weights_only=True)`` (no arbitrary unpickling). Saving writes a temporary file in
the same directory and renames it with :func:`os.replace`, so a crash never leaves a half-written
checkpoint under the real name. Resuming restores the model, optimizer, scheduler, grad scaler,
the Python/NumPy/PyTorch random states and the epoch counter.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "load_state_dict_checked",
    "load_or_train",
    "rng_state",
    "set_rng_state",
]


def rng_state() -> dict:
    """The Python, NumPy, torch CPU (and CUDA) random states as weights_only-safe values."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    epoch: int | None = None,
    history: dict | None = None,
    **extra: Any,
) -> Path:
    """Write a checkpoint atomically (temporary file, then ``os.replace``).

    Args:
        path: destination file (parent directories are created).
        epoch: the number of completed epochs (training resumes at this epoch index).
        history: per-epoch logs (``History.history``), stored so that a resumed run continues them.
        extra: further weights_only-safe values (tensors, numbers, strings, lists, dicts).

    Returns:
        The path written.
    """
    state: dict[str, Any] = {"model": _unwrap(model).state_dict(), "arch": type(_unwrap(model)).__name__}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    if epoch is not None:
        state["epoch"] = int(epoch)
    if history is not None:
        state["history"] = {k: [float(v) for v in vals] for k, vals in history.items()}
    state["rng"] = rng_state()
    state.update(extra)
    path = Path(path)
    _atomic_save(state, path)
    return path


def load_state_dict_checked(model: nn.Module, state_dict: dict, *, source: str = "checkpoint") -> None:
    """``model.load_state_dict(strict=True)`` with an error that lists what does not match.

    Raises:
        ValueError: naming missing keys, unexpected keys and shape mismatches (first few of each).
    """
    own = _unwrap(model).state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k}: model {tuple(own[k].shape)} vs {tuple(state_dict[k].shape)}"
        for k in own
        if k in state_dict and hasattr(state_dict[k], "shape") and own[k].shape != state_dict[k].shape
    ]
    if missing or unexpected or shapes:

        def few(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f" ... (+{len(items) - 5} more)" if len(items) > 5 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {few(shapes)}")
        raise ValueError(
            f"{source} does not fit {type(_unwrap(model)).__name__} (a checkpoint from another architecture "
            f"or configuration?); " + "; ".join(parts)
        )
    _unwrap(model).load_state_dict(state_dict)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    restore_rng: bool = True,
    map_location: str | torch.device | None = None,
) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into the given objects.

    Args:
        map_location: where tensors are loaded (default: the model's device).
        restore_rng: also restore the random states (needed for exact resumption).

    Returns:
        The checkpoint dict (``epoch``, ``history`` and any extra values are in it).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the checkpoint belongs to another architecture (keys listed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    if map_location is None:
        p = next(iter(model.parameters()), None)
        map_location = p.device if p is not None else "cpu"
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(path)!r} is not a cvlib checkpoint (no 'model' entry)")
    load_state_dict_checked(model, state["model"], source=f"checkpoint {str(path)!r}")
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    if restore_rng and "rng" in state:
        set_rng_state(state["rng"])
    return state


def load_or_train(path: str | os.PathLike, model: nn.Module, train_fn: Callable[[nn.Module], Any]) -> Any:
    """Load ``model``'s weights from ``path`` if the file exists; otherwise train, then save.

    Lets a reader skip a long training run: the first run calls ``train_fn(model)`` (typically a
    :func:`cvlib.train.fit` call returning a ``History``) and saves the weights and the history;
    later runs load both.

    Returns:
        A :class:`cvlib.train.History` (loaded or fresh) if ``train_fn`` returned one or the file
        holds one, else whatever ``train_fn`` returned (None when loaded).
    """
    from cvlib.train.loop import History

    path = Path(path)
    if path.is_file():
        state = load_checkpoint(path, model, restore_rng=False)
        return History(state["history"]) if "history" in state else None
    result = train_fn(model)
    history = result.history if isinstance(result, History) else None
    save_checkpoint(path, model, history=history)
    return result
