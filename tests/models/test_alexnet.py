"""AlexNet: the paper's local response normalisation (Krizhevsky et al. 2012, Sec. 3.3) and ``width``."""

import pytest
import torch
from torch import nn

from cvlib.models import create_model
from cvlib.models.classification.alexnet import local_response_norm


def paper_lrn(a: torch.Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """Sec. 3.3 written out with loops: b_c = a_c / (k + alpha * sum_{c'} a_{c'}^2)^beta, where c'
    runs from max(0, c - n/2) to min(N - 1, c + n/2)."""
    out = torch.empty_like(a)
    n_ch = a.shape[1]
    for c in range(n_ch):
        lo, hi = max(0, c - n // 2), min(n_ch - 1, c + n // 2)
        s = sum(a[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, c] = a[:, c] / (k + alpha * s) ** beta
    return out


def test_lrn_matches_the_papers_formula_by_hand():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 9, 3, 4, generator=g, dtype=torch.float64) * 60  # large enough for LRN to act
    got = local_response_norm().double()(a)
    torch.testing.assert_close(got, paper_lrn(a), rtol=1e-12, atol=0)
    # PyTorch's own alpha is divided by n: passing the paper's 1e-4 directly under-normalises
    naive = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    assert not torch.allclose(naive, paper_lrn(a), rtol=1e-6)


def test_lrn_other_sizes_and_constants():
    a = torch.rand(1, 6, 2, 2, dtype=torch.float64) * 100
    m = local_response_norm(size=3, alpha=2e-3, beta=0.5, k=1.0)
    torch.testing.assert_close(m(a), paper_lrn(a, n=3, k=1.0, alpha=2e-3, beta=0.5), rtol=1e-12, atol=0)


@pytest.mark.parametrize("size", [0, 4, -1, 2.0])
def test_lrn_rejects_bad_size(size):
    with pytest.raises(ValueError, match="size must be an odd int"):
        local_response_norm(size=size)


def test_alexnet_lrn_layers_follow_the_paper():
    model = create_model("alexnet", lrn=True, small_input=True, num_classes=10)
    lrns = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2
    a = torch.rand(1, 64, 4, 4, dtype=torch.float64) * 50
    for m in lrns:
        torch.testing.assert_close(m(a), paper_lrn(a), rtol=1e-12, atol=0)
    # placed after the first two ReLUs, before the pools
    kinds = [type(m).__name__ for m in model.features][:8]
    assert kinds == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 2


@pytest.mark.parametrize("width", [8, 16])
def test_width_scales_every_convolution(width):
    model = create_model("alexnet", small_input=True, num_classes=10, width=width, hidden=32)
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [width * m for m in (1, 3, 6, 4, 4)]
    assert [d["channels"] for d in model.feature_info] == [width, 3 * width, 4 * width]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    feats = model.forward_features(torch.rand(1, 3, 32, 32))
    assert [f.shape[1] for f in feats] == [width, 3 * width, 4 * width]


def test_default_width_keeps_the_torchvision_count():
    with torch.device("meta"):
        model = create_model("alexnet")
    assert sum(p.numel() for p in model.parameters()) == 61_100_840


@pytest.mark.parametrize("kw", [{"width": 0}, {"width": 8.0}, {"width": True}, {"hidden": 0}])
def test_bad_widths_are_refused(kw):
    with pytest.raises(ValueError, match="width|hidden"):
        create_model("alexnet", **kw)


def test_weights_need_the_default_width():
    with pytest.raises(ValueError, match="width=64"):
        create_model("alexnet", weights="imagenet", width=32)
