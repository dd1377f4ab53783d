"""Visual explanations: CAM, Grad-CAM, the pointing game and the randomised-weights sanity check.

* CAM (Zhou et al. 2016, arXiv:1512.04150): for a network that ends in global average pooling and
  a linear layer, the class-``c`` map is the classifier-weighted sum of the last feature maps,
  ``M_c = sum_k w[c, k] A_k``.
* Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): any layer, any head; channel weights are the
  spatially averaged gradients of the class score, ``alpha_k = mean_ij dy_c / dA_k[i, j]``, and
  ``M_c = ReLU(sum_k alpha_k A_k)``. For a GAP + linear head, ``alpha_k = w[c, k] / (h w)``, so
  Grad-CAM is ReLU(CAM) divided by the number of positions.
* Pointing game (Zhang et al. 2016, arXiv:1608.00507): a hit when the map's maximum falls on the
  object (within a tolerance).
* Sanity check (Adebayo et al. 2018, arXiv:1810.03292): a map that survives re-initialising the
  weights explains the input, not the model. Compare maps with a rank correlation.

The target layer is chosen by its module name (``dict(model.named_modules())``), e.g.
``"layer4"`` or ``"features.7"``; its output must be a ``[B, C, h, w]`` tensor.
"""

from __future__ import annotations

import copy
import difflib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib._validate import check_choice, check_int, check_tensor, describe

__all__ = [
    "find_module",
    "cam",
    "grad_cam",
    "pointing_game",
    "randomized_copy",
    "rank_correlation",
]


def find_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``model.named_modules()``).

    Raises:
        ValueError: for an unknown name, with the closest names as suggestions.
    """
    _check_model(model)
    if not isinstance(name, str):
        raise TypeError(f"layer name must be a str (a name from model.named_modules()), got {describe(name)}")
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        close = difflib.get_close_matches(name, [n for n in modules if n], n=4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"model has no module named {name!r}{hint}")
    return modules[name]


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    p = next(model.parameters(), None)
    if p is None:
        p = next(model.buffers(), None)
    return p.device if p is not None else fallback


def _capture(model: nn.Module, layer: str, x: Tensor) -> tuple[Tensor, Tensor]:
    """Run ``model(x)`` and return ``(logits [B, K], activation of layer [B, C, h, w])``."""
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _inp: object, out: Tensor) -> None:
        store["a"] = out

    handle = find_module(model, layer).register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    a = store.get("a")
    if not isinstance(a, Tensor) or a.ndim != 4:
        shape = tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__
        raise ValueError(f"target layer {layer!r} must output [B, C, h, w], got {shape}")
    if logits.ndim != 2:
        raise ValueError(f"model must return class scores [B, K], got {tuple(logits.shape)}")
    return logits, a


def _classes(logits: Tensor, classes: Tensor | int | None) -> Tensor:
    b, k = logits.shape
    if classes is None:
        return logits.argmax(1)
    if isinstance(classes, bool) or not isinstance(classes, (int, Tensor, list, tuple)):
        raise TypeError(f"classes must be an int, a list of ints or an int tensor, got {describe(classes)}")
    if isinstance(classes, Tensor) and (classes.is_floating_point() or classes.is_complex()):
        raise TypeError(f"classes must hold integer class ids, got dtype {classes.dtype}")
    try:
        c = torch.as_tensor(classes, device=logits.device).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"classes must be an int or a list of ints, got {classes!r}") from e
    if c.is_floating_point() or c.dtype == torch.bool:
        raise TypeError(f"classes must hold integer class ids, got {classes!r}")
    c = c.long()
    if c.numel() == 1:
        c = c.expand(b)
    if c.numel() != b:
        raise ValueError(f"classes must be an int or one id per image ({b}), got {c.numel()}")
    if int(c.min()) < 0 or int(c.max()) >= k:
        raise ValueError(f"classes must be in [0, {k}), got {c.tolist()}")
    return c


def _resize(maps: Tensor, size: tuple[int, int] | None) -> Tensor:
    if size is None:
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _check_images(x: object) -> Tensor:
    if isinstance(x, Tensor) and not x.is_floating_point():
        raise TypeError(
            f"x must be float images [B, C, H, W], got dtype {x.dtype}; convert with x.float() / 255"
        )
    check_tensor(x, "x", ndim=4, dtype="float", finite=True, nonempty=True, shape="[B, C, H, W]")
    return x


def cam(
    model: nn.Module,
    x: Tensor,
    target_layer: str,
    classes: Tensor | int | None = None,
    *,
    fc_layer: str | None = None,
    upsample: bool = True,
) -> Tensor:
    """Class activation maps (Zhou et al. 2016) for a GAP + linear classifier.

    Args:
        model: a classifier whose ``target_layer`` output is global-average-pooled into ``fc_layer``.
        x (Tensor[B, C, H, W]): images.
        target_layer: name of the last convolutional stage.
        classes: class id(s) to explain (default: the predicted class of each image).
        fc_layer: name of the final ``nn.Linear`` (default: the last Linear in the model).
        upsample: resize the maps to ``H x W`` (bilinear); False keeps the feature resolution.

    Returns:
        Tensor[B, H, W] (or [B, h, w]): ``sum_k w[c, k] A_k`` (not rectified, not normalised).
    """
    _check_model(model)
    _check_images(x)
    if not isinstance(target_layer, str):
        raise TypeError(f"target_layer must be a module name (str), got {describe(target_layer)}")
    if fc_layer is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("model has no nn.Linear: pass fc_layer, or use grad_cam")
        fc = linears[-1]
    else:
        fc = find_module(model, fc_layer)
        if not isinstance(fc, nn.Linear):
            raise ValueError(f"fc_layer {fc_layer!r} must be an nn.Linear, got {type(fc).__name__}")
    out_device = x.device
    x = x.to(_model_device(model, x.device))  # run where the model is, answer where x was
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, a = _capture(model, target_layer, x)
    finally:
        model.train(was_training)
    if fc.in_features != a.shape[1]:
        raise ValueError(
            f"fc layer takes {fc.in_features} features but {target_layer!r} has {a.shape[1]} channels: "
            "CAM needs the target layer to feed global average pooling and the classifier directly"
        )
    c = _classes(logits, classes)
    w = fc.weight[c].to(a.dtype)  # [B, C]
    maps = torch.einsum("bc,bchw->bhw", w, a)
    return _resize(maps, tuple(x.shape[-2:]) if upsample else None).to(out_device)


def grad_cam(
    model: nn.Module,
    x: Tensor,
    target_layer: str,
    classes: Tensor | int | None = None,
    *,
    upsample: bool = True,
    relu: bool = True,
) -> Tensor:
    """Grad-CAM maps (Selvaraju et al. 2017) for any classifier, batched.

    Each image's class score depends only on that image (the model runs in eval mode), so one
    backward pass of the summed scores gives every image's gradients.

    Args:
        x (Tensor[B, C, H, W]): images.
        target_layer: module name whose output ``A`` ([B, C, h, w]) is explained.
        classes: class id(s) to explain (default: predicted).
        relu: apply the ReLU of the paper (False shows negative evidence too).

    Returns:
        Tensor[B, H, W] (or [B, h, w] with ``upsample=False``), ``ReLU(sum_k alpha_k A_k)``.
    """
    _check_model(model)
    _check_images(x)
    if not isinstance(target_layer, str):
        raise TypeError(f"target_layer must be a module name (str), got {describe(target_layer)}")
    out_device = x.device
    x = x.to(_model_device(model, x.device))  # run where the model is, answer where x was
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            xi = x.detach().clone().requires_grad_(True)  # a graph even if the weights are frozen
            logits, a = _capture(model, target_layer, xi)
            c = _classes(logits, classes)
            score = logits.gather(1, c[:, None]).sum()
            (grads,) = torch.autograd.grad(score, a)
    finally:
        model.train(was_training)
    alpha = grads.mean(dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
    maps = (alpha * a).sum(1).detach()
    if relu:
        maps = maps.clamp_min(0)
    return _resize(maps, tuple(x.shape[-2:]) if upsample else None).to(out_device)


def pointing_game(
    heatmaps: Tensor, masks: Tensor, *, tolerance: int = 0, reduction: str = "mean"
) -> float | Tensor:
    """Pointing-game accuracy: does each map's maximum land on the object?

    Args:
        heatmaps (Tensor[B, h, w]): saliency maps; resized (bilinear) to the mask size if needed.
        masks (Tensor[B, H, W]): object masks (bool, or ints where > 0 means object; 255 counts as
            background).
        tolerance: a hit also counts within this many pixels of the mask (Zhang et al. use 15 at
            ImageNet resolution); implemented by max-pool dilation of the mask.
        reduction: ``"mean"`` (float accuracy) or ``"none"`` (bool hits ``[B]``).

    Returns:
        float in [0, 1], or Tensor[B] of bool on the heatmaps' device (masks are moved there).
    """
    check_choice(reduction, "reduction", ("mean", "none"))
    tolerance = check_int(tolerance, "tolerance", min=0)
    check_tensor(heatmaps, "heatmaps", ndim=3, dtype=("float", "int", "bool"), finite=True, shape="[B, h, w]")
    check_tensor(masks, "masks", ndim=3, dtype=("int", "bool"), shape="[B, H, W] object masks")
    masks = masks.to(heatmaps.device)  # the hits (and the mask index) live on the heatmaps' device
    if heatmaps.ndim != 3 or masks.ndim != 3 or heatmaps.shape[0] != masks.shape[0]:
        raise ValueError(
            f"heatmaps must be [B, h, w] and masks [B, H, W] with the same B, got "
            f"{tuple(heatmaps.shape)} and {tuple(masks.shape)}"
        )
    if heatmaps.shape[0] == 0 or heatmaps.numel() == 0 or masks.numel() == 0:
        raise ValueError(
            f"heatmaps and masks must not be empty, got {tuple(heatmaps.shape)}, {tuple(masks.shape)}"
        )
    m = masks.bool() if masks.dtype == torch.bool else (masks > 0) & (masks != 255)
    h = heatmaps.float()
    if h.shape[-2:] != m.shape[-2:]:
        h = _resize(h, tuple(m.shape[-2:]))
    if tolerance > 0:
        m = F.max_pool2d(m[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0] > 0
    b, H, W = m.shape
    idx = h.reshape(b, -1).argmax(1)
    hits = m.reshape(b, -1).gather(1, idx[:, None])[:, 0]
    return hits.float().mean().item() if reduction == "mean" else hits


def randomized_copy(model: nn.Module, layers: list[str] | None = None, *, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` whose weights are re-initialised (Adebayo et al. 2018's model test).

    Args:
        layers: module names to re-initialise (with their submodules); None: every module.
        seed: fixes the new random weights.

    Returns:
        The copy (the original is unchanged). Modules without ``reset_parameters`` keep their weights.
    """
    _check_model(model)
    seed = check_int(seed, "seed")
    if layers is not None and (isinstance(layers, str) or not all(isinstance(n, str) for n in layers)):
        raise TypeError(f"layers must be a list of module names (str) or None, got {layers!r}")
    new = copy.deepcopy(model)
    targets = [new] if layers is None else [find_module(new, n) for n in layers]
    g_state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        for t in targets:
            for m in t.modules():
                if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                    m.reset_parameters()
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()
    finally:
        torch.set_rng_state(g_state)
    return new


def _ranks(v: Tensor) -> Tensor:
    """Average ranks along dim 1 (ties share the mean of their positions), vectorised.

    Shapes: Tensor[B, N] -> Tensor[B, N] float, ranks in [0, N - 1].
    """
    v = v.contiguous()
    srt, order = v.sort(1)
    first = torch.searchsorted(srt, srt, side="left")  # first position of each value's run
    last = torch.searchsorted(srt, srt, side="right") - 1
    avg = (first + last).to(torch.float32) / 2
    return torch.empty_like(avg).scatter_(1, order, avg)


def rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation between paired maps, with average ranks for ties.

    Equals ``scipy.stats.spearmanr`` per pair: the Pearson correlation of the (tie-averaged) ranks.
    Two independent maps score about 0 even when most pixels tie (e.g. 80 % zeros after a ReLU).

    Args:
        a, b (Tensor[B, ...]): finite maps of equal shape (float, integer or bool).

    Returns:
        Tensor[B], values in [-1, 1]; 0 for a pair where one map is constant (Spearman's rho is
        undefined there), on ``a``'s device.
    """
    check_tensor(a, "a", dtype=("float", "int", "bool"), finite=True, shape="[B, ...] maps")
    check_tensor(b, "b", dtype=("float", "int", "bool"), finite=True, shape="[B, ...] maps")
    if a.shape != b.shape:
        raise ValueError(f"maps must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim < 2 or a.numel() == 0:
        raise ValueError(f"maps must be [B, ...] with at least one value per map, got {tuple(a.shape)}")
    b = b.to(a.device)
    ra = _ranks(a.reshape(a.shape[0], -1).float())
    rb = _ranks(b.reshape(b.shape[0], -1).float())
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)
