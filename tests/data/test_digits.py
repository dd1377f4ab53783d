"""cvlib.data.digits: sklearn's 8x8 digits as tensors, and the seeded split."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_digits

from cvlib.data.digits import load_digits, train_test_split


def test_digits_match_sklearn():
    x, y = load_digits()
    ref = sk_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_allclose(x[:, 0].numpy() * 16, ref.images, atol=1e-5)
    assert torch.equal(y, torch.as_tensor(ref.target))
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.bincount(y).tolist() == [
        178,
        182,
        177,
        183,
        181,
        182,
        181,
        179,
        174,
        180,
    ]  # published counts


def test_digits_upsampled():
    x, _ = load_digits(size=32)
    assert x.shape == (1797, 1, 32, 32) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    small, _ = load_digits()
    # bilinear upsampling by an integer factor (half-pixel centres, edge replication) keeps the mean
    torch.testing.assert_close(x.mean((1, 2, 3)), small.mean((1, 2, 3)), atol=1e-5, rtol=0)
    assert torch.equal(load_digits(size=8)[0], small)
    assert load_digits(size=(16, 24))[0].shape == (1797, 1, 16, 24)
    with pytest.raises(ValueError, match="size must be a positive int"):
        load_digits(size=0)


def test_split_is_fixed_disjoint_and_stratified():
    x, y = load_digits()
    xtr, ytr, xte, yte = train_test_split(x, y, test_size=0.25, seed=0)
    assert len(xtr) + len(xte) == 1797 and abs(len(xte) - 449) <= 10
    # disjoint and complete: every original row appears exactly once
    flat = torch.cat([xtr, xte]).flatten(1)
    assert torch.unique(flat, dim=0).shape[0] == torch.unique(x.flatten(1), dim=0).shape[0]
    frac = torch.bincount(yte, minlength=10).float() / torch.bincount(y, minlength=10).float()
    assert torch.all((frac - 0.25).abs() < 0.01)
    again = train_test_split(x, y, test_size=0.25, seed=0)
    assert all(torch.equal(a, b) for a, b in zip((xtr, ytr, xte, yte), again))
    other = train_test_split(x, y, test_size=0.25, seed=1)
    assert not torch.equal(other[3], yte)
    assert len(train_test_split(x, y, test_size=100, stratify=False)[2]) == 100


def test_split_validation():
    x, y = torch.zeros(10, 2), torch.zeros(10, dtype=torch.int64)
    with pytest.raises(ValueError, match="test_size must be"):
        train_test_split(x, y, test_size=1.5)
    with pytest.raises(ValueError, match=r"y must be \[N\] with N = x.shape\[0\] = 10, got \(9,\)"):
        train_test_split(x, y[:9])
