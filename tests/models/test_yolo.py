"""YOLO v1: target assignment and loss terms against hand computations, box decoding, the full variant's
shapes, learning one image to a correct detection, and training through ``cvlib.train.fit``.
(The contract shared with the other detectors is tested in test_detection.py.)"""

import math

import pytest
import torch

from cvlib.models import create_model, list_models
from cvlib.models.detection.yolo import YOLO, assign_targets, decode_boxes, yolo_loss


def logit(p):
    return math.log(p / (1 - p))


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_registered():
    assert {"yolo_small", "yolo_resnet50"} <= set(list_models(task="detection"))
    m = create_model("yolo_small", num_classes=5)
    assert isinstance(m, YOLO) and m.takes_targets is True
    assert (m.grid_size, m.num_boxes, m.num_classes) == (8, 2, 5)


def test_decode_boxes_by_hand():
    coords = torch.zeros(4, 4, 2, 4)
    coords[1, 2, 1] = torch.tensor([0.25, 0.5, 0.5, math.sqrt(0.125)])  # row 1, column 2, predictor 1
    boxes = decode_boxes(coords, (64, 128))  # H = 64, W = 128: cells 32 wide, 16 high
    # centre x = (2 + 0.25) * 32 = 72, y = (1 + 0.5) * 16 = 24; w = 0.25 * 128 = 32, h = 0.125 * 64 = 8
    torch.testing.assert_close(boxes[1, 2, 1], torch.tensor([56.0, 20.0, 88.0, 28.0]))
    # a zero-size prediction sits at the top-left corner of its cell
    torch.testing.assert_close(boxes[3, 0, 0], torch.tensor([0.0, 48.0, 0.0, 48.0]))


def test_assign_targets_by_hand():
    # 64 x 64 image, S = 4 (16-px cells), B = 2
    pred = torch.zeros(4, 4, 2, 4)
    pred[1, 1, 0] = torch.tensor([16.0, 16, 32, 32])
    pred[1, 1, 1] = torch.tensor([22.0, 6, 40, 28])
    boxes = torch.tensor(
        [
            [20.0, 4, 40, 28],  # centre (30, 16): column floor(30/16) = 1, row floor(16/16) = 1
            [24.0, 18, 30, 26],  # centre (27, 22): same cell, smaller -> not assigned
            [0.0, 40, 10, 64],  # centre (5, 52): column 0, row 3
        ]
    )
    labels = torch.tensor([3, 1, 2])
    a = assign_targets(boxes, labels, pred, (64, 64))
    assert a["cell"].nonzero().tolist() == [[1, 1], [3, 0]]
    # cell (1, 1): predictor 1 lies inside the object, IoU 396/480 = 0.825 against 144/592
    assert a["responsible"].nonzero().tolist() == [[1, 1, 1], [3, 0, 0]]
    torch.testing.assert_close(a["iou"][1, 1], torch.tensor([144 / 592, 396 / 480]))
    # cell (3, 0): both predictors are empty boxes (IoU 0): the tie goes to predictor 0
    assert a["iou"][3, 0].tolist() == [0.0, 0.0]
    torch.testing.assert_close(
        a["coords"][1, 1], torch.tensor([30 / 16 - 1, 0.0, math.sqrt(20 / 64), math.sqrt(24 / 64)])
    )
    torch.testing.assert_close(
        a["coords"][3, 0], torch.tensor([5 / 16, 52 / 16 - 3, math.sqrt(10 / 64), math.sqrt(24 / 64)])
    )
    assert a["labels"][1, 1] == 3 and a["labels"][3, 0] == 2 and a["labels"].count_nonzero() == 2
    assert a["index"][1, 1] == 0 and a["index"][3, 0] == 2 and (a["index"] >= 0).sum() == 2
    # the larger object wins its cell whatever the order of the targets
    b = assign_targets(boxes.flip(0), labels.flip(0), pred, (64, 64))
    assert b["labels"][1, 1] == 3 and b["index"][1, 1] == 2
    empty = assign_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), pred, (64, 64))
    assert not empty["responsible"].any() and (empty["index"] == -1).all()


def raw_example():
    """S = 2, B = 2, C = 2 on a 32 x 32 canvas (16-px cells): every predictor (x, y, sqrt w, sqrt h, conf) =
    (0.5, 0.5, 0.5, 0.5, 0.2) except cell (0, 0) predictor 1 = (0.25, 0.75, 0.6, 0.4, 0.7); class
    probabilities (0.75, 0.25) in cell (0, 0), (0.5, 0.5) elsewhere."""
    raw = torch.zeros(1, 2, 2, 12)
    for j in range(2):
        raw[..., 5 * j : 5 * j + 4] = logit(0.5)
        raw[..., 5 * j + 4] = logit(0.2)
    raw[0, 0, 0, 5:10] = torch.tensor([logit(0.25), logit(0.75), logit(0.6), logit(0.4), logit(0.7)])
    raw[0, 0, 0, 10] = math.log(3.0)  # softmax(log 3, 0) = (0.75, 0.25)
    return raw


def test_loss_terms_by_hand():
    raw = raw_example()
    gt = [2.0, 8.0, 10.0, 16.0]  # centre (6, 12) -> cell (0, 0); x = 6/16, y = 12/16, sqrt(8/32) = 0.5
    target = [{"boxes": torch.tensor([gt]), "labels": torch.tensor([2])}]
    # predicted boxes of cell (0, 0): predictor 0 centre (8, 8), size 0.25 * 32 = 8;
    # predictor 1 centre (4, 12), size (0.36 * 32, 0.16 * 32) = (11.52, 5.12)
    p0 = [4.0, 4.0, 12.0, 12.0]
    p1 = [4 - 5.76, 12 - 2.56, 4 + 5.76, 12 + 2.56]
    iou0, iou1 = iou(p0, gt), iou(p1, gt)
    assert iou1 > iou0  # predictor 1 is responsible
    want = {
        "loss_xy": 5 * ((0.25 - 0.375) ** 2 + (0.75 - 0.75) ** 2),
        "loss_wh": 5 * ((0.6 - 0.5) ** 2 + (0.4 - 0.5) ** 2),
        "loss_obj": (0.7 - iou1) ** 2,
        "loss_noobj": 0.5 * 7 * 0.2**2,  # the 7 other predictors, confidence 0.2, target 0
        "loss_cls": (0.75 - 0.0) ** 2 + (0.25 - 1.0) ** 2,  # label 2 = second class
    }
    got = yolo_loss(raw, target, (32, 32), 2)
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].item() == pytest.approx(v, rel=1e-5), k
    # rescore=False: confidence target 1; the weights scale their terms
    got = yolo_loss(raw, target, (32, 32), 2, rescore=False, lambda_coord=1.0, lambda_noobj=1.0)
    assert got["loss_obj"].item() == pytest.approx((0.7 - 1.0) ** 2, rel=1e-5)
    assert got["loss_xy"].item() == pytest.approx(want["loss_xy"] / 5, rel=1e-5)
    assert got["loss_noobj"].item() == pytest.approx(want["loss_noobj"] / 0.5, rel=1e-5)
    # the loss is averaged over images: a second, empty image adds only its no-object term, where all
    # 8 predictors (confidences 0.2 x 7 and 0.7) have target 0
    two = yolo_loss(
        raw.repeat(2, 1, 1, 1),
        target + [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}],
        (32, 32),
        2,
    )
    assert two["loss_cls"].item() == pytest.approx(want["loss_cls"] / 2, rel=1e-5)
    assert two["loss_noobj"].item() == pytest.approx(
        (want["loss_noobj"] + 0.5 * (7 * 0.2**2 + 0.7**2)) / 2, rel=1e-5
    )


def test_inference_score_is_confidence_times_class_probability():
    model = create_model("yolo_small", num_classes=2, grid_size=2, score_thresh=0.0, nms_thresh=1.0)
    out = model._postprocess(raw_example(), (32, 32), [(32, 32)])[0]
    # 2 x 2 cells x 2 predictors x 2 classes = 16 scores; the best is predictor 1 of cell (0, 0), class 1:
    # 0.7 * 0.75; its box is clipped to the image
    assert len(out["scores"]) == 16
    assert out["scores"][0].item() == pytest.approx(0.7 * 0.75) and out["labels"][0] == 1
    torch.testing.assert_close(out["boxes"][0], torch.tensor([0.0, 9.44, 9.76, 14.56]))
    assert sorted(round(s, 4) for s in out["scores"].tolist()).count(0.1) == 12  # 0.2 * 0.5 elsewhere


@pytest.mark.parametrize("head", ["conv", "fc"])
def test_learns_one_image_to_a_correct_detection(head):
    torch.manual_seed(0)
    model = create_model("yolo_small", num_classes=3, head=head).train()
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.2
    image[0, :, 10:30, 12:28] = 0.9
    target = [{"boxes": torch.tensor([[12.0, 10, 28, 30]]), "labels": torch.tensor([2])}]
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(60):
        loss = sum(model(image, target).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        det = model.eval()(image)[0]
    assert det["labels"][0] == 2
    assert iou(det["boxes"][0].tolist(), target[0]["boxes"][0].tolist()) > 0.5


def test_full_variant_grid_and_losses():
    torch.manual_seed(0)
    model = create_model("yolo_resnet50", num_classes=20)
    assert model.image_mean is not None and model.grid_size == 7 and model.level == 3
    assert all(p.requires_grad for p in model.parameters())  # no weights: everything trains
    losses = model(
        torch.rand(2, 3, 96, 96),
        [{"boxes": torch.tensor([[8.0, 8, 40, 60]]), "labels": torch.tensor([20])}] * 2,
    )
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    with torch.no_grad():
        raw = model.head(model.backbone.forward_features(torch.rand(1, 3, 160, 160))[3])
    assert raw.shape == (1, 7, 7, 5 * 2 + 20)  # the paper's 7 x 7 x 30 output, whatever the input size


def test_trains_with_fit():
    from cvlib.data.shapes import ShapesDetection
    from cvlib.train import detection_collate, fit

    torch.manual_seed(0)
    data = ShapesDetection(8, seed=0)
    model = create_model("yolo_small", num_classes=len(data.classes))
    hist = fit(
        model,
        data,
        epochs=2,
        batch_size=4,
        optimizer="adamw",
        lr=1e-3,
        metrics=(),
        collate_fn=detection_collate,
        device="cpu",
        progress=False,
    )
    assert {"train_loss_xy", "train_loss_noobj"} <= set(hist.history)
    assert hist.history["train_loss"][-1] < hist.history["train_loss"][0]


def test_constructor_checks():
    from cvlib.models.detection._common import TinyBackbone

    with pytest.raises(ValueError, match="grid_size must be an int >= 1"):
        YOLO(TinyBackbone(), 3, grid_size=0)
    with pytest.raises(ValueError, match="level must index the backbone's 4 stages"):
        YOLO(TinyBackbone(), 3, level=4)
    with pytest.raises(TypeError, match="backbone must expose feature_info"):
        YOLO(torch.nn.Conv2d(3, 3, 1), 3)
    with pytest.raises(ValueError, match="head must be 'fc' .* or 'conv'"):
        YOLO(TinyBackbone(), 3, head="mlp")


def test_fc_and_conv_heads():
    fc = create_model("yolo_small", num_classes=3, head="fc")
    conv = create_model("yolo_small", num_classes=3)
    assert isinstance(fc.head.fc2, torch.nn.Linear) and fc.head.fc2.out_features == 8 * 8 * 13
    assert isinstance(conv.head.fc2, torch.nn.Conv2d) and conv.head.fc1 is None
    x = torch.rand(2, 3, 64, 64)
    for m in (fc, conv):
        feats = m.backbone.forward_features(x)[m.level]
        assert m.head(feats).shape == (2, 8, 8, 5 * 2 + 3)
    # the convolutional head predicts each cell from its neighbourhood: changing the features at one cell
    # changes the outputs of the 5 x 5 cells around it (two 3 x 3 convolutions, then 1 x 1); the fully
    # connected head mixes all cells
    feats = conv.backbone.forward_features(x)[1].detach()
    other = feats.clone()
    other[:, :, 3, 4] += 1.0
    with torch.no_grad():
        changed = (conv.eval().head(feats) - conv.head(other)).abs().amax((0, 3)) > 0
        assert changed.nonzero().tolist() == [[i, j] for i in range(1, 6) for j in range(2, 7)]
        assert ((fc.eval().head(feats) - fc.head(other)).abs().amax((0, 3)) > 0).all()


def test_plot_yolo_grid_shades_the_responsible_cells():
    from matplotlib.patches import Rectangle

    from cvlib.viz.detection import plot_yolo_grid

    boxes = torch.tensor([[20.0, 4, 40, 28], [24.0, 18, 30, 26], [0.0, 40, 10, 64]])  # as in the hand test
    fig = plot_yolo_grid(torch.rand(3, 64, 64), boxes, torch.tensor([3, 1, 2]), grid_size=4)
    ax = fig.axes[0]
    shaded = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_fill()]
    assert sorted((p.get_x(), p.get_y()) for p in shaded) == [
        (0.0, 48.0),
        (16.0, 16.0),
    ]  # cells (3, 0), (1, 1)
    assert "2 of 3 objects have a cell" in ax.get_title()
    pred = torch.zeros(4, 4, 2, 4)
    pred[1, 1, 1] = torch.tensor([22.0, 6, 40, 28])
    fig = plot_yolo_grid((64, 64), boxes, grid_size=4, pred_boxes=pred)
    solid = [p for p in fig.axes[0].patches if not p.get_fill() and p.get_linestyle() == "-"]
    assert [tuple(p.get_xy()) for p in solid] == [(22.0, 6.0), (0.0, 0.0)]  # the responsible predictors
    with pytest.raises(ValueError, match=r"pred_boxes must be \[S, S, B, 4\] with S = 4"):
        plot_yolo_grid((64, 64), boxes, grid_size=4, pred_boxes=torch.zeros(3, 3, 2, 4))
