"""The data path of :func:`cvlib.train.fit`: tensors on the device, or a DataLoader.

Data that fits in device memory is moved there once and batched by indexing with a seeded
permutation: no worker processes, no host-to-device copy per step. Anything else goes through a
:class:`torch.utils.data.DataLoader` with pinned memory and non-blocking copies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from cvlib.runtime import fast_dev_batch

__all__ = [
    "TensorBatches",
    "LoaderBatches",
    "PairDataset",
    "make_batches",
    "to_device",
    "detection_collate",
]

# Keep at most this fraction of the free device memory for resident data.
_DEVICE_FRACTION = 0.5


def to_device(obj: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move tensors inside nested tuples/lists/dicts to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    return obj


def detection_collate(batch: Sequence[tuple[Any, Any]]) -> tuple[Any, list]:
    """Collate ``(image, target)`` pairs whose targets differ in size (detection-style).

    Images of equal shape are stacked into ``Tensor[B, C, H, W]``, otherwise kept as a list;
    targets (dicts with ``boxes [N, 4]`` xyxy and ``labels [N]``) are returned as a list.
    """
    if len(batch) == 0:
        raise ValueError("batch must not be empty")
    images = [b[0] for b in batch]
    targets = [b[1] for b in batch]
    if all(isinstance(im, torch.Tensor) for im in images) and len({tuple(im.shape) for im in images}) == 1:
        return torch.stack(images), targets
    return images, targets


class PairDataset(Dataset):
    """``(images, targets)`` as a Dataset of pairs, batched with :func:`detection_collate`.

    Args:
        images (Tensor[N, C, H, W] | list[Tensor[C, H, W]]): the inputs.
        targets (list[dict]): one target dict per image (``boxes [M, 4]`` xyxy, ``labels [M]``, ...).
    """

    collate_fn = staticmethod(detection_collate)

    def __init__(self, images: Any, targets: Sequence[Any]) -> None:
        if len(images) != len(targets):
            raise ValueError(
                f"images and targets must have the same length, got {len(images)} and {len(targets)}"
            )
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        return self.images[i], self.targets[i]


def _target_dicts(data: Any) -> bool:
    """True for ``(images, [dict, ...])``: detection-style inputs with one target dict per image."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        return False
    images, targets = data
    ok_images = isinstance(images, torch.Tensor) or (
        isinstance(images, (list, tuple)) and all(isinstance(im, torch.Tensor) for im in images)
    )
    return ok_images and isinstance(targets, (list, tuple)) and all(isinstance(t, dict) for t in targets)


def _perm(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g)


class TensorBatches:
    """Batches of ``(x, y)`` cut by index from tensors that already sit on the device.

    Args:
        x (Tensor[N, ...]): inputs; y (Tensor[N, ...]): targets (same first dimension).
        batch_size: samples per batch.
        shuffle: draw a seeded permutation each epoch (``seed`` and the epoch fix it).
        drop_single: drop a trailing batch of a single sample (BatchNorm cannot train on it).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_single: bool = False,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0
        n = len(x)
        self.n = n - 1 if (drop_single and n > 1 and n % batch_size == 1) else n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.shuffle:
            idx = _perm(len(self.x), self.seed, self.epoch)[: self.n].to(self.x.device)
            for i in range(0, self.n, self.batch_size):
                j = idx[i : i + self.batch_size]
                yield self.x[j], self.y[j]
        else:
            for i in range(0, self.n, self.batch_size):
                yield self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]


class LoaderBatches:
    """Batches from a DataLoader, moved to ``device`` (non-blocking from pinned memory)."""

    def __init__(self, loader: DataLoader, device: torch.device, *, seed: int = 0) -> None:
        self.loader, self.device, self.seed = loader, device, seed
        self.non_blocking = device.type == "cuda"
        self.generator = getattr(loader, "generator", None)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.generator is not None:
            self.generator.manual_seed(int(self.seed) * 1_000_003 + int(epoch))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for batch in self.loader:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError("each batch must be a pair (inputs, targets)")
            yield (
                to_device(batch[0], self.device, self.non_blocking),
                to_device(batch[1], self.device, self.non_blocking),
            )


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index == b.index or a.index is None or b.index is None)


def _fits(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> bool:
    if device.type != "cuda":
        return True  # CPU/MPS: the tensors are in (unified) memory already
    need = x.element_size() * x.nelement() + y.element_size() * y.nelement()
    free, _ = torch.cuda.mem_get_info(device.index)  # None: the current device
    return need < _DEVICE_FRACTION * free


def _as_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1]
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data.tensors[0], data.tensors[1]
    return None


def make_batches(
    data: Any,
    *,
    batch_size: int,
    device: torch.device,
    shuffle: bool,
    seed: int = 0,
    collate_fn: Callable | None = None,
    drop_single: bool = False,
    name: str = "data",
) -> TensorBatches | LoaderBatches:
    """Wrap ``(X, y)``, ``(images, list of target dicts)``, a TensorDataset, a Dataset or a DataLoader as
    an iterable of device batches.

    Raises:
        ValueError: for an empty dataset, mismatched lengths or a non-positive batch size.
        TypeError: for anything that is not one of the accepted types.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    batch_size = fast_dev_batch(batch_size)
    if _target_dicts(data):
        data = PairDataset(*data)
    tensors = _as_tensors(data)
    if tensors is not None:
        x, y = tensors
        if len(x) == 0:
            raise ValueError(f"{name} is empty (0 samples)")
        if len(x) != len(y):
            raise ValueError(f"{name}: inputs and targets differ in length: {len(x)} vs {len(y)}")
        if (_same_device(x.device, device) and _same_device(y.device, device)) or _fits(x, y, device):
            return TensorBatches(
                x.to(device), y.to(device), batch_size, shuffle=shuffle, seed=seed, drop_single=drop_single
            )
        data = TensorDataset(x, y)
    if isinstance(data, DataLoader):
        if len(data.dataset) == 0:  # type: ignore[arg-type]
            raise ValueError(f"{name} is empty (0 samples)")
        return LoaderBatches(data, device, seed=seed)
    if isinstance(data, Dataset):
        try:
            n = len(data)  # type: ignore[arg-type]
        except TypeError:
            n = None
        if n == 0:
            raise ValueError(f"{name} is empty (0 samples)")
        g = torch.Generator()
        g.manual_seed(int(seed))
        loader = DataLoader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            # A dataset may carry its own collate (detection datasets do): use it unless one is given.
            collate_fn=collate_fn if collate_fn is not None else getattr(data, "collate_fn", None),
            pin_memory=device.type == "cuda",
            generator=g,
            drop_last=bool(drop_single and n is not None and n > 1 and n % batch_size == 1),
        )
        return LoaderBatches(loader, device, seed=seed)
    raise TypeError(
        f"{name} must be an (X, y) tuple of tensors, (images, list of target dicts), a Dataset or a "
        f"DataLoader, got {type(data).__name__}"
    )
