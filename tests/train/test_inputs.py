"""What fit/evaluate/predict accept: label dtypes and shapes, detection-style data, the fast-dev-run cap."""

import pytest
import torch
from torch import nn

from cvlib.train import evaluate, fit, predict


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, (x[:, 0] > 0).long()


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))


KW = dict(epochs=1, batch_size=16, device="cpu", progress=False)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool])
def test_integer_and_bool_labels_train_like_int64(dtype):
    x, y = _data()
    ref_model, model = _net(), _net()
    ref = fit(ref_model, (x, y), (x, y), **KW)
    h = fit(model, (x, y.to(dtype)), (x, y.to(dtype)), **KW)
    assert h["train_loss"] == pytest.approx(ref["train_loss"]) and h["val_loss"] == pytest.approx(
        ref["val_loss"]
    )
    res = evaluate(model, (x, y.to(dtype)), device="cpu")
    assert res == pytest.approx(evaluate(ref_model, (x, y), device="cpu"))


def test_float_class_labels_give_a_clear_error():
    x, y = _data()
    with pytest.raises(
        ValueError, match=r"train labels must be integer class ids.*got torch.float32 of shape \[16\]"
    ):
        fit(_net(), (x, y.float()), **KW)
    with pytest.raises(ValueError, match=r"evaluation labels .*torch.float64"):
        evaluate(_net(), (x, y.double()), device="cpu")
    soft = torch.nn.functional.one_hot(y, 2).float()  # soft labels of the output's shape are fine
    assert len(fit(_net(), (x, soft), metrics=(), **KW)["train_loss"]) == 1


def test_column_labels_give_a_clear_error():
    x, y = _data()
    with pytest.raises(
        ValueError, match=r"train labels must be class ids of shape \[16\].*got shape \[16, 1\].*squeeze"
    ):
        fit(_net(), (x, y[:, None]), **KW)
    with pytest.raises(ValueError, match=r"evaluation labels.*\[40, 1\].*squeeze"):
        evaluate(_net(), (x, y[:, None]), device="cpu")


def test_float_segmentation_masks_give_a_clear_error():
    x = torch.rand(4, 1, 6, 6)
    masks = (x[:, 0] > 0.5).float()
    with pytest.raises(ValueError, match=r"train labels must be integer class ids.*\[2, 6, 6\].*float32"):
        fit(nn.Conv2d(1, 2, 1), (x, masks), batch_size=2, epochs=1, device="cpu", progress=False)
    h = fit(
        nn.Conv2d(1, 2, 1), (x, masks.to(torch.uint8)), batch_size=2, epochs=1, device="cpu", progress=False
    )
    assert len(h["train_loss"]) == 1


class _BoxCounter(nn.Module):
    takes_targets = True

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, images, targets=None):
        if self.training:
            n = torch.tensor([float(len(t["boxes"])) for t in targets])
            return {"count": ((self.w * torch.stack([im.mean() for im in images]) - n) ** 2).mean()}
        return [{"count": self.w * im.mean()} for im in images]


@pytest.mark.parametrize("as_list", [False, True])
def test_fit_accepts_images_and_target_dicts(as_list):
    images = torch.ones(6, 3, 4, 4)
    targets = [
        {"boxes": torch.zeros(i % 3, 4), "labels": torch.ones(i % 3, dtype=torch.long)} for i in range(6)
    ]
    data = (list(images) if as_list else images, targets)
    model = _BoxCounter()
    h = fit(model, data, epochs=3, batch_size=3, lr=0.1, metrics=(), device="cpu", progress=False)
    assert len(h["train_count"]) == 3 and h["train_count"][-1] < h["train_count"][0]
    with pytest.raises(ValueError, match="same length, got 6 and 5"):
        fit(_BoxCounter(), (images, targets[:5]), device="cpu", progress=False)


def test_fast_dev_run_caps_steps_epochs_and_batches(monkeypatch):
    x, y = _data(100)
    model = _net()
    steps = []
    model.register_forward_pre_hook(lambda m, a: steps.append((m.training, len(a[0]))))
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", "2")
    h = fit(model, (x, y), (x, y), epochs=5, batch_size=10, device="cpu", progress=False)
    assert len(h["train_loss"]) == 1
    assert [s for s in steps if s[0]] == [(True, 2), (True, 2)]  # batches of FAST_DEV_BATCH
    assert [s for s in steps if not s[0]] == [(False, 2), (False, 2)]
    steps.clear()
    evaluate(model, (x, y), batch_size=10, device="cpu")
    assert steps == [(False, 2), (False, 2)]
    steps.clear()
    out = predict(model, x, batch_size=30)
    assert steps == [(False, 2), (False, 2)] and out.shape == (100, 2)  # a full run's shape
    assert torch.all(out[4:] == 0) and not torch.all(out[:4] == 0)  # the rest is zeros
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", "0")
    torch.testing.assert_close(out[:4], predict(model, x)[:4])  # the computed part is real output
    steps.clear()
    fit(model, (x, y), epochs=2, batch_size=10, device="cpu", progress=False)
    assert len(steps) == 20


def test_fast_dev_run_predict_keeps_detection_output_length(monkeypatch):
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", "1")
    preds = predict(_BoxCounter(), torch.ones(5, 3, 4, 4), batch_size=2, device="cpu")
    assert len(preds) == 5 and all(set(p) == {"count"} for p in preds)
    assert all(p["count"].numel() == 0 for p in preds[2:])


def test_default_loss_names_bad_targets_before_torch_sees_them():
    from cvlib.train.loop import default_loss

    logits = torch.randn(3, 4)
    with pytest.raises(ValueError, match="target holds class id 9"):
        default_loss(logits, torch.tensor([0, 9, 1]))
    with pytest.raises(ValueError, match=r"class ids of shape \(3,\)"):
        default_loss(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="soft labels"):
        default_loss(logits, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="non-empty tuple"):
        default_loss((), torch.tensor([0, 1, 2]))


def test_predict_names_x_when_the_model_cannot_run_on_it():
    from cvlib.train import predict

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten())
    with pytest.raises(ValueError, match=r"shape \(1, 2, 3, 8, 8\)"):
        predict(model, torch.rand(2, 3, 8, 8)[None], device="cpu")
    with pytest.raises(ValueError, match="x must be finite"):
        predict(model, torch.full((2, 3, 8, 8), float("nan")), device="cpu")
