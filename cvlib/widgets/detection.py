"""Detection widgets: an IoU explorer (one box moved and resized by sliders) and an NMS-threshold slider.

IoU and GIoU come from :mod:`cvlib.ops.boxes` (GIoU: Rezatofighi et al. 2019, arXiv:1902.09630), NMS is
:func:`cvlib.ops.boxes.nms`. ``ipywidgets`` is imported only inside the widget constructors, so the
module imports without it. The book is static: :func:`iou_figure` and :func:`nms_figure` draw the same
views as plain matplotlib figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from matplotlib.figure import Figure

from cvlib.viz.detection import plot_iou, plot_nms

__all__ = ["iou_figure", "nms_figure", "iou_widget", "nms_widget", "example_nms_boxes"]


def iou_figure(box1: Sequence[float], box2: Sequence[float], extent: float = 100.0) -> Figure:
    """Static view of the IoU widget: the two xyxy boxes, their intersection, IoU and GIoU."""
    return plot_iou(box1, box2, extent=extent)


def nms_figure(boxes: Any, scores: Any, iou_threshold: float) -> Figure:
    """Static view of the NMS widget: boxes before and after NMS at ``iou_threshold``."""
    return plot_nms(boxes, scores, iou_threshold)


def example_nms_boxes() -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed toy example: two clusters of overlapping candidate boxes and one isolated box."""
    boxes = torch.tensor(
        [
            [10, 10, 50, 50],
            [14, 12, 52, 48],
            [8, 16, 46, 54],
            [20, 20, 60, 60],
            [60, 55, 95, 90],
            [63, 58, 96, 94],
            [58, 60, 90, 88],
            [70, 10, 90, 30],
        ],
        dtype=torch.float32,
    )
    scores = torch.tensor([0.95, 0.80, 0.70, 0.40, 0.90, 0.85, 0.30, 0.60])
    return boxes, scores


def _ipywidgets():
    try:
        import ipywidgets as w
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RuntimeError("the detection widgets need ipywidgets: pip install ipywidgets") from err
    return w


def _show(output: Any, fig: Figure) -> None:
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is None:  # no front end (plain Python, tests)
        return
    with output:
        output.clear_output(wait=True)
        display(fig)


def iou_widget(
    box1: Sequence[float] = (20, 20, 60, 60), box2: Sequence[float] = (40, 30, 80, 70), extent: float = 100.0
) -> Any:
    """Sliders for the position and size of ``box2``; the figure shows IoU and GIoU with ``box1``.

    Returns:
        ipywidgets.VBox: display it in a notebook.
    """
    w = _ipywidgets()
    x1, y1, x2, y2 = box2
    sl = {
        "x": w.FloatSlider(value=x1, min=0, max=extent, step=1, description="x"),
        "y": w.FloatSlider(value=y1, min=0, max=extent, step=1, description="y"),
        "w": w.FloatSlider(value=x2 - x1, min=0, max=extent, step=1, description="width"),
        "h": w.FloatSlider(value=y2 - y1, min=0, max=extent, step=1, description="height"),
    }
    out = w.Output()

    def redraw(_=None) -> None:
        b2 = (sl["x"].value, sl["y"].value, sl["x"].value + sl["w"].value, sl["y"].value + sl["h"].value)
        _show(out, iou_figure(box1, b2, extent))

    for s in sl.values():
        s.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([sl["x"], sl["y"]]), w.HBox([sl["w"], sl["h"]]), out])


def nms_widget(boxes: Any = None, scores: Any = None, iou_threshold: float = 0.5) -> Any:
    """A slider for the NMS IoU threshold over fixed candidate boxes (default :func:`example_nms_boxes`).

    Returns:
        ipywidgets.VBox: display it in a notebook.
    """
    w = _ipywidgets()
    if boxes is None:
        boxes, scores = example_nms_boxes()
    slider = w.FloatSlider(value=iou_threshold, min=0.0, max=1.0, step=0.05, description="IoU thr")
    out = w.Output()

    def redraw(_=None) -> None:
        _show(out, nms_figure(boxes, scores, slider.value))

    slider.observe(redraw, names="value")
    redraw()
    return w.VBox([slider, out])
