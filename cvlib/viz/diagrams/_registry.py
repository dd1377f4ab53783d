"""The diagram registry: name -> :class:`Diagram` (draw function, caption, alt text, chapter)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

__all__ = ["Diagram", "register", "list_diagrams", "get", "draw", "REGISTRY"]


@dataclass(frozen=True)
class Diagram:
    """One registered concept diagram.

    Attributes:
        name (str): registry key, e.g. ``"residual_block"``.
        draw (Callable[..., Figure]): draws it and returns the figure.
        caption (str): one or two sentences for the book's figure caption.
        alt (str): what the picture shows, for readers who cannot see it.
        chapter (str): the chapter it illustrates (``"ch04"``).
        kwargs (dict): fixed keyword arguments passed to ``draw`` (variants of one family function).
    """

    name: str
    draw: Callable[..., Figure]
    caption: str
    alt: str
    chapter: str
    kwargs: tuple = ()

    def __call__(self, **kw) -> Figure:
        return self.draw(**{**dict(self.kwargs), **kw})


REGISTRY: dict[str, Diagram] = {}


def register(name: str, *, caption: str, alt: str, chapter: str, **fixed) -> Callable:
    """Decorator: register the function under ``name`` (several names may share one function)."""

    def deco(fn: Callable[..., Figure]) -> Callable[..., Figure]:
        if name in REGISTRY:
            raise ValueError(f"diagram {name!r} is already registered")
        REGISTRY[name] = Diagram(
            name, fn, caption.strip(), " ".join(alt.split()), chapter, tuple(fixed.items())
        )
        return fn

    return deco


def list_diagrams(chapter: str | None = None) -> list[str]:
    """Sorted names of the registered diagrams (of one ``chapter``, e.g. ``"ch08"``, if given)."""
    return sorted(n for n, d in REGISTRY.items() if chapter is None or d.chapter == chapter)


def get(name: str) -> Diagram:
    """The :class:`Diagram` registered as ``name`` (caption, alt text, draw function)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in REGISTRY:
        raise ValueError(f"name must be one of {list_diagrams()}, got {name!r}")
    return REGISTRY[name]


def draw(name: str, **kwargs) -> Figure:
    """Draw the diagram registered as ``name`` and return its figure (``kwargs`` go to its function)."""
    return get(name)(**kwargs)
