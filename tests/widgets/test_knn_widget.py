"""cvlib.widgets.knn: the view's numbers equal separate classifiers; the sliders drive it."""

import pytest
import torch

from cvlib.knn import KNNClassifier
from cvlib.widgets.knn import KNNView


def _data():
    g = torch.Generator().manual_seed(0)
    xtr = torch.randint(0, 3, (120, 1, 4, 4), generator=g).float() / 2
    ytr = torch.randint(0, 3, (120,), generator=g)
    xte = torch.randint(0, 3, (30, 1, 4, 4), generator=g).float() / 2
    yte = torch.randint(0, 3, (30,), generator=g)
    return xtr, ytr, xte, yte


def test_view_matches_separate_classifiers():
    xtr, ytr, xte, yte = _data()
    view = KNNView(KNNClassifier().fit(xtr, ytr), xtr, xte, yte, ks=[1, 2, 5, 9])
    for k, acc in zip(view.ks, view.accuracies):
        ref = KNNClassifier(k=k).fit(xtr, ytr)
        assert acc == ref.score(xte, yte)
        assert view.prediction(k, 3) == int(ref.predict(xte[3:4])[0])
    fig = view.figure(5, query=3)
    assert sum(1 for ax in fig.axes if ax.images) == 6
    with pytest.raises(ValueError, match=r"k must be one of \[1, 2, 5, 9\], got 4"):
        view.figure(4)
    with pytest.raises(ValueError, match="train_images must have the 120 rows"):
        KNNView(KNNClassifier().fit(xtr, ytr), xtr[:5], xte, yte)


def test_explorer_sliders():
    pytest.importorskip("ipywidgets")
    from cvlib.widgets.knn import knn_explorer

    xtr, ytr, xte, yte = _data()
    ex = knn_explorer(KNNClassifier().fit(xtr, ytr), xtr, xte, yte, ks=[1, 3, 5], k=3)
    assert ex.k.value == 3 and list(ex.k.options) == [1, 3, 5] and ex.query.max == 29
    ex.k.value = 5  # no front end here: redraw is a no-op, but the observer must not fail
    with pytest.raises(ValueError, match="k must be one of"):
        knn_explorer(KNNClassifier().fit(xtr, ytr), xtr, xte, yte, ks=[1, 3], k=2)
