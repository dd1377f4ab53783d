"""Model registry: ``@register_model`` on each factory, ``create_model`` / ``list_models`` to use it.

The factory's function name is the registry key (``resnet18``, ``unet``, ``fcos``).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = ["register_model", "create_model", "list_models", "model_task", "TASKS"]

TASKS = ("classification", "segmentation", "detection", "generation")
_REGISTRY: dict[str, tuple[str, Callable[..., nn.Module]]] = {}


def register_model(*, task: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a model factory under its function name.

    Raises:
        ValueError: if ``task`` is unknown or the name is registered already.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered already")
        _REGISTRY[name] = (task, fn)
        return fn

    return deco


def _load_all() -> None:
    # Importing the model packages runs their @register_model decorators.
    import cvlib.models.classification  # noqa: F401
    import cvlib.models.detection  # noqa: F401
    import cvlib.models.segmentation  # noqa: F401


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Sorted names of registered models matching a glob ``pattern`` and, if given, a ``task``."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    _load_all()
    return sorted(
        n for n, (t, _) in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (task is None or t == task)
    )


def model_task(name: str) -> str:
    """The task a registered model belongs to."""
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}")
    return _REGISTRY[name][0]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name; keyword arguments go to its factory (``None`` values dropped).

    Raises:
        ValueError: for an unknown name, with the closest registered names as suggestions.
    """
    _load_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see cvlib.models.list_models()"
        raise ValueError(f"unknown model {name!r}{hint}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return _REGISTRY[name][1](**kwargs)
