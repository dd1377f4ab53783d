"""cvlib.viz.knn: the chapter-1 figures draw what they are given."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from cvlib.viz.knn import plot_accuracy_vs_k, plot_knn_view, plot_scaling, show_neighbors


def test_accuracy_vs_k_curves_and_marker():
    fig = plot_accuracy_vs_k([1, 3, 5], {"train": [1.0, 0.9, 0.8], "test": [0.7, 0.75, 0.72]}, current=3)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("train", "test")]
    assert [ln.get_label() for ln in lines] == ["train", "test"]
    np.testing.assert_allclose(lines[1].get_ydata(), [0.7, 0.75, 0.72])
    assert "best train accuracy 1.000" in ax.get_title()
    with pytest.raises(ValueError, match=r"accuracies\['test'\] must have 3 values"):
        plot_accuracy_vs_k([1, 3, 5], [0.5, 0.6])


def test_show_neighbors_grid_and_colours():
    q = torch.rand(2, 1, 8, 8)
    nb = torch.rand(2, 3, 1, 8, 8)
    fig = show_neighbors(q, nb, query_labels=[1, 2], neighbor_labels=torch.tensor([[1, 0, 1], [2, 2, 2]]),
                         distances=torch.rand(2, 3), classes=["a", "b", "c"])  # fmt: skip
    assert isinstance(fig, Figure) and len(fig.axes) == 8
    assert fig.axes[1].title.get_color() == "green" and fig.axes[2].title.get_color() == "crimson"
    assert fig.axes[2].get_title().startswith("a\nd=")
    with pytest.raises(ValueError, match="neighbors"):
        show_neighbors(q, nb[0])


def test_knn_view_draws_k_neighbours():
    fig = plot_knn_view([1, 2, 3], [0.5, 0.6, 0.55], 2, torch.rand(3, 8, 8), torch.rand(3, 3, 8, 8),
                        query_label=0, neighbor_labels=torch.tensor([0, 1, 1]), prediction=0)  # fmt: skip
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 3  # the query and k = 2 neighbours


def test_scaling_fit_line():
    res = {
        "n_train": [100, 200, 400],
        "seconds_per_query": [1e-3, 2e-3, 4e-3],
        "memory_bytes": [2**20, 2**21, 2**22],
    }
    fig = plot_scaling(res)
    fit = fig.axes[0].get_lines()[1]
    np.testing.assert_allclose(fit.get_ydata(), [0.0, 4.0])  # ms, exact line through the points
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), [1.0, 2.0, 4.0])  # MiB
    with pytest.raises(ValueError, match=">= 2 sizes"):
        plot_scaling({"n_train": [1], "seconds_per_query": [1.0], "memory_bytes": [1]})
