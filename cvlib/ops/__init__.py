"""Operations: box geometry, NMS, anchors, RoI pooling, losses, convolution arithmetic,
profiling (parameters, MACs, latency), sampling layers, deformable convolution, filters.

Each submodule is importable on its own (``cvlib.ops.boxes``, ``cvlib.ops.roi``, ...); the most
used names are re-exported here.
"""

from cvlib.ops import (
    anchors,
    boxes,
    connectivity,
    conv_arith,
    deform_conv,
    filters,
    losses,
    profile,
    roi,
    sampling,
    shift,
)
from cvlib.ops.anchors import AnchorGenerator
from cvlib.ops.boxes import (
    BoxCoder,
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
    nms,
)
from cvlib.ops.conv_arith import conv_output_size, receptive_field
from cvlib.ops.deform_conv import DeformConv2d, deform_conv2d
from cvlib.ops.losses import giou_loss, sigmoid_focal_loss
from cvlib.ops.profile import count_macs, count_parameters, measure_latency, measure_throughput, peak_memory
from cvlib.ops.roi import roi_align, roi_pool

__all__ = [
    "anchors",
    "boxes",
    "connectivity",
    "conv_arith",
    "deform_conv",
    "filters",
    "losses",
    "profile",
    "roi",
    "sampling",
    "shift",
    "AnchorGenerator",
    "BoxCoder",
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes_to_image",
    "complete_box_iou",
    "distance_box_iou",
    "generalized_box_iou",
    "nms",
    "conv_output_size",
    "receptive_field",
    "DeformConv2d",
    "deform_conv2d",
    "giou_loss",
    "sigmoid_focal_loss",
    "count_macs",
    "count_parameters",
    "measure_latency",
    "measure_throughput",
    "peak_memory",
    "roi_align",
    "roi_pool",
]
