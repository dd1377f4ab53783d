"""AnchorGenerator and grid_points: counts, order, sizes/ratios and centres against hand computation."""

import math

import pytest
import torch

from cvlib.ops.anchors import AnchorGenerator, grid_points
from cvlib.ops.boxes import box_area


def test_grid_points_order_and_centres():
    p = grid_points((2, 3), 8)
    assert p.tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]
    assert grid_points((1, 2), (4, 10), offset=0.0).tolist() == [[0, 0], [10, 0]]


def test_cell_anchors_area_and_ratio():
    gen = AnchorGenerator(sizes=((16, 32),), aspect_ratios=((0.5, 1.0, 2.0),))
    a = gen.cell_anchors(0, dtype=torch.float64)
    assert a.shape == (6, 4)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    torch.testing.assert_close(box_area(a), torch.tensor([16.0**2] * 3 + [32.0**2] * 3, dtype=torch.float64))
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1, 2] * 2, dtype=torch.float64))
    torch.testing.assert_close(a[:, :2] + a[:, 2:], torch.zeros(6, 2, dtype=torch.float64))  # centred


def test_forward_counts_and_layout():
    gen = AnchorGenerator(sizes=((8,), (16,)), aspect_ratios=((0.5, 1.0, 2.0),), offset=0.5)
    anchors = gen((32, 48), [(4, 6), torch.zeros(1, 1, 2, 3)])
    assert [a.shape for a in anchors] == [(4 * 6 * 3, 4), (2 * 3 * 3, 4)]
    assert gen.num_anchors_per_location() == [3, 3]
    lvl0 = anchors[0].view(4, 6, 3, 4)
    centres = (lvl0[..., :2] + lvl0[..., 2:]) / 2
    # cell (i=1, j=2) at stride 8: centre (2.5 * 8, 1.5 * 8) for all three anchors
    torch.testing.assert_close(centres[1, 2], torch.tensor([[20.0, 12.0]] * 3))
    w = lvl0[0, 0, :, 2] - lvl0[0, 0, :, 0]
    torch.testing.assert_close(w, torch.tensor([8 / math.sqrt(0.5), 8.0, 8 / math.sqrt(2.0)]))


def test_errors():
    with pytest.raises(ValueError, match="aspect_ratios must have one entry or one per level"):
        AnchorGenerator(sizes=((8,), (16,), (32,)), aspect_ratios=((1.0,), (2.0,)))
    with pytest.raises(ValueError, match="sizes must be"):
        AnchorGenerator(sizes=((0,),))
    with pytest.raises(ValueError, match=r"feature_sizes must have one entry per anchor level \(2\), got 1"):
        AnchorGenerator(sizes=((8,), (16,)))((32, 32), [(4, 4)])
