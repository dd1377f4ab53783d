"""FCOS: a one-stage, anchor-free dense detector (Tian et al. 2019, arXiv:1904.01355) with the focal
loss of RetinaNet (Lin et al. 2017, arXiv:1708.02002).

Every feature-map location ("point") of every FPN level predicts K class logits, the distances
``(l, t, r, b)`` from the point to the four sides of its box, and a *centerness* logit. A point is a
positive for a ground-truth box if it lies in the box's centre region (radius 1.5 strides, the
"center sampling" of FCOS v2) and the box's largest side distance fits the level's range
(``(4s, 8s]`` for stride s, i.e. 0-64, 64-128, ... px at strides 8, 16, ...; the first level starts at 0
and the last has no upper bound); among several boxes it takes the smallest. Losses: sigmoid focal loss
over all points and classes, GIoU loss and centerness BCE over positives, each divided by the number of
positives. At test time a point's score is ``sqrt(sigmoid(cls) * sigmoid(ctr))``.

Departures from the paper: distances are ``relu(x) * stride`` (the FCOS v2 "norm_reg_targets" form) and
GroupNorm groups are ``min(32, C // 4)`` so that narrow heads work; images are not resized in the model.
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
    normalization,
    prepare_images,
    reject_detector_weights,
    resnet_backbone,
)
from cvlib.ops.anchors import grid_points
from cvlib.ops.boxes import batched_nms, clip_boxes_to_image
from cvlib.ops.losses import giou_loss, sigmoid_focal_loss

__all__ = ["FCOSHead", "FCOS", "fcos_small", "fcos_resnet50_fpn"]


class FCOSHead(nn.Module):
    """Shared head: a classification tower and a box tower of ``num_convs`` 3x3 conv + GroupNorm + ReLU;
    K class logits from the first, 4 distances and 1 centerness logit from the second.

    Args:
        channels (int): input (FPN) channels. num_classes (int): K. num_convs (int): tower depth (4 in
        the paper). prior_prob (float): initial foreground probability, 0.01 (RetinaNet Sec. 4.1).
    """

    def __init__(self, channels: int, num_classes: int, num_convs: int = 4, prior_prob: float = 0.01) -> None:
        super().__init__()
        groups = min(32, max(1, channels // 4))

        def tower() -> nn.Sequential:
            layers = []
            for _ in range(num_convs):
                layers += [
                    nn.Conv2d(channels, channels, 3, padding=1),
                    nn.GroupNorm(groups, channels),
                    nn.ReLU(),
                ]
            return nn.Sequential(*layers)

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_logits = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.bbox_reg = nn.Conv2d(channels, 4, 3, padding=1)
        self.ctrness = nn.Conv2d(channels, 1, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, feats: list[Tensor], strides: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        """Returns class logits [B, P, K], distances in pixels [B, P, 4] and centerness logits [B, P]
        with P = sum_l H_l W_l, points in the order of :func:`cvlib.ops.anchors.grid_points`."""
        cls, reg, ctr = [], [], []
        for f, s in zip(feats, strides):
            b = f.shape[0]
            c, t = self.cls_tower(f), self.box_tower(f)
            cls.append(self.cls_logits(c).flatten(2).transpose(1, 2))  # [B, H*W, K]
            reg.append(F.relu(self.bbox_reg(t)).flatten(2).transpose(1, 2) * s)  # [B, H*W, 4]
            ctr.append(self.ctrness(t).reshape(b, -1))  # [B, H*W]
        return torch.cat(cls, 1), torch.cat(reg, 1), torch.cat(ctr, 1)


class FCOS(nn.Module):
    """FCOS (Tian et al. 2019): anchor-free one-stage detector, focal + GIoU + centerness losses.

    Contract as :class:`cvlib.models.detection.FasterRCNN`: images float in [0, 1] or uint8; training mode
    ``model(images, targets)`` -> ``{"loss_cls", "loss_box_reg", "loss_ctrness"}``; eval mode
    ``model(images)`` -> list of ``{"boxes", "scores", "labels"}`` (labels 1..K).

    Args:
        backbone (nn.Module): with ``feature_info`` and ``forward_features``.
        num_classes (int): K object classes.
        levels (tuple[int, ...]): backbone stages feeding the FPN, finest first.
        fpn_channels (int): FPN and head width. extra_levels (int): P6/P7-style coarser levels.
        num_convs (int): head tower depth. center_sampling_radius (float): in strides (1.5).
        focal_alpha, focal_gamma (float): focal loss (0.25, 2 from RetinaNet).
        score_thresh (float), nms_thresh (float), topk_candidates (int), detections_per_img (int): inference.
        image_mean, image_std (tuple[float, float, float] | None): normalise the [0, 1] input inside the
            model, ``(x - mean) / std`` per channel, before padding (None = no normalisation).

    Example:
        >>> model = fcos_small(num_classes=4).eval()
        >>> [sorted(d) for d in model(torch.rand(1, 3, 64, 64))]
        [['boxes', 'labels', 'scores']]
    """

    takes_targets = True

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        levels: tuple[int, ...] = (1, 2, 3),
        fpn_channels: int = 256,
        extra_levels: int = 2,
        num_convs: int = 4,
        center_sampling_radius: float = 1.5,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.6,
        topk_candidates: int = 1000,
        detections_per_img: int = 100,
        image_mean: tuple[float, float, float] | None = None,
        image_std: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1 (background excluded), got {num_classes!r}")
        self.num_classes = num_classes
        self.image_mean, self.image_std = _check_mean_std(image_mean, image_std)
        self.features = BackboneWithFPN(backbone, levels, fpn_channels, extra_levels)
        self.head = FCOSHead(fpn_channels, num_classes, num_convs)
        self.center_sampling_radius = center_sampling_radius
        self.focal_alpha, self.focal_gamma = focal_alpha, focal_gamma
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.topk_candidates, self.detections_per_img = topk_candidates, detections_per_img

    def _points(self, feats: list[Tensor], dtype) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Points [P, 2], their stride [P], level [P] and size range [P, 2]."""
        pts, strides, level, ranges = [], [], [], []
        n = len(feats)
        for i, (f, s) in enumerate(zip(feats, self.features.strides)):
            p = grid_points(tuple(f.shape[-2:]), s, offset=0.5, device=f.device, dtype=dtype)
            lo = 0.0 if i == 0 else 4.0 * s
            hi = math.inf if i == n - 1 else 8.0 * s
            pts.append(p)
            strides.append(torch.full((len(p),), float(s), device=f.device, dtype=dtype))
            level.append(torch.full((len(p),), i, device=f.device))
            ranges.append(torch.tensor([lo, hi], device=f.device, dtype=dtype).expand(len(p), 2))
        return torch.cat(pts), torch.cat(strides), torch.cat(level), torch.cat(ranges)

    def _assign(self, pts: Tensor, strides: Tensor, ranges: Tensor, boxes: Tensor) -> Tensor:
        """Ground-truth index per point (-1 for background). Vectorised over [P, G]."""
        if len(boxes) == 0:
            return torch.full((len(pts),), -1, dtype=torch.int64, device=pts.device)
        x, y = pts[:, 0:1], pts[:, 1:2]  # [P, 1]
        ltrb = torch.stack(
            [x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], -1
        )  # [P, G, 4]
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2  # [G]
        r = strides[:, None] * self.center_sampling_radius  # [P, 1]
        in_centre = ((x - cx).abs() < r) & ((y - cy).abs() < r)  # [P, G]
        inside = ltrb.min(-1).values > 0
        m = ltrb.max(-1).values
        in_range = (m > ranges[:, :1]) & (m <= ranges[:, 1:])
        ok = in_centre & inside & in_range
        area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand_as(ok)
        area = torch.where(ok, area, torch.full_like(area, math.inf))
        best, idx = area.min(1)
        return torch.where(torch.isfinite(best), idx, torch.full_like(idx, -1))

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
        feats = self.features(images)
        cls, dist, ctr = self.head(feats, self.features.strides)  # [B, P, K], [B, P, 4], [B, P]
        pts, strides, level, ranges = self._points(feats, torch.promote_types(dist.dtype, torch.float32))
        if self.training:
            return self._losses(cls, dist, ctr, pts, strides, ranges, targets)
        return self._postprocess(cls, dist, ctr, pts, level, sizes)

    def _losses(self, cls, dist, ctr, pts, strides, ranges, targets) -> dict[str, Tensor]:
        gt_cls, gt_boxes, fg = [], [], []
        for t in targets:
            idx = self._assign(pts, strides, ranges, t["boxes"].to(pts.dtype))
            f = idx >= 0
            onehot = torch.zeros(len(pts), self.num_classes, device=pts.device, dtype=cls.dtype)
            if f.any():
                onehot[f, t["labels"][idx[f]] - 1] = 1.0
            gt_cls.append(onehot)
            gt_boxes.append(
                t["boxes"].to(pts.dtype)[idx.clamp(min=0)]
                if len(t["boxes"])
                else torch.zeros_like(pts).repeat(1, 2)
            )
            fg.append(f)
        gt_cls, gt_boxes, fg = (
            torch.stack(gt_cls),
            torch.stack(gt_boxes),
            torch.stack(fg),
        )  # [B,P,K] [B,P,4] [B,P]
        num_fg = fg.sum().clamp(min=1).to(cls.dtype)
        loss_cls = (
            sigmoid_focal_loss(cls, gt_cls, self.focal_alpha, self.focal_gamma, reduction="sum") / num_fg
        )
        p = pts.expand(len(targets), -1, -1)[fg]  # [F, 2]
        d, g = dist[fg], gt_boxes[fg]
        pred = torch.cat([p - d[:, :2], p + d[:, 2:]], 1)  # [F, 4] xyxy
        loss_box = giou_loss(pred, g, reduction="sum") / num_fg
        ltrb = torch.cat([p - g[:, :2], g[:, 2:] - p], 1)  # target distances [F, 4]
        lr, tb = ltrb[:, 0::2], ltrb[:, 1::2]
        ctr_t = torch.sqrt((lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values))
        loss_ctr = F.binary_cross_entropy_with_logits(ctr[fg], ctr_t, reduction="sum") / num_fg
        return {"loss_cls": loss_cls, "loss_box_reg": loss_box, "loss_ctrness": loss_ctr}

    def _postprocess(self, cls, dist, ctr, pts, level, sizes) -> list[dict]:
        out = []
        k = self.num_classes
        for c, d, t, size in zip(cls, dist, ctr, sizes):
            scores = torch.sqrt(torch.sigmoid(c) * torch.sigmoid(t)[:, None])  # [P, K]
            cand_boxes, cand_scores, cand_labels = [], [], []
            for lv in range(int(level.max()) + 1):  # top-k per level, as RetinaNet/FCOS
                sel = (level == lv).nonzero().flatten()
                s = scores[sel].flatten()
                keep = (s > self.score_thresh).nonzero().flatten()
                keep = keep[s[keep].topk(min(self.topk_candidates, keep.numel())).indices]
                pi, ci = sel[keep // k], keep % k
                p, dd = pts[pi], d[pi]
                cand_boxes.append(torch.cat([p - dd[:, :2], p + dd[:, 2:]], 1))
                cand_scores.append(s[keep])
                cand_labels.append(ci + 1)
            boxes = clip_boxes_to_image(torch.cat(cand_boxes), size)
            scores_, labels = torch.cat(cand_scores), torch.cat(cand_labels)
            keep = batched_nms(boxes, scores_, labels, self.nms_thresh)[: self.detections_per_img]
            out.append({"boxes": boxes[keep], "scores": scores_[keep], "labels": labels[keep]})
        return out


@register_model(task="detection")
def fcos_small(*, num_classes: int = 4, normalize: bool = False, **kwargs) -> FCOS:
    """FCOS on :class:`TinyBackbone` with an FPN over strides 4, 8, 16 and 2-conv towers (CPU-sized).

    ``normalize=True`` normalises the input with the ImageNet statistics inside the model (off by
    default). Other keywords go to :class:`FCOS`.
    """
    reject_detector_weights(kwargs)
    cfg = dict(
        levels=(0, 1, 2),
        fpn_channels=32,
        extra_levels=0,
        num_convs=2,
        topk_candidates=100,
        **normalization(normalize),
    )
    cfg.update(kwargs)
    return FCOS(TinyBackbone((16, 32, 48, 64)), num_classes, **cfg)


@register_model(task="detection")
def fcos_resnet50_fpn(
    *,
    num_classes: int = 20,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    normalize: bool = True,
    **kwargs,
) -> FCOS:
    """FCOS with ResNet-50 stages 3-5 and P3-P7 (strides 8-128), 4-conv towers, as in the paper.

    Args:
        num_classes (int): K object classes (20 for Pascal VOC).
        weights_backbone (str | None): ``"imagenet"`` loads torchvision's ImageNet ResNet-50 weights into
            the backbone (cached, sha256-checked); None trains from scratch.
        trainable_backbone_layers (int | None): ResNet stages trained, from the last (0-5); None = 3 with
            weights, 5 without. With weights the backbone's batch norm is frozen.
        normalize (bool): normalise the input with the ImageNet mean/std inside the model (default True).
        **kwargs: further :class:`FCOS` arguments.
    """
    reject_detector_weights(kwargs)
    backbone = resnet_backbone(
        "resnet50", weights_backbone=weights_backbone, trainable_layers=trainable_backbone_layers
    )
    cfg = dict(levels=(1, 2, 3), fpn_channels=256, extra_levels=2, num_convs=4, **normalization(normalize))
    cfg.update(kwargs)
    return FCOS(backbone, num_classes, **cfg)
