"""Detection models; importing this package registers them.

- :mod:`faster_rcnn`: two-stage Faster R-CNN (+ FPN), factories ``faster_rcnn_small``,
  ``faster_rcnn_resnet50_fpn``.
- :mod:`fcos`: one-stage anchor-free FCOS with focal loss, factories ``fcos_small``, ``fcos_resnet50_fpn``.
- :mod:`yolo`: one-stage grid detector YOLO v1, factories ``yolo_small``, ``yolo_resnet50``.

All take images float in [0, 1] or uint8 in [0, 255] and targets ``{"boxes": xyxy pixels, "labels":
1..K}`` (0 = background). The ``*_resnet50*`` factories accept ``weights_backbone="imagenet"`` and
normalise their input with the ImageNet mean/std inside the model (``normalize=True``).
"""

from cvlib.models.detection.faster_rcnn import FasterRCNN, faster_rcnn_resnet50_fpn, faster_rcnn_small
from cvlib.models.detection.fcos import FCOS, fcos_resnet50_fpn, fcos_small
from cvlib.models.detection.yolo import YOLO, yolo_resnet50, yolo_small

__all__ = [
    "FasterRCNN",
    "FCOS",
    "YOLO",
    "faster_rcnn_small",
    "faster_rcnn_resnet50_fpn",
    "fcos_small",
    "fcos_resnet50_fpn",
    "yolo_small",
    "yolo_resnet50",
]
