"""Concept diagrams drawn by code (matplotlib only), one registered function per idea.

Each diagram is registered with a caption and alt text, so a chapter can write::

    from cvlib.viz import diagrams
    fig = diagrams.draw("residual_block")
    d = diagrams.get("residual_block")   # d.caption, d.alt, d.chapter

Modules by topic: ``basics`` (ch01-ch02 and convolution variants), ``classification`` (ch03-ch06,
ch10, ch11), ``segmentation`` (ch07), ``detection`` (ch08), ``beyond`` (ch12-ch13); ``_draw`` holds the
shared primitives (blocks, arrows, tensor slabs, grids) and the palette. Figures are 7 inches wide (book
column width at 100 dpi) and use fonts of at least 9 points; none is shown, all are returned.
"""

from cvlib.viz.diagrams import basics, beyond, classification, detection, segmentation
from cvlib.viz.diagrams._draw import PALETTE
from cvlib.viz.diagrams._registry import REGISTRY, Diagram, draw, get, list_diagrams

__all__ = [
    "Diagram",
    "PALETTE",
    "REGISTRY",
    "draw",
    "get",
    "list_diagrams",
    "basics",
    "beyond",
    "classification",
    "detection",
    "segmentation",
]
