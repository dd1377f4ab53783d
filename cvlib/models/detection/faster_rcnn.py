"""Faster R-CNN: a two-stage detector (Ren et al. 2015, arXiv:1506.01497), with the FPN variant of
Lin et al. 2017 (arXiv:1612.03144) and RoIAlign from Mask R-CNN (He et al. 2017, arXiv:1703.06870).

Stage 1, the region proposal network (RPN), scores every anchor as object/background and regresses it;
the best few hundred decoded anchors after NMS are the *proposals*. Stage 2 cuts a 7x7 RoIAlign window
for each proposal out of the feature level that suits its size, and a small MLP classifies it into
K + 1 classes and regresses one box per class.

Defaults are the paper's / Detectron's: RPN IoU 0.7 / 0.3, 256 anchors per image half positive, NMS 0.7,
RPN box coder weights (1, 1, 1, 1) (the deltas of the paper's eq. 2, unscaled); box head IoU 0.5, 512
proposals per image with 25 % positives, box coder weights (10, 10, 5, 5), smooth-L1 beta 1/9,
test-time score threshold 0.05, NMS 0.5, 100 detections. Departures: images are not resized inside the
model, and the ``*_small`` factories use fewer proposals and a smaller head.
Inputs may be uint8 (divided by 255 inside) and, with ``image_mean``/``image_std``, are normalised inside
the model (see :mod:`cvlib.models.detection._common`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._registry import register_model
from cvlib.models.detection._common import (
    BackboneWithFPN,
    TinyBackbone,
    _check_mean_std,
    check_targets,
    check_train_size,
    match_by_iou,
    normalization,
    prepare_images,
    reject_detector_weights,
    resnet_backbone,
    sample_balanced,
)
from cvlib.ops.anchors import AnchorGenerator
from cvlib.ops.boxes import BoxCoder, batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes
from cvlib.ops.roi import roi_align

__all__ = [
    "RPNHead",
    "RegionProposalNetwork",
    "FasterRCNNHead",
    "FasterRCNN",
    "faster_rcnn_small",
    "faster_rcnn_resnet50_fpn",
]


class RPNHead(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs for A objectness logits and 4A deltas per cell (shared by levels)."""

    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Returns objectness Tensor[B, sum_l H_l W_l A] and deltas Tensor[B, sum_l H_l W_l A, 4]."""
        logits, deltas = [], []
        for f in feats:
            t = F.relu(self.conv(f))
            b, _, h, w = t.shape
            logits.append(self.cls_logits(t).permute(0, 2, 3, 1).reshape(b, -1))  # [B, H*W*A]
            deltas.append(self.bbox_pred(t).view(b, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4))
        return torch.cat(logits, 1), torch.cat(deltas, 1)


class RegionProposalNetwork(nn.Module):
    """Anchors, RPN head, proposal selection (top-k per level, NMS) and the RPN losses.

    Anchor deltas use a :class:`cvlib.ops.boxes.BoxCoder` with weights (1, 1, 1, 1), as torchvision's
    RPN (the second stage uses (10, 10, 5, 5))."""

    def __init__(
        self,
        channels: int,
        anchor_generator: AnchorGenerator,
        *,
        fg_iou: float = 0.7,
        bg_iou: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_top_n: tuple[int, int] = (2000, 1000),
        post_nms_top_n: tuple[int, int] = (2000, 1000),
        nms_thresh: float = 0.7,
        min_size: float = 1e-3,
    ) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        num_anchors = set(anchor_generator.num_anchors_per_location())
        if len(num_anchors) != 1:
            raise ValueError(
                f"the shared RPN head needs the same number of anchors on every level, got {num_anchors}"
            )
        self.head = RPNHead(channels, num_anchors.pop())
        self.coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.fg_iou, self.bg_iou = fg_iou, bg_iou
        self.batch_size_per_image, self.positive_fraction = batch_size_per_image, positive_fraction
        self.pre_nms_top_n, self.post_nms_top_n = pre_nms_top_n, post_nms_top_n
        self.nms_thresh, self.min_size = nms_thresh, min_size

    def forward(self, image_size: tuple[int, int], feats: list[Tensor], targets: list[dict] | None):
        logits, deltas = self.head(feats)
        # anchors in float32 at least, also under bf16/fp16 autocast (pixel coordinates need the mantissa)
        dtype = torch.promote_types(deltas.dtype, torch.float32)
        anchors = self.anchor_generator(image_size, feats, device=logits.device, dtype=dtype)
        level = torch.cat([torch.full((len(a),), i, device=logits.device) for i, a in enumerate(anchors)])
        anchors = torch.cat(anchors)  # [N, 4]
        mode = 0 if self.training else 1
        proposals = []
        with torch.no_grad():
            for obj, d in zip(logits.detach(), deltas.detach()):
                keep = []
                for lv in range(int(level.max()) + 1):  # top-k per level (FPN paper)
                    idx = (level == lv).nonzero().flatten()
                    keep.append(idx[obj[idx].topk(min(self.pre_nms_top_n[mode], len(idx))).indices])
                keep = torch.cat(keep)
                boxes = clip_boxes_to_image(self.coder.decode(d[keep], anchors[keep]), image_size)
                scores, lv = obj[keep], level[keep]
                ok = remove_small_boxes(boxes, self.min_size)
                boxes, scores, lv = boxes[ok], scores[ok], lv[ok]
                k = batched_nms(boxes, scores, lv, self.nms_thresh)[: self.post_nms_top_n[mode]]
                proposals.append(boxes[k])
        losses = {}
        if self.training:
            labels, reg_t, sampled = [], [], []
            for t in targets:
                m = match_by_iou(box_iou(t["boxes"], anchors), self.fg_iou, self.bg_iou, True)
                pos, neg = sample_balanced(m, self.batch_size_per_image, self.positive_fraction)
                lab = torch.full((len(anchors),), -1.0, device=anchors.device)
                lab[pos], lab[neg] = 1.0, 0.0
                gt = t["boxes"][m.clamp(min=0)] if len(t["boxes"]) else anchors
                labels.append(lab)
                reg_t.append(self.coder.encode(gt, anchors) if len(t["boxes"]) else torch.zeros_like(anchors))
            labels, reg_t = torch.stack(labels), torch.stack(reg_t)  # [B, N], [B, N, 4]
            sampled = labels >= 0
            pos = labels == 1
            n = sampled.sum().clamp(min=1)
            losses["loss_objectness"] = F.binary_cross_entropy_with_logits(logits[sampled], labels[sampled])
            losses["loss_rpn_box_reg"] = (
                F.smooth_l1_loss(deltas[pos].to(reg_t.dtype), reg_t[pos], beta=1 / 9, reduction="sum") / n
            )
        return proposals, losses


def multiscale_roi_align(
    feats: list[Tensor],
    strides: list[int],
    boxes: list[Tensor],
    output_size: int = 7,
    sampling_ratio: int = 2,
    canonical_scale: float = 224.0,
    canonical_level: int = 4,
) -> Tensor:
    """RoIAlign from the FPN level of each box: ``k = floor(k0 + log2(sqrt(wh) / 224))`` (FPN eq. 1),
    clamped to the available levels (level k has stride 2^k). Returns Tensor[sum K_b, C, s, s]."""
    rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], 1) for i, b in enumerate(boxes)])
    if len(feats) == 1:
        return roi_align(feats[0], rois, output_size, 1.0 / strides[0], sampling_ratio)
    size = ((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])).clamp(min=1e-6).sqrt()
    k = torch.floor(canonical_level + torch.log2(size / canonical_scale) + 1e-6)
    lv = (k - math.log2(strides[0])).clamp(0, len(feats) - 1).long()
    # every roi gets a level (clamped above), so every row of ``out`` is written: no zero fill needed
    out = feats[0].new_empty((len(rois), feats[0].shape[1], output_size, output_size))
    for i, (f, s) in enumerate(zip(feats, strides)):
        idx = (lv == i).nonzero().flatten()
        if idx.numel():
            out[idx] = roi_align(f, rois[idx], output_size, 1.0 / s, sampling_ratio)
    return out


class FasterRCNNHead(nn.Module):
    """Box head: two fully connected layers ("TwoMLPHead"), then K + 1 class scores and (K + 1) x 4 deltas."""

    def __init__(self, in_features: int, representation_size: int, num_classes: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.cls_score = nn.Linear(representation_size, num_classes + 1)
        self.bbox_pred = nn.Linear(representation_size, (num_classes + 1) * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))  # [R, rep]
        return self.cls_score(x), self.bbox_pred(x).view(x.shape[0], -1, 4)  # [R, K+1], [R, K+1, 4]


class FasterRCNN(nn.Module):
    """Faster R-CNN (Ren et al. 2015) with an optional FPN (Lin et al. 2017).

    Contract (as torchvision's detectors): ``images`` Tensor[B, 3, H, W] or list of Tensor[3, H, W],
    float in [0, 1] or uint8 in [0, 255] (divided by 255 inside); in training mode
    ``model(images, targets)`` with ``targets`` a list of dicts ``{"boxes": Tensor[N, 4] xyxy pixels
    (float or integer), "labels": Tensor[N] integer in 1..K}`` (0 = background,
    N = 0 allowed) returns a dict of scalar losses ``loss_objectness, loss_rpn_box_reg,
    loss_classifier, loss_box_reg``; in eval mode ``model(images)`` returns one dict per image
    ``{"boxes": Tensor[D, 4], "scores": Tensor[D], "labels": Tensor[D] int64}``. ``takes_targets = True``
    lets :func:`cvlib.train.fit` drive it.

    Args:
        backbone (nn.Module): with ``feature_info`` and ``forward_features``.
        num_classes (int): K object classes (background excluded).
        levels (tuple[int, ...]): backbone stages used, finest first.
        fpn_channels (int | None): FPN width, None for a single map without FPN.
        anchor_sizes, aspect_ratios: per level, see :class:`cvlib.ops.anchors.AnchorGenerator`.
        rpn_pre_nms_top_n, rpn_post_nms_top_n (tuple[int, int]): (train, test) proposal counts.
        box_batch_size_per_image (int), box_positive_fraction (float): stage-2 sampling.
        representation_size (int): MLP width of the box head.
        score_thresh, nms_thresh (float), detections_per_img (int): post-processing.
        image_mean, image_std (tuple[float, float, float] | None): normalise the [0, 1] input inside the
            model, ``(x - mean) / std`` per channel, before padding (None = no normalisation). ImageNet
            backbones need the ImageNet statistics (their factories set them).

    Example:
        >>> model = faster_rcnn_small(num_classes=4).eval()
        >>> out = model(torch.rand(2, 3, 64, 64))
        >>> sorted(out[0])
        ['boxes', 'labels', 'scores']
    """

    takes_targets = True

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        levels: tuple[int, ...] = (1, 2, 3),
        fpn_channels: int | None = 256,
        anchor_sizes=((32,), (64,), (128,)),
        aspect_ratios=((0.5, 1.0, 2.0),),
        rpn_pre_nms_top_n=(2000, 1000),
        rpn_post_nms_top_n=(2000, 1000),
        rpn_batch_size_per_image: int = 256,
        box_batch_size_per_image: int = 512,
        box_positive_fraction: float = 0.25,
        representation_size: int = 1024,
        roi_output_size: int = 7,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        image_mean: tuple[float, float, float] | None = None,
        image_std: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1 (background excluded), got {num_classes!r}")
        self.num_classes = num_classes
        self.image_mean, self.image_std = _check_mean_std(image_mean, image_std)
        self.features = BackboneWithFPN(backbone, levels, fpn_channels)
        if len(anchor_sizes) != len(self.features.strides):
            raise ValueError(
                f"anchor_sizes needs one entry per level ({len(self.features.strides)}), "
                f"got {len(anchor_sizes)}"
            )
        self.rpn = RegionProposalNetwork(
            self.features.out_channels,
            AnchorGenerator(anchor_sizes, aspect_ratios),
            batch_size_per_image=rpn_batch_size_per_image,
            pre_nms_top_n=rpn_pre_nms_top_n,
            post_nms_top_n=rpn_post_nms_top_n,
        )
        self.roi_output_size = roi_output_size
        self.box_head = FasterRCNNHead(
            self.features.out_channels * roi_output_size**2, representation_size, num_classes
        )
        self.coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        self.box_batch_size_per_image, self.box_positive_fraction = (
            box_batch_size_per_image,
            box_positive_fraction,
        )
        self.score_thresh, self.nms_thresh, self.detections_per_img = (
            score_thresh,
            nms_thresh,
            detections_per_img,
        )

    def _sample_proposals(self, proposals: list[Tensor], targets: list[dict]):
        """Add the ground truth to the proposals, match at IoU 0.5, sample; returns boxes, labels, deltas."""
        boxes, labels, reg = [], [], []
        for p, t in zip(proposals, targets):
            p = torch.cat([p, t["boxes"].to(p.dtype)])
            m = match_by_iou(box_iou(t["boxes"], p), 0.5, 0.5, False)
            pos, neg = sample_balanced(m, self.box_batch_size_per_image, self.box_positive_fraction)
            keep = torch.cat([pos, neg])
            lab = torch.zeros(len(keep), dtype=torch.int64, device=p.device)
            r = torch.zeros(len(keep), 4, device=p.device, dtype=p.dtype)
            if pos.numel():
                gi = m[pos]
                lab[: len(pos)] = t["labels"][gi]
                r[: len(pos)] = self.coder.encode(t["boxes"][gi].to(p.dtype), p[pos])
            boxes.append(p[keep])
            labels.append(lab)
            reg.append(r)
        return boxes, torch.cat(labels), torch.cat(reg)

    def forward(self, images: Tensor | list[Tensor], targets: list[dict] | None = None):
        dtype = next(self.parameters()).dtype
        images, sizes = prepare_images(images, self.image_mean, self.image_std, dtype)
        if self.training:
            check_train_size(images, self.features.body)
            if targets is None:
                raise ValueError(
                    "targets are required in training mode (model.train()); call model.eval() for predictions"
                )
            targets = check_targets(targets, images.shape[0], self.num_classes, images.device)
        image_size = tuple(images.shape[-2:])
        feats = self.features(images)
        proposals, losses = self.rpn(image_size, feats, targets if self.training else None)
        if self.training:
            proposals, labels, reg_t = self._sample_proposals(proposals, targets)
        x = multiscale_roi_align(feats, self.features.strides, proposals, self.roi_output_size)
        class_logits, deltas = self.box_head(x)  # [R, K+1], [R, K+1, 4]
        if self.training:
            losses["loss_classifier"] = F.cross_entropy(class_logits, labels)
            pos = (labels > 0).nonzero().flatten()
            pred = deltas[pos, labels[pos]]  # class-specific regression: [P, 4]
            losses["loss_box_reg"] = F.smooth_l1_loss(
                pred.to(reg_t.dtype), reg_t[pos], beta=1 / 9, reduction="sum"
            ) / max(labels.numel(), 1)
            return losses
        return self._postprocess(class_logits, deltas, proposals, sizes)

    def _postprocess(self, logits: Tensor, deltas: Tensor, proposals: list[Tensor], sizes) -> list[dict]:
        scores_all = F.softmax(logits, -1)
        boxes_all = self.coder.decode(deltas, torch.cat(proposals))  # [R, K+1, 4]
        out, start = [], 0
        for p, size in zip(proposals, sizes):
            n = len(p)
            boxes = clip_boxes_to_image(boxes_all[start : start + n, 1:], size).reshape(-1, 4)
            scores = scores_all[start : start + n, 1:].reshape(-1)
            labels = torch.arange(1, self.num_classes + 1, device=p.device).repeat(n)
            start += n
            keep = (scores > self.score_thresh).nonzero().flatten()
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(boxes, 1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            out.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return out


@register_model(task="detection")
def faster_rcnn_small(*, num_classes: int = 4, normalize: bool = False, **kwargs) -> FasterRCNN:
    """Faster R-CNN + FPN on :class:`TinyBackbone` (strides 4, 8, 16) for 64-128 px images on a CPU.

    ``normalize=True`` normalises the input with the ImageNet statistics inside the model (off by
    default: the tiny backbone trains from scratch on [0, 1] images). Other keywords go to
    :class:`FasterRCNN`.
    """
    reject_detector_weights(kwargs)
    cfg = dict(
        levels=(0, 1, 2),
        fpn_channels=32,
        anchor_sizes=((16,), (32,), (64,)),
        rpn_pre_nms_top_n=(200, 100),
        rpn_post_nms_top_n=(100, 50),
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=32,
        representation_size=128,
        **normalization(normalize),
    )
    cfg.update(kwargs)
    return FasterRCNN(TinyBackbone((16, 32, 48, 64)), num_classes, **cfg)


@register_model(task="detection")
def faster_rcnn_resnet50_fpn(
    *,
    num_classes: int = 20,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    normalize: bool = True,
    **kwargs,
) -> FasterRCNN:
    """Faster R-CNN + FPN on ResNet-50 stages 2-5 (P2-P5, strides 4-32) with one anchor size per level,
    32, 64, 128 and 256 px, at aspect ratios 0.5, 1, 2. Lin et al. 2017 (Table 3) and torchvision add a
    P6 level (stride 64, anchor 512); this model stops at P5, so objects above ~256 px are matched to
    256-px anchors and regressed from them.

    Args:
        num_classes (int): K object classes (20 for Pascal VOC).
        weights_backbone (str | None): ``"imagenet"`` loads torchvision's ImageNet ResNet-50 weights into
            the backbone (through :func:`cvlib.models.create_model`, cached and sha256-checked); None
            trains from scratch.
        trainable_backbone_layers (int | None): ResNet stages trained, from the last (0-5); None = 3 with
            weights (conv1 and layer1 frozen, as torchvision), 5 without. With weights the backbone's
            batch norm is frozen (:class:`cvlib.models.detection._common.FrozenBatchNorm2d`).
        normalize (bool): normalise the [0, 1] (or uint8) input with the ImageNet mean/std inside the
            model, as the weights expect (default True).
        **kwargs: further :class:`FasterRCNN` arguments.
    """
    reject_detector_weights(kwargs)
    backbone = resnet_backbone(
        "resnet50", weights_backbone=weights_backbone, trainable_layers=trainable_backbone_layers
    )
    cfg = dict(
        levels=(0, 1, 2, 3),
        fpn_channels=256,
        anchor_sizes=((32,), (64,), (128,), (256,)),
        **normalization(normalize),
    )
    cfg.update(kwargs)
    return FasterRCNN(backbone, num_classes, **cfg)
