"""Segmentation models: the registry contract at small size, exact shapes, and published numbers."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvlib.models import create_model, list_models
from cvlib.models.segmentation.deeplab import ASPP
from cvlib.models.segmentation.fcn import vgg16_features
from cvlib.models.segmentation.unet import (
    mirror_pad,
    predict_tiled,
    unet_valid_input_size,
    unet_valid_output_size,
)

# Constructor arguments that make every registered model small enough for a CPU unit test.
SMALL = {
    "fcn": dict(width=8, fc_channels=32, fc_kernel=3),
    "segnet": dict(width=8),
    "unet": dict(width=4, depth=2),
    "deeplabv3plus_small": {},
}
SEG_MODELS = list_models(task="segmentation")


def _small_kwargs(name):
    for prefix, kw in SMALL.items():
        if name.startswith(prefix) and not name.endswith("resnet50"):
            return dict(kw)
    return {}


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", [n for n in SEG_MODELS if not n.endswith("resnet50")])
def test_segmentation_contract(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, **_small_kwargs(name))
    in_ch = 1 if name == "unet_valid" else 3
    h, w = (44, 60) if name == "unet_valid" else (40, 56)  # sizes that are not multiples of 32
    x = torch.randn(2, in_ch, h, w, requires_grad=True)
    y = model(x)
    expected = (
        (unet_valid_output_size(h, 2), unet_valid_output_size(w, 2)) if name == "unet_valid" else (h, w)
    )
    assert y.shape == (2, 3, *expected)
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_registry_lists_all_families():
    assert {
        "fcn32s",
        "fcn16s",
        "fcn8s",
        "fcn_resnet50",
        "segnet",
        "unet",
        "unet_valid",
        "deeplabv3plus_resnet50",
        "deeplabv3plus_small",
    } <= set(SEG_MODELS)
    assert list_models("pix2pix*", task="generation") == ["pix2pix", "pix2pix_small"]


@pytest.mark.slow
def test_fcn_resnet50_parameter_count_and_output():
    model = create_model("fcn_resnet50")
    assert _n_params(model) == 35_322_218  # torchvision's published count (21 classes, aux head)
    assert _n_params(model) - _n_params(model.aux_classifier) == 32_957_013  # aux_loss=False
    x = torch.randn(1, 3, 48, 40)
    main, aux = model.train()(x)
    assert main.shape == aux.shape == (1, 21, 48, 40)
    assert model.eval()(x).shape == (1, 21, 48, 40)
    assert model.backbone.forward_features(x)[-1].shape[-2:] == (6, 5)  # output stride 8


_TV_SCRIPT = """
import sys, torch, torchvision
from torchvision.models.segmentation import fcn_resnet50
torch.manual_seed(0)
m = fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True).eval()
x = torch.rand(1, 3, 64, 48)
with torch.no_grad():
    out = m(x)["out"]
vgg = {k: tuple(v.shape) for k, v in torchvision.models.vgg16().features.state_dict().items()}
torch.save({"state": m.state_dict(), "x": x, "out": out, "vgg": vgg}, sys.argv[1])
"""


@pytest.mark.slow
def test_fcn_resnet50_matches_torchvision(tmp_path):
    tv_python = Path("/tmp/tvenv/bin/python")
    if not tv_python.exists() or not (tv_python.parent.parent / ".ready").exists():
        pytest.skip("torchvision environment /tmp/tvenv not available")
    out = tmp_path / "tv.pt"
    r = subprocess.run(
        [str(tv_python), "-c", _TV_SCRIPT, str(out)], capture_output=True, text=True, timeout=120
    )
    if r.returncode != 0 and "ModuleNotFoundError" in r.stderr:
        pytest.skip("torchvision does not import in /tmp/tvenv")
    assert r.returncode == 0, r.stderr
    ref = torch.load(out, weights_only=True)
    model = create_model("fcn_resnet50").eval()
    model.load_state_dict(ref["state"], strict=True)  # same keys and shapes
    with torch.no_grad():
        torch.testing.assert_close(model(ref["x"]), ref["out"], atol=1e-4, rtol=1e-4)
    ours = {k: tuple(v.shape) for k, v in vgg16_features().state_dict().items()}
    assert ours == ref["vgg"]  # ImageNet VGG-16 features load into FCN's backbone


def test_fcn_variants_and_vgg():
    assert _n_params(vgg16_features()) == 14_714_688  # VGG-16's convolutional part
    m32, m8 = (create_model(n, num_classes=4, **SMALL["fcn"]) for n in ("fcn32s", "fcn8s"))
    assert not hasattr(m32, "score_pool4") and m8.score_pool3.weight.abs().sum() == 0  # zero-init skips
    assert not m8.upscore_final.weight.requires_grad and m8.upscore2.weight.requires_grad
    assert m8.upscore_final.stride == (8, 8) and m32.upscore_final.stride == (32, 32)
    bn = create_model("fcn8s", num_classes=4, batch_norm=True, **SMALL["fcn"])
    feats = bn.forward_features(torch.randn(1, 3, 64, 96))
    assert [f.shape[-1] for f in feats] == [12, 6, 3]  # pool3, pool4, pool5 also with BN layers
    assert [f.shape[1] for f in feats] == [32, 64, 64]
    with pytest.raises(ValueError, match="variant must be one of"):
        from cvlib.models.segmentation.fcn import FCN

        FCN(variant="4s")


def test_segnet_decoder_reuses_pooling_indices():
    torch.manual_seed(0)
    model = create_model("segnet", num_classes=3, width=8).eval()
    seen = {}
    model.encoder[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("enc", o))
    model.decoder[0].register_forward_pre_hook(lambda m, i: seen.__setitem__("dec_in", i[0]))
    model(torch.randn(1, 3, 64, 64))
    enc, dec_in = seen["enc"], seen["dec_in"]
    pooled, idx = F.max_pool2d(enc, 2, 2, return_indices=True)
    switches = F.max_unpool2d(torch.ones_like(pooled), idx, 2, 2, output_size=enc.shape[-2:]) > 0
    assert dec_in.shape == enc.shape
    assert torch.equal(dec_in != 0, switches & (pooled.repeat_interleave(2, 2).repeat_interleave(2, 3) != 0))
    torch.testing.assert_close(dec_in[switches], enc[switches])  # values go back to the argmax positions


def test_segnet_parameter_count():
    assert _n_params(create_model("segnet", num_classes=12)) == pytest.approx(
        29.5e6, rel=0.01
    )  # paper Table 6


def test_unet_valid_crop_arithmetic():
    assert unet_valid_output_size(572) == 388 and unet_valid_input_size(388) == 572  # the paper's tile
    assert _n_params(create_model("unet_valid")) == 31_030_658
    for out in (1, 17, 100, 388):
        i = unet_valid_input_size(out)
        assert unet_valid_output_size(i) >= out
        if out > 4:  # minimal: the next smaller valid input (16 = 2**depth less) is too small
            assert unet_valid_output_size(i - 16) < out
    assert unet_valid_input_size(1) == 188 and unet_valid_output_size(188) == 4  # the smallest U-Net tile
    with pytest.raises(ValueError, match="odd or empty map"):
        unet_valid_output_size(571)
    model = create_model("unet_valid", width=2, depth=4).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)


def test_mirror_pad_matches_numpy_for_large_pads():
    x = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(1, 2, 5, 4)
    got = mirror_pad(x, (9, 3, 7, 11))
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (7, 11), (9, 3)), mode="reflect")
    np.testing.assert_array_equal(got.numpy(), ref)


def test_predict_tiled_covers_image_and_equals_one_pass():
    torch.manual_seed(0)
    model = create_model("unet_valid", width=4, depth=2).eval()
    image = torch.randn(2, 1, 50, 70)
    tiled = predict_tiled(model, image, tile=16)
    assert tiled.shape == (2, 2, 50, 70)
    margin = (unet_valid_input_size(16, 2) - 16) // 2
    with torch.no_grad():
        whole = model(mirror_pad(image, (margin, margin + 80 - 70, margin, margin + 64 - 50)))[..., :50, :70]
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
    same = create_model("unet", width=4, depth=2, in_channels=1).eval()
    assert predict_tiled(same, image, tile=24).shape == (2, 2, 50, 70)


@pytest.mark.parametrize("os_,rates", [(16, (6, 12, 18)), (8, (12, 24, 36))])
def test_deeplab_output_stride_and_rates(os_, rates):
    model = create_model("deeplabv3plus_small", output_stride=os_).eval()
    dil = [b.depthwise.dilation[0] for b in model.aspp.branches[1:]]
    assert tuple(dil) == rates
    feats = model.backbone.forward_features(torch.randn(1, 3, 64, 64))
    assert feats[0].shape[-1] == 16 and feats[-1].shape[-1] == 64 // os_
    assert model.decoder.reduce[0].out_channels == 48  # the paper's low-level reduction
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        create_model("deeplabv3plus_small", output_stride=32)


@pytest.mark.slow
def test_deeplab_resnet50_output_stride():
    model = create_model("deeplabv3plus_resnet50", output_stride=8).eval()
    with torch.no_grad():
        feats = model.backbone.forward_features(torch.randn(1, 3, 64, 64))
        assert feats[-1].shape[-2:] == (8, 8) and feats[0].shape[-2:] == (16, 16)
        assert model(torch.randn(1, 3, 50, 66)).shape == (1, 21, 50, 66)
    assert isinstance(model.aspp, ASPP) and len(model.aspp.branches) == 4


def test_pix2pix_losses_and_gradient_routing():
    torch.manual_seed(0)
    model = create_model("pix2pix_small")
    assert model.takes_targets
    x = torch.randn(2, 5, 32, 32)
    y = torch.rand(2, 3, 32, 32)
    losses = model(x, y)
    assert set(losses) == {"loss_d", "loss_g_gan", "loss_l1"}
    losses["loss_g_gan"].backward(retain_graph=True)  # the generator's adversarial loss ...
    assert all(p.grad is None for p in model.discriminator.parameters())  # ... never updates D
    assert any(p.grad is not None for p in model.generator.parameters())
    model.zero_grad(set_to_none=True)
    losses["loss_d"].backward()  # D's loss sees the fake detached: no gradient into G
    assert all(p.grad is None for p in model.generator.parameters())
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (2, 3, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 1


def test_pix2pix_one_channel_losses_and_target_check():
    # the edges -> items configuration of the pix2pix chapter: 1 channel in, 1 channel out
    model = create_model("pix2pix_small", in_channels=1, out_channels=1)
    x, y = (torch.rand(2, 1, 32, 32) > 0.8).float(), torch.rand(2, 1, 32, 32)
    torch.manual_seed(0)
    losses = model(x, y)
    torch.manual_seed(0)  # the same dropout masks: forward runs the generator first
    fake = model.generator(x)
    assert torch.allclose(losses["loss_l1"], 100 * (fake - (2 * y - 1)).abs().mean())
    assert float(losses["loss_g_gan"]) > 0 and float(losses["loss_d"]) > 0
    with pytest.raises(ValueError, match=r"matching x \(2, 1, 32, 32\), got \(2, 1, 16, 16\)"):
        model(x, torch.rand(2, 1, 16, 16))
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 1, 32, 32)


def test_pix2pix_paper_sizes():
    model = create_model("pix2pix")
    # the reference implementation's unet_256 generator and 3-layer PatchGAN for 3 -> 3 channels
    assert _n_params(model.generator) == 54_414_531 and _n_params(model.discriminator) == 2_768_705


_CHANNELS_LAST_STEP = """
import torch
from cvlib.models import create_model
torch.manual_seed(0)
torch.set_num_threads(1)
m = create_model("deeplabv3plus_small", num_classes=3).to(memory_format=torch.channels_last).train()
x = torch.rand(2, 128, 128, 3).permute(0, 3, 1, 2)  # an HWC batch seen as NCHW: channels_last strides
y = torch.randint(0, 3, (2, 128, 128))
opt = torch.optim.SGD(m.parameters(), lr=0.1)
loss = torch.nn.functional.cross_entropy(m(x), y)
loss.backward()
opt.step()
print("step ok", bool(torch.isfinite(loss)))
"""


def test_deeplab_small_trains_on_channels_last_cpu_input():
    # oneDNN's backward of a 1x1 stride-2 conv with 8 input channels segfaulted on channels_last input;
    # a subprocess turns a segfault into a failed test instead of killing pytest.
    import sys

    r = subprocess.run(
        [sys.executable, "-c", _CHANNELS_LAST_STEP],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert "step ok True" in r.stdout


def test_deeplab_shortcut_equals_strided_conv():
    from cvlib.models.segmentation.deeplab import _XceptionBlock

    torch.manual_seed(0)
    block = _XceptionBlock(8, 16, 2, 1).eval()
    x = torch.randn(2, 8, 15, 17)
    conv, bn = block.shortcut[0], block.shortcut[1]
    ref = bn(F.conv2d(x, conv.weight, conv.bias, stride=2))  # the 1x1 stride-2 conv it replaces
    got = block.shortcut(x[:, :, ::2, ::2].contiguous())
    assert got.shape == ref.shape == (2, 16, 8, 9)
    torch.testing.assert_close(got, ref)
    assert block(x).shape == (2, 16, 8, 9)
    n = sum(p.numel() for p in create_model("deeplabv3plus_small").parameters())
    assert n == 91_045  # the parameter count ch07 prints (num_classes=5), unchanged by the fix


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_predict_tiled_any_depth_issue_reproducer(depth):
    # Before: depth >= 3 rounded the tile to a multiple of 2**depth (388 -> 400), never a valid size.
    torch.manual_seed(0)
    model = create_model("unet_valid", width=2, depth=depth).eval()
    with torch.no_grad():
        out = predict_tiled(model, torch.rand(1, 1, 512, 512))
    assert out.shape == (1, 2, 512, 512) and torch.isfinite(out).all()


@pytest.mark.parametrize("depth,tile", [(3, 30), (4, 40), (5, 70)])
def test_predict_tiled_equals_one_pass_for_deep_unets(depth, tile):
    # Several overlapping tiles per side; every tile starts on the pooling grid, so the stitched
    # logits equal one forward pass over the whole mirror-padded image.
    torch.manual_seed(depth)
    model = create_model("unet_valid", width=2, depth=depth).eval()
    image = torch.randn(1, 1, 150, 131)
    with torch.no_grad():
        tiled = predict_tiled(model, image, tile=tile)
    valid = unet_valid_output_size(unet_valid_input_size(tile, depth), depth)
    assert valid >= tile and valid % 2**depth == 4 % 2**depth
    step = valid - valid % 2**depth
    margin = (unet_valid_input_size(valid, depth) - valid) // 2
    full_h = valid + step * -(-(150 - valid) // step)
    full_w = valid + step * -(-(131 - valid) // step)
    assert full_h > valid  # more than one tile
    padded = mirror_pad(image, (margin, margin + full_w - 131, margin, margin + full_h - 150))
    with torch.no_grad():
        whole = model(padded)[..., :150, :131]
    assert tiled.shape == (1, 2, 150, 131)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_predict_tiled_checks_inputs_and_runs_on_the_models_device():
    model = create_model("unet_valid", width=2, depth=2).eval()
    with pytest.raises(TypeError, match=r"x.float\(\) / 255"):
        predict_tiled(model, torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="model expects 1"):
        predict_tiled(model, torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="tile must be an int >= 1"):
        predict_tiled(model, torch.rand(1, 1, 32, 32), tile=0)
    with pytest.raises(TypeError, match="UNet"):
        predict_tiled(torch.nn.Identity(), torch.rand(1, 1, 32, 32))
    seen = []

    class Stop(Exception):
        pass

    def hook(_m, args):
        seen.append(args[0].device.type)
        raise Stop

    meta = create_model("unet_valid", width=2, depth=2).to("meta")
    meta.register_forward_pre_hook(hook)
    with pytest.raises(Stop):
        predict_tiled(meta, torch.rand(1, 1, 32, 32))
    assert seen == ["meta"]  # the tiles went to the model's device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_predict_tiled_model_on_gpu_image_on_cpu():
    model = create_model("unet_valid", width=2, depth=3).eval().cuda()
    with torch.no_grad():
        out = predict_tiled(model, torch.rand(1, 1, 100, 100))
    assert out.device.type == "cpu" and out.shape == (1, 2, 100, 100)
