"""A slider for k in k-nearest-neighbour classification (Cover & Hart 1967,
doi:10.1109/TIT.1967.1053964): test accuracy against k, and a query with its k neighbours.

One neighbour search with ``max(ks)`` neighbours serves every k (the neighbour order is stable,
so the k nearest are a prefix of the ``max(ks)`` nearest). :class:`KNNView` holds that state and
draws the static figure (:meth:`KNNView.figure`, what the offline book shows);
:func:`knn_explorer` wraps it in ``ipywidgets`` sliders. ``ipywidgets`` is imported only there,
so this module imports without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from matplotlib.figure import Figure

from cvlib._validate import check_int, check_tensor
from cvlib.knn import KNNClassifier, majority_vote
from cvlib.viz.knn import plot_knn_view

__all__ = ["KNNView", "KNNExplorer", "knn_explorer"]


class KNNView:
    """Neighbours and accuracies of a fitted :class:`~cvlib.knn.KNNClassifier` for a range of k.

    Args:
        knn: the fitted classifier.
        train_images (Tensor[N, C, H, W]): the images it memorised (rows in the same order), in [0, 1].
        test_images (Tensor[Q, C, H, W]): queries; test_labels (Tensor[Q]): their labels.
        ks: the k values offered (each in [1, N]).
        classes: label names.

    Attributes:
        accuracies: test accuracy per entry of ``ks``. distances, indices (Tensor[Q, max(ks)]):
            the neighbour search.
    """

    def __init__(
        self,
        knn: KNNClassifier,
        train_images: torch.Tensor,
        test_images: torch.Tensor,
        test_labels: torch.Tensor,
        ks: Sequence[int] = tuple(range(1, 16)),
        classes: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(knn, KNNClassifier):
            raise TypeError(f"knn must be a fitted cvlib.knn.KNNClassifier, got {type(knn).__name__}")
        check_tensor(train_images, "train_images", nonempty=True, shape="[N, ...]")
        check_tensor(test_images, "test_images", nonempty=True, shape="[Q, ...]")
        check_tensor(test_labels, "test_labels", ndim=1, dtype="int", shape="[Q] class ids")
        if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
            raise TypeError(f"ks must be a list of ints, got {ks!r}")
        self.ks = [check_int(k, "ks[i]", min=1) for k in ks]
        if not self.ks or min(self.ks) < 1 or max(self.ks) > knn.n_train:
            raise ValueError(f"ks must be non-empty with values in [1, {knn.n_train}], got {list(ks)}")
        if len(train_images) != knn.n_train:
            raise ValueError(
                f"train_images must have the {knn.n_train} rows knn was fitted on, got {len(train_images)}"
            )
        if len(test_images) != len(test_labels):
            raise ValueError(f"test_labels must be [{len(test_images)}], got {tuple(test_labels.shape)}")
        self.knn, self.train_images, self.test_images = knn, train_images, test_images
        self.test_labels = torch.as_tensor(test_labels)
        self.classes = classes
        self.distances, self.indices = knn.kneighbors(test_images, k=max(self.ks))  # [Q, kmax]
        labels = knn._y_enc[self.indices]
        y = self.test_labels.to(labels.device)
        self._pred = {k: knn.classes_[majority_vote(labels[:, :k], knn.classes_.numel())] for k in self.ks}
        n = max(y.numel(), 1)  # counts, not a float64 mean on the device (MPS has no float64)
        self.accuracies = [int((self._pred[k] == y).sum()) / n for k in self.ks]

    def prediction(self, k: int, query: int) -> int:
        """The vote of the ``k`` nearest neighbours for test image ``query``."""
        return int(self._pred[k][query])

    def figure(self, k: int, query: int = 0) -> Figure:
        """Accuracy against k with ``k`` marked, and test image ``query`` with its k neighbours."""
        if k not in self._pred:
            raise ValueError(f"k must be one of {self.ks}, got {k}")
        if not 0 <= query < len(self.test_images):
            raise ValueError(f"query must be in [0, {len(self.test_images)}), got {query}")
        idx = self.indices[query, :k].cpu()
        return plot_knn_view(
            self.ks,
            self.accuracies,
            k,
            self.test_images[query].cpu(),
            self.train_images[idx].cpu(),
            query_label=int(self.test_labels[query]),
            neighbor_labels=self.knn.classes_[self.knn._y_enc[self.indices[query, :k]]].cpu(),
            distances=self.distances[query, :k].cpu(),
            classes=self.classes,
            prediction=self.prediction(k, query),
        )


class KNNExplorer:
    """Sliders for k and the query image over a :class:`KNNView`; displaying it shows the widget.

    Attributes:
        view: the :class:`KNNView`. k, query: the ``IntSlider`` widgets. widget: the ``VBox``.
    """

    def __init__(self, view: KNNView, k: int | None = None, query: int = 0) -> None:
        try:
            import ipywidgets as w
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise RuntimeError("the k-NN explorer needs ipywidgets: pip install ipywidgets") from err
        if not isinstance(view, KNNView):
            raise TypeError(f"view must be a KNNView, got {type(view).__name__}")
        check_int(query, "query", min=0, max=len(view.test_images) - 1)
        self.view = view
        start = view.ks[0] if k is None else k
        if start not in view.ks:
            raise ValueError(f"k must be one of {view.ks}, got {start}")
        self.k = w.SelectionSlider(options=view.ks, value=start, description="k")
        self.query = w.IntSlider(value=query, min=0, max=len(view.test_images) - 1, description="query")
        self.output = w.Output()
        self.widget = w.VBox([w.HBox([self.k, self.query]), self.output])
        self.k.observe(self._redraw, names="value")
        self.query.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, change: dict[str, Any] | None = None) -> None:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:  # no front end to draw into (plain Python, tests)
            return
        fig = self.view.figure(self.k.value, self.query.value)
        with self.output:
            self.output.clear_output(wait=True)
            display(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def knn_explorer(
    knn: KNNClassifier,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    ks: Sequence[int] = tuple(range(1, 16)),
    classes: Sequence[str] | None = None,
    k: int | None = None,
    query: int = 0,
) -> KNNExplorer:
    """An interactive k slider (and query slider) for a fitted k-NN classifier.

    Arguments as :class:`KNNView`; ``k`` and ``query`` are the starting values.

    Returns:
        KNNExplorer: display it (last expression of a cell). Its ``view.figure(k, query)`` draws
        the same view as a static figure.

    Raises:
        RuntimeError: if ipywidgets is not installed.
    """
    return KNNExplorer(KNNView(knn, train_images, test_images, test_labels, ks, classes), k=k, query=query)
