"""Core plotting helpers: figure layout, what is drawn, and input validation."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from cvlib.viz.core import (
    overlay_heatmaps,
    plot_bar,
    plot_confusion_matrix,
    plot_history,
    plot_scatter,
    show_images,
    to_numpy_image,
)


def test_show_images_grid_and_clipping():
    imgs = torch.rand(10, 3, 5, 5) * 2 - 0.5
    fig = show_images(imgs, titles=[str(i) for i in range(10)], nrow=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 12  # 3 rows of 4
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (5, 5, 3) and shown.min() >= 0 and shown.max() <= 1
    assert fig.axes[3].get_title() == "3"
    assert to_numpy_image(torch.rand(1, 4, 6)).shape == (4, 6)
    with pytest.raises(ValueError, match="titles must have one entry per image"):
        show_images(imgs, titles=["a"])
    with pytest.raises(ValueError, match=r"C in \(1, 3\)"):
        to_numpy_image(torch.rand(2, 4, 4))


def test_overlay_and_history():
    fig = overlay_heatmaps(torch.rand(3, 3, 8, 8), torch.rand(3, 2, 2))
    assert len(fig.axes[0].images) == 2 and fig.axes[0].images[1].get_array().shape == (8, 8)
    fig = plot_history({"train_loss": [1, 0.5], "val_loss": [1, 0.8], "val_accuracy": [0.3, 0.6]})
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    with pytest.raises(TypeError, match="history must be"):
        plot_history([1, 2])


def test_confusion_matrix_plot_normalised():
    cm = torch.tensor([[3, 1], [0, 4]])
    fig = plot_confusion_matrix(cm, ["cat", "dog"], normalize=True)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.75, 0.25], [0, 1]])
    assert [t.get_text() for t in ax.texts] == ["0.75", "0.25", "0.00", "1.00"]
    with pytest.raises(ValueError, match="class_names must have 2 entries"):
        plot_confusion_matrix(cm, ["a"])


def test_bar_and_scatter():
    fig = plot_bar({"teacher": 0.9, "student": 0.8})
    assert [p.get_height() for p in fig.axes[0].patches] == [0.9, 0.8]
    fig = plot_bar({"a": [1, 2, 3], "b": [2, 3, 4]}, labels=["x", "y", "z"])
    assert len(fig.axes[0].patches) == 6
    fig = plot_scatter([1, 2, 3], [3, 2, 1], labels=[0, 1, 1], names=["p", "q", "r"])
    assert len(fig.axes[0].collections) == 2 and len(fig.axes[0].texts) == 3
    with pytest.raises(ValueError, match="same length"):
        plot_scatter([1, 2], [1])
