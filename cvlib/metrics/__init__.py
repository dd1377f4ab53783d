"""Metrics on the device: classification (accuracy, top-k, confusion matrix), segmentation
(pixel accuracy, IoU, mIoU, boundary F-score) and detection (COCO and VOC mAP).

Stateful metric objects (``reset``/``update``/``compute``) plug into ``cvlib.train.fit``;
``get_metric(name)`` resolves the names ``fit`` accepts.
"""

from cvlib.metrics import classification, detection, segmentation
from cvlib.metrics.classification import Accuracy, ConfusionMatrix, TopK, accuracy, get_metric, topk_accuracy
from cvlib.metrics.detection import MeanAveragePrecision, coco_map, voc_ap
from cvlib.metrics.segmentation import MeanIoU, PixelAccuracy, mean_iou, pixel_accuracy

__all__ = [
    "classification",
    "detection",
    "segmentation",
    "Accuracy",
    "ConfusionMatrix",
    "TopK",
    "accuracy",
    "get_metric",
    "topk_accuracy",
    "MeanAveragePrecision",
    "coco_map",
    "voc_ap",
    "MeanIoU",
    "PixelAccuracy",
    "mean_iou",
    "pixel_accuracy",
]
