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
"""

from __future__ import annotations

import copy
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from cvlib.metrics.classification import get_metric
from cvlib.runtime import get_device
from cvlib.train.amp import autocast_for, grad_scaler_for, resolve_amp_dtype, use_channels_last
from cvlib.train.checkpoint import load_checkpoint, save_checkpoint
from cvlib.train.data import TensorBatches, make_batches
from cvlib.train.optim import create_optimizer, create_scheduler

__all__ = ["fit", "evaluate", "predict", "History", "default_loss", "AUX_WEIGHT", "IGNORE_INDEX"]

AUX_WEIGHT = 0.3  # GoogLeNet (arXiv:1409.4842, Sec. 5): auxiliary losses weighted by 0.3
IGNORE_INDEX = 255  # segmentation "void"/boundary label (PASCAL VOC convention)


# --------------------------------------------------------------------------------------------- losses
def _ce(output: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
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


def _model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    if p is None:
        p = next(iter(model.buffers()), None)
    return p.device if p is not None else get_device()


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

    Args:
        model: any ``nn.Module``. If it returns a tuple in training mode (auxiliary heads), the
            default loss adds ``0.3 * CE`` per auxiliary output. A model with the class attribute
            ``takes_targets = True`` is called as ``model(x, y)`` in training mode and must return a
            dict of scalar losses (summed for the backward pass, each logged as ``train_<key>``).
        train: ``(X, y)`` tensors, a ``TensorDataset``, a ``Dataset`` (batched with ``collate_fn``)
            or a ``DataLoader``. Tensors that fit are moved to the device once and batched by index
            with a permutation fixed by ``seed`` and the epoch.
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
        device: default :func:`cvlib.get_device`. The model is moved there.
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
        resume: with ``checkpoint``, continue from the saved epoch if the file exists (exactly: model,
            optimizer, scheduler, scaler and random states are restored).

    Returns:
        History with ``train_loss``, ``train_<metric>``, ``val_loss``, ``val_<metric>``, ``lr`` per
        epoch. The model is left in eval mode on ``device``.

    Raises:
        ValueError: bad option strings (the allowed values are listed), empty data, labels outside
            ``[0, num_classes)``. FloatingPointError: a NaN/inf loss (epoch and step are named).
    """
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
    dev = get_device(device) if device is not None else get_device()
    amp_dtype = resolve_amp_dtype(dev, amp)  # validates `amp`
    takes_targets = bool(getattr(model, "takes_targets", False))
    if loss_fn is None and not takes_targets:
        loss_fn = _DefaultLoss(label_smoothing)
    check_labels = isinstance(loss_fn, _DefaultLoss)
    train_metrics = _MetricSet([] if takes_targets else metrics, copy_objects=True)
    val_metrics = _MetricSet(metrics, copy_objects=False)

    _seed(seed)
    model.to(dev)
    cl = use_channels_last(model, dev, channels_last)
    if cl:
        model.to(memory_format=torch.channels_last)
    batches = make_batches(
        train,
        batch_size=batch_size,
        device=dev,
        shuffle=True,
        seed=seed,
        collate_fn=collate_fn,
        drop_single=True,
        name="train",
    )
    val_batches = None
    if val is not None:
        val_batches = make_batches(
            val, batch_size=batch_size, device=dev, shuffle=False, collate_fn=collate_fn, name="val"
        )
    steps = len(batches)
    if steps == 0:
        raise ValueError("train is empty (0 batches)")

    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    else:
        opt = create_optimizer(model, optimizer, lr=lr, weight_decay=weight_decay)
    sched = create_scheduler(
        opt, schedule, total_steps=epochs * steps, warmup_steps=round(warmup_epochs * steps)
    )
    scaler = grad_scaler_for(dev, amp_dtype)
    use_scaler = scaler.is_enabled()

    hist = History()
    start_epoch = 0
    if resume and checkpoint is not None and os.path.isfile(checkpoint):
        state = load_checkpoint(checkpoint, model, opt, sched, scaler)
        start_epoch = int(state.get("epoch", 0))
        hist = History(state.get("history"))

    net = torch.compile(model) if compile else model
    params = [p for g in opt.param_groups for p in g["params"]]
    is_cuda = dev.type == "cuda"
    sync_every = 25 if is_cuda else 10
    bar = tqdm(total=(epochs - start_epoch) * steps, desc="fit", disable=not progress, dynamic_ncols=True)
    labels_checked = not check_labels
    try:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            model.train()
            batches.set_epoch(epoch)
            train_metrics.reset()
            loss_sum = torch.zeros((), device=dev)
            part_sums: dict[str, torch.Tensor] = {}
            seen = 0
            bad_step = torch.full((), -1, device=dev, dtype=torch.long) if is_cuda else None
            for step, (x, y) in enumerate(batches):
                if augment is not None:
                    x, y = augment(x, y)
                if cl:
                    x = _to_channels_last(x)  # after augment, which may return contiguous tensors
                _, ctx = autocast_for(dev, amp)
                with ctx:
                    if takes_targets:
                        out = net(x, y)
                        if not isinstance(out, dict) or not out:
                            raise TypeError(
                                "a model with takes_targets=True must return a non-empty dict of losses "
                                f"in training mode, got {type(out).__name__}"
                            )
                        loss = sum(out.values())
                    else:
                        out = net(x)
                        if not labels_checked:
                            k = _num_classes(out)
                            if isinstance(batches, TensorBatches):
                                _check_labels(batches.y, k, "train")
                                labels_checked = True
                            else:
                                _check_labels(y, k, "train")
                        loss = loss_fn(out, y)  # type: ignore[misc]
                if loss.ndim != 0:
                    raise ValueError(f"the loss must be a scalar, got shape {tuple(loss.shape)}")
                if is_cuda:
                    bad_step = torch.where((bad_step < 0) & ~torch.isfinite(loss.detach()), step, bad_step)
                elif not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: lower lr, enable "
                        "clip_grad_norm, or check the data"
                    )
                opt.zero_grad(set_to_none=True)
                if use_scaler:
                    scaler.scale(loss).backward()
                    if clip_grad_norm is not None:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    if clip_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
                    opt.step()
                sched.step()

                n = _batch_len(x)
                seen += n
                loss_sum += loss.detach().float() * n
                if takes_targets:
                    for key, v in out.items():
                        part_sums[key] = part_sums.get(key, 0) + v.detach().float() * n
                else:
                    train_metrics.update(_detach(out), y)
                bar.update(1)
                if (step + 1) % sync_every == 0 or step + 1 == steps:
                    if bad_step is not None and int(bad_step) >= 0:
                        raise FloatingPointError(
                            f"loss is not finite at epoch {epoch + 1}, step {int(bad_step) + 1}: lower lr, "
                            "enable clip_grad_norm, or check the data"
                        )
                    if progress:
                        bar.set_postfix(
                            epoch=f"{epoch + 1}/{epochs}", loss=f"{loss.item():.4f}", refresh=False
                        )
            if check_labels and not isinstance(batches, TensorBatches):
                labels_checked = True

            logs: dict[str, Any] = {"train_loss": (loss_sum / max(seen, 1)).item()}
            for key, v in part_sums.items():
                logs[f"train_{key}"] = float(v / max(seen, 1))
            logs.update({f"train_{k}": v for k, v in train_metrics.compute().items()})
            if val_batches is not None:
                res = _evaluate_batches(
                    net, model, val_batches, val_metrics, loss_fn, dev, amp, cl, takes_targets
                )
                logs.update({f"val_{k}": v for k, v in res.items()})
            logs["lr"] = opt.param_groups[0]["lr"]
            logs["time"] = time.perf_counter() - t0
            hist.append({k: v for k, v in logs.items() if isinstance(v, (int, float))})
            if progress:
                shown = {k: f"{v:.4g}" for k, v in logs.items() if k.startswith(("train_", "val_"))}
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", **shown)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, opt, sched, scaler, epoch=epoch + 1, history=hist.history)
            if any(cb(epoch, logs, model) for cb in callbacks):
                break
    finally:
        bar.close()
    model.eval()
    return hist


def _detach(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(_detach(o) for o in out)
    return out


def _evaluate_batches(
    net: Callable,
    model: nn.Module,
    batches: Any,
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
    checked = not isinstance(loss_fn, _DefaultLoss)
    try:
        with torch.inference_mode():
            for x, y in batches:
                if cl:
                    x = _to_channels_last(x)
                _, ctx = autocast_for(dev, amp)
                with ctx:
                    out = net(x)
                if not checked:
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

    Args:
        data: ``(X, y)`` tensors, a TensorDataset, a Dataset or a DataLoader.
        metrics: names or metric objects (objects are updated in place, so e.g. a
            ``ConfusionMatrix`` can be read afterwards).
        loss_fn: default cross-entropy (none for ``takes_targets`` models, which return predictions).
        device: default: the model's device.

    Returns:
        ``{"loss": float, "<metric>": float, ...}`` (non-scalar metrics such as a confusion matrix
        are returned as tensors).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    dev = get_device(device) if device is not None else _model_device(model)
    resolve_amp_dtype(dev, amp)
    model.to(dev)
    takes_targets = bool(getattr(model, "takes_targets", False))
    if loss_fn is None and not takes_targets:
        loss_fn = _DefaultLoss(0.0)
    batches = make_batches(
        data, batch_size=batch_size, device=dev, shuffle=False, collate_fn=collate_fn, name="data"
    )
    cl = use_channels_last(model, dev, "auto")  # the memory format fit trains CUDA conv nets in
    return _evaluate_batches(
        model, model, batches, _MetricSet(metrics, copy_objects=False), loss_fn, dev, amp, cl, takes_targets
    )


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256, *, amp: str | bool = "auto") -> Any:
    """Model outputs for ``x``, computed in batches on the model's device (eval mode, inference mode).

    Args:
        x (Tensor[N, ...]): inputs.
        batch_size: samples per forward pass.

    Returns:
        Tensor[N, ...] on ``x``'s device (floating outputs as float32); for a model whose outputs are
        not tensors (detectors: a list of dicts per image) the concatenated list.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    dev = _model_device(model)
    was_training = model.training
    model.eval()
    outs: list[Any] = []
    try:
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                _, ctx = autocast_for(dev, amp)
                with ctx:
                    out = model(x[i : i + batch_size].to(dev, non_blocking=True))
                outs.append(out)
    finally:
        model.train(was_training)
    if not outs:
        return x.new_zeros((0,))
    if all(isinstance(o, torch.Tensor) for o in outs):
        res = torch.cat(outs)
        return (res.float() if res.is_floating_point() else res).to(x.device)
    flat: list[Any] = []
    for o in outs:
        flat.extend(o)
    return flat
