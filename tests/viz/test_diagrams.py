"""Concept diagrams: every registered diagram draws a legible figure (text inside the figure, no two
labels on top of each other, fonts >= 9 pt) with a caption and alt text; the numbers they draw agree with
cvlib's own ops."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from cvlib.viz import diagrams  # noqa: E402
from cvlib.viz.diagrams._registry import register  # noqa: E402

REQUIRED = {
    "knn_vote", "connectivity", "receptive_field", "lenet5_layout", "alexnet_layout", "vgg16_layout",
    "residual_block", "inception_module", "dense_block", "se_block", "compound_scaling",
    "deformable_sampling",
    "encoder_decoder", "fcn_skip_fusion", "transposed_convolution", "unpooling", "dilated_convolution",
    "depthwise_separable", "unet", "aspp", "iou", "anchors_on_image", "anchor_labelling", "nms_steps",
    "detector_pipelines", "yolo_grid", "pr_curve", "distillation", "inverted_residual", "gradcam_pipeline",
    "pix2pix_generator", "patchgan", "convolutionalization", "transfer_learning", "feature_pipelines",
}  # fmt: skip
MIN_FONT = 9.0
MAX_OVERLAP = 0.10  # share of the smaller label's box that another label may cover


def layout_problems(fig: Figure) -> list[str]:
    """Rendered text that leaves the figure, is smaller than MIN_FONT, or overlaps another label."""
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # places legends, ticks and axis labels without rasterising
    renderer = fig.canvas.get_renderer()
    fb = fig.bbox
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    out, boxes = [], []
    for t in texts:
        b = t.get_window_extent(renderer)
        if b.x0 < fb.x0 - 1 or b.y0 < fb.y0 - 1 or b.x1 > fb.x1 + 1 or b.y1 > fb.y1 + 1:
            out.append(f"{t.get_text()!r} leaves the figure: {tuple(round(v) for v in b.extents)}")
        if t.get_fontsize() < MIN_FONT:
            out.append(f"{t.get_text()!r} is {t.get_fontsize()} pt")
        boxes.append((t.get_text(), b))
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (ta, a), (tb, b) = boxes[i], boxes[j]
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > 0 and h > 0:
                share = w * h / max(min(a.width * a.height, b.width * b.height), 1e-9)
                if share > MAX_OVERLAP:
                    out.append(f"{ta!r} and {tb!r} overlap ({share:.0%})")
    return out


def test_registry_has_every_required_diagram():
    names = set(diagrams.list_diagrams())
    assert REQUIRED <= names, sorted(REQUIRED - names)
    assert diagrams.list_diagrams(chapter="ch08") == sorted(
        n for n in names if diagrams.get(n).chapter == "ch08"
    )
    assert "yolo_grid" in diagrams.list_diagrams(chapter="ch08")


@pytest.mark.parametrize("name", sorted(diagrams.REGISTRY))
def test_diagram_draws_legibly(name):
    d = diagrams.get(name)
    assert len(d.caption) > 30 and d.caption[-1] == "."
    assert len(d.alt) > 80 and "\n" not in d.alt
    assert d.chapter.startswith("ch") and d.chapter[2:].isdigit()
    fig = diagrams.draw(name)
    try:
        assert isinstance(fig, Figure)
        w, h = fig.get_size_inches()
        assert 6.5 <= w <= 7.5 and 2.5 <= h <= 4.5  # book column width, short enough to read beside text
        assert len(fig.findobj(Text)) >= 3 and len(fig.findobj()) >= 20
        problems = layout_problems(fig)
        assert not problems, problems
    finally:
        fig.clear()


def test_layout_check_catches_overlap_overflow_and_small_fonts():
    fig = Figure(figsize=(7, 3))
    fig.text(0.5, 0.5, "first label")
    fig.text(0.505, 0.505, "second label")
    fig.text(0.99, 0.5, "runs off the right edge")
    fig.text(0.1, 0.1, "tiny", fontsize=6)
    problems = " ".join(layout_problems(fig))
    assert "overlap" in problems and "leaves the figure" in problems and "6" in problems
    ok = Figure(figsize=(7, 3))
    ok.text(0.1, 0.5, "left")
    ok.text(0.7, 0.5, "right")
    assert layout_problems(ok) == []


def test_registry_lookup_and_validation():
    with pytest.raises(ValueError, match="name must be one of"):
        diagrams.draw("no_such_diagram")
    with pytest.raises(TypeError, match="name must be a str"):
        diagrams.get(3)
    with pytest.raises(ValueError, match="already registered"):
        register("iou", caption="x.", alt="x", chapter="ch08")(lambda: Figure())
    with pytest.raises(ValueError, match="variant must be one of"):
        diagrams.classification.cnn_layout("resnet")
    # the three layouts are one family function with different variants
    texts = {
        n: tuple(t.get_text() for t in diagrams.draw(n).axes[0].texts)
        for n in ("lenet5_layout", "alexnet_layout", "vgg16_layout")
    }
    assert len(set(texts.values())) == 3
    assert "16@10x10" in texts["lenet5_layout"] and "96@55" in texts["alexnet_layout"]


def test_anchors_accept_an_image_and_fall_back_without_photos(monkeypatch):
    rng = np.random.default_rng(0)
    img = (rng.random((120, 200, 3)) * 255).astype(np.uint8)
    fig = diagrams.draw("anchors_on_image", image=img, center=(100, 60), scales=(0.3, 0.5), ratios=(1.0,))
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (120, 200, 3) and float(shown.max()) <= 1.0
    n_boxes = sum(1 for p in fig.axes[0].patches if type(p).__name__ == "Rectangle")
    assert n_boxes == 2  # 2 scales x 1 ratio
    fig_t = diagrams.draw("anchors_on_image", image=torch.rand(3, 50, 80))
    assert fig_t.axes[0].images[0].get_array().shape == (50, 80, 3)
    with pytest.raises(ValueError, match="image must be"):
        diagrams.draw("anchors_on_image", image=np.zeros((4, 4, 5)))

    import cvlib.data

    def broken(*a, **k):
        raise FileNotFoundError("no photos installed")

    monkeypatch.setattr(cvlib.data, "load_photo", broken)
    monkeypatch.setattr(cvlib.data, "load_raccoon", broken)
    for name in ("anchors_on_image", "anchor_labelling", "yolo_grid", "gradcam_pipeline"):
        fig = diagrams.draw(name)
        assert fig.axes[0].images[0].get_array().shape[:2] == (300, 450)  # the generated scene
        assert not layout_problems(fig), name
    with pytest.raises(ValueError, match="box must be given"):
        diagrams.draw("yolo_grid", image=img)


def test_scatter_add_matches_conv_transpose2d():
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(3, 4)), rng.normal(size=(3, 3))
    for stride in (1, 2):
        ours = diagrams.segmentation.scatter_add(x, k, stride=stride)
        ref = torch.nn.functional.conv_transpose2d(
            torch.tensor(x)[None, None], torch.tensor(k)[None, None], stride=stride
        )[0, 0].numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_detection_diagram_numbers_match_cvlib_ops():
    from cvlib.ops import box_iou, nms

    rng = np.random.default_rng(1)
    xy = rng.random((8, 2)) * 50
    boxes = np.concatenate([xy, xy + 5 + rng.random((8, 2)) * 30], 1)
    np.testing.assert_allclose(
        diagrams.detection.box_iou_np(boxes, boxes[:3]),
        box_iou(torch.tensor(boxes), torch.tensor(boxes[:3])).numpy(),
    )
    scores = rng.random(8)
    kept = [i for i, _ in diagrams.detection._greedy_nms(boxes, scores, 0.3)]
    assert kept == nms(torch.tensor(boxes), torch.tensor(scores), 0.3).tolist()
    # the PR diagram's AP is cvlib's VOC AP of its example, and its title shows it
    rec, prec, ap, table = diagrams.detection._pr_example()
    assert 0 < ap < 1 and len(table) == len(rec) == 10
    assert f"{ap:.3f}" in diagrams.draw("pr_curve").axes[0].get_title()
