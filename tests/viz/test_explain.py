"""CAM / Grad-CAM against their closed forms, pointing game by hand, randomisation sanity check."""

import pytest
import torch
from torch import nn

from cvlib.viz.explain import cam, grad_cam, pointing_game, randomized_copy, rank_correlation


class GapNet(nn.Module):
    """conv features -> global average pooling -> linear: the architecture CAM is defined for."""

    def __init__(self, k=3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1))
        self.fc = nn.Linear(5, k)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def _setup(seed=0):
    torch.manual_seed(seed)
    return GapNet(), torch.rand(4, 3, 6, 7)


def test_cam_is_weighted_sum_of_feature_maps():
    net, x = _setup()
    a = net.features(x).detach()
    classes = torch.tensor([0, 2, 1, 2])
    expect = torch.stack([(net.fc.weight[c][:, None, None] * a[i]).sum(0) for i, c in enumerate(classes)])
    got = cam(net, x, "features", classes, upsample=False)
    torch.testing.assert_close(got, expect.detach())
    # the spatial mean of the CAM is the class score minus its bias
    logits = net(x).detach()
    torch.testing.assert_close(
        got.mean((1, 2)), logits.gather(1, classes[:, None])[:, 0] - net.fc.bias[classes].detach()
    )
    assert cam(net, x, "features").shape == (4, 6, 7)  # upsampled to the image


def test_grad_cam_equals_rectified_cam_over_positions():
    net, x = _setup(1)
    c = cam(net, x, "features", upsample=False)
    g = grad_cam(net, x, "features", upsample=False)
    torch.testing.assert_close(g, c.clamp_min(0) / (6 * 7))
    # batched == one image at a time
    one = torch.cat([grad_cam(net, x[i : i + 1], "features", upsample=False) for i in range(4)])
    torch.testing.assert_close(g, one)


def test_grad_cam_with_frozen_weights_and_named_layer():
    net, x = _setup(2)
    net.requires_grad_(False)
    g = grad_cam(net, x, "features.2", classes=1, relu=False)
    assert g.shape == (4, 6, 7) and g.abs().sum() > 0
    with pytest.raises(ValueError, match="no module named 'feature'.*did you mean features"):
        grad_cam(net, x, "feature")
    with pytest.raises(ValueError, match=r"classes must be in \[0, 3\)"):
        grad_cam(net, x, "features", classes=3)


def test_randomised_weights_change_the_map():
    net, x = _setup(3)
    before = grad_cam(net, x, "features", relu=False, classes=0)
    rnd = randomized_copy(net, ["fc", "features.2"], seed=1)
    after = grad_cam(rnd, x, "features", relu=False, classes=0)
    assert torch.equal(grad_cam(net, x, "features", relu=False, classes=0), before)  # original untouched
    assert (rank_correlation(before, after) < 0.99).all()
    assert torch.allclose(rank_correlation(before, before), torch.ones(4))


def test_pointing_game_by_hand():
    masks = torch.zeros(3, 5, 5, dtype=torch.long)
    masks[:, 1:3, 1:3] = 1
    maps = torch.zeros(3, 5, 5)
    maps[0, 2, 2] = 1  # inside
    maps[1, 4, 4] = 1  # far outside
    maps[2, 3, 3] = 1  # one pixel off the corner
    assert pointing_game(maps, masks) == pytest.approx(1 / 3)
    assert pointing_game(maps, masks, tolerance=1) == pytest.approx(2 / 3)
    assert pointing_game(maps, masks, reduction="none").tolist() == [True, False, False]
    with pytest.raises(ValueError, match="reduction must be one of"):
        pointing_game(maps, masks, reduction="sum")
    rc = rank_correlation(torch.arange(6.0)[None], -torch.arange(6.0)[None])
    assert rc.item() == pytest.approx(-1.0)


def test_rank_correlation_is_spearman_with_tied_ranks():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 40, 40, generator=g)
    b = torch.rand(3, 40, 40, generator=g)
    a[a < 0.8] = 0  # 80 % zeros, as after a ReLU
    b[b < 0.8] = 0
    rc = rank_correlation(a, b)
    assert rc.abs().max() < 0.1  # independent maps; position tie-breaking gave 0.416
    ints = torch.randint(0, 4, (2, 50), generator=g)
    other = torch.randint(0, 4, (2, 50), generator=g)
    got = rank_correlation(ints, other)
    try:
        from scipy.stats import spearmanr
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        spearmanr = None
    for i in range(2):
        x, y = ints[i].double(), other[i].double()
        if spearmanr is not None:
            ref = spearmanr(x.numpy(), y.numpy()).statistic
        else:  # by hand: Pearson of average ranks
            rx = torch.tensor([(x < v).sum() + ((x == v).sum() - 1) / 2 for v in x])
            ry = torch.tensor([(y < v).sum() + ((y == v).sum() - 1) / 2 for v in y])
            ref = float(torch.corrcoef(torch.stack([rx, ry]))[0, 1])
        assert got[i].item() == pytest.approx(ref, abs=1e-5)
    for i in range(3):
        ref = spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy()).statistic
        assert rc[i].item() == pytest.approx(ref, abs=1e-5)


def test_explain_inputs_are_checked():
    net, x = _setup(3)
    with pytest.raises(TypeError, match=r"x.float\(\) / 255"):
        grad_cam(net, (x * 255).to(torch.uint8), "features")
    with pytest.raises(ValueError, match="finite"):
        grad_cam(net, torch.full_like(x, float("nan")), "features")
    with pytest.raises(TypeError, match="integer class ids"):
        cam(net, x, "features", classes=torch.tensor([0.5]))
    with pytest.raises(ValueError, match="maps must have equal shapes"):
        rank_correlation(torch.rand(2, 3), torch.rand(2, 4))
    with pytest.raises(TypeError, match="masks must be"):
        pointing_game(torch.rand(2, 4, 4), torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="finite"):
        rank_correlation(torch.full((1, 4), float("nan")), torch.rand(1, 4))


class _Stop(Exception):
    pass


def test_explain_runs_where_the_model_is():
    # The model on another device than the inputs ("meta" stands in for a GPU, so no GPU is needed):
    # the model must receive x on its own device; before, x went in on the CPU.
    net, x = _setup(3)
    net = net.to("meta")
    seen = []

    def hook(_m, args):
        seen.append(args[0].device.type)
        raise _Stop  # meta tensors hold no values: stop once the device is known

    net.register_forward_pre_hook(hook)
    for fn in (cam, grad_cam):
        with pytest.raises(_Stop):
            fn(net, x, "features")
    assert seen == ["meta", "meta"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_explain_model_on_gpu_inputs_on_cpu():
    net, x = _setup(3)
    net = net.cuda()
    for fn in (cam, grad_cam):
        m = fn(net, x, "features")
        assert m.device == x.device and m.shape == (4, 6, 7)
    hits = pointing_game(m.cuda(), torch.ones(4, 6, 7, dtype=torch.long), reduction="none")
    assert hits.is_cuda and hits.all()
