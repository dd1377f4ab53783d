"""Published parameter counts and MACs at 224x224 (models built on the meta device: no memory, no init).

Parameter counts: torchvision's model cards (``num_params``), timm for SE-ResNet-50, the ResNet paper's
Table 6 (rounded, checked to the stated precision) for the CIFAR nets and LeCun et al. 1998 for the
LeNet-5 connection table. MACs: torchvision's "GFLOPS" column, which counts multiply-accumulates.
"""

import pytest
import torch

from cvlib.models import create_model
from cvlib.ops.profile import count_macs, count_parameters

PUBLISHED_PARAMS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "se_resnet50": 28_088_024,
}

# torchvision "GFLOPS" (= GMACs) at 224x224.
PUBLISHED_GMACS = {
    "alexnet": 0.714,
    "vgg11": 7.609,
    "vgg11_bn": 7.609,
    "vgg13": 11.308,
    "vgg16": 15.47,
    "vgg19": 19.632,
    "googlenet": 1.498,
    "resnet18": 1.814,
    "resnet34": 3.664,
    "resnet50": 4.089,
    "resnet101": 7.801,
    "resnet152": 11.514,
}


def _meta(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name", list(PUBLISHED_PARAMS))
def test_published_param_counts(name):
    assert count_parameters(_meta(name)) == PUBLISHED_PARAMS[name]


def test_googlenet_params_with_and_without_aux_heads():
    assert count_parameters(_meta("googlenet", aux_logits=False)) == 6_624_904  # torchvision's count
    # each aux head: 1x1 conv to 128 (+BN), FC 2048->1024, FC 1024->1000
    aux = lambda c: c * 128 + 2 * 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000  # noqa: E731
    assert count_parameters(_meta("googlenet")) == 6_624_904 + aux(512) + aux(528)


@pytest.mark.parametrize(
    ("name", "millions"),
    [("resnet20", 0.27), ("resnet32", 0.46), ("resnet44", 0.66), ("resnet56", 0.85), ("resnet110", 1.7)],
)
def test_cifar_resnets_match_table6(name, millions):
    n = count_parameters(_meta(name))
    digits = 1 if millions >= 1 else 2
    assert round(n / 1e6, digits) == millions
    assert count_parameters(_meta(name.replace("resnet", "plain"))) == n  # option A adds no parameters


def test_lenet5_counts():
    # C1 156 + C3 2,416 (full) or 1,516 (paper's table) + C5 48,120 + F6 10,164 + output 850
    assert count_parameters(create_model("lenet5")) == 61_706
    assert count_parameters(create_model("lenet5", c3_table=True)) == 61_706 - 2_416 + 1_516


def test_vgg16_fc_share():
    model = _meta("vgg16")
    fc = count_parameters(model.classifier)
    assert fc == 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert 0.89 < fc / count_parameters(model) < 0.90


@pytest.mark.parametrize("name", list(PUBLISHED_GMACS))
def test_macs_match_torchvision(name):
    macs = count_macs(_meta(name), (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.02)


def test_macs_scale_with_batch_and_resolution():
    model = _meta("resnet18")
    one = count_macs(model, (1, 3, 224, 224))
    assert count_macs(model, (2, 3, 224, 224)) == 2 * one
    assert count_macs(model, (1, 3, 112, 112)) < one / 3.5  # convs scale with H*W; the fc does not
