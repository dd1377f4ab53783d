"""YOLO (v1): a one-stage grid detector (Redmon, Divvala, Girshick and Farhadi 2016, "You Only Look Once:
Unified, Real-Time Object Detection", arXiv:1506.02640).

The image is divided into an S x S grid. The cell that contains an object's centre is responsible for
detecting it. Every cell predicts B boxes, each ``(x, y, sqrt(w), sqrt(h), confidence)``, and one set of
C class probabilities ``Pr(class_c | object)`` shared by its B boxes (paper Sec. 2, Fig. 2):

* ``x, y``: the box centre as an offset inside the cell, in [0, 1];
* ``sqrt(w), sqrt(h)``: square roots of the width and height relative to the image, in [0, 1] (the
  square root makes an error on a small box cost more than the same error on a large one);
* confidence: ``Pr(object) * IoU(pred, truth)``; its training target is the IoU of the predicted box
  with the ground truth (darknet's ``rescore=1``), 0 for predictors without an object.

The network's output is one Tensor[B_img, S, S, 5B + C] (the paper's 7 x 7 x 30 for S = 7, B = 2,
C = 20). The paper computes it with its *detection layers*: a few 3 x 3 convolutions on the backbone
map, then two fully connected layers, so every cell's prediction sees the whole image (``head="fc"``
here). ``head="conv"``, the default of the registered factories, replaces the two fully connected
layers by one 1 x 1 convolution on the S x S map, so that each cell's outputs come from its own
features (the fully convolutional form YOLOv2 adopted, Redmon and Farhadi 2017, arXiv:1612.08242,
without its anchors). It learns far faster from few images: on 512 shapes scenes, 4 epochs
(``fit(..., batch_size=16, optimizer="adamw", lr=5e-3)``, as chapter 8), ``yolo_small`` reaches
mAP@0.5 0.18 on 128 test scenes with ``head="conv"`` and 0.00 with ``head="fc"`` (no box above the
score threshold yet); 8 epochs give 0.39 with ``head="conv"``.

Loss (paper eq. 3), a sum of squared errors, summed over cells and predictors and averaged over images::

    lambda_coord * sum_ij 1obj_ij [(x - x^)^2 + (y - y^)^2]                         loss_xy
  + lambda_coord * sum_ij 1obj_ij [(sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]     loss_wh
  +                sum_ij 1obj_ij (C - C^)^2                                       loss_obj
  + lambda_noobj * sum_ij 1noobj_ij (C - C^)^2                                     loss_noobj
  +                sum_i 1obj_i sum_c (p(c) - p^(c))^2                             loss_cls

with lambda_coord = 5 and lambda_noobj = 0.5. ``1obj_ij`` marks the *responsible* predictor: among the B
predictors of the cell holding the object's centre, the one whose current box has the highest IoU with
the ground truth (ties: the lower index). ``1noobj_ij`` is every other predictor. At test time a box's
class-specific score is ``confidence * Pr(class_c | object)`` (paper eq. 1); boxes above
``score_thresh`` go through class-wise NMS (:func:`cvlib.ops.boxes.batched_nms`).

Departures from the paper, each a constructor option:

* the backbone is any registry network with ``forward_features`` (the paper's 24-layer darknet was
  pretrained on ImageNet at 224 px and run at 448 px); the detection layers use batch norm (YOLOv2's
  addition) and an adaptive average pool to S x S before the output layers, so any input size works
  and the grid always covers the whole (padded) input; the fully connected layer of ``head="fc"`` is
  narrower (``hidden``, 4096 in the paper) and the convolutions too (``head_channels``, 1024);
* the default ``head="conv"`` described above;
* the paper's outputs are linear; here ``x, y, sqrt(w), sqrt(h)`` and the confidence pass through a
  sigmoid and the class scores through a softmax, so every prediction lies in its valid range (the
  squared-error loss is unchanged);
* if several objects' centres fall into one cell, the cell is responsible for the largest one only
  (one class per cell is the model's documented limit, paper Sec. 2.4); the others are not learnt.

Boxes are relative to the batch's (padded) canvas: a list of different sizes is zero-padded at the
bottom/right (:func:`cvlib.models.detection._common.prepare_images`), and predictions are clipped to
each image's own size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib.models._layers import ConvNormAct
from cvlib.models._registry import register_model
from cvlib.models.detection._common import (
    TinyBackbone,
    _check_mean_std,
    check_targets,
    check_train_size,
    normalization,
    prepare_images,
    reject_detector_weights,
    resnet_backbone,
)
from cvlib.ops.boxes import batched_nms, box_iou, clip_boxes_to_image

__all__ = [
    "YOLOHead",
    "YOLO",
    "decode_boxes",
    "assign_targets",
    "yolo_loss",
    "yolo_small",
    "yolo_resnet50",
]


def _leaky_relu(inplace: bool = True) -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=inplace)  # the paper's activation, slope 0.1


class YOLOHead(nn.Module):
    """The detection layers: ``num_convs`` 3 x 3 convolutions (batch norm, leaky ReLU 0.1), an adaptive
    average pool to S x S, then either the paper's fully connected layer of ``hidden`` units (leaky
    ReLU, dropout) and fully connected output of S * S * (5B + C) values (``fully_connected=True``), or
    dropout and a 1 x 1 convolution to 5B + C values per cell (``fully_connected=False``).

    Args:
        in_channels (int): channels of the backbone map.
        grid_size (int): S. num_boxes (int): B. num_classes (int): C.
        channels (int): width of the convolutions. num_convs (int): how many (>= 0).
        hidden (int): width of the first fully connected layer. dropout (float): after it (0.5 in the paper),
            or before the 1 x 1 convolution. fully_connected (bool): the paper's layout or the 1 x 1 one.

    Shapes: Tensor[N, in_channels, h, w] -> raw outputs Tensor[N, S, S, 5B + C] (before the sigmoid and
    softmax of :func:`decode_boxes` / :func:`yolo_loss`).
    """

    def __init__(
        self,
        in_channels: int,
        grid_size: int,
        num_boxes: int,
        num_classes: int,
        *,
        channels: int = 512,
        num_convs: int = 2,
        hidden: int = 1024,
        dropout: float = 0.5,
        fully_connected: bool = True,
    ) -> None:
        super().__init__()
        layers, c = [], in_channels
        for _ in range(num_convs):
            layers.append(ConvNormAct(c, channels, 3, activation=_leaky_relu))
            c = channels
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(grid_size)
        self.grid_size, self.depth = grid_size, 5 * num_boxes + num_classes
        self.dropout = nn.Dropout(dropout)
        if not fully_connected:  # fully convolutional: each cell's outputs from its own features
            self.fc1, self.fc2 = None, nn.Conv2d(c, self.depth, 1)
        else:
            self.fc1 = nn.Linear(c * grid_size * grid_size, hidden)
            self.fc2 = nn.Linear(hidden, grid_size * grid_size * self.depth)
        nn.init.normal_(self.fc2.weight, std=0.01)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.convs(x))
        if self.fc1 is None:
            return self.fc2(self.dropout(x)).permute(0, 2, 3, 1)
        x = self.dropout(F.leaky_relu(self.fc1(x.flatten(1)), 0.1))
        return self.fc2(x).view(x.shape[0], self.grid_size, self.grid_size, self.depth)


def _split(raw: Tensor, num_boxes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Raw Tensor[N, S, S, 5B + C] -> (x, y, sqrt w, sqrt h) Tensor[N, S, S, B, 4] in [0, 1],
    confidence Tensor[N, S, S, B] in [0, 1], class probabilities Tensor[N, S, S, C]."""
    n, s = raw.shape[0], raw.shape[1]
    box = torch.sigmoid(raw[..., : 5 * num_boxes].reshape(n, s, s, num_boxes, 5))
    return box[..., :4], box[..., 4], torch.softmax(raw[..., 5 * num_boxes :], -1)


def decode_boxes(coords: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Cell-relative ``(x, y, sqrt w, sqrt h)`` to xyxy pixel boxes.

    The cell in row i and column j covers ``[j W / S, (j + 1) W / S) x [i H / S, (i + 1) H / S)``; the
    centre is ``((j + x) W / S, (i + y) H / S)`` and the size ``(sqrt_w^2 W, sqrt_h^2 H)``.

    Args:
        coords (Tensor[..., S, S, B, 4]): x, y offsets in the cell and square roots of the relative size.
        image_size (tuple[int, int]): (H, W) of the canvas the grid covers.

    Returns:
        Tensor[..., S, S, B, 4]: xyxy boxes in pixels.
    """
    h, w = image_size
    s = coords.shape[-3]
    idx = torch.arange(s, device=coords.device, dtype=coords.dtype)
    cx = (idx[None, :, None] + coords[..., 0]) * (w / s)  # column index j varies along dim -2
    cy = (idx[:, None, None] + coords[..., 1]) * (h / s)  # row index i along dim -3
    bw, bh = coords[..., 2] ** 2 * w, coords[..., 3] ** 2 * h
    return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)


def assign_targets(
    boxes: Tensor, labels: Tensor, pred_boxes: Tensor, image_size: tuple[int, int]
) -> dict[str, Tensor]:
    """YOLO's target assignment for one image: the cell holding each object's centre, and in it the
    predictor whose current box overlaps the object most (paper Sec. 2.2).

    Args:
        boxes (Tensor[N, 4]): ground-truth xyxy pixel boxes. labels (Tensor[N]): int64 in 1..C.
        pred_boxes (Tensor[S, S, B, 4]): the predicted xyxy boxes of every cell (from
            :func:`decode_boxes`; only used to choose the responsible predictor, no gradient).
        image_size (tuple[int, int]): (H, W) of the canvas the grid covers.

    Returns:
        dict[str, Tensor] with
        ``cell`` Bool[S, S] (1obj_i: the cell holds an object's centre),
        ``responsible`` Bool[S, S, B] (1obj_ij),
        ``coords`` Tensor[S, S, 4] (target x, y offsets in the cell, sqrt(w / W), sqrt(h / H); 0 elsewhere),
        ``labels`` int64[S, S] (the cell's class 1..C, 0 elsewhere),
        ``iou`` Tensor[S, S, B] (IoU of each predictor of an object cell with its object, 0 elsewhere),
        ``index`` int64[S, S] (index of the cell's object in ``boxes``, -1 elsewhere).
        If several centres fall in one cell the largest box wins (ties: the lower index).
    """
    s, nb = pred_boxes.shape[0], pred_boxes.shape[2]
    h, w = image_size
    dev, dtype = pred_boxes.device, pred_boxes.dtype
    out = {
        "cell": torch.zeros(s, s, dtype=torch.bool, device=dev),
        "responsible": torch.zeros(s, s, nb, dtype=torch.bool, device=dev),
        "coords": torch.zeros(s, s, 4, dtype=dtype, device=dev),
        "labels": torch.zeros(s, s, dtype=torch.int64, device=dev),
        "iou": torch.zeros(s, s, nb, dtype=dtype, device=dev),
        "index": torch.full((s, s), -1, dtype=torch.int64, device=dev),
    }
    if len(boxes) == 0:
        return out
    boxes = boxes.to(dtype)
    gx = (boxes[:, 0] + boxes[:, 2]) / 2 / w * s  # centre in grid units
    gy = (boxes[:, 1] + boxes[:, 3]) / 2 / h * s
    col = gx.floor().clamp(0, s - 1).long()
    row = gy.floor().clamp(0, s - 1).long()
    cell = row * s + col
    # one object per cell: the largest (stable sorts keep the lower index first on ties)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = torch.sort(area, descending=True, stable=True).indices
    order = order[torch.sort(cell[order], stable=True).indices]
    first = torch.ones(len(order), dtype=torch.bool, device=dev)
    first[1:] = cell[order][1:] != cell[order][:-1]
    k = order[first]  # kept objects, one per cell
    r, c = row[k], col[k]
    gt = boxes[k]
    pred = pred_boxes[r, c]  # [K, B, 4]
    iou = box_iou(pred.reshape(-1, 4), gt.repeat_interleave(nb, 0), aligned=True).view(-1, nb)
    best = iou.argmax(1)  # first maximum on ties
    out["cell"][r, c] = True
    out["responsible"][r, c, best] = True
    sw = ((gt[:, 2] - gt[:, 0]) / w).clamp(0, 1).sqrt()
    sh = ((gt[:, 3] - gt[:, 1]) / h).clamp(0, 1).sqrt()
    out["coords"][r, c] = torch.stack([gx[k] - col[k], gy[k] - row[k], sw, sh], -1)
    out["labels"][r, c] = labels[k].long()
    out["iou"][r, c] = iou
    out["index"][r, c] = k
    return out


def yolo_loss(
    raw: Tensor,
    targets: list[dict[str, Tensor]],
    image_size: tuple[int, int],
    num_boxes: int,
    *,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
    rescore: bool = True,
) -> dict[str, Tensor]:
    """The paper's sum-squared loss (eq. 3), split into its five terms, each averaged over the images.

    Args:
        raw (Tensor[N, S, S, 5B + C]): head outputs. targets: N dicts with ``boxes``, ``labels`` (1..C).
        image_size (tuple[int, int]): (H, W) of the canvas. num_boxes (int): B.
        lambda_coord, lambda_noobj (float): the paper's 5 and 0.5.
        rescore (bool): confidence target = IoU of the responsible box with the object (the paper's
            definition); False uses 1.

    Returns:
        dict[str, Tensor]: scalar ``loss_xy, loss_wh, loss_obj, loss_noobj, loss_cls`` (weights included,
        so their sum is eq. 3 divided by N).
    """
    coords, conf, probs = _split(raw.float(), num_boxes)
    with torch.no_grad():
        pred_boxes = decode_boxes(coords, image_size)
    a = [assign_targets(t["boxes"], t["labels"], pb, image_size) for t, pb in zip(targets, pred_boxes)]
    resp = torch.stack([x["responsible"] for x in a]).to(coords.dtype)  # [N, S, S, B]
    cell = torch.stack([x["cell"] for x in a]).to(coords.dtype)  # [N, S, S]
    tc = torch.stack([x["coords"] for x in a])[:, :, :, None, :]  # [N, S, S, 1, 4]
    iou = torch.stack([x["iou"] for x in a])
    labels = torch.stack([x["labels"] for x in a])
    n, num_classes = raw.shape[0], probs.shape[-1]
    sq = (coords - tc) ** 2  # [N, S, S, B, 4]
    conf_t = iou if rescore else torch.ones_like(iou)
    onehot = F.one_hot((labels - 1).clamp(min=0), num_classes).to(probs.dtype)
    return {
        "loss_xy": lambda_coord * (resp * (sq[..., 0] + sq[..., 1])).sum() / n,
        "loss_wh": lambda_coord * (resp * (sq[..., 2] + sq[..., 3])).sum() / n,
        "loss_obj": (resp * (conf - conf_t) ** 2).sum() / n,
        "loss_noobj": lambda_noobj * ((1 - resp) * conf**2).sum() / n,
        "loss_cls": (cell[..., None] * (probs - onehot) ** 2).sum() / n,
    }


class YOLO(nn.Module):
    """YOLO v1 (Redmon et al. 2016, arXiv:1506.02640): S x S grid, B boxes and C class probabilities
    per cell, sum-squared loss, class-specific confidence and NMS at test time.

    Contract (as :class:`cvlib.models.detection.FasterRCNN` and ``FCOS``): ``images`` Tensor[N, 3, H, W]
    or a list of Tensor[3, H_i, W_i], float in [0, 1] or uint8 in [0, 255] (divided by 255 inside). In
    training mode ``model(images, targets)`` with ``targets`` a list of N dicts ``{"boxes": Tensor[M, 4]
    xyxy pixels (float or integer), "labels": Tensor[M] integer in 1..K}`` (M = 0 allowed) returns a
    dict of scalar losses ``loss_xy, loss_wh, loss_obj, loss_noobj, loss_cls``; in eval mode
    ``model(images)`` returns one dict per image ``{"boxes": Tensor[D, 4] xyxy pixels, "scores":
    Tensor[D], "labels": Tensor[D] int64 in 1..K}``, by decreasing score. ``takes_targets = True`` lets
    :func:`cvlib.train.fit` drive it.

    Args:
        backbone (nn.Module): with ``feature_info`` and ``forward_features`` (any registry classifier).
        num_classes (int): K object classes (C in the paper; no background class, the confidence plays
            that role).
        level (int): index of the backbone map fed to the head (-1 = the coarsest).
        grid_size (int): S (7 in the paper). num_boxes (int): B (2 in the paper).
        head (str): ``"fc"`` (the paper's fully connected detection layers) or ``"conv"`` (a 1 x 1
            convolution per cell, see the module docstring).
        head_channels, head_convs, hidden, dropout: :class:`YOLOHead` (``hidden`` only for ``"fc"``).
        lambda_coord, lambda_noobj (float): loss weights (5, 0.5). rescore (bool): see :func:`yolo_loss`.
        score_thresh (float): minimum class-specific score kept at test time. nms_thresh (float): IoU of
            the class-wise NMS. detections_per_img (int): at most this many per image.
        image_mean, image_std (tuple[float, float, float] | None): normalise the input inside the model
            (None = no normalisation).

    Example:
        >>> model = yolo_small(num_classes=3).eval()
        >>> [sorted(d) for d in model(torch.rand(1, 3, 64, 64))]
        [['boxes', 'labels', 'scores']]
    """

    takes_targets = True

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        level: int = -1,
        grid_size: int = 7,
        num_boxes: int = 2,
        head_channels: int = 512,
        head_convs: int = 2,
        hidden: int = 1024,
        dropout: float = 0.5,
        head: str = "fc",
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
        rescore: bool = True,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        image_mean: tuple[float, float, float] | None = None,
        image_std: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1 (background excluded), got {num_classes!r}")
        for name, v in (("grid_size", grid_size), ("num_boxes", num_boxes)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        info = getattr(backbone, "feature_info", None)
        if not info or not callable(getattr(backbone, "forward_features", None)):
            raise TypeError(
                "backbone must expose feature_info and forward_features(x) (see CONTRIBUTING.md), "
                f"got {type(backbone).__name__}"
            )
        if not -len(info) <= level < len(info):
            raise ValueError(f"level must index the backbone's {len(info)} stages, got {level}")
        if head not in ("fc", "conv"):
            raise ValueError(f"head must be 'fc' (the paper's) or 'conv' (fully convolutional), got {head!r}")
        self.num_classes, self.grid_size, self.num_boxes = num_classes, grid_size, num_boxes
        self.level = level % len(info)
        self.image_mean, self.image_std = _check_mean_std(image_mean, image_std)
        self.backbone = backbone
        self.head = YOLOHead(
            int(info[self.level]["channels"]),
            grid_size,
            num_boxes,
            num_classes,
            channels=head_channels,
            num_convs=head_convs,
            hidden=hidden,
            dropout=dropout,
            fully_connected=head == "fc",
        )
        self.lambda_coord, self.lambda_noobj, self.rescore = lambda_coord, lambda_noobj, rescore
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img

    def forward(self, images: Tensor | list[Tensor], targets: list[dict] | None = None):
        dtype = next(self.parameters()).dtype
        images, sizes = prepare_images(images, self.image_mean, self.image_std, dtype)
        if self.training:
            check_train_size(images, self.backbone)
            if targets is None:
                raise ValueError(
                    "targets are required in training mode (model.train()); call model.eval() for predictions"
                )
            targets = check_targets(targets, images.shape[0], self.num_classes, images.device)
        canvas = tuple(images.shape[-2:])
        raw = self.head(self.backbone.forward_features(images)[self.level])  # [N, S, S, 5B + C]
        if self.training:
            return yolo_loss(
                raw,
                targets,
                canvas,
                self.num_boxes,
                lambda_coord=self.lambda_coord,
                lambda_noobj=self.lambda_noobj,
                rescore=self.rescore,
            )
        return self._postprocess(raw.float(), canvas, sizes)

    def _postprocess(self, raw: Tensor, canvas: tuple[int, int], sizes) -> list[dict]:
        coords, conf, probs = _split(raw, self.num_boxes)
        boxes_all = decode_boxes(coords, canvas).flatten(1, 3)  # [N, S*S*B, 4]
        # class-specific confidence (eq. 1): Pr(class | object) * confidence, [N, S*S*B, C]
        scores_all = (conf[..., None] * probs[:, :, :, None, :]).flatten(1, 3)
        out = []
        k = self.num_classes
        for boxes, scores, size in zip(boxes_all, scores_all, sizes):
            flat = scores.flatten()
            keep = (flat > self.score_thresh).nonzero().flatten()
            b = clip_boxes_to_image(boxes[keep // k], size)
            s, lab = flat[keep], keep % k + 1
            ok = ((b[:, 2] - b[:, 0]) > 1e-2) & ((b[:, 3] - b[:, 1]) > 1e-2)
            b, s, lab = b[ok], s[ok], lab[ok]
            sel = batched_nms(b, s, lab, self.nms_thresh)[: self.detections_per_img]
            out.append({"boxes": b[sel], "scores": s[sel], "labels": lab[sel]})
        return out


@register_model(task="detection")
def yolo_small(*, num_classes: int = 4, normalize: bool = False, head: str = "conv", **kwargs) -> YOLO:
    """YOLO on :class:`TinyBackbone` (map at stride 8), S = 8, B = 2, for 64-256 px scenes on a CPU.

    ``head="conv"`` (default) predicts each cell with a 1 x 1 convolution; ``head="fc"`` uses the paper's
    fully connected detection layers (256 hidden units, no dropout). ``normalize=True`` normalises the
    input with the ImageNet statistics inside the model (off by default). Other keywords go to
    :class:`YOLO` (e.g. ``grid_size``, ``num_boxes``).
    """
    reject_detector_weights(kwargs)
    cfg = dict(
        level=1,
        grid_size=8,
        num_boxes=2,
        head=head,
        head_channels=64,
        head_convs=2,
        hidden=256,
        dropout=0.0,
        **normalization(normalize),
    )
    cfg.update(kwargs)
    return YOLO(TinyBackbone((16, 32, 48, 64)), num_classes, **cfg)


@register_model(task="detection")
def yolo_resnet50(
    *,
    num_classes: int = 20,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    normalize: bool = True,
    head: str = "conv",
    **kwargs,
) -> YOLO:
    """YOLO on ResNet-50 (last stage, stride 32), S = 7, B = 2 as in the paper (448 px inputs give a
    14 x 14 map, pooled to 7 x 7), detection layers 2 x 3x3 conv of 512 channels, then a 1 x 1
    convolution per cell (``head="conv"``, default) or the paper's fully connected layers
    (``head="fc"``: 1024 hidden units, dropout 0.5).

    Args:
        num_classes (int): K object classes (20 for Pascal VOC).
        weights_backbone (str | None): ``"imagenet"`` loads torchvision's ImageNet ResNet-50 weights into
            the backbone (cached, sha256-checked); None trains from scratch.
        trainable_backbone_layers (int | None): ResNet stages trained, from the last (0-5); None = 3 with
            weights, 5 without. With weights the backbone's batch norm is frozen.
        normalize (bool): normalise the input with the ImageNet mean/std inside the model (default True).
        head (str): ``"conv"`` or ``"fc"``.
        **kwargs: further :class:`YOLO` arguments.
    """
    reject_detector_weights(kwargs)
    backbone = resnet_backbone(
        "resnet50", weights_backbone=weights_backbone, trainable_layers=trainable_backbone_layers
    )
    cfg = dict(
        level=3,
        grid_size=7,
        num_boxes=2,
        head=head,
        head_channels=512,
        head_convs=2,
        hidden=1024,
        dropout=0.5 if head == "fc" else 0.0,
    )
    cfg.update(normalization(normalize))
    cfg.update(kwargs)
    return YOLO(backbone, num_classes, **cfg)
