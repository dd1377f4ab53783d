"""Transfer-learning helpers: freeze a backbone, swap the head, per-part learning rates, fixed BN statistics.

Feature extraction trains only a new head on a frozen pretrained network; fine-tuning trains every
layer, usually with a smaller learning rate for the pretrained layers than for the new head
(Yosinski et al. 2014, arXiv:1411.1792; Kornblith et al. 2019, arXiv:1805.08974; the per-layer
learning rates are ULMFiT's "discriminative fine-tuning", Howard & Ruder 2018, arXiv:1801.06146).
Batch normalisation (Ioffe & Szegedy 2015, arXiv:1502.03167) keeps running statistics that are
updated in training mode even when its parameters are frozen; :func:`freeze_bn` keeps them fixed.

Layer names are dotted module paths as in ``model.named_modules()`` (``"fc"``, ``"classifier.6"``).
A *head* name matches a parameter when it is a whole-segment part of the parameter's name: ``"fc"``
matches ``fc.weight`` and ``1.fc.bias`` (a model wrapped in ``nn.Sequential``) but not ``fc1.weight``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "NormalizeInput",
    "freeze",
    "replace_head",
    "finetune_param_groups",
    "freeze_bn",
    "unfreeze_bn",
    "bn_running_stats",
]

_BN = nn.modules.batchnorm._BatchNorm
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
_HOOK_ATTR = "_cvlib_freeze_bn_hook"


def _names(names: str | Sequence[str], arg: str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    if not isinstance(names, (tuple, list)) or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{arg} must be a module name or a sequence of non-empty names, got {names!r}")
    return tuple(names)


def _matches(param_name: str, names: tuple[str, ...]) -> bool:
    """True if one of ``names`` is a whole-segment part of the dotted ``param_name``."""
    dotted = f".{param_name}."
    return any(f".{n}." in dotted for n in names)


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")


class NormalizeInput(nn.Module):
    """Maps [0, 1] images to the input statistics a set of pretrained weights expects.

    Pretrained weights are tied to the normalisation of their training data (ImageNet weights:
    ``IMAGENET_MEAN``, ``IMAGENET_STD``). Put this module in front of the network
    (``nn.Sequential(NormalizeInput(mean, std), net)``) so that every caller, training and
    evaluation alike, feeds the weights what they were trained on. Optionally resizes (bilinear)
    to the resolution of pretraining first, on the device, batch by batch.

    Args:
        mean: per-channel mean (C values).
        std: per-channel standard deviation (C values, > 0).
        size: output (H, W) or one int for a square, or None to keep the input size.

    Shapes:
        input ``Tensor[B, C, H, W]`` in [0, 1] -> ``Tensor[B, C, H', W']``, ``(x - mean) / std``.
    """

    def __init__(
        self, mean: Sequence[float], std: Sequence[float], size: int | Sequence[int] | None = None
    ) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.numel() == 0 or mean_t.shape != std_t.shape:
            raise ValueError(
                f"mean and std must have the same non-zero length, got {mean_t.numel()} and {std_t.numel()}"
            )
        if not bool((std_t > 0).all()):
            raise ValueError(f"std must be > 0, got {tuple(std_t.tolist())}")
        if size is not None:
            size = (size, size) if isinstance(size, int) else tuple(size)
            if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
                raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
        self.size = size
        self.register_buffer("mean", mean_t[:, None, None])
        self.register_buffer("std", std_t[:, None, None])

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"x must be [B, {self.mean.shape[0]}, H, W], got {tuple(x.shape)}")
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)  # [B, C, H', W']

    def extra_repr(self) -> str:
        mean = tuple(round(v, 4) for v in self.mean.flatten().tolist())
        std = tuple(round(v, 4) for v in self.std.flatten().tolist())
        return f"mean={mean}, std={std}, size={self.size}"


def freeze(model: nn.Module, except_: str | Sequence[str] = ("fc",)) -> int:
    """Set ``requires_grad=False`` on every parameter outside the modules named in ``except_``.

    The named modules' parameters are set trainable. Running statistics of batch-norm layers are
    *not* parameters and still change in training mode: use :func:`freeze_bn` for those.

    Args:
        model: the network.
        except_: module names that stay trainable (whole dotted segments, see the module
            docstring); ``()`` freezes everything.

    Returns:
        The number of trainable parameter elements left.

    Raises:
        ValueError: a name in ``except_`` matches no parameter.
    """
    _check_model(model)
    keep = _names(except_, "except_") if except_ != () else ()
    found = dict.fromkeys(keep, False)
    trainable = 0
    for name, p in model.named_parameters():
        hit = [n for n in keep if _matches(name, (n,))]
        for n in hit:
            found[n] = True
        p.requires_grad_(bool(hit))
        trainable += p.numel() if hit else 0
    missing = [n for n, ok in found.items() if not ok]
    if missing:
        raise ValueError(f"except_ names {missing} match no parameter of {type(model).__name__}")
    return trainable


def replace_head(model: nn.Module, num_classes: int, head: str = "fc") -> nn.Linear:
    """Replace the linear layer at the dotted path ``head`` with a new, freshly initialised one.

    The new layer has the same ``in_features``, ``num_classes`` outputs, a bias if the old one had
    one, and the old layer's device and dtype. It is trainable (``requires_grad=True``).

    Args:
        model: the network (changed in place).
        num_classes: K, the outputs of the new head (>= 1).
        head: dotted path of the old ``nn.Linear`` (``"fc"``, ``"classifier.6"``, ``"1.fc"``).

    Returns:
        The new ``nn.Linear(in_features, K)``.

    Raises:
        ValueError: no module at ``head``, or ``num_classes`` < 1.
        TypeError: the module at ``head`` is not an ``nn.Linear`` (or is still lazy).
    """
    _check_model(model)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
    try:
        old = model.get_submodule(head)
    except AttributeError as e:
        raise ValueError(f"head={head!r} names no module of {type(model).__name__}: {e}") from None
    if not isinstance(old, nn.Linear) or isinstance(old, nn.modules.lazy.LazyModuleMixin):
        raise TypeError(f"head={head!r} must be an initialised nn.Linear, got {type(old).__name__}")
    new = nn.Linear(
        old.in_features,
        num_classes,
        bias=old.bias is not None,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    parent_name, _, attr = head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
    return new


def finetune_param_groups(
    model: nn.Module,
    *,
    lr: float,
    backbone_lr: float,
    head: str | Sequence[str] = ("fc",),
    weight_decay: float = 0.0,
) -> list[dict]:
    """Optimizer parameter groups with one learning rate for the head and another for the backbone.

    Pass the result to an optimizer (``torch.optim.SGD(groups, momentum=0.9)``) and that optimizer to
    ``cvlib.train.fit(..., optimizer=opt)``; fit's schedules scale every group's rate by the same
    factor, so the ratio ``backbone_lr / lr`` holds throughout. Weight decay is split as in
    ``cvlib.train.optim.param_groups``: none on biases, norm layers and 1-d parameters. Frozen
    parameters (``requires_grad=False``) are left out; ``backbone_lr=0`` leaves out the backbone.

    Args:
        model: the network.
        lr: learning rate of the head (> 0).
        backbone_lr: learning rate of every other trainable parameter (>= 0).
        head: module names of the head (whole dotted segments).
        weight_decay: decay for weight matrices and kernels (>= 0).

    Returns:
        A list of dicts with keys ``params``, ``lr``, ``weight_decay`` and ``name`` (``"head"`` or
        ``"backbone"``, with ``"/no_decay"`` for the undecayed part); head groups come first, so
        ``fit``'s logged ``lr`` is the head's.

    Raises:
        ValueError: non-positive ``lr``, negative ``backbone_lr`` or ``weight_decay``, or a head that
            matches no trainable parameter.
    """
    _check_model(model)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not backbone_lr >= 0:
        raise ValueError(f"backbone_lr must be >= 0, got {backbone_lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    heads = _names(head, "head")
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {
        (part, decay): [] for part in ("head", "backbone") for decay in (True, False)
    }
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            part = "head" if _matches(full, heads) else "backbone"
            decay = not (isinstance(module, _NORMS) or p_name.endswith("bias") or p.ndim < 2)
            buckets[(part, decay)].append(p)
    if not (buckets[("head", True)] or buckets[("head", False)]):
        raise ValueError(f"head={heads} matches no trainable parameter of {type(model).__name__}")
    groups = []
    for part, part_lr in (("head", lr), ("backbone", backbone_lr)):
        if part_lr == 0:
            continue
        for decay in (True, False):
            if buckets[(part, decay)]:
                name = part if decay else f"{part}/no_decay"
                wd = weight_decay if decay else 0.0
                groups.append(
                    {"params": buckets[(part, decay)], "lr": part_lr, "weight_decay": wd, "name": name}
                )
    return groups


def _freeze_bn_hook(module: nn.Module, args: tuple) -> None:
    module.training = False  # normalise with the running statistics and leave them unchanged


def freeze_bn(model: nn.Module) -> int:
    """Keep every batch-norm layer of ``model`` in eval mode, even after ``model.train()``.

    ``cvlib.train.fit`` calls ``model.train()`` each epoch, which would switch batch norm back to
    batch statistics and update its running mean and variance. A forward pre-hook on each BN layer
    resets its ``training`` flag before every call, so it normalises with the stored statistics and
    never changes them. The affine ``weight`` and ``bias`` stay trainable (use :func:`freeze` for
    them). Calling it twice is harmless; :func:`unfreeze_bn` undoes it.

    Returns:
        The number of batch-norm layers frozen (0 if the model has none).
    """
    _check_model(model)
    count = 0
    for module in model.modules():
        if isinstance(module, _BN):
            if getattr(module, _HOOK_ATTR, None) is None:
                setattr(module, _HOOK_ATTR, module.register_forward_pre_hook(_freeze_bn_hook))
            module.eval()
            count += 1
    return count


def unfreeze_bn(model: nn.Module) -> int:
    """Undo :func:`freeze_bn`: remove the hooks; the layers follow ``model.train()`` / ``eval()`` again.

    The layers keep their current mode until the next ``train()`` or ``eval()`` call.

    Returns:
        The number of batch-norm layers that were frozen.
    """
    _check_model(model)
    count = 0
    for module in model.modules():
        handle = getattr(module, _HOOK_ATTR, None)
        if handle is not None:
            handle.remove()
            delattr(module, _HOOK_ATTR)
            count += 1
    return count


def bn_running_stats(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of every batch-norm running mean and variance, keyed by buffer name.

    Useful to check what a training run changed: compare two snapshots with ``torch.equal``.
    """
    _check_model(model)
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, _BN) and module.track_running_stats and module.running_mean is not None:
            prefix = f"{name}." if name else ""
            out[prefix + "running_mean"] = module.running_mean.detach().clone()
            out[prefix + "running_var"] = module.running_var.detach().clone()
    return out
