import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from cvlib.models import create_model
from cvlib.ops.filters import KERNELS, apply_kernel
from cvlib.viz.filters import (
    plot_robustness,
    show_feature_maps,
    show_filters,
    show_kernel_application,
    show_kernel_gallery,
    show_templates,
)

matplotlib.use("Agg")


def _images(fig: Figure) -> list[np.ndarray]:
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]


def test_show_templates_from_model_one_axis_per_class():
    model = create_model("linear_classifier", num_classes=10, in_shape=(1, 8, 8))
    fig = show_templates(model, class_names=[str(i) for i in range(10)], ncols=5)
    assert isinstance(fig, Figure) and len(fig.axes) == 10
    np.testing.assert_allclose(_images(fig)[3], model.templates()[3, 0].numpy())
    assert [ax.get_title() for ax in fig.axes][:2] == ["0", "1"]


def test_show_templates_rgb_and_errors():
    fig = show_templates(torch.randn(3, 3, 6, 6), ncols=2)
    assert len(fig.axes) == 3 and _images(fig)[0].shape == (6, 6, 3)
    with pytest.raises(ValueError, match=r"templates must be \[K, C, H, W\]"):
        show_templates(torch.randn(3, 36))
    with pytest.raises(ValueError, match="class_names must have 3 entries"):
        show_templates(torch.randn(3, 1, 6, 6), class_names=["a"])


def test_show_filters_caps_the_number_of_panels():
    conv = nn.Conv2d(3, 12, 5)
    assert len(show_filters(conv, max_filters=8).axes) == 8
    fig = show_filters(nn.Conv2d(2, 5, 3).weight)
    assert len(fig.axes) == 5 and _images(fig)[0].shape == (3, 3)


def test_show_feature_maps():
    model = create_model("simple_cnn", in_channels=1, channels=(6, 8)).eval()
    feats = model.forward_features(torch.rand(1, 1, 16, 16))
    fig = show_feature_maps(feats[0], max_maps=4, title="stage 1")
    assert len(fig.axes) == 4 and _images(fig)[0].shape == (8, 8)
    with pytest.raises(ValueError, match="maps must be"):
        show_feature_maps(torch.rand(2, 3, 4, 4))


def test_show_kernel_application_draws_the_response():
    img = torch.zeros(3, 10, 10)
    img[:, :, 5:] = 1.0
    fig = show_kernel_application(img, "sobel_x")
    assert len(fig.axes) == 3
    np.testing.assert_allclose(_images(fig)[2], apply_kernel(img.mean(0), "sobel_x").numpy())
    assert fig.axes[1].get_title() == "sobel_x" and len(fig.axes[1].texts) == 9


def test_show_kernel_gallery_one_panel_per_kernel_plus_input():
    img = torch.rand(12, 12)
    assert len(show_kernel_gallery(img).axes) == len(KERNELS)  # all but identity, plus the input
    fig = show_kernel_gallery(img, ["box_blur", "laplacian"], ncols=3)
    assert len(fig.axes) == 3 and [ax.get_title() for ax in fig.axes] == ["input", "box_blur", "laplacian"]


def test_plot_robustness():
    fig = plot_robustness(
        {
            "shift": ([0, 1, 2], {"MLP": [0.9, 0.5, 0.2], "CNN": [0.9, 0.9, 0.8]}),
            "crop": ([8, 6], {"MLP": [0.9, 0.4]}),
        }
    )
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["MLP", "CNN"]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.9, 0.5, 0.2])
    with pytest.raises(ValueError, match="has 2 values for 3 x values"):
        plot_robustness({"shift": ([0, 1, 2], {"MLP": [0.9, 0.5]})})
