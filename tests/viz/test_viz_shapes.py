"""Tests for the scene and augmentation figures (cvlib.viz.shapes)."""

import pytest
import torch
from matplotlib.figure import Figure

from cvlib.data.shapes import CLASSES, ShapesConfig, generate_scenes
from cvlib.data.transforms import RandomHorizontalFlip
from cvlib.viz.shapes import show_augmentations, show_scenes


def test_show_scenes_draws_one_patch_per_box():
    b = generate_scenes(3, ShapesConfig(image_size=32, num_objects=(1, 3), size_range=(0.1, 0.2)), seed=0)
    fig = show_scenes(b.images, masks=b.masks, boxes=b.boxes, box_labels=b.box_labels, class_names=CLASSES)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert [len(ax.patches) for ax in fig.axes[:3]] == [len(x) for x in b.boxes]
    names = {t.get_text() for ax in fig.axes[:3] for t in ax.texts}
    assert names == {CLASSES[int(lab) - 1] for labs in b.box_labels for lab in labs}


def test_show_augmentations_rows_and_errors():
    x = torch.rand(4, 3, 16, 16)
    fig = show_augmentations(x, {"flip": RandomHorizontalFlip(p=1.0)})
    assert len(fig.axes) == 8
    # the second row shows the flipped images
    assert torch.allclose(
        torch.from_numpy(fig.axes[4].images[0].get_array().data).float(), x[0].permute(1, 2, 0).flip(1)
    )
    with pytest.raises(ValueError, match="at least one"):
        show_augmentations(x, {})
    with pytest.raises(ValueError, match="masks must have one entry per image"):
        show_scenes(x, masks=torch.zeros(3, 16, 16, dtype=torch.int64))
