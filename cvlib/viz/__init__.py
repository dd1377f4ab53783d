"""Figures for the chapters. Every function returns a matplotlib ``Figure`` (never shows it).

Submodules by topic: ``core`` (images, histories, confusion matrices, bars, scatter), ``knn``,
``filters``, ``shapes``, ``segmentation``, ``detection``, ``explain`` (CAM, Grad-CAM).
"""

from cvlib.viz import core, detection, diagrams, explain, filters, knn, segmentation, shapes
from cvlib.viz.core import plot_bar, plot_confusion_matrix, plot_history, plot_scatter, show_images
from cvlib.viz.explain import cam, grad_cam

__all__ = [
    "core",
    "detection",
    "diagrams",
    "explain",
    "filters",
    "knn",
    "segmentation",
    "shapes",
    "plot_bar",
    "plot_confusion_matrix",
    "plot_history",
    "plot_scatter",
    "show_images",
    "cam",
    "grad_cam",
]
