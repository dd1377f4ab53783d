"""Model cost measurement: parameters, multiply-accumulates, latency, throughput, peak memory.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per
multiply-accumulate of convolutions and matrix products (not element-wise ops, pooling or BN), so
``count_macs = FLOPs / 2``; that is what torchvision's "GFLOPS" column reports. The count runs on the
``meta`` device when the model allows it (no memory, no arithmetic), so even VGG-16 takes milliseconds.

The timing functions leave the model where and as they found it (device and train/eval mode, through
:func:`cvlib.run_on`); with ``CVLIB_FAST_DEV_RUN`` set they time a single pass without warm-up.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cvlib.runtime import fast_dev_run, module_device, run_on

__all__ = ["count_parameters", "count_macs", "measure_latency", "measure_throughput", "peak_memory"]


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    ok = isinstance(input_shape, (tuple, list, torch.Size)) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in input_shape
    )
    if not ok:
        raise TypeError(f"input_shape must be a tuple of ints [B, C, ...], got {input_shape!r}")
    shape = tuple(input_shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be positive sizes [B, C, ...], got {tuple(input_shape)}")
    return shape


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once); buffers such as BN statistics excluded."""
    _check_model(model)
    seen: dict[int, int] = {}
    for p in model.parameters():
        if not trainable_only or p.requires_grad:
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _meta_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers live on the meta device (no data copied)."""
    memo: dict[int, object] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = (
            nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta
        )
    return copy.deepcopy(model, memo)


def count_macs(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 224, 224),
    *,
    per_module: bool = False,
    on_meta: bool = True,
) -> int | dict[str, int]:
    """Multiply-accumulates of one eval-mode forward pass at ``input_shape`` (FLOPs / 2).

    Args:
        model (nn.Module): the model (not modified: a meta-device copy is measured when ``on_meta``).
        input_shape (tuple[int, ...]): e.g. ``(1, 3, 224, 224)``; MACs scale with the batch size.
        per_module (bool): return ``{module name: MACs}`` (the top-level modules, "" for the total).
        on_meta (bool): count on a meta-device copy (fast); falls back to the model's device if the
            model cannot run on meta tensors.

    Returns:
        int: total MACs, or a dict per module when ``per_module``.
    """
    _check_model(model)
    shape = _check_shape(input_shape)
    m, device = model, None
    if on_meta:
        try:
            m, device = _meta_copy(model), torch.device("meta")
        except (RuntimeError, NotImplementedError, TypeError):
            m = model
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    was_training = m.training
    m.eval()
    counter = FlopCounterMode(display=False, depth=None)
    try:
        with counter, torch.no_grad():
            m(torch.zeros(shape, device=device))
    finally:
        m.train(was_training)
    if not per_module:
        return counter.get_total_flops() // 2
    out = {"": counter.get_total_flops() // 2}
    for name, counts in counter.get_flop_counts().items():
        if name.count(".") == 1:  # "Global" is the total; "Global.layer1" etc. are top-level children
            out[name.split(".", 1)[1]] = sum(counts.values()) // 2
    return out


def _fast_dev_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with its batch dimension capped to ``fast_dev_run()`` when that is set."""
    n = fast_dev_run()
    if n is None or shape[0] <= n:
        return shape
    return (n, *shape[1:])


def _device_of(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    dev = module_device(model)
    return dev if dev is not None else torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 224, 224),
    *,
    device: torch.device | str | None = None,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median wall-clock time of one eval-mode forward pass, in milliseconds.

    The model runs on ``device`` (default: where its parameters are) in eval mode under
    ``torch.inference_mode``; CUDA is synchronised around each pass. Afterwards the model is back on
    its device and in its train/eval mode.

    Under ``CVLIB_FAST_DEV_RUN=N`` (:func:`cvlib.runtime.fast_dev_run`) the batch dimension
    ``input_shape[0]`` is capped to ``N``, with no warm-up and one repetition: a smoke run whose
    number is meaningless as a measurement.
    """
    _check_model(model)
    shape = _check_shape(input_shape)
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    if fast_dev_run() is not None:
        warmup, repeats = 0, 1
        shape = _fast_dev_shape(shape)
    dev = _device_of(model, device)
    times = []
    with run_on(model, dev, train=False), torch.inference_mode():
        x = torch.randn(shape, device=dev)
        for i in range(warmup + repeats):
            _sync(dev)
            t0 = time.perf_counter()
            model(x)
            _sync(dev)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure_throughput(
    model: nn.Module,
    input_shape: Sequence[int] = (64, 3, 224, 224),
    *,
    device: torch.device | str | None = None,
    warmup: int = 2,
    repeats: int = 5,
) -> float:
    """Images per second of eval-mode inference at batch size ``input_shape[0]`` (median over repeats).

    Under ``CVLIB_FAST_DEV_RUN=N`` the batch is capped to ``N`` (one repetition, no warm-up, see
    :func:`measure_latency`); the number is then meaningless as a measurement.
    """
    _check_model(model)
    shape = _fast_dev_shape(_check_shape(input_shape))
    ms = measure_latency(model, shape, device=device, warmup=warmup, repeats=repeats)
    return shape[0] / (ms / 1e3)


def peak_memory(
    model: nn.Module,
    input_shape: Sequence[int] = (32, 3, 224, 224),
    *,
    training: bool = True,
    device: torch.device | str | None = None,
) -> int:
    """Memory of one forward (+ backward when ``training``) pass, in bytes.

    On CUDA: ``torch.cuda.max_memory_allocated`` during the pass (the allocator's peak, including
    parameters, gradients and workspace). On other devices, where PyTorch has no allocator statistics,
    an accounting of the dominant terms: parameter bytes, gradient bytes (when ``training``) and the
    bytes of the tensors autograd saves for the backward pass (each storage counted once). The latter
    is what grows with batch size and depth; it leaves out temporary buffers, so it is a lower bound.
    Afterwards the model is back on its device and in its train/eval mode, with no gradients.

    Under ``CVLIB_FAST_DEV_RUN=N`` (:func:`cvlib.runtime.fast_dev_run`) the batch dimension
    ``input_shape[0]`` is capped to ``N`` so the smoke run stays small; the number is then meaningless
    as a measurement of the requested batch.
    """
    _check_model(model)
    shape = _fast_dev_shape(_check_shape(input_shape))
    dev = _device_of(model, device)
    with run_on(model, dev, train=training):
        return _peak_memory(model, shape, training, dev)


def _peak_memory(model: nn.Module, shape: tuple[int, ...], training: bool, dev: torch.device) -> int:
    x = torch.randn(shape, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        start = torch.cuda.memory_allocated(dev)
        with torch.set_grad_enabled(training):
            out = model(x)
            if training:
                (out[0] if isinstance(out, tuple) else out).float().sum().backward()
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - start
        model.zero_grad(set_to_none=True)
        return int(peak + sum(p.numel() * p.element_size() for p in model.parameters()))
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if not training:
        with torch.no_grad():
            out = model(x)
        out_t = out[0] if isinstance(out, tuple) else out
        return int(param_bytes + x.numel() * x.element_size() + out_t.numel() * out_t.element_size())
    saved: dict[tuple[int, int], int] = {}
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in param_ptrs:  # weights are counted once, above
            saved[(st.data_ptr(), st.nbytes())] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return int(2 * param_bytes + sum(saved.values()))
