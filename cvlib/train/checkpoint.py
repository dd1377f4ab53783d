"""Checkpoints: atomic saves, exact resumption, safe loading.

A checkpoint is a plain dict of tensors and Python numbers, loaded with
``torch.load(weights_only=True)`` (no arbitrary unpickling). Saving writes a temporary file in
the same directory and renames it with :func:`os.replace`, so a crash never leaves a half-written
checkpoint under the real name; an interrupted save (an exception, Ctrl-C) removes its temporary
file, and temporary files left by a killed process are removed by the next save of the same path.
A file that cannot be read as a checkpoint (truncated, corrupt, not a checkpoint, unsafe pickle)
raises :class:`CheckpointError`, naming the file and the cause. Resuming restores the model,
optimizer, scheduler, grad scaler, the Python/NumPy/PyTorch random states and the epoch counter.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import tempfile
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "RESERVED_KEYS",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "load_state_dict_checked",
    "load_or_train",
    "rng_state",
    "set_rng_state",
    "optimizer_hparams",
    "same_optimizer_kind",
]


_log = logging.getLogger(__name__)

# Keys save_checkpoint writes itself; extras may not use them.
RESERVED_KEYS = ("model", "arch", "optimizer", "scheduler", "scaler", "epoch", "history", "rng", "fit")
_STALE_TMP_S = 3600.0  # a temporary file without a live writer, older than this, is an orphan


class CheckpointError(ValueError):
    """A file that cannot be loaded as a cvlib checkpoint (truncated, corrupt, unsafe or foreign)."""


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


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, OverflowError):
        return True  # exists but not ours, or cannot tell: leave it
    return True


def _clean_orphans(path: Path) -> None:
    """Remove ``<name>.<pid>.*.tmp`` files of ``path`` whose writing process is gone (or stale ones)."""
    now = time.time()
    for tmp in path.parent.glob(f"{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 1 :].split(".")
        pid = int(parts[0]) if parts and parts[0].isdigit() else None
        try:
            orphan = not _pid_alive(pid) if pid is not None else now - tmp.stat().st_mtime > _STALE_TMP_S
            if orphan:
                tmp.unlink()
                _log.info("removed %s, left by an interrupted save", tmp)
        except OSError:
            pass


def _keyboard_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt behind ``exc`` (torch's zip writer turns one into "unexpected pos")."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 10:
        if isinstance(e, KeyboardInterrupt):
            return e
        e, seen = e.__context__, seen + 1
    return None


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_orphans(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        ki = _keyboard_interrupt(exc)
        if ki is not None and ki is not exc:
            raise ki from None  # Ctrl-C, not torch's "unexpected pos" from the half-written archive
        raise


_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)


def _check_loadable(value: Any, where: str) -> Any:
    """``value`` with NumPy scalars made Python numbers, or a TypeError if a safe load would refuse it."""
    if isinstance(value, (torch.Tensor, *_PLAIN)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (dict, OrderedDict)):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                raise TypeError(f"{where}: dict keys must be str/int/float/bool, got {type(k).__name__}")
            out[k] = _check_loadable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_check_loadable(v, f"{where}[{i}]") for i, v in enumerate(value))
    hint = " (convert it with torch.from_numpy)" if isinstance(value, np.ndarray) else ""
    raise TypeError(
        f"{where} must be a tensor, a number, a string, None or a list/tuple/dict of those (what a safe "
        f"load accepts), got {type(value).__name__}{hint}"
    )


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
    fit_config: dict | None = None,
    **extra: Any,
) -> Path:
    """Write a checkpoint atomically (temporary file, then ``os.replace``).

    Args:
        path: destination file (parent directories are created).
        epoch: the number of completed epochs (training resumes at this epoch index).
        history: per-epoch logs (``History.history``), stored so that a resumed run continues them.
        fit_config: what :func:`cvlib.train.fit` records to resume sensibly (optimizer class,
            schedule, epochs); stored under ``"fit"``.
        extra: further values a safe load accepts: tensors, numbers, strings, None, and lists, tuples
            and dicts of those (NumPy scalars are stored as Python numbers). Their names must not be
            one of :data:`RESERVED_KEYS`.

    Returns:
        The path written.

    Raises:
        ValueError: an extra uses a reserved name. TypeError: an extra that a safe load would refuse
            (checked before anything is written).
    """
    clash = sorted(k for k in extra if k in RESERVED_KEYS)
    if clash:
        raise ValueError(f"extra names {clash} are reserved by save_checkpoint (reserved: {RESERVED_KEYS})")
    extra = {k: _check_loadable(v, f"extra value {k!r}") for k, v in extra.items()}
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
    if fit_config is not None:
        state["fit"] = _check_loadable(fit_config, "fit_config")
    state["rng"] = rng_state()
    state.update(extra)
    path = Path(path)
    _atomic_save(state, path)
    return path


def optimizer_hparams(opt: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """The hyper-parameters of each param group of ``opt`` (everything but ``params``)."""
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


def same_optimizer_kind(saved: dict, fresh: list[dict[str, Any]]) -> bool:
    """Whether a saved optimizer state_dict can come from the optimizer class of ``fresh``'s groups.

    Each class has its own hyper-parameter names (SGD: momentum, nesterov; Adam: betas, amsgrad);
    schedules only add names (initial_lr, max_lr, ...). A fresh name missing from the saved groups
    means another class, whose per-parameter state (``step``, ``exp_avg``) would be missing.
    """
    groups = saved.get("param_groups", [])
    if len(groups) != len(fresh):
        return False
    return all(set(f) <= set(g) for f, g in zip(fresh, groups))


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


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict:
    """The raw checkpoint dict at ``path`` (safe load), or :class:`CheckpointError` saying why not.

    Raises:
        FileNotFoundError: no file at ``path``. PermissionError: the file cannot be read.
        CheckpointError: truncated/corrupt file, not a cvlib checkpoint, or objects a safe load refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    size = path.stat().st_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notes on foreign files
            state = torch.load(path, map_location=map_location, weights_only=True)
    except (PermissionError, MemoryError):
        raise
    except pickle.UnpicklingError as e:
        msg = str(e)
        cause = (
            "it holds objects other than tensors and plain values, which are refused for safety "
            "(loading them could run arbitrary code)"
            if "Unsupported global" in msg
            else "it is not a PyTorch checkpoint (corrupt, or another kind of file)"
        )
        raise CheckpointError(f"cannot load checkpoint {str(path)!r} ({size} bytes): {cause}") from None
    except Exception:  # torch raises EOFError, RuntimeError, OSError, ... for bad files
        raise CheckpointError(
            f"cannot load checkpoint {str(path)!r} ({size} bytes): "
            f"{'empty file' if size == 0 else 'truncated or corrupt file'}; delete it or save it again"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{str(path)!r} is not a cvlib checkpoint (no 'model' entry)")
    return state


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
        CheckpointError: (a ValueError) the file is truncated, corrupt, not a checkpoint, or holds
            objects a safe load refuses; the message names the file and the cause.
        ValueError: the checkpoint belongs to another architecture (keys listed), or its optimizer
            state to another kind of optimizer than ``optimizer``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    if map_location is None:
        p = next(iter(model.parameters()), None)
        map_location = p.device if p is not None else "cpu"
    state = read_checkpoint(path, map_location=map_location)
    load_state_dict_checked(model, state["model"], source=f"checkpoint {str(path)!r}")
    if optimizer is not None and "optimizer" in state:
        saved_kind = state["fit"].get("optimizer") if isinstance(state.get("fit"), dict) else None
        this_kind = type(optimizer).__name__
        if (saved_kind is not None and saved_kind != this_kind) or not same_optimizer_kind(
            state["optimizer"], optimizer_hparams(optimizer)
        ):
            raise ValueError(
                f"checkpoint {str(path)!r} holds the state of another optimizer "
                f"({saved_kind or 'other param groups'}) than the {this_kind} given; pass optimizer=None "
                "to load the weights only"
            )
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
    later runs load both. A file that cannot be loaded (:class:`CheckpointError`: truncated by an
    interrupted copy, corrupt) is reported with a warning and replaced: the model is trained again
    and the new checkpoint is written atomically over it.

    Returns:
        A :class:`cvlib.train.History` (loaded or fresh) if ``train_fn`` returned one or the file
        holds one, else whatever ``train_fn`` returned (None when loaded).

    Raises:
        ValueError: the checkpoint is readable but belongs to another architecture (keys listed).
    """
    from cvlib.train.loop import History

    path = Path(path)
    if path.is_file():
        try:
            state = load_checkpoint(path, model, restore_rng=False)
        except CheckpointError as e:
            warnings.warn(f"{e}; training again and overwriting it", RuntimeWarning, stacklevel=2)
        else:
            return History(state["history"]) if "history" in state else None
    result = train_fn(model)
    history = result.history if isinstance(result, History) else None
    save_checkpoint(path, model, history=history)
    return result
