"""The data path: seeded index batching, drop of a single trailing sample, loaders, detection collate."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from cvlib.train.data import LoaderBatches, TensorBatches, detection_collate, make_batches


def test_tensor_batches_seeded_permutation():
    x = torch.arange(10.0)[:, None]
    y = torch.arange(10)
    b = make_batches((x, y), batch_size=4, device=torch.device("cpu"), shuffle=True, seed=3)
    assert isinstance(b, TensorBatches) and len(b) == 3
    b.set_epoch(0)
    e0 = torch.cat([yb for _, yb in b])
    assert sorted(e0.tolist()) == list(range(10))  # a permutation: every sample once
    assert torch.equal(torch.cat([yb for _, yb in b]), e0)  # same epoch -> same order
    b.set_epoch(1)
    assert not torch.equal(torch.cat([yb for _, yb in b]), e0)  # next epoch -> new order
    for xb, yb in b:
        assert torch.equal(xb[:, 0].long(), yb)  # inputs and targets stay paired


def test_drop_single_and_no_shuffle():
    x, y = torch.zeros(9, 2), torch.arange(9)
    b = make_batches((x, y), batch_size=4, device=torch.device("cpu"), shuffle=True, drop_single=True)
    assert [len(yb) for _, yb in b] == [4, 4]  # the lone 9th sample would break BatchNorm
    b = make_batches((x, y), batch_size=4, device=torch.device("cpu"), shuffle=False)
    assert torch.equal(torch.cat([yb for _, yb in b]), y)


def test_loader_path_and_errors():
    ds = TensorDataset(torch.zeros(5, 2), torch.arange(5))
    b = make_batches(DataLoader(ds, batch_size=2), batch_size=99, device=torch.device("cpu"), shuffle=False)
    assert isinstance(b, LoaderBatches) and [len(yb) for _, yb in b] == [2, 2, 1]
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        make_batches(ds, batch_size=0, device=torch.device("cpu"), shuffle=False)
    with pytest.raises(ValueError, match="val is empty"):
        make_batches(
            TensorDataset(torch.zeros(0, 2), torch.zeros(0)),
            batch_size=2,
            device=torch.device("cpu"),
            shuffle=False,
            name="val",
        )


def test_detection_collate():
    items = [
        (torch.rand(3, 4, 4), {"boxes": torch.rand(n, 4), "labels": torch.ones(n, dtype=torch.long)})
        for n in (0, 2, 5)
    ]
    images, targets = detection_collate(items)
    assert images.shape == (3, 3, 4, 4) and [len(t["boxes"]) for t in targets] == [0, 2, 5]
    images, _ = detection_collate([(torch.rand(3, 4, 4), {}), (torch.rand(3, 5, 5), {})])
    assert isinstance(images, list) and len(images) == 2  # different sizes are not stacked
    with pytest.raises(ValueError, match="batch must not be empty"):
        detection_collate([])


def test_dataset_collate_fn_is_used_by_default():
    class Boxes(torch.utils.data.Dataset):
        collate_fn = staticmethod(detection_collate)

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.full((1, 2, 2), float(i)), {"boxes": torch.zeros(i, 4)}

    batches = make_batches(Boxes(), batch_size=3, device=torch.device("cpu"), shuffle=False)
    ((images, targets),) = list(batches)
    assert images.shape == (3, 1, 2, 2) and [len(t["boxes"]) for t in targets] == [0, 1, 2]
