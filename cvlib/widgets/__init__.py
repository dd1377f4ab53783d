"""Interactive ipywidgets views for the chapters (ipywidgets is imported only when a widget is
built). Each widget has a static twin that draws the same view as a matplotlib figure, which the
offline book shows.

Submodules: ``knn`` (k slider), ``kernels`` (image-kernel explorer), ``segmentation`` (overlay
opacity and class toggles), ``detection`` (IoU and NMS threshold).
"""

from cvlib.widgets import detection, kernels, knn, segmentation

__all__ = ["detection", "kernels", "knn", "segmentation"]
