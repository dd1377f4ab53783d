"""The published-figures table agrees with the cvlib models it describes."""

import pytest
import torch

from cvlib.models import create_model, list_models
from cvlib.models.classification._published import PUBLISHED, published
from cvlib.ops.profile import count_macs


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_entry_matches_cvlib_model(name):
    entry = published(name)
    assert name in list_models(task="classification")
    assert 0 < entry.top1 < entry.top5 < 100
    kwargs = {"aux_logits": False} if name == "googlenet" else {}  # counted without its aux heads
    with torch.device("meta"):  # parameters without memory or initialisation: instant even for VGG-16
        model = create_model(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == entry.params
    if name == "se_resnet50":
        return  # the paper's 3.87 GMACs are for its stride-on-1x1 ResNet; cvlib strides the 3x3 (V1.5)
    macs = count_macs(model, (1, 3, entry.eval_size, entry.eval_size))
    assert abs(macs / 1e9 - entry.gmacs) / entry.gmacs < 0.02


def test_unknown_name():
    with pytest.raises(ValueError, match="no published figures"):
        published("resnet9000")


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.0, 1.4])
def test_mobilenet_v2_width_table_matches_cvlib_macs(width):
    from cvlib.models.classification._published import MOBILENET_V2_WIDTHS

    mmacs, mparams, _ = MOBILENET_V2_WIDTHS[width]
    with torch.device("meta"):
        model = create_model("mobilenet_v2", width_mult=width)
    assert abs(count_macs(model) / 1e6 - mmacs) / mmacs < 0.01
    # the reference counts parameters slightly differently (within 2% of cvlib's = torchvision's)
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - mparams) / mparams < 0.02
