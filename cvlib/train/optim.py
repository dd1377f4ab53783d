"""Optimizers and learning-rate schedules, built from short names.

Weight decay is applied to weights only: biases and normalisation parameters are left undecayed
(as in Goyal et al. 2017, arXiv:1706.02677, "no bias decay"). Schedules are stepped once per
iteration: cosine annealing (Loshchilov & Hutter 2017, arXiv:1608.03983) with an optional linear
warm-up, and the one-cycle policy (Smith & Topin 2018, arXiv:1708.07120).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvlib._validate import check_float, check_int

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "param_groups",
    "create_optimizer",
    "create_scheduler",
    "WarmupCosine",
]

OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("cosine", "onecycle", None)
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed group and an undecayed group.

    Undecayed: every parameter of a normalisation layer (BatchNorm, GroupNorm, LayerNorm,
    InstanceNorm), every ``bias`` and every parameter with fewer than 2 dimensions.

    Returns:
        ``[{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]``
        (a group is left out when it is empty).
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, _NORMS) or name.endswith("bias") or p.ndim < 2:
                no_decay.append(p)
            else:
                decay.append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def create_optimizer(
    model: nn.Module,
    name: str = "sgd",
    *,
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """Build ``"sgd"`` (momentum 0.9), ``"adamw"`` or ``"adam"`` with decay that skips norms and biases."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a torch.optim.Optimizer, got {name!r}")
    lr = check_float(lr, "lr", min=0.0, min_open=True)
    weight_decay = check_float(weight_decay, "weight_decay", min=0.0)
    groups = param_groups(model, weight_decay)
    if not groups:
        raise ValueError("model has no trainable parameters")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    return torch.optim.Adam(groups, lr=lr, betas=betas)


class WarmupCosine:
    """LR multiplier: linear warm-up from ~0 to 1 over ``warmup_steps``, then a half cosine to ``final``.

    A callable object (not a lambda) so that ``LambdaLR.state_dict()`` saves it.
    """

    def __init__(self, total_steps: int, warmup_steps: int = 0, final: float = 0.0) -> None:
        self.total_steps = check_int(total_steps, "total_steps", min=1)
        self.warmup_steps = check_int(warmup_steps, "warmup_steps", min=0)
        self.final = check_float(final, "final", min=0.0, max=1.0)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * t))


class _Warmup:
    """LR multiplier: linear warm-up, then constant 1."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / (self.warmup_steps + 1)) if self.warmup_steps else 1.0


def create_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str | None = "cosine",
    *,
    total_steps: int,
    warmup_steps: int = 0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-iteration schedule: ``"cosine"`` (with linear warm-up), ``"onecycle"`` or None (constant
    after the optional warm-up). Call ``scheduler.step()`` after every ``optimizer.step()``.

    For ``"onecycle"`` the peak LR is the optimizer's LR and the rising phase lasts ``warmup_steps``
    (30 % of the run when 0).
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < max(total_steps, 1) + 1:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
    if name == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total_steps, warmup_steps))
    if name == "onecycle":
        max_lr = [g["lr"] for g in optimizer.param_groups]
        pct = warmup_steps / total_steps if warmup_steps else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=max(pct, 1e-3)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _Warmup(warmup_steps))
