"""One training loop for every chapter: :func:`fit`, :func:`evaluate`, :func:`predict`, :class:`History`.

The loop is the textbook one (forward, loss, backward, step), plus what makes it fast and safe:
mixed precision chosen by device (:mod:`cvlib.train.amp`, Micikevicius et al. 2018,
arXiv:1710.03740), ``channels_last`` on CUDA, device-resident data batched by index
(:mod:`cvlib.train.data`), per-iteration LR schedules and weight decay without norms/biases
(:mod:`cvlib.train.optim`), label smoothing (Szegedy et al. 2016, arXiv:1512.00567), GoogLeNet's
auxiliary-head loss (Szegedy et al. 2015, arXiv:1409.4842: ``CE(main) + 0.3 * sum CE(aux)``),
checkpoints that resume exactly (:mod:`cvlib.train.checkpoint`), and clear errors for bad labels,
empty data and non-finite losses.

Losses and metrics are accumulated as device tensors; the host reads them only every few steps (for
the progress bar and the non-finite check on GPUs) and at the end of each epoch.

Device contract: :func:`fit` trains on ``device`` (default :func:`cvlib.get_device`) and gives the model
back on the device it came from; :func:`evaluate` and :func:`predict` run on ``device`` and leave the
model where and as they found it (:func:`cvlib.run_on`). ``fit`` is a few named steps
(:class:`_FitRun`: setup, resume, schedule, train step, train epoch, validation, checkpoint).
"""

from __future__ import annotations

import copy
import itertools
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from cvlib._validate import check_class_ids, check_tensor
from cvlib.metrics.classification import get_metric
from cvlib.runtime import fast_dev_batch, fast_dev_run, get_device, module_device, run_on
from cvlib.train.amp import autocast_for, grad_scaler_for, resolve_amp_dtype, use_channels_last
from cvlib.train.checkpoint import (
    load_state_dict_checked,
    optimizer_hparams,
    read_checkpoint,
    same_optimizer_kind,
    save_checkpoint,
    set_rng_state,
)
from cvlib.train.data import TensorBatches, make_batches, to_device
from cvlib.train.optim import create_optimizer, create_scheduler

__all__ = ["fit", "evaluate", "predict", "History", "default_loss", "AUX_WEIGHT", "IGNORE_INDEX"]

AUX_WEIGHT = 0.3  # GoogLeNet (arXiv:1409.4842, Sec. 5): auxiliary losses weighted by 0.3
IGNORE_INDEX = 255  # segmentation "void"/boundary label (PASCAL VOC convention)


# --------------------------------------------------------------------------------------------- losses
def _check_loss_inputs(output: Any, target: Any) -> None:
    """Shapes and dtypes that cross-entropy accepts, checked before torch sees them."""
    check_tensor(output, "output", ndim=(2, 4), dtype="float", shape="[B, K] or [B, K, H, W]")
    check_tensor(target, "target", dtype=("int", "float"), shape="[B], [B, H, W] or soft [B, K]")
    if output.shape[0] == 0 or output.shape[1] == 0:
        raise ValueError(f"output must have at least one sample and one class, got {tuple(output.shape)}")
    if target.is_floating_point():
        if target.shape != output.shape:
            raise ValueError(
                f"float target holds soft labels and must have output's shape {tuple(output.shape)}, "
                f"got {tuple(target.shape)}; class ids must be an integer tensor (target.long())"
            )
        return
    expected = (output.shape[0], *output.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"target must be class ids of shape {expected}, got {tuple(target.shape)}")
    check_class_ids(
        target, "target", output.shape[1], ignore_index=IGNORE_INDEX if target.ndim >= 2 else None
    )


def _ce(output: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    _check_loss_inputs(output, target)
    ignore = IGNORE_INDEX if (not target.is_floating_point() and target.ndim >= 2) else -100
    return F.cross_entropy(output.float(), target, label_smoothing=label_smoothing, ignore_index=ignore)


def default_loss(output: Any, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy for logits ``[B, K]`` or per-pixel logits ``[B, K, H, W]``.

    Args:
        output (Tensor[B, K] | Tensor[B, K, H, W] | tuple): logits; a tuple ``(main, aux1, ...)``
            (GoogLeNet in training mode) gives ``CE(main) + 0.3 * sum(CE(aux))``.
        target (Tensor[B] | Tensor[B, H, W] | Tensor[B, K]): int64 class ids (per-pixel targets equal
            to 255 are ignored), or float soft labels ``[B, K]`` (mixup/cutmix).
        label_smoothing: epsilon of label smoothing (0 = off).
    """
    if isinstance(output, (tuple, list)):
        if not output:
            raise ValueError(
                "output must be logits or a non-empty tuple (main, aux1, ...), got an empty tuple"
            )
        main, *aux = output
        loss = _ce(main, target, label_smoothing)
        if aux:
            loss = loss + AUX_WEIGHT * sum(_ce(a, target, label_smoothing) for a in aux)
        return loss
    return _ce(output, target, label_smoothing)


class _DefaultLoss:
    def __init__(self, label_smoothing: float) -> None:
        self.label_smoothing = label_smoothing

    def __call__(self, output: Any, target: torch.Tensor) -> torch.Tensor:
        return default_loss(output, target, self.label_smoothing)


def _main_output(output: Any) -> Any:
    return (
        output[0]
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor)
        else output
    )


def _num_classes(output: Any) -> int | None:
    out = _main_output(output)
    return int(out.shape[1]) if isinstance(out, torch.Tensor) and out.ndim >= 2 else None


_SMALL_INTS = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32)


def _as_class_ids(target: Any) -> Any:
    """Integer and bool class targets as int64 (what cross-entropy needs); anything else unchanged."""
    if isinstance(target, torch.Tensor) and target.dtype in _SMALL_INTS:
        return target.long()
    return target


def _check_targets(output: Any, target: Any, name: str) -> None:
    """Raise a clear error if ``target`` cannot be a cross-entropy target for ``output``."""
    out = _main_output(output)
    if not isinstance(out, torch.Tensor) or not isinstance(target, torch.Tensor) or out.ndim < 2:
        return
    shape = list(target.shape)
    if target.is_complex():
        raise ValueError(f"{name} labels must be int64 class ids, got complex dtype {target.dtype}")
    if target.is_floating_point():
        if tuple(target.shape) != tuple(out.shape):
            raise ValueError(
                f"{name} labels must be integer class ids (int64) of shape {[out.shape[0], *out.shape[2:]]}, "
                f"or float soft labels of the output's shape {list(out.shape)}; got {target.dtype} of shape "
                f"{shape} (convert class ids with y.long())"
            )
        return
    if target.ndim != out.ndim - 1 or target.shape[0] != out.shape[0]:
        hint = " (use y.squeeze(1))" if target.ndim == 2 and target.shape[1] == 1 else ""
        raise ValueError(
            f"{name} labels must be class ids of shape {[out.shape[0], *out.shape[2:]]} for outputs of shape "
            f"{list(out.shape)}, got shape {shape}{hint}"
        )


def _check_labels(target: Any, num_classes: int | None, name: str) -> None:
    """Raise if int class targets fall outside [0, num_classes) (per-pixel 255 allowed)."""
    if num_classes is None or not isinstance(target, torch.Tensor) or target.is_floating_point():
        return
    t = target[target != IGNORE_INDEX] if target.ndim >= 2 else target
    if t.numel() == 0:
        return
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"{name} labels must be in [0, {num_classes}) for a model with {num_classes} outputs, "
            f"got label {bad}"
        )


# -------------------------------------------------------------------------------------------- metrics
class _MetricSet:
    """Metric objects built lazily (``miou`` needs K, known from the first output)."""

    def __init__(self, spec: Iterable[Any], *, copy_objects: bool) -> None:
        if isinstance(spec, str) or not isinstance(spec, Iterable):
            spec = [spec] if spec is not None else []
        self.spec = list(spec)
        for m in self.spec:
            if isinstance(m, str):
                continue
            if not all(callable(getattr(m, a, None)) for a in ("reset", "update", "compute")):
                raise TypeError(
                    f"metrics must be names or objects with reset/update/compute, got {type(m).__name__}"
                )
        self.copy_objects = copy_objects
        self.objs: list[tuple[str, Any]] | None = None

    def _build(self, num_classes: int | None) -> None:
        objs = []
        for m in self.spec:
            if isinstance(m, str):
                obj, name = get_metric(m, num_classes=num_classes), m
            else:
                obj = copy.deepcopy(m) if self.copy_objects else m
                name = getattr(obj, "name", type(obj).__name__.lower())
            obj.reset()
            objs.append((name, obj))
        self.objs = objs

    def reset(self) -> None:
        for _, m in self.objs or []:
            m.reset()

    def update(self, output: Any, target: Any) -> None:
        if not self.spec:
            return
        if self.objs is None:
            self._build(_num_classes(output))
        out = _main_output(output)
        for _, m in self.objs:  # type: ignore[union-attr]
            m.update(out, target)

    def compute(self) -> dict[str, Any]:
        res = {}
        for name, m in self.objs or []:
            v = m.compute()
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                v = v.item()
            res[name] = float(v) if isinstance(v, (int, float)) else v
        return res


# -------------------------------------------------------------------------------------------- history
class History:
    """Per-epoch logs of a :func:`fit` run.

    Attributes:
        history: ``{"train_loss": [...], "val_loss": [...], "train_accuracy": [...], "lr": [...], ...}``,
            one value per epoch.
    """

    def __init__(self, history: dict[str, list[float]] | None = None) -> None:
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.history.values()), default=0)

    def append(self, logs: dict[str, float]) -> None:
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def last(self) -> dict[str, float]:
        """The last epoch's values."""
        return {k: v[-1] for k, v in self.history.items() if v}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items() if k.startswith(("train_", "val_")))
        return f"History(epochs={self.epochs}{', ' if shown else ''}{shown})"

    def plot(self, keys: Sequence[str] | None = None, figsize_per_panel: tuple[float, float] = (4.0, 3.0)):
        """One panel per quantity (loss, each metric), train vs validation, against the epoch.

        Args:
            keys: the quantities to draw (``"loss"``, ``"accuracy"``, ...); default: all.

        Returns:
            matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        bases: list[str] = []
        for k in self.history:
            for prefix in ("train_", "val_"):
                if k.startswith(prefix) and k[len(prefix) :] not in bases:
                    bases.append(k[len(prefix) :])
        if keys is not None:
            unknown = [k for k in keys if k not in bases]
            if unknown:
                raise ValueError(f"keys must be among {bases}, got {unknown}")
            bases = list(keys)
        if not bases:
            raise ValueError("history is empty: nothing to plot")
        w, h = figsize_per_panel
        fig = Figure(figsize=(w * len(bases), h), layout="constrained")
        axes = fig.subplots(1, len(bases), squeeze=False)[0]
        for ax, base in zip(axes, bases):
            for prefix, style in (("train_", "-o"), ("val_", "-s")):
                vals = self.history.get(prefix + base)
                if vals:
                    ax.plot(range(1, len(vals) + 1), vals, style, ms=3, label=prefix.rstrip("_"))
            ax.set_xlabel("epoch")
            ax.set_title(base.replace("_", " "))
            ax.grid(alpha=0.3)
            ax.legend()
        return fig


# ----------------------------------------------------------------------------------------------- fit
def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _batch_len(x: Any) -> int:
    return x.shape[0] if isinstance(x, torch.Tensor) else len(x)


def _to_channels_last(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _detach(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(_detach(o) for o in out)
    return out


def _capped(batches: Iterable[Any], cap: int | None) -> Iterable[Any]:
    return batches if cap is None else itertools.islice(batches, cap)


class _FitRun:
    """The state of one :func:`fit` call, split into the steps of the loop.

    ``setup`` (in ``__init__``: options, data, optimizer), ``resume``, ``build_schedule``, then per
    epoch ``train_epoch`` (made of ``train_step``), ``validate`` and ``save``.
    """

    def __init__(
        self,
        model: nn.Module,
        train: Any,
        val: Any,
        *,
        epochs: int,
        batch_size: int,
        optimizer: str | torch.optim.Optimizer,
        lr: float,
        weight_decay: float,
        schedule: str | None,
        loss_fn: Callable[[Any, Any], torch.Tensor] | None,
        metrics: Sequence[Any],
        dev: torch.device,
        amp: str | bool,
        channels_last: str | bool,
        compile: bool,
        clip_grad_norm: float | None,
        label_smoothing: float,
        augment: Callable[[Any, Any], tuple[Any, Any]] | None,
        collate_fn: Callable | None,
        progress: bool,
        seed: int,
        warmup_epochs: float,
        checkpoint: str | os.PathLike | None,
    ) -> None:
        self.model, self.dev, self.amp, self.epochs = model, dev, amp, epochs
        self.schedule, self.warmup_epochs, self.checkpoint = schedule, warmup_epochs, checkpoint
        self.clip_grad_norm, self.augment, self.progress = clip_grad_norm, augment, progress
        amp_dtype = resolve_amp_dtype(dev, amp)  # validates `amp`
        self.takes_targets = bool(getattr(model, "takes_targets", False))
        if loss_fn is None and not self.takes_targets:
            loss_fn = _DefaultLoss(label_smoothing)
        self.loss_fn = loss_fn
        self.check_labels = isinstance(loss_fn, _DefaultLoss)
        self.train_metrics = _MetricSet([] if self.takes_targets else metrics, copy_objects=True)
        self.val_metrics = _MetricSet(metrics, copy_objects=False)
        self.cap = fast_dev_run()

        _seed(seed)
        model.to(dev)
        self.cl = use_channels_last(model, dev, channels_last)
        if self.cl:
            model.to(memory_format=torch.channels_last)
        self.batches = make_batches(
            train,
            batch_size=batch_size,
            device=dev,
            shuffle=True,
            seed=seed,
            collate_fn=collate_fn,
            drop_single=True,
            name="train",
        )
        self.val_batches = None
        if val is not None:
            self.val_batches = make_batches(
                val, batch_size=batch_size, device=dev, shuffle=False, collate_fn=collate_fn, name="val"
            )
        for b in (self.batches, self.val_batches):
            if self.check_labels and isinstance(b, TensorBatches):
                b.y = _as_class_ids(b.y)  # once for device-resident labels
        self.steps = len(self.batches)
        if self.steps == 0:
            raise ValueError("train is empty (0 batches)")
        if isinstance(optimizer, torch.optim.Optimizer):
            self.opt = optimizer
        else:
            self.opt = create_optimizer(model, optimizer, lr=lr, weight_decay=weight_decay)
        self.scaler = grad_scaler_for(dev, amp_dtype)
        self.use_scaler = self.scaler.is_enabled()
        self.net = torch.compile(model) if compile else model
        self.params = [p for g in self.opt.param_groups for p in g["params"]]
        self.is_cuda = dev.type == "cuda"
        self.sync_every = 25 if self.is_cuda else 10
        self.labels_checked = not self.check_labels
        self.sched: Any = None

    # ------------------------------------------------------------------ resume and schedule
    def resume(self, path: str | os.PathLike) -> tuple[int, History]:
        """Restore model, optimizer state, scaler and random states; return (start epoch, history).

        The schedule is not restored but rebuilt (:meth:`build_schedule`) for this call's epochs, so
        that resuming for more epochs, with a new ``lr`` or another schedule continues sensibly. The
        optimizer's hyper-parameters are this call's; its state (momentum, Adam moments) is restored
        when the saved optimizer is of the same kind, else training continues with a fresh state and
        a warning.
        """
        state = read_checkpoint(path, map_location=self.dev)
        load_state_dict_checked(self.model, state["model"], source=f"checkpoint {str(path)!r}")
        saved_opt = state.get("optimizer")
        fresh = optimizer_hparams(self.opt)
        saved_kind = state.get("fit", {}).get("optimizer") if isinstance(state.get("fit"), dict) else None
        if saved_opt is not None:
            this_kind = type(self.opt).__name__
            if (saved_kind is not None and saved_kind != this_kind) or not same_optimizer_kind(
                saved_opt, fresh
            ):
                warnings.warn(
                    f"checkpoint {str(path)!r} holds the state of another optimizer "
                    f"({saved_kind or 'different parameters'}) than this run's {this_kind}: continuing "
                    "with a fresh optimizer state (momentum and moments start from zero)",
                    RuntimeWarning,
                    stacklevel=3,
                )
            else:
                self.opt.load_state_dict(saved_opt)
                for g, f in zip(self.opt.param_groups, fresh):  # this call's lr, decay, ...
                    for k in [k for k in g if k != "params" and k not in f]:
                        del g[k]  # initial_lr, max_lr, ... of the old schedule
                    g.update(f)
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if "rng" in state:
            set_rng_state(state["rng"])
        return int(state.get("epoch", 0)), History(state.get("history"))

    def build_schedule(self, start_epoch: int) -> None:
        """The per-step schedule over this call's ``epochs``, advanced to ``start_epoch``."""
        total = self.epochs * self.steps
        self.sched = create_scheduler(
            self.opt, self.schedule, total_steps=total, warmup_steps=round(self.warmup_epochs * self.steps)
        )
        done = min(start_epoch * self.steps, total)
        if done:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
                for _ in range(done):
                    self.sched.step()

    # ------------------------------------------------------------------ one step, one epoch
    def train_step(self, epoch: int, step: int, x: Any, y: Any) -> tuple[torch.Tensor, Any]:
        """Forward, loss, backward, optimizer and schedule step for one batch; returns (loss, output)."""
        if self.check_labels:
            y = _as_class_ids(y)
        if self.augment is not None:
            x, y = self.augment(x, y)
        if self.cl:
            x = _to_channels_last(x)  # after augment, which may return contiguous tensors
        _, ctx = autocast_for(self.dev, self.amp)
        with ctx:
            if self.takes_targets:
                out = self.net(x, y)
                if not isinstance(out, dict) or not out:
                    raise TypeError(
                        "a model with takes_targets=True must return a non-empty dict of losses "
                        f"in training mode, got {type(out).__name__}"
                    )
                loss = sum(out.values())
            else:
                out = self.net(x)
                if not self.labels_checked:
                    self._check_train_labels(out, y)
                loss = self.loss_fn(out, y)  # type: ignore[misc]
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"the loss must be a scalar tensor, got {shape}")
        if self.is_cuda:
            self.bad_step = torch.where(
                (self.bad_step < 0) & ~torch.isfinite(loss.detach()), step, self.bad_step
            )
        elif not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: lower lr, enable "
                "clip_grad_norm, or check the data"
            )
        self.opt.zero_grad(set_to_none=True)
        if self.use_scaler:
            self.scaler.scale(loss).backward()
            if self.clip_grad_norm is not None:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad_norm)
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            if self.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad_norm)
            self.opt.step()
        self.sched.step()
        return loss, (out, x, y)

    def _check_train_labels(self, out: Any, y: Any) -> None:
        _check_targets(out, y, "train")
        k = _num_classes(out)
        if isinstance(self.batches, TensorBatches):
            _check_labels(self.batches.y, k, "train")
            self.labels_checked = True
        else:
            _check_labels(y, k, "train")

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training batches (at most ``CVLIB_FAST_DEV_RUN`` steps); the epoch's logs."""
        self.model.train()
        self.batches.set_epoch(epoch)
        self.train_metrics.reset()
        loss_sum = torch.zeros((), device=self.dev)
        part_sums: dict[str, torch.Tensor] = {}
        seen = 0
        self.bad_step = torch.full((), -1, device=self.dev, dtype=torch.long) if self.is_cuda else None
        steps = self.steps if self.cap is None else min(self.steps, self.cap)
        for step, (x, y) in enumerate(_capped(self.batches, self.cap)):
            loss, (out, x, y) = self.train_step(epoch, step, x, y)
            n = _batch_len(x)
            seen += n
            loss_sum += loss.detach().float() * n
            if self.takes_targets:
                for key, v in out.items():
                    part_sums[key] = part_sums.get(key, 0) + v.detach().float() * n
            else:
                self.train_metrics.update(_detach(out), y)
            self.bar.update(1)
            if (step + 1) % self.sync_every == 0 or step + 1 == steps:
                self._sync_check(epoch, loss)
        if self.check_labels and not isinstance(self.batches, TensorBatches):
            self.labels_checked = True
        logs: dict[str, Any] = {"train_loss": (loss_sum / max(seen, 1)).item()}
        for key, v in part_sums.items():
            logs[f"train_{key}"] = float(v / max(seen, 1))
        logs.update({f"train_{k}": v for k, v in self.train_metrics.compute().items()})
        return logs

    def _sync_check(self, epoch: int, loss: torch.Tensor) -> None:
        if self.bad_step is not None and int(self.bad_step) >= 0:
            raise FloatingPointError(
                f"loss is not finite at epoch {epoch + 1}, step {int(self.bad_step) + 1}: lower lr, "
                "enable clip_grad_norm, or check the data"
            )
        if self.progress:
            self.bar.set_postfix(epoch=f"{epoch + 1}/{self.epochs}", loss=f"{loss.item():.4f}", refresh=False)

    def validate(self) -> dict[str, Any]:
        """``val_<loss/metric>`` on the validation data (empty without ``val``)."""
        if self.val_batches is None:
            return {}
        res = _evaluate_batches(
            self.net,
            self.model,
            _capped(self.val_batches, self.cap),
            self.val_metrics,
            self.loss_fn,
            self.dev,
            self.amp,
            self.cl,
            self.takes_targets,
        )
        return {f"val_{k}": v for k, v in res.items()}

    def save(self, epoch: int, hist: History) -> None:
        """The checkpoint after ``epoch`` epochs (atomic), with what :meth:`resume` needs."""
        if self.checkpoint is None:
            return
        save_checkpoint(
            self.checkpoint,
            self.model,
            self.opt,
            self.sched,
            self.scaler,
            epoch=epoch,
            history=hist.history,
            fit_config={
                "optimizer": type(self.opt).__name__,
                "schedule": self.schedule,
                "epochs": self.epochs,
            },
        )

    # ------------------------------------------------------------------ the loop
    def run(self, start_epoch: int, hist: History, callbacks: Sequence[Callable]) -> History:
        end = self.epochs if self.cap is None else min(self.epochs, start_epoch + 1)
        per_epoch = self.steps if self.cap is None else min(self.steps, self.cap)
        self.bar = tqdm(
            total=max(end - start_epoch, 0) * per_epoch,
            desc="fit",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            for epoch in range(start_epoch, end):
                t0 = time.perf_counter()
                logs = self.train_epoch(epoch)
                logs.update(self.validate())
                logs["lr"] = self.opt.param_groups[0]["lr"]
                logs["time"] = time.perf_counter() - t0
                hist.append({k: v for k, v in logs.items() if isinstance(v, (int, float))})
                if self.progress:
                    shown = {k: f"{v:.4g}" for k, v in logs.items() if k.startswith(("train_", "val_"))}
                    self.bar.set_postfix(epoch=f"{epoch + 1}/{self.epochs}", **shown)
                self.save(epoch + 1, hist)
                if any(cb(epoch, logs, self.model) for cb in callbacks):
                    break
        finally:
            self.bar.close()
        return hist


def _check_fit_args(
    model: Any, epochs: Any, label_smoothing: float, clip_grad_norm: Any, resume: bool, checkpoint: Any
) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if clip_grad_norm is not None and clip_grad_norm <= 0:
        raise ValueError(f"clip_grad_norm must be > 0 or None, got {clip_grad_norm}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path>")


def fit(
    model: nn.Module,
    train: Any,
    val: Any = None,
    *,
    epochs: int = 1,
    batch_size: int = 128,
    optimizer: str | torch.optim.Optimizer = "sgd",
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    schedule: str | None = "cosine",
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    metrics: Sequence[Any] = ("accuracy",),
    device: str | torch.device | None = None,
    amp: str | bool = "auto",
    channels_last: str | bool = "auto",
    compile: bool = False,
    clip_grad_norm: float | None = None,
    label_smoothing: float = 0.0,
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    collate_fn: Callable | None = None,
    callbacks: Sequence[Callable[[int, dict, nn.Module], bool | None]] = (),
    progress: bool = True,
    seed: int = 0,
    warmup_epochs: float = 0.0,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> History:
    """Train ``model`` on ``train`` for ``epochs`` epochs; validate on ``val`` after each epoch.

    Device contract: training runs on ``device`` (default :func:`cvlib.get_device`: the GPU if
    there is one); when ``fit`` returns (or raises) the model is moved back to the device it came
    from, in eval mode, so ``model(x)`` works on the caller's tensors as before the call (a model
    created on the CPU is on the CPU again). Use :func:`predict`/:func:`evaluate` to run it on the
    GPU afterwards.

    Args:
        model: any ``nn.Module``. If it returns a tuple in training mode (auxiliary heads), the
            default loss adds ``0.3 * CE`` per auxiliary output. A model with the class attribute
            ``takes_targets = True`` is called as ``model(x, y)`` in training mode and must return a
            dict of scalar losses (summed for the backward pass, each logged as ``train_<key>``).
        train: ``(X, y)`` tensors, ``(images, list of target dicts)`` (detection: images
            Tensor[N, C, H, W] or a list of Tensor[C, H, W], batched with
            :func:`cvlib.train.detection_collate`), a ``TensorDataset``, a ``Dataset`` (batched with
            ``collate_fn``) or a ``DataLoader``. Tensors that fit are moved to the device once and
            batched by index with a permutation fixed by ``seed`` and the epoch. With the default loss,
            class labels may be any integer or bool dtype (converted to int64); float labels must be
            soft labels of the output's shape, and labels ``[N, 1]`` are refused (``y.squeeze(1)``).
        val: the same kinds, or None.
        epochs: number of epochs (>= 1).
        batch_size: samples per step (ignored for a DataLoader).
        optimizer: ``"sgd"`` (momentum 0.9), ``"adamw"``, ``"adam"`` or an Optimizer instance.
        lr: peak learning rate. weight_decay: applied to weights, not to biases or norm layers.
        schedule: ``"cosine"``, ``"onecycle"`` or None, stepped every iteration.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        loss_fn: ``loss_fn(output, target) -> scalar``; default :func:`default_loss` (cross-entropy
            with ``label_smoothing``, per-pixel with ``ignore_index=255``, soft labels allowed).
        metrics: names (``"accuracy"``, ``"top5"``, ``"pixel_accuracy"``, ``"miou"``) or objects with
            ``reset()``, ``update(output, target)``, ``compute()``.
        device: where to train; default :func:`cvlib.get_device`.
        amp: ``"auto"`` (bf16 on recent CUDA, fp16 + grad scaler on older CUDA, fp32 on CPU),
            ``"off"``, ``"bf16"``, ``"fp16"``.
        channels_last: ``"auto"`` (CUDA conv nets), True, False.
        compile: wrap the model in ``torch.compile`` for training.
        clip_grad_norm: clip the global gradient norm to this value (None: no clipping).
        augment: ``augment(x, y) -> (x, y)`` applied on the device to training batches only.
        callbacks: ``cb(epoch, logs, model)`` after each epoch; returning True stops training.
        progress: show a ``tqdm.auto`` progress bar with the live loss.
        seed: seeds Python, NumPy and torch at the start, and fixes the batch order.
        checkpoint: if given, a checkpoint is written there (atomically) after every epoch.
        resume: with ``checkpoint``, continue from the saved epoch if the file exists: model,
            optimizer state, grad scaler and random states are restored (a run resumed with the same
            arguments matches an uninterrupted one exactly). The schedule is rebuilt for this call's
            ``epochs`` and ``lr``, so resuming with more epochs continues the schedule over the new
            total; with another optimizer the optimizer state starts fresh (``RuntimeWarning``).

    With ``CVLIB_FAST_DEV_RUN=N`` (:func:`cvlib.fast_dev_run`) one epoch of at most ``N`` steps of at
    most two samples is run, validated on at most ``N`` batches.

    Returns:
        History with ``train_loss``, ``train_<metric>``, ``val_loss``, ``val_<metric>``, ``lr`` per
        epoch. The model is left in eval mode on the device it came from.

    Raises:
        ValueError: bad option strings (the allowed values are listed), empty data, labels outside
            ``[0, num_classes)`` or of the wrong dtype/shape. FloatingPointError: a NaN/inf loss
            (epoch and step are named). CheckpointError: ``resume`` from an unreadable checkpoint.
    """
    _check_fit_args(model, epochs, label_smoothing, clip_grad_norm, resume, checkpoint)
    dev = get_device(device) if device is not None else get_device()
    home = module_device(model)
    run = None
    try:
        run = _FitRun(
            model,
            train,
            val,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            schedule=schedule,
            loss_fn=loss_fn,
            metrics=metrics,
            dev=dev,
            amp=amp,
            channels_last=channels_last,
            compile=compile,
            clip_grad_norm=clip_grad_norm,
            label_smoothing=label_smoothing,
            augment=augment,
            collate_fn=collate_fn,
            progress=progress,
            seed=seed,
            warmup_epochs=warmup_epochs,
            checkpoint=checkpoint,
        )
        start_epoch, hist = 0, History()
        if resume and checkpoint is not None and os.path.isfile(checkpoint):
            start_epoch, hist = run.resume(checkpoint)
        run.build_schedule(start_epoch)
        run.run(start_epoch, hist, callbacks)
    finally:
        if home is not None and home != dev:
            # back to the caller's device, in the default memory format if fit chose channels_last
            # (CPU kernels for channels_last weights are slower and, for some layers, buggy)
            fmt = torch.contiguous_format if run is not None and run.cl else torch.preserve_format
            model.to(home, memory_format=fmt)
    model.eval()
    return hist


def _evaluate_batches(
    net: Callable,
    model: nn.Module,
    batches: Iterable[Any],
    metrics: _MetricSet,
    loss_fn: Callable | None,
    dev: torch.device,
    amp: str | bool,
    cl: bool,
    takes_targets: bool,
) -> dict[str, Any]:
    was_training = model.training
    model.eval()
    metrics.reset()
    loss_sum = torch.zeros((), device=dev)
    seen = 0
    default = isinstance(loss_fn, _DefaultLoss)
    checked = not default
    try:
        with torch.inference_mode():
            for x, y in batches:
                if default:
                    y = _as_class_ids(y)
                if cl:
                    x = _to_channels_last(x)
                _, ctx = autocast_for(dev, amp)
                with ctx:
                    out = net(x)
                if not checked:
                    _check_targets(out, y, "evaluation")
                    k = _num_classes(out)
                    if isinstance(batches, TensorBatches):
                        _check_labels(batches.y, k, "evaluation")
                        checked = True
                    else:
                        _check_labels(y, k, "evaluation")
                n = _batch_len(x)
                seen += n
                if loss_fn is not None and not takes_targets:
                    loss_sum += loss_fn(out, y).float() * n
                metrics.update(out, y)
    finally:
        model.train(was_training)
    res: dict[str, Any] = {}
    if loss_fn is not None and not takes_targets:
        res["loss"] = (loss_sum / max(seen, 1)).item()
    res.update(metrics.compute())
    return res


def evaluate(
    model: nn.Module,
    data: Any,
    metrics: Sequence[Any] = ("accuracy",),
    batch_size: int = 256,
    *,
    loss_fn: Callable | None = None,
    device: str | torch.device | None = None,
    amp: str | bool = "auto",
    collate_fn: Callable | None = None,
) -> dict[str, Any]:
    """Loss and metrics of ``model`` on ``data`` in eval mode under ``torch.inference_mode``.

    Device contract: runs on ``device`` (default :func:`cvlib.get_device`), moving the data there
    batch by batch; afterwards the model is back on the device and in the train/eval mode it was
    found in (:func:`cvlib.run_on`). Results are Python floats (tensor-valued metrics on the CPU).

    Args:
        data: ``(X, y)`` tensors, ``(images, list of target dicts)``, a TensorDataset, a Dataset or a
            DataLoader. Integer/bool labels are converted to int64 for the default loss.
        metrics: names or metric objects (objects are updated in place, so e.g. a
            ``ConfusionMatrix`` can be read afterwards).
        loss_fn: default cross-entropy (none for ``takes_targets`` models, which return predictions).
        device: where to run; default :func:`cvlib.get_device`.

    With ``CVLIB_FAST_DEV_RUN=N`` only the first ``N`` batches are evaluated.

    Returns:
        ``{"loss": float, "<metric>": float, ...}`` (non-scalar metrics such as a confusion matrix
        are returned as CPU tensors).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    dev = get_device(device) if device is not None else get_device()
    resolve_amp_dtype(dev, amp)
    takes_targets = bool(getattr(model, "takes_targets", False))
    if loss_fn is None and not takes_targets:
        loss_fn = _DefaultLoss(0.0)
    batches = make_batches(
        data, batch_size=batch_size, device=dev, shuffle=False, collate_fn=collate_fn, name="data"
    )
    if isinstance(loss_fn, _DefaultLoss) and isinstance(batches, TensorBatches):
        batches.y = _as_class_ids(batches.y)
    with run_on(model, dev):
        cl = use_channels_last(model, dev, "auto")  # the memory format fit trains CUDA conv nets in
        res = _evaluate_batches(
            model,
            model,
            _capped(batches, fast_dev_run()),
            _MetricSet(metrics, copy_objects=False),
            loss_fn,
            dev,
            amp,
            cl,
            takes_targets,
        )
    return {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in res.items()}


def _placeholder(out: Any, n: int) -> Any:
    """Stand-in outputs for ``n`` samples not computed under fast-dev-run (zeros / empty detections)."""
    if isinstance(out, torch.Tensor):
        return out.new_zeros((n, *out.shape[1:]))
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], dict):
        empty = {k: (v[:0] if isinstance(v, torch.Tensor) else v) for k, v in out[0].items()}
        return [dict(empty) for _ in range(n)]
    return None


def _forward_checked(model: nn.Module, xb: torch.Tensor, first: bool) -> Any:
    """``model(xb)``; on the first batch an error from inside torch is re-raised naming ``x``."""
    if not first:
        return model(xb)
    try:
        return model(xb)
    except (RuntimeError, IndexError) as e:
        raise ValueError(
            f"the model could not run on a batch of x (dtype {xb.dtype}, shape {tuple(xb.shape)}); "
            f"check x's layout against the model's input: {e}"
        ) from e


def predict(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 256,
    *,
    amp: str | bool = "auto",
    device: str | torch.device | None = None,
) -> Any:
    """Model outputs for ``x``, computed in batches on ``device`` (eval mode, inference mode).

    Device contract: the model runs on ``device`` (default :func:`cvlib.get_device`) and is left on
    the device and in the mode it was found in (:func:`cvlib.run_on`); the outputs are returned on
    ``x``'s device.

    Args:
        x (Tensor[N, ...]): inputs, on any device.
        batch_size: samples per forward pass.
        device: where to run; default :func:`cvlib.get_device`.

    With ``CVLIB_FAST_DEV_RUN=N`` only the first ``N`` batches are computed; the rest of the result
    is zeros (detectors: empty detections), so shapes stay those of a full run.

    Returns:
        Tensor[N, ...] on ``x``'s device (floating outputs as float32); for a model whose outputs are
        not tensors (detectors: a list of dicts per image) the concatenated list, tensors on ``x``'s
        device.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.dtype == torch.bool or x.is_complex():
        raise TypeError(
            f"x must be a real tensor [N, ...] with N >= 0 samples, got {x.dtype} {list(x.shape)}"
        )
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"x must be finite, got NaN or inf values in {x.dtype} {list(x.shape)}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    dev = get_device(device) if device is not None else get_device()
    cap, batch_size = fast_dev_run(), fast_dev_batch(batch_size)
    stop = len(x) if cap is None else min(len(x), cap * batch_size)
    outs: list[Any] = []
    with run_on(model, dev, train=False), torch.inference_mode():
        for i in range(0, stop, batch_size):
            _, ctx = autocast_for(dev, amp)
            with ctx:
                out = _forward_checked(model, x[i : i + batch_size].to(dev, non_blocking=True), i == 0)
            outs.append(out)
    if outs and stop < len(x):
        rest = _placeholder(outs[-1], len(x) - stop)
        if rest is not None:
            outs.append(rest)
    if not outs:
        return x.new_zeros((0,))
    if all(isinstance(o, torch.Tensor) for o in outs):
        res = torch.cat(outs)
        return (res.float() if res.is_floating_point() else res).to(x.device)
    flat: list[Any] = []
    for o in outs:
        flat.extend(o)
    return to_device(flat, x.device)
