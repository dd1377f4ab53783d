"""Malformed inputs across the public API: a clear cvlib error or a result, never a crash from inside.

Every public callable of ``cvlib.ops``, ``cvlib.metrics``, ``cvlib.viz``, ``cvlib.knn``, ``cvlib.train``,
``cvlib.data.transforms`` (and the models through ``create_model``) gets one valid call below; each
argument of that call is then replaced by malformed variants (wrong rank, wrong dtype including bool
and complex, NaN/inf, empty, None, a list or numpy array for a tensor, a misspelt option, a bad
integer). A call passes when it returns, or when it raises an exception from a ``raise`` statement in
cvlib's own source (a checked error that names the argument); it fails when the error comes from
inside torch, numpy or the standard library (an ``IndexError`` from a ``gather``, a torch
``RuntimeError`` about sizes, a ``TypeError`` from a C function...).

Cases of functions outside the owner of this file that still fail are marked ``xfail(strict=False)``
with their owner (``KNOWN_FAILING``), so their owners can fix them and delete the entry.
"""

from __future__ import annotations

import ast
import functools
import importlib
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CVLIB = Path(importlib.import_module("cvlib").__file__).resolve().parent


# ------------------------------------------------------------------------------------- the verdict
@functools.cache
def _raise_lines(path: str) -> frozenset[int]:
    """Line numbers covered by a ``raise`` statement in a source file."""
    tree = ast.parse(Path(path).read_text())
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


def _raised_by_cvlib(exc: BaseException) -> bool:
    """True when the innermost frame is a ``raise`` statement in a cvlib source file."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    path = Path(last.filename).resolve()
    return CVLIB in path.parents and last.lineno in _raise_lines(str(path))


def _check_call(fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError, AttributeError,
            NotImplementedError, ZeroDivisionError, OverflowError, AssertionError) as e:  # fmt: skip
        if not _raised_by_cvlib(e):
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-4:])
            pytest.fail(f"unhelpful error (raised outside cvlib's own checks):\n{tb}")
    finally:
        plt.close("all")


# ------------------------------------------------------------------------------------ valid calls
def _img(b=2, c=3, h=16, w=16):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(0))


def _boxes(n=3):
    xy = torch.tensor([[1.0, 2.0], [4.0, 1.0], [0.0, 0.0]])[:n]
    return torch.cat([xy, xy + torch.tensor([5.0, 6.0])], 1)


class _Gap(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def _lazy(module: str, name: str) -> Callable[..., Any]:
    def call(*a, **k):
        return getattr(importlib.import_module(module), name)(*a, **k)

    call.__name__ = f"{module.split('.')[-1]}.{name}"
    return call


def _method(factory: Callable[[], Any], method: str, label: str) -> Callable[..., Any]:
    def call(*a, **k):
        return getattr(factory(), method)(*a, **k)

    call.__name__ = label
    return call


def _specs() -> list[tuple[str, Callable[..., Any], tuple, dict]]:
    """(id, callable, valid args, valid kwargs) for each public entry point."""
    L = _lazy
    img, logits, y = _img(), torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 1, 0])
    seg_logits, seg_y = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5))
    s: list[tuple[str, Callable[..., Any], tuple, dict]] = []

    def add(fn, *args, **kwargs):
        s.append((fn.__name__, fn, args, kwargs))

    # metrics (classification, segmentation)
    M, S = "cvlib.metrics.classification", "cvlib.metrics.segmentation"
    add(L(M, "accuracy"), logits, y)
    add(L(M, "topk_accuracy"), logits, y, k=2)
    add(L(M, "confusion_matrix"), logits, y, num_classes=4)
    add(L(M, "get_metric"), "top5")
    acc = importlib.import_module(M)
    add(_method(acc.Accuracy, "update", "classification.Accuracy.update"), logits, y)
    add(_method(lambda: acc.TopK(2), "update", "classification.TopK.update"), logits, y)
    add(_method(lambda: acc.ConfusionMatrix(4), "update", "classification.ConfusionMatrix.update"), logits, y)
    add(L(M, "ConfusionMatrix"), 4)
    add(L(M, "TopK"), 3)
    for f in ("confusion_matrix", "pixel_accuracy", "iou_per_class", "mean_iou", "frequency_weighted_iou"):
        add(L(S, f), seg_logits, seg_y, 3)
    add(L(S, "miou_near_boundary"), seg_logits, seg_y, 3, width=1)
    add(L(S, "boundary_f1"), seg_logits, seg_y, tolerance=1)
    add(L(S, "boundary_map"), seg_y)
    seg = importlib.import_module(S)
    add(_method(lambda: seg.MeanIoU(3), "update", "segmentation.MeanIoU.update"), seg_logits, seg_y)
    add(_method(seg.PixelAccuracy, "update", "segmentation.PixelAccuracy.update"), seg_logits, seg_y)
    add(L(S, "MeanIoU"), 3)

    # ops owned here
    O = "cvlib.ops."
    fm = torch.rand(1, 2, 4, 4)
    add(L(O + "sampling", "nearest_unpool"), fm, 2)
    add(L(O + "sampling", "bed_of_nails_unpool"), fm, 2)
    add(L(O + "sampling", "max_pool_with_indices"), fm, 2)
    pooled, idx = torch.nn.functional.max_pool2d(fm, 2, return_indices=True)
    add(L(O + "sampling", "max_unpool"), pooled, idx, 2)
    add(L(O + "sampling", "bilinear_upsample"), fm, 2.0)
    add(L(O + "sampling", "bilinear_kernel"), 2, 4)
    add(L(O + "sampling", "BilinearUpsample2d"), 2, 2)
    add(
        L(O + "sampling", "adjoint_gap"),
        torch.rand(1, 2, 6, 6),
        torch.rand(1, 3, 4, 4),
        torch.rand(3, 2, 3, 3),
    )
    add(L(O + "sampling", "checkerboard_overlap"), 3, 2)
    add(L(O + "sampling", "effective_kernel_size"), 3, 2)
    add(L(O + "sampling", "conv2d_param_count"), 3, 8, 3)
    add(L(O + "sampling", "conv2d_mac_count"), 3, 8, 3, 4, 4)
    add(L(O + "sampling", "DilatedConv2d"), 3, 4)
    add(L(O + "sampling", "DepthwiseConv2d"), 3)
    add(L(O + "sampling", "DepthwiseSeparableConv2d"), 3, 4)
    add(L(O + "connectivity", "LocallyConnected2d"), 2, 3, 6, 3)
    add(L(O + "connectivity", "fc_params"), 10, 5)
    add(L(O + "connectivity", "locally_connected_params"), 2, 3, 3, 4)
    add(L(O + "connectivity", "conv_params"), 2, 3, 3)
    add(L(O + "connectivity", "compare_layer_params"), (3, 8, 8), 4, 3)
    add(L(O + "conv_arith", "conv_output_size"), 32, [(3, 1, 1), (2, 2, 0)])
    add(L(O + "conv_arith", "receptive_field"), [(3, 1, 1), (2, 2, 0)])
    add(L(O + "conv_arith", "layer_specs"), [(3, 1, 1), (2, 2, 0)])
    add(L(O + "conv_arith", "rf_span"), 5, 2, 0.5, 3)
    x5, w = torch.rand(1, 2, 5, 5), torch.rand(3, 2, 3, 3)
    add(L(O + "deform_conv", "deform_conv2d"), x5, torch.zeros(1, 18, 3, 3), w)
    add(L(O + "deform_conv", "sampling_locations"), torch.zeros(1, 18, 3, 3), 3)
    add(L(O + "deform_conv", "DeformConv2d"), 2, 3, 3)
    add(L(O + "filters", "get_kernel"), "sobel_x")
    add(L(O + "filters", "apply_kernel"), torch.rand(2, 1, 8, 8), "sobel_x")
    add(L(O + "shift", "shift_images"), img, 1, -2)
    add(L(O + "shift", "random_shift"), img, 2)
    add(L(O + "shift", "center_crop_and_pad"), img, 12)
    add(L(O + "anchors", "grid_points"), (3, 4), 8.0)
    add(L(O + "anchors", "AnchorGenerator"), ((16,),), ((1.0,),))
    add(L(O + "losses", "sigmoid_focal_loss"), torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float())
    add(L(O + "losses", "giou_loss"), _boxes(), _boxes() + 1)

    # ops owned elsewhere
    add(L(O + "boxes", "box_convert"), _boxes(), "xyxy", "cxcywh")
    add(L(O + "boxes", "box_area"), _boxes())
    add(L(O + "boxes", "box_iou"), _boxes(), _boxes(2))
    add(L(O + "boxes", "clip_boxes_to_image"), _boxes(), (8, 8))
    add(L(O + "boxes", "nms"), _boxes(), torch.tensor([0.9, 0.8, 0.7]), 0.5)
    add(L(O + "boxes", "batched_nms"), _boxes(), torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0]), 0.5)
    add(L(O + "roi", "roi_align"), torch.rand(1, 2, 8, 8), [_boxes(2)], 2)
    add(L(O + "roi", "roi_pool"), torch.rand(1, 2, 8, 8), [_boxes(2)], 2)
    add(L(O + "profile", "count_parameters"), nn.Linear(3, 2))
    add(L(O + "profile", "count_macs"), nn.Conv2d(3, 2, 3), (1, 3, 8, 8))

    # explain
    E = "cvlib.viz.explain"
    add(L(E, "cam"), _Gap(), _img(2, 3, 6, 6), "features")
    add(L(E, "grad_cam"), _Gap(), _img(2, 3, 6, 6), "features", 1)
    add(L(E, "pointing_game"), torch.rand(2, 4, 4), torch.randint(0, 2, (2, 4, 4)), tolerance=1)
    add(L(E, "rank_correlation"), torch.rand(2, 9), torch.rand(2, 9))
    add(L(E, "find_module"), _Gap(), "features")
    add(L(E, "randomized_copy"), _Gap(), ["fc"])

    # viz owned here (a few arguments each: figures are slow)
    V = "cvlib.viz."
    add(L(V + "core", "to_numpy_image"), img[0])
    add(L(V + "core", "show_images"), img)
    add(L(V + "core", "overlay_heatmaps"), img, torch.rand(2, 4, 4))
    add(L(V + "core", "plot_confusion_matrix"), torch.tensor([[3, 1], [0, 2]]))
    add(L(V + "segmentation", "colorize_mask"), seg_y[0], 3)
    add(L(V + "segmentation", "overlay_mask"), _img(1, 3, 5, 5)[0], seg_y[0])
    add(L(V + "segmentation", "class_colors"), 4)
    add(L(V + "filters", "show_filters"), torch.rand(4, 3, 3, 3))
    add(L(V + "filters", "show_feature_maps"), torch.rand(4, 6, 6))
    add(L(V + "knn", "plot_accuracy_vs_k"), [1, 3, 5], [0.5, 0.6, 0.55])

    # k-NN, train, transforms (owned elsewhere)
    K = "cvlib.knn"
    a, b = torch.rand(5, 4), torch.rand(3, 4)
    add(L(K, "pairwise_distances"), a, b, "l2")
    add(L(K, "majority_vote"), torch.tensor([[0, 1, 1], [2, 2, 0]]), 3)
    add(L(K, "KNNClassifier"), 3, "l2")
    kn = importlib.import_module(K)
    add(
        _method(lambda: kn.KNNClassifier(1).fit(a, torch.tensor([0, 1, 0, 1, 2])), "predict", "knn.predict"),
        b,
    )
    T = "cvlib.train."
    add(L(T + "distill", "kd_loss"), logits, torch.randn(6, 4), y)
    add(L(T + "loop", "default_loss"), logits, y)
    add(L(T + "loop", "predict"), nn.Linear(4, 2), torch.rand(3, 4))
    add(L(T + "optim", "create_optimizer"), nn.Linear(2, 2), "sgd")
    add(L(T + "optim", "WarmupCosine"), 10, 2)
    D = "cvlib.data.transforms"
    tr = importlib.import_module(D)
    add(
        _method(lambda: tr.RandomHorizontalFlip(1.0), "__call__", "transforms.RandomHorizontalFlip()"),
        img,
        y[:2],
    )
    add(_method(lambda: tr.RandomCrop(12), "__call__", "transforms.RandomCrop()"), img, y[:2])
    add(_method(lambda: tr.ColorJitter(), "__call__", "transforms.ColorJitter()"), img, y[:2])
    add(_method(lambda: tr.Normalize([0.5] * 3, [0.2] * 3), "__call__", "transforms.Normalize()"), img, y[:2])
    add(_method(lambda: tr.MixUp(0.2, 4), "__call__", "transforms.MixUp()"), img, y[:2])
    add(L(D, "Normalize"), [0.5] * 3, [0.2] * 3)
    add(L(D, "prepare_batch"), img, y[:2])
    return s


# ---------------------------------------------------------------------------------------- variants
def _variants(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, torch.Tensor):
        v = [("None", None), ("list", value.tolist()), ("numpy", value.numpy())]
        v += [("rank+1", value[None]), ("empty", value[:0] if value.dim() else value.reshape(0))]
        if value.dim() > 1:
            v.append(("flat", value.reshape(-1)))
        v += [("bool", value.bool()), ("complex", value.to(torch.complex64))]
        if value.is_floating_point():
            v += [("nan", torch.full_like(value, math.nan)), ("inf", value.masked_fill(value >= 0, math.inf))]
            v.append(("uint8", (value * 255).to(torch.uint8)))
        else:
            v += [("float", value.float() + 0.5), ("negative", value - 100), ("large", value + 1000)]
        return v
    if isinstance(value, bool):
        return [("str", "yes")]
    if isinstance(value, int):
        return [("negative", -3), ("zero", 0), ("float", 2.5), ("str", "3"), ("None", None)]
    if isinstance(value, float):
        return [("nan", math.nan), ("negative", -1.0), ("str", "0.5")]
    if isinstance(value, str):
        return [("misspelt", value + "x"), ("None", None), ("int", 3)]
    if isinstance(value, nn.Module):
        return [("None", None), ("str", "model")]
    if isinstance(value, (list, tuple)):
        return [("None", None), ("empty", type(value)()), ("nested-str", ["a"])]
    return [("None", None)]


def _cases():
    """One case per (entry point, argument): the list of its malformed variants."""
    out = []
    for label, fn, args, kwargs in _specs():
        for i, a in enumerate(args):
            calls = [(v, (*args[:i], x, *args[i + 1 :]), kwargs) for v, x in _variants(a)]
            out.append((f"{label}-arg{i}", fn, calls))
        for k, a in kwargs.items():
            out.append((f"{label}-{k}", fn, [(v, args, {**kwargs, k: x}) for v, x in _variants(a)]))
    return out


# Functions outside this file's owner whose malformed-input cases still fail: "owner: <area>".
OWNERS = {
    "boxes.": "ops/boxes",
    "roi.": "ops/roi",
    "profile.": "ops/profile",
    "knn.": "cvlib/knn",
    "distill.": "train",
    "loop.": "train",
    "optim.": "train",
    "transforms.": "data/transforms",
}
KNOWN_FAILING: set[str] = set()


def _params():
    params = []
    for cid, fn, calls in _cases():
        marks = []
        if cid in KNOWN_FAILING:
            owner = next(o for p, o in OWNERS.items() if cid.startswith(p))
            marks.append(pytest.mark.xfail(strict=False, reason=f"owner: {owner}"))
        params.append(pytest.param(fn, calls, id=cid, marks=marks))
    return params


@pytest.mark.parametrize("fn,calls", _params())
def test_malformed_input_gives_a_cvlib_error_or_a_result(fn, calls):
    failures = []
    for variant, args, kwargs in calls:
        try:
            _check_call(fn, args, kwargs)
        except pytest.fail.Exception as e:
            failures.append(f"[{variant}] {e}")
    if failures:
        pytest.fail(f"{len(failures)} of {len(calls)} malformed variants:\n" + "\n".join(failures))


def test_valid_calls_succeed():
    # The valid calls themselves must run: otherwise every variant would trivially raise.
    for _label, fn, args, kwargs in _specs():
        try:
            fn(*args, **kwargs)
        finally:
            plt.close("all")


def test_verdict_tells_inside_from_outside():
    from cvlib._validate import check_int

    with pytest.raises(ValueError) as e:
        check_int(-1, "k", min=0)
    assert _raised_by_cvlib(e.value)
    with pytest.raises(RuntimeError) as e:
        torch.zeros(2) + torch.zeros(3)
    assert not _raised_by_cvlib(e.value)


_MODEL_KW = {
    "lenet5": {},
    "simple_cnn": {},
    "resnet20": {},
    "unet_small": dict(width=4),
    "segnet_small": dict(width=8),
    "deeplabv3plus_small": {},
}


@pytest.mark.parametrize("name", list(_MODEL_KW))
@pytest.mark.parametrize("variant", ["uint8", "rank3", "channels", "None", "numpy", "nan"])
def test_models_reject_malformed_images(name, variant):
    from cvlib.models import create_model

    model = create_model(name, **_MODEL_KW[name]).eval()
    c = 1 if name in ("lenet5", "unet_small") else 3
    size = 28 if name == "lenet5" else 32
    x = torch.rand(2, c, size, size)
    bad = {
        "uint8": (x * 255).to(torch.uint8),
        "rank3": x[0],
        "channels": torch.rand(2, c + 1, size, size),
        "None": None,
        "numpy": x.numpy(),
        "nan": torch.full_like(x, math.nan),
    }[variant]
    with torch.no_grad():
        _check_call(model, (bad,), {})
