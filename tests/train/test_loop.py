"""fit / evaluate / predict: determinism, learning, loss variants, metrics and every error branch."""

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cvlib.train import History, default_loss, evaluate, fit, predict


def _data(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()  # 4 quadrants
    return x, y


def _mlp(seed=0, p=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(p), nn.Linear(16, 4))


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def test_deterministic_on_cpu():
    x, y = _data()
    h1 = fit(m1 := _mlp(p=0.2), (x, y), (x, y), epochs=2, batch_size=32, device="cpu", progress=False)
    h2 = fit(m2 := _mlp(p=0.2), (x, y), (x, y), epochs=2, batch_size=32, device="cpu", progress=False)
    assert h1.history["train_loss"] == h2.history["train_loss"]
    assert h1.history["val_accuracy"] == h2.history["val_accuracy"]
    assert torch.equal(_params(m1), _params(m2))
    # a different seed changes the batch order and hence the result
    h3 = fit(_mlp(p=0.2), (x, y), epochs=2, batch_size=32, device="cpu", progress=False, seed=1)
    assert h3.history["train_loss"] != h1.history["train_loss"]


def test_fit_learns_and_logs_per_epoch():
    x, y = _data(256)
    xv, yv = _data(128, seed=1)
    h = fit(_mlp(), (x, y), (xv, yv), epochs=6, batch_size=32, lr=0.2, device="cpu", progress=False)
    assert set(h.history) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(len(v) == 6 for v in h.history.values())
    assert h.history["train_loss"][-1] < h.history["train_loss"][0]
    assert h.history["val_accuracy"][-1] > 0.9
    assert h.history["lr"][-1] < 1e-3  # cosine annealed to ~0


def test_val_metrics_match_evaluate_and_inference_mode():
    x, y = _data()
    m = _mlp()
    h = fit(m, (x, y), (x, y), epochs=1, batch_size=32, device="cpu", progress=False)
    res = evaluate(m, (x, y), metrics=("accuracy",))
    assert res["accuracy"] == pytest.approx(h.history["val_accuracy"][-1])
    assert res["loss"] == pytest.approx(F.cross_entropy(m(x), y).item(), rel=1e-5)

    class Probe:
        name = "probe"

        def reset(self):
            self.modes = []

        def update(self, out, target):
            self.modes.append((torch.is_inference_mode_enabled(), out.requires_grad))

        def compute(self):
            return float(len(self.modes))

    probe = Probe()
    evaluate(m, (x, y), metrics=(probe,), batch_size=50)
    assert probe.modes == [(True, False)] * 3


def test_dataset_and_dataloader_inputs():
    x, y = _data()
    h = fit(_mlp(), TensorDataset(x, y), epochs=1, batch_size=32, device="cpu", progress=False)
    assert len(h.history["train_loss"]) == 1

    class ListDS(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return x[i], y[i]

    fit(_mlp(), ListDS(), epochs=1, batch_size=32, device="cpu", progress=False)
    res = evaluate(_mlp(), DataLoader(TensorDataset(x, y), batch_size=40))
    assert 0.0 <= res["accuracy"] <= 1.0


def test_default_loss_per_pixel_ignores_255():
    torch.manual_seed(0)
    out = torch.randn(2, 3, 4, 5)
    t = torch.randint(0, 3, (2, 4, 5))
    t[0, 0, :] = 255
    keep = t != 255
    manual = F.cross_entropy(out.permute(0, 2, 3, 1)[keep], t[keep])
    torch.testing.assert_close(default_loss(out, t), manual)


def test_fit_segmentation_model():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 6, 6)
    t = (x[:, 0] > 0).long()
    t[:, 0, 0] = 255
    model = nn.Conv2d(1, 2, 1)
    h = fit(model, (x, t), (x, t), epochs=5, batch_size=4, lr=0.5, device="cpu", progress=False)
    assert h.history["val_accuracy"][-1] > 0.9


def test_default_loss_soft_labels_and_smoothing():
    torch.manual_seed(0)
    out = torch.randn(5, 4)
    soft = torch.softmax(torch.randn(5, 4), 1)
    manual = -(soft * out.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(default_loss(out, soft), manual)
    y = torch.tensor([0, 1, 2, 3, 0])
    eps = 0.1
    smooth = F.one_hot(y, 4).float() * (1 - eps) + eps / 4
    torch.testing.assert_close(
        default_loss(out, y, label_smoothing=eps), -(smooth * out.log_softmax(1)).sum(1).mean()
    )


class AuxNet(nn.Module):
    """GoogLeNet-like: (main, aux) in training mode, main only in eval mode."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(2, 8)
        self.main = nn.Linear(8, 4)
        self.aux = nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return (self.main(h), self.aux(h)) if self.training else self.main(h)


def test_tuple_output_aux_loss():
    torch.manual_seed(0)
    main, a1, a2 = torch.randn(3, 6, 4).unbind(0)
    y = torch.randint(0, 4, (6,))
    expect = F.cross_entropy(main, y) + 0.3 * (F.cross_entropy(a1, y) + F.cross_entropy(a2, y))
    torch.testing.assert_close(default_loss((main, a1, a2), y), expect)
    x, yy = _data()
    torch.manual_seed(0)
    h = fit(AuxNet(), (x, yy), (x, yy), epochs=2, batch_size=32, device="cpu", progress=False)
    assert "train_accuracy" in h.history and "val_loss" in h.history


class LossDictNet(nn.Module):
    takes_targets = True

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x, y=None):
        pred = self.lin(x).squeeze(1)
        if self.training:
            return {"l1": (pred - y).abs().mean(), "l2": ((pred - y) ** 2).mean()}
        return pred


def test_takes_targets_loss_dict():
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = x @ torch.tensor([1.0, -2.0])
    h = fit(LossDictNet(), (x, y), epochs=3, batch_size=16, lr=0.05, device="cpu", progress=False)
    for a, b, s in zip(h.history["train_l1"], h.history["train_l2"], h.history["train_loss"]):
        assert s == pytest.approx(a + b, rel=1e-5)
    assert h.history["train_l2"][-1] < h.history["train_l2"][0]
    assert "train_accuracy" not in h.history


def test_augment_training_batches_only():
    x, y = _data(96)
    sizes = []

    def aug(xb, yb):
        sizes.append(len(xb))
        return xb + 0.01, yb

    fit(_mlp(), (x, y), (x, y), epochs=2, batch_size=32, augment=aug, device="cpu", progress=False)
    assert sizes == [32, 32, 32] * 2


def test_callback_stops_and_clip_grad_norm():
    x, y = _data()
    norms = []

    class Recorder(torch.optim.SGD):
        def step(self, closure=None):
            norms.append(torch.cat([p.grad.flatten() for g in self.param_groups for p in g["params"]]).norm())
            return super().step(closure)

    m = _mlp()
    h = fit(
        m,
        (x, y),
        epochs=5,
        batch_size=32,
        optimizer=Recorder(m.parameters(), lr=10.0),
        clip_grad_norm=0.01,
        callbacks=[lambda epoch, logs, model: epoch == 1],
        device="cpu",
        progress=False,
    )
    assert len(h.history["train_loss"]) == 2
    assert max(norms) <= 0.01 + 1e-6


def test_history_plot_and_repr():
    h = History(
        {"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "train_accuracy": [0.5, 0.8], "lr": [0.1, 0]}
    )
    assert repr(h) == "History(epochs=2, train_loss=0.5, val_loss=0.7, train_accuracy=0.8)"
    fig = h.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [len(line.get_xdata()) for line in fig.axes[0].lines] == [2, 2]
    with pytest.raises(ValueError, match="keys must be among"):
        h.plot(keys=["miou"])


def test_predict_eval_mode_batches_and_device():
    m = _mlp(p=0.5)
    m.train()
    x, _ = _data(70)
    out = predict(m, x, batch_size=16)
    assert out.shape == (70, 4) and out.device == x.device and out.dtype == torch.float32
    m.eval()
    torch.testing.assert_close(out, m(x).detach())
    m.train()
    predict(m, x)
    assert m.training  # mode restored


# ----------------------------------------------------------------------------------------- errors
def test_label_out_of_range_names_value():
    x, y = _data()
    y = y.clone()
    y[7] = 9
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\).*got label 9"):
        fit(_mlp(), (x, y), epochs=1, device="cpu", progress=False)
    y[7] = -1
    with pytest.raises(ValueError, match="got label -1"):
        evaluate(_mlp(), (x, y))


def test_empty_and_mismatched_data():
    with pytest.raises(ValueError, match="train is empty"):
        fit(_mlp(), (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)), device="cpu", progress=False)
    with pytest.raises(ValueError, match="differ in length: 4 vs 3"):
        fit(_mlp(), (torch.zeros(4, 2), torch.zeros(3, dtype=torch.long)), device="cpu", progress=False)
    with pytest.raises(TypeError, match="must be an \\(X, y\\) tuple"):
        fit(_mlp(), [1, 2, 3], device="cpu", progress=False)


def test_nan_loss_names_epoch_and_step():
    x, y = _data()
    calls = []

    def loss_fn(out, t):
        calls.append(1)
        loss = F.cross_entropy(out, t)
        return loss * float("nan") if len(calls) == 6 else loss

    with pytest.raises(FloatingPointError, match="epoch 2, step 2"):
        fit(_mlp(), (x, y), epochs=3, batch_size=32, loss_fn=loss_fn, device="cpu", progress=False)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"schedule": "step"}, "schedule must be one of"),
        ({"amp": "fp8"}, "amp must be one of"),
        ({"channels_last": "yes"}, "channels_last must be"),
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"metrics": ("f1",)}, "unknown metric 'f1'"),
        ({"resume": True}, "resume=True needs checkpoint"),
    ],
)
def test_bad_options(kw, match):
    x, y = _data(32)
    with pytest.raises(ValueError, match=match):
        fit(_mlp(), (x, y), device="cpu", progress=False, **kw)


def test_progress_bar_shows_live_loss(capsys):
    x, y = _data(64)
    fit(_mlp(), (x, y), (x, y), epochs=1, batch_size=32, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "fit" in err and "loss=" in err and "val_accuracy=" in err


def test_forced_bf16_autocast_on_cpu_and_named_metrics():
    x, y = _data()
    h = fit(
        _mlp(),
        (x, y),
        (x, y),
        epochs=1,
        batch_size=32,
        amp="bf16",
        metrics=("accuracy", "top2"),
        device="cpu",
        progress=False,
    )
    assert all(torch.isfinite(torch.tensor(v)).all() for v in h.history.values())
    assert h.history["val_top2"][0] >= h.history["val_accuracy"][0]


def test_segmentation_metric_names_resolved_with_num_classes():
    pytest.importorskip("cvlib.metrics.segmentation")
    torch.manual_seed(0)
    x = torch.randn(8, 1, 6, 6)
    t = (x[:, 0] > 0).long()
    res = evaluate(nn.Conv2d(1, 2, 1), (x, t), metrics=("pixel_accuracy", "miou"))
    assert 0.0 <= res["miou"] <= 1.0 and 0.0 <= res["pixel_accuracy"] <= 1.0


class BoxCounter(nn.Module):
    """Detection-style toy: targets are lists of dicts; training returns a loss dict."""

    takes_targets = True

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, images, targets=None):
        if self.training:
            n = torch.tensor([float(len(t["boxes"])) for t in targets])
            return {"count": ((self.w * images.mean((1, 2, 3)) - n) ** 2).mean()}
        return [{"count": self.w * im.mean()} for im in images]


def test_detection_style_dataset_with_collate():
    from cvlib.train import detection_collate

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return torch.ones(3, 4, 4), {
                "boxes": torch.zeros(i % 3, 4),
                "labels": torch.ones(i % 3, dtype=torch.long),
            }

    h = fit(
        BoxCounter(),
        DS(),
        epochs=2,
        batch_size=3,
        lr=0.1,
        collate_fn=detection_collate,
        device="cpu",
        progress=False,
    )
    assert set(h.history) >= {"train_loss", "train_count"}
    preds = predict(BoxCounter(), torch.ones(5, 3, 4, 4), batch_size=2)
    assert isinstance(preds, list) and len(preds) == 5
