"""Detection models; importing this package registers them.

- :mod:`faster_rcnn`: two-stage Faster R-CNN (+ FPN), factories ``faster_rcnn_small``,
  ``faster_rcnn_resnet50_fpn``.
- :mod:`fcos`: one-stage anchor-free FCOS with focal loss, factories ``fcos_small``, ``fcos_resnet50_fpn``.

Both take images in [0, 1] and targets ``{"boxes": xyxy pixels, "labels": 1..K}`` (0 = background).
"""

from cvlib.models.detection.faster_rcnn import FasterRCNN, faster_rcnn_resnet50_fpn, faster_rcnn_small
from cvlib.models.detection.fcos import FCOS, fcos_resnet50_fpn, fcos_small

__all__ = [
    "FasterRCNN",
    "FCOS",
    "faster_rcnn_small",
    "faster_rcnn_resnet50_fpn",
    "fcos_small",
    "fcos_resnet50_fpn",
]
