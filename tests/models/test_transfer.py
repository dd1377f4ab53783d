import copy

import pytest
import torch
from torch import nn

from cvlib.models import create_model
from cvlib.models.transfer import (
    NormalizeInput,
    bn_running_stats,
    finetune_param_groups,
    freeze,
    freeze_bn,
    replace_head,
    unfreeze_bn,
)
from cvlib.train import fit


def _net(num_classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return create_model("simple_cnn", num_classes=num_classes, in_channels=1, channels=(4, 8))


def _data(n: int = 24, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g) * 3 + 1, torch.randint(0, k, (n,), generator=g)


# ---------------------------------------------------------------- NormalizeInput


def test_normalize_input_matches_formula_and_resizes():
    norm = NormalizeInput((0.5, 0.25), (0.5, 2.0))
    x = torch.rand(3, 2, 5, 5)
    want = torch.stack([(x[:, 0] - 0.5) / 0.5, (x[:, 1] - 0.25) / 2.0], 1)
    torch.testing.assert_close(norm(x), want)
    out = NormalizeInput((0.0,), (1.0,), size=(7, 9))(torch.rand(2, 1, 5, 5))
    assert out.shape == (2, 1, 7, 9)
    assert NormalizeInput((0.0,), (1.0,), size=4)(torch.rand(1, 1, 8, 8)).shape == (1, 1, 4, 4)


def test_normalize_input_follows_dtype_and_module_device():
    norm = NormalizeInput((0.5,), (0.5,)).to(torch.float64)
    assert norm(torch.ones(1, 1, 2, 2, dtype=torch.float64)).dtype == torch.float64
    assert set(dict(norm.named_buffers())) == {"mean", "std"}  # move with .to(device)


@pytest.mark.parametrize(
    "mean,std,size,match",
    [((0.5,), (0.5, 0.5), None, "same non-zero length"), ((), (), None, "same non-zero length"),
     ((0.5,), (0.0,), None, "std must be > 0"), ((0.5,), (1.0,), (3, 0), "size must be"),
     ((0.5,), (1.0,), (1, 2, 3), "size must be")],
)  # fmt: skip
def test_normalize_input_rejects_bad_arguments(mean, std, size, match):
    with pytest.raises(ValueError, match=match):
        NormalizeInput(mean, std, size=size)


def test_normalize_input_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"x must be \[B, 3, H, W\], got \(2, 1, 4, 4\)"):
        NormalizeInput((0.4, 0.4, 0.4), (0.2, 0.2, 0.2))(torch.rand(2, 1, 4, 4))


# ---------------------------------------------------------------- freeze / replace_head


def test_freeze_keeps_only_named_modules_trainable():
    model = _net()
    n = freeze(model, except_=("fc",))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert n == model.fc.weight.numel() + model.fc.bias.numel()
    assert freeze(model, except_=()) == 0
    assert not any(p.requires_grad for p in model.parameters())


def test_freeze_matches_whole_segments_in_wrapped_models():
    model = nn.Sequential(nn.Identity(), _net())  # parameter names "1.stages...", "1.fc.weight"
    freeze(model, except_="fc")
    assert {name for name, p in model.named_parameters() if p.requires_grad} == {"1.fc.weight", "1.fc.bias"}
    freeze(model, except_=("stages.1",))
    assert all(name.startswith("1.stages.1.") for name, p in model.named_parameters() if p.requires_grad)


def test_freeze_rejects_unknown_names_and_types():
    model = _net()
    with pytest.raises(ValueError, match=r"\['head'\] match no parameter"):
        freeze(model, except_=("fc", "head"))
    with pytest.raises(ValueError, match="match no parameter"):
        freeze(model, except_=("f",))  # a prefix of "fc" is not a whole segment
    with pytest.raises(TypeError, match="except_ must be"):
        freeze(model, except_=3)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        freeze("resnet18")


def test_replace_head_new_linear_same_input_size():
    model = _net(num_classes=4)
    old = model.fc
    old.weight.requires_grad_(False)
    new = replace_head(model, 7)
    assert model.fc is new and new is not old
    assert (new.in_features, new.out_features) == (old.in_features, 7) and new.weight.requires_grad
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 7)


def test_replace_head_dotted_path_and_dtype():
    model = nn.Sequential(
        nn.Flatten(), nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 5, bias=False))
    )
    model.to(torch.float64)
    new = replace_head(model, 2, head="1.2")
    assert model[1][2] is new and new.bias is None and new.weight.dtype == torch.float64
    assert model(torch.rand(1, 4, dtype=torch.float64)).shape == (1, 2)


def test_replace_head_validates():
    model = _net()
    with pytest.raises(ValueError, match="names no module"):
        replace_head(model, 3, head="classifier")
    with pytest.raises(TypeError, match="must be an initialised nn.Linear, got ModuleList"):
        replace_head(model, 3, head="stages")
    with pytest.raises(ValueError, match="num_classes must be an int >= 1, got 0"):
        replace_head(model, 0)


# ---------------------------------------------------------------- finetune_param_groups


def test_param_groups_split_head_backbone_and_decay():
    model = _net()
    groups = finetune_param_groups(model, lr=0.1, backbone_lr=0.01, weight_decay=1e-4)
    by_name = {g["name"]: g for g in groups}
    assert [g["name"] for g in groups] == ["head", "head/no_decay", "backbone", "backbone/no_decay"]
    assert by_name["head"]["params"] == [model.fc.weight] and by_name["head/no_decay"]["params"] == [
        model.fc.bias
    ]
    assert by_name["head"]["lr"] == 0.1 and by_name["backbone"]["lr"] == 0.01
    assert by_name["backbone"]["weight_decay"] == 1e-4 and by_name["backbone/no_decay"]["weight_decay"] == 0.0
    bn = model.stages[0][1]
    assert any(p is bn.weight for p in by_name["backbone/no_decay"]["params"])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # every parameter exactly once


def test_param_groups_skip_frozen_and_zero_backbone_lr():
    model = _net()
    assert {g["name"] for g in finetune_param_groups(model, lr=0.1, backbone_lr=0.0)} == {
        "head",
        "head/no_decay",
    }
    freeze(model, except_=("fc",))
    groups = finetune_param_groups(model, lr=0.1, backbone_lr=0.05)
    assert sum(len(g["params"]) for g in groups) == 2


def test_param_groups_validate():
    model = _net()
    with pytest.raises(ValueError, match="lr must be > 0"):
        finetune_param_groups(model, lr=0.0, backbone_lr=0.1)
    with pytest.raises(ValueError, match="backbone_lr must be >= 0"):
        finetune_param_groups(model, lr=0.1, backbone_lr=-1.0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        finetune_param_groups(model, lr=0.1, backbone_lr=0.1, weight_decay=-0.1)
    with pytest.raises(ValueError, match="matches no trainable parameter"):
        finetune_param_groups(model, lr=0.1, backbone_lr=0.1, head="classifier")


def test_param_groups_drive_fit_with_two_learning_rates():
    model = _net()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    groups = finetune_param_groups(model, lr=0.1, backbone_lr=0.01)
    opt = torch.optim.SGD(groups)
    hist = fit(
        model, _data(), epochs=2, batch_size=8, optimizer=opt, schedule=None, progress=False, device="cpu"
    )
    assert hist["lr"][-1] == pytest.approx(0.1)  # the head group comes first
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())


# ---------------------------------------------------------------- batch-norm statistics


def test_fit_updates_bn_stats_unless_frozen():
    x, y = _data()
    model = _net()
    start = bn_running_stats(model)
    assert len(start) == 4  # two BN layers, mean and var each
    fit(model, (x, y), epochs=1, batch_size=8, lr=0.01, progress=False, device="cpu")
    moved = bn_running_stats(model)
    assert all(not torch.equal(start[k], moved[k]) for k in start)  # plain training changes them

    model = _net()
    assert freeze_bn(model) == 2
    weight = model.stages[0][1].weight.detach().clone()
    fit(model, (x, y), epochs=1, batch_size=8, lr=0.01, progress=False, device="cpu")
    after = bn_running_stats(model)
    assert all(torch.equal(start[k], after[k]) for k in start)  # fit's model.train() did not undo it
    assert not torch.equal(weight, model.stages[0][1].weight)  # the affine parameters still train


def test_frozen_bn_normalises_with_running_stats_in_train_mode():
    model = _net()
    x, _ = _data()
    model.eval()
    want = model(x)
    freeze_bn(model)
    model.train()
    torch.testing.assert_close(model(x), want)  # train() would use batch statistics without the freeze
    assert unfreeze_bn(model) == 2 and unfreeze_bn(model) == 0
    model.train()
    assert not torch.allclose(model(x), want)
    assert all(m.training for m in model.modules())


def test_freeze_bn_is_idempotent_and_survives_deepcopy():
    model = _net()
    freeze_bn(model)
    freeze_bn(model)
    bn = model.stages[0][1]
    assert len(bn._forward_pre_hooks) == 1
    clone = copy.deepcopy(model).train()
    stats = bn_running_stats(clone)
    clone(_data()[0])
    assert all(torch.equal(stats[k], v) for k, v in bn_running_stats(clone).items())


def test_bn_helpers_on_models_without_bn():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert freeze_bn(model) == 0 and unfreeze_bn(model) == 0 and bn_running_stats(model) == {}
