"""cvlib.knn against scikit-learn's brute-force KNeighborsClassifier and a NumPy reference."""

import numpy as np
import pytest
import torch
from sklearn.metrics import pairwise_distances as sk_pairwise
from sklearn.neighbors import KNeighborsClassifier

from cvlib.knn import (
    METRICS,
    KNNClassifier,
    accuracy_vs_k,
    majority_vote,
    measure_scaling,
    pairwise_distances,
)

SK_METRIC = {"l2": "euclidean", "l1": "manhattan", "cosine": "cosine"}


def _sklearn(x, y, q, k, metric):
    clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric=SK_METRIC[metric]).fit(x, y)
    dist, idx = clf.kneighbors(q)
    return clf.predict(q), dist, idx


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_matches_sklearn_on_continuous_data(metric, k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(300, 12))
    y = rng.integers(0, 5, 300) * 3 + 2  # labels need not be 0..K-1
    q = rng.normal(size=(70, 12))
    pred_sk, dist_sk, idx_sk = _sklearn(x, y, q, k, metric)
    # small chunks: several query blocks and training blocks, so the running top-k merge runs
    knn = KNNClassifier(k=k, metric=metric, chunk_size=16, train_chunk_size=37).fit(
        torch.from_numpy(x), torch.from_numpy(y)
    )
    dist, idx = knn.kneighbors(torch.from_numpy(q))
    assert idx.dtype == torch.int64 and dist.dtype == torch.float64
    np.testing.assert_array_equal(idx.numpy(), idx_sk)
    np.testing.assert_allclose(dist.numpy(), dist_sk, rtol=1e-9, atol=1e-10)
    np.testing.assert_array_equal(knn.predict(torch.from_numpy(q)).numpy(), pred_sk)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 2, 4, 5, 8])
def test_ties_integer_data(metric, k):
    """Integer pixels make equal distances and tied votes: the documented rules hold."""
    rng = np.random.default_rng(100 + k)
    n_classes = 4
    x = rng.integers(0, 6, size=(250, 8)).astype(np.float64)
    y = rng.integers(0, n_classes, 250)
    q = rng.integers(0, 6, size=(120, 8)).astype(np.float64)
    knn = KNNClassifier(k=k, metric=metric, chunk_size=32, train_chunk_size=50).fit(x, y)
    dist, idx = knn.kneighbors(q)
    pred = knn.predict(q).numpy()
    pred_sk, dist_sk, _ = _sklearn(x, y, q, k, metric)

    d_ref = sk_pairwise(q, x, metric=SK_METRIC[metric])
    d_sorted = np.sort(d_ref, axis=1)
    np.testing.assert_allclose(dist.numpy(), d_sorted[:, :k], atol=1e-12)
    np.testing.assert_allclose(dist_sk, d_sorted[:, :k], atol=1e-12)
    # sklearn agrees wherever the neighbour set is unambiguous (k-th and (k+1)-th distances differ)
    clear = d_sorted[:, k] - d_sorted[:, k - 1] > 1e-9
    assert clear.sum() >= 15
    np.testing.assert_array_equal(pred[clear], pred_sk[clear])
    # vote ties happen among those queries, so the smallest-label rule is exercised against sklearn
    counts = np.stack([np.bincount(y[r], minlength=n_classes) for r in idx.numpy()])
    vote_ties = (counts == counts.max(1, keepdims=True)).sum(1) > 1
    if k in (2, 4, 8):
        assert (vote_ties & clear).sum() >= 3
    if metric != "cosine":  # l1/l2 on integers are exact: the stable order is checkable everywhere
        stable = np.argsort(d_ref, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(idx.numpy(), stable)
        ref = np.array([np.argmax(np.bincount(y[r], minlength=n_classes)) for r in stable])
        np.testing.assert_array_equal(pred, ref)


def test_hand_worked_tie_break():
    x = torch.tensor([[0.0], [2.0], [-2.0], [4.0]])
    y = torch.tensor([5, 1, 3, 1])
    knn = KNNClassifier(k=2).fit(x, y)
    dist, idx = knn.kneighbors(torch.tensor([[1.0]]))
    # 0 and 2 are both at distance 1: index order; then votes 5 vs 1 tie -> smallest label 1
    assert idx.tolist() == [[0, 1]] and dist.tolist() == [[1.0, 1.0]]
    assert knn.predict(torch.tensor([[1.0]])).tolist() == [1]
    # -2 and 4 tie at distance 3 for the query 1: the lower training index (2) is kept
    assert KNNClassifier(k=3).fit(x, y).kneighbors(torch.tensor([[1.0]]))[1].tolist() == [[0, 1, 2]]
    proba = KNNClassifier(k=4).fit(x, y).predict_proba(torch.tensor([[1.0]]))
    assert proba.tolist() == [[0.5, 0.25, 0.25]]  # classes_ = [1, 3, 5]


def test_chunking_does_not_change_results():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (500, 8), generator=g).float()
    y = torch.randint(0, 3, (500,), generator=g)
    q = torch.randint(0, 4, (64, 8), generator=g).float()
    ref = KNNClassifier(k=6, chunk_size=10_000, train_chunk_size=10_000).fit(x, y).kneighbors(q)
    for cs, ts in [(5, 9), (7, 6), (64, 499), (64, 4)]:
        out = KNNClassifier(k=6, chunk_size=cs, train_chunk_size=ts).fit(x, y).kneighbors(q)
        torch.testing.assert_close(out[0], ref[0])
        assert torch.equal(out[1], ref[1])


def test_images_are_flattened_and_ints_upcast():
    x = torch.randint(0, 255, (20, 1, 4, 4), dtype=torch.uint8)
    y = torch.arange(20) % 2
    knn = KNNClassifier(k=1).fit(x, y)
    assert torch.equal(knn.predict(x), y)  # each sample is its own nearest neighbour
    d, i = knn.kneighbors(x.float())
    assert d.dtype == torch.float32 and torch.equal(i[:, 0], torch.arange(20))


def test_pairwise_distances_matches_sklearn():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(9, 5)), rng.normal(size=(11, 5))
    b[3] = 0.0  # a zero vector: cosine distance 1, as in sklearn
    for m in METRICS:
        np.testing.assert_allclose(
            pairwise_distances(torch.from_numpy(a), torch.from_numpy(b), m).numpy(),
            sk_pairwise(a, b, metric=SK_METRIC[m]),
            atol=1e-12,
        )


def test_validation_errors():
    x, y = torch.zeros(5, 3), torch.zeros(5, dtype=torch.int64)
    with pytest.raises(ValueError, match="metric must be one of"):
        KNNClassifier(metric="l3")
    with pytest.raises(ValueError, match="k must be >= 1"):
        KNNClassifier(k=0)
    with pytest.raises(TypeError, match="k must be an int"):
        KNNClassifier(k=2.0)
    with pytest.raises(ValueError, match=r"k must be <= the number of training samples 5, got k=6"):
        KNNClassifier(k=6).fit(x, y)
    with pytest.raises(ValueError, match=r"y must be \[N\] with N = x.shape\[0\] = 5, got \(4,\)"):
        KNNClassifier().fit(x, y[:4])
    with pytest.raises(TypeError, match="integer class labels"):
        KNNClassifier().fit(x, y.float())
    with pytest.raises(ValueError, match=r"x must be \[N, D\]"):
        KNNClassifier().fit(torch.zeros(5), y)
    with pytest.raises(ValueError, match="finite"):
        KNNClassifier().fit(torch.full((5, 3), float("nan")), y)
    with pytest.raises(RuntimeError, match="not fitted"):
        KNNClassifier().predict(x)
    knn = KNNClassifier().fit(x, y)
    with pytest.raises(ValueError, match="x must have 3 features like the training data, got 4"):
        knn.predict(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="finite"):
        knn.predict(torch.tensor([[0.0, float("inf"), 0.0]]))
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 5\], got 9"):
        knn.kneighbors(x, k=9)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    x, y, q = (
        torch.randn(2000, 32, generator=g),
        torch.randint(0, 10, (2000,), generator=g),
        torch.randn(300, 32),
    )
    for m in METRICS:
        cpu = KNNClassifier(k=5, metric=m).fit(x.double(), y).kneighbors(q.double())
        gpu = KNNClassifier(k=5, metric=m).fit(x.double().cuda(), y.cuda()).kneighbors(q.double())
        assert gpu[1].device.type == "cuda"
        assert torch.equal(gpu[1].cpu(), cpu[1])


def test_accuracy_vs_k_equals_separate_classifiers():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 4, (300, 6), generator=g).float()  # many equal distances
    y = torch.randint(0, 3, (300,), generator=g)
    xq, yq = torch.randint(0, 4, (80, 6), generator=g).float(), torch.randint(0, 3, (80,), generator=g)
    ks = [1, 2, 3, 4, 7, 10]
    got = accuracy_vs_k(KNNClassifier().fit(x, y), xq, yq, ks)
    assert got == [KNNClassifier(k=k).fit(x, y).score(xq, yq) for k in ks]
    with pytest.raises(ValueError, match="ks must be a non-empty list"):
        accuracy_vs_k(KNNClassifier().fit(x, y), xq, yq, [])


def test_majority_vote_ties_to_smallest():
    labels = torch.tensor([[2, 1, 1, 2], [0, 3, 3, 0], [4, 4, 4, 1], [3, 2, 1, 0]])
    assert majority_vote(labels, 5).tolist() == [1, 0, 4, 0]


def test_memory_is_linear_in_training_size():
    x, y = torch.zeros(1000, 64), torch.arange(1000) % 10
    res = measure_scaling(x, y, torch.zeros(5, 64), sizes=[100, 400, 1000], repeats=1)
    # float32 samples + int64 encoded labels + float32 squared norms, + 10 int64 classes
    assert res["memory_bytes"] == [n * (64 * 4 + 8 + 4) + 10 * 8 for n in (100, 400, 1000)]
    assert res["n_train"] == [100, 400, 1000] and all(t > 0 for t in res["seconds_per_query"])
    with pytest.raises(ValueError, match="sizes must lie in"):
        measure_scaling(x, y, x[:2], sizes=[2000])


@pytest.mark.parametrize("n", [1, 3])
def test_measure_scaling_under_fast_dev_run_is_small(monkeypatch, n):
    import cvlib.knn as knn_mod

    fitted, predicted = [], []
    fit, predict = KNNClassifier.fit, KNNClassifier.predict
    monkeypatch.setattr(KNNClassifier, "fit", lambda self, x, y: (fitted.append(len(x)), fit(self, x, y))[1])
    monkeypatch.setattr(
        KNNClassifier, "predict", lambda self, q: (predicted.append(len(q)), predict(self, q))[1]
    )
    top = 4 * knn_mod.FAST_DEV_MAX_TRAIN
    x, y = torch.zeros(top, 4), torch.arange(top) % 10
    sizes = [top // 8, top // 2, top]
    measure_scaling(x, y, torch.zeros(50, 4), sizes=sizes, k=5, repeats=3)
    assert fitted == sizes and predicted == [1, 50, 50, 50] * 3  # warm-up query, then 3 repeats
    fitted.clear(), predicted.clear()
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", str(n))
    res = measure_scaling(x, y, torch.zeros(50, 4), sizes=sizes, k=5, repeats=3)
    expected = [knn_mod.FAST_DEV_MAX_TRAIN // 8, knn_mod.FAST_DEV_MAX_TRAIN // 2, knn_mod.FAST_DEV_MAX_TRAIN]
    assert fitted == expected and res["n_train"] == expected  # scaled down, still growing
    assert predicted == [n] * 3  # n queries, one repetition, no warm-up
    assert res["memory_bytes"][0] < res["memory_bytes"][-1] and all(t > 0 for t in res["seconds_per_query"])
    # sizes already below the cap are kept, never below k
    assert measure_scaling(x, y, x[:4], sizes=[5, 100], k=5)["n_train"] == [5, 100]
    assert measure_scaling(x, y, x[:4], sizes=[5, top], k=5)["n_train"] == [5, knn_mod.FAST_DEV_MAX_TRAIN]


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_duplicated_training_rows_keep_lowest_indices(metric):
    """Tiled training sets tie at every rank: the k kept are the lowest indices (stable order)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (40, 5), generator=g).repeat(6, 1).double()  # each row appears 6 times
    y = torch.arange(240) % 4
    q = torch.randint(0, 3, (30, 5), generator=g).double()
    dist, idx = KNNClassifier(k=7, metric=metric, train_chunk_size=50).fit(x, y).kneighbors(q)
    ref = np.argsort(sk_pairwise(q.numpy(), x.numpy(), metric=SK_METRIC[metric]), axis=1, kind="stable")[
        :, :7
    ]
    np.testing.assert_array_equal(idx.numpy(), ref)


@pytest.mark.parametrize("metric", ["l2", "l1", "cosine"])
def test_zero_queries_give_empty_results(metric):
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 2, 2])
    knn = KNNClassifier(k=2, metric=metric).fit(x, y)
    d, i = knn.kneighbors(torch.zeros(0, 3))
    assert d.shape == i.shape == (0, 2) and i.dtype == torch.int64
    assert knn.predict(torch.zeros(0, 3)).shape == (0,)
    assert knn.predict_proba(torch.zeros(0, 3)).shape == (0, 3)
    assert pairwise_distances(torch.zeros(0, 3), x, metric).shape == (0, 6)


@pytest.mark.parametrize("metric", ["l2", "l1", "cosine"])
@pytest.mark.parametrize("big", [1e20, 1e30])
def test_large_finite_features_do_not_overflow(metric, big):
    g = torch.Generator().manual_seed(0)
    x, q = torch.randn(50, 64, generator=g), torch.randn(7, 64, generator=g)
    y = torch.randint(0, 3, (50,), generator=g)
    ref_d, ref_i = KNNClassifier(k=3, metric=metric).fit(x, y).kneighbors(q)
    d, i = KNNClassifier(k=3, metric=metric).fit(x * big, y).kneighbors(q * big)
    assert torch.isfinite(d).all()
    assert torch.equal(i, ref_i)
    scale = 1.0 if metric == "cosine" else big
    torch.testing.assert_close(d / scale, ref_d, rtol=1e-4, atol=1e-5)
    # queries much larger than the training data (rescaled at search time)
    d2, i2 = KNNClassifier(k=3, metric=metric).fit(x, y).kneighbors(q * big)
    assert torch.isfinite(d2).all()
    pd = pairwise_distances(q * big, x * big, metric)
    assert torch.isfinite(pd).all()
    torch.testing.assert_close(pd / scale, pairwise_distances(q, x, metric), rtol=1e-4, atol=1e-5)


def test_bad_k_and_dtypes_are_clear_errors():
    x, y = torch.randn(5, 3), torch.zeros(5, dtype=torch.int64)
    knn = KNNClassifier().fit(x, y)
    with pytest.raises(TypeError, match="k must be an int, got float"):
        knn.kneighbors(x, k=2.0)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 5\], got 0"):
        knn.kneighbors(x, k=0)
    with pytest.raises(TypeError, match="x must hold real numbers, got dtype torch.complex64"):
        knn.predict(torch.zeros(2, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="x must have at least one feature"):
        KNNClassifier().fit(torch.zeros(5, 0), y)
    with pytest.raises(ValueError, match="at least one query"):
        knn.score(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))


def test_majority_vote_validates_its_inputs():
    lab = torch.tensor([[0, 1, 1], [2, 2, 0]])
    assert majority_vote(lab.int(), 3).tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"neighbor_labels must lie in \[0, 3\), got values in \[-1, 2\]"):
        majority_vote(torch.tensor([[0, -1], [2, 2]]), 3)
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        majority_vote(lab, 2)
    for n in (0, 2.0, None, "3"):
        with pytest.raises(ValueError, match="num_classes must be a positive int"):
            majority_vote(lab, n)
    with pytest.raises(TypeError, match="integer labels, got dtype torch.float32"):
        majority_vote(lab.float(), 3)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        majority_vote(lab.numpy(), 3)
    with pytest.raises(ValueError, match="at least one neighbour"):
        majority_vote(torch.zeros(2, 0, dtype=torch.long), 3)
