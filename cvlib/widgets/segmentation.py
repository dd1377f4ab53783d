"""Interactive mask overlay: an opacity slider and one toggle per class (ipywidgets, imported lazily).

:func:`overlay_figure` draws the same view as a static figure for the book, which is offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from cvlib._validate import check_float
from cvlib.viz.segmentation import show_overlay

__all__ = ["overlay_widget", "overlay_figure"]


def overlay_figure(
    image: Tensor | np.ndarray,
    mask: Tensor | np.ndarray,
    class_names: Sequence[str],
    alpha: float = 0.5,
    visible: Sequence[str] | None = None,
) -> Figure:
    """Static version of :func:`overlay_widget`: the overlay at opacity ``alpha`` with the ``visible``
    classes (names; default all) coloured."""
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise TypeError(f"class_names must be a list of str, got {class_names!r}")
    names = [str(n) for n in class_names]
    alpha = check_float(alpha, "alpha", min=0.0, max=1.0)
    if visible is not None and (isinstance(visible, str) or not hasattr(visible, "__iter__")):
        raise TypeError(f"visible must be a list of class names or None, got {visible!r}")
    unknown = [v for v in (visible or []) if v not in names]
    if unknown:
        raise ValueError(f"visible must name classes from {names}, got {unknown}")
    ids = None if visible is None else [names.index(v) for v in visible]
    title = f"opacity {alpha:.2f}" + ("" if visible is None else ": " + ", ".join(visible))
    return show_overlay(image, mask, alpha, names, ids, title=title)


def overlay_widget(
    image: Tensor | np.ndarray, mask: Tensor | np.ndarray, class_names: Sequence[str], alpha: float = 0.5
) -> Any:
    """An ipywidgets box: the overlay, a FloatSlider for opacity and a Checkbox per foreground class.

    Raises:
        RuntimeError: if ipywidgets is not installed (``pip install ipywidgets``).
    """
    try:
        import ipywidgets as w
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError("overlay_widget needs ipywidgets: pip install ipywidgets") from e
    from IPython.display import display

    names = list(class_names)
    slider = w.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.05, description="opacity")
    boxes = [w.Checkbox(value=True, description=n, indent=False) for n in names[1:]]
    out = w.Output()

    def redraw(*_: Any) -> None:
        visible = [b.description for b in boxes if b.value]
        fig = overlay_figure(image, mask, names, slider.value, visible)
        out.clear_output(wait=True)
        with out:
            display(fig)

    for control in [slider, *boxes]:
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([slider, *boxes]), out])
