"""Segmentation figures and the overlay widget: colours, blending arithmetic, errors."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from cvlib.viz.segmentation import (
    class_colors,
    colorize_mask,
    overlay_mask,
    show_maps,
    show_segmentation,
    show_translation,
)
from cvlib.widgets.segmentation import overlay_figure, overlay_widget


def test_voc_colours():
    c = class_colors(21)
    # the PASCAL VOC palette: background black, aeroplane (128, 0, 0), person (15) = (192, 128, 128)
    np.testing.assert_allclose(c[[0, 1, 15]] * 255, [[0, 0, 0], [128, 0, 0], [192, 128, 128]])
    assert len({tuple(x) for x in c}) == 21


def test_overlay_blends_only_shown_classes():
    image = torch.full((3, 4, 4), 0.5)
    mask = torch.tensor([[0, 1, 2, 255]] * 4)
    out = overlay_mask(image, mask, alpha=0.25, num_classes=3, visible=[1])
    colors = class_colors(3)
    np.testing.assert_allclose(out[:, 0], 0.5)  # background untouched
    np.testing.assert_allclose(out[0, 1], 0.75 * 0.5 + 0.25 * colors[1])
    np.testing.assert_allclose(out[:, 2], 0.5)  # class 2 hidden
    np.testing.assert_allclose(colorize_mask(mask, 3)[0, 3], 1.0)  # ignore_index drawn white
    with pytest.raises(ValueError, match="alpha must be in"):
        overlay_mask(image, mask, alpha=1.5)
    with pytest.raises(ValueError, match="same H, W"):
        overlay_mask(image, mask[:3])
    with pytest.raises(ValueError, match=r"mask values must be in \[0, 2\)"):
        colorize_mask(mask, 2)


def test_figures_and_widget():
    images, masks = torch.rand(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    names = ("background", "a", "b")
    assert isinstance(show_segmentation(images, masks, {"p": torch.randn(2, 3, 8, 8)}, names, n=2), Figure)
    assert isinstance(show_maps({"x": torch.rand(3, 3)}, annotate=True), Figure)
    assert isinstance(show_translation(torch.randn(2, 3, 8, 8), images, images, n=2), Figure)
    assert isinstance(overlay_figure(images[0], masks[0], names, 0.3, ["a"]), Figure)
    with pytest.raises(ValueError, match="visible must name classes"):
        overlay_figure(images[0], masks[0], names, 0.3, ["c"])
    pytest.importorskip("ipywidgets")
    w = overlay_widget(images[0], masks[0], names)
    slider, *boxes = w.children[0].children
    assert [b.description for b in boxes] == ["a", "b"]
    slider.value = 0.9  # redraws without error
