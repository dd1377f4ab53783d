"""Invariants of the batched augmentations (cvlib.data.transforms)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvlib.data import transforms
from cvlib.data.shapes import ShapesConfig, generate_scenes
from cvlib.data.transforms import (
    ColorJitter,
    Compose,
    CutMix,
    MixUp,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    target_kind,
)

SCENES = ShapesConfig(image_size=40, num_objects=(2, 4), size_range=(0.08, 0.16), overlap=0.3)


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(6, SCENES, seed=0)


def _mask_as_image(mask: torch.Tensor) -> torch.Tensor:
    """An image whose three channels equal the (small integer) mask."""
    return mask[:, None].float().expand(-1, 3, -1, -1).contiguous()


def _tight_box(mask: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()


def test_flip_twice_is_identity_and_flips_half(scenes):
    x, m = scenes.images, scenes.instances
    flip = RandomHorizontalFlip(p=0.5, seed=1)
    x1, m1 = flip(x, m)
    # the same draws again (fresh generator, same seed) undo the flip
    x2, m2 = RandomHorizontalFlip(p=0.5, seed=1)(x1, m1)
    assert torch.equal(x2, x) and torch.equal(m2, m)
    flipped = [not torch.equal(x1[i], x[i]) for i in range(len(x))]
    assert any(flipped) and not all(flipped)
    x_all, _ = RandomHorizontalFlip(p=1.0)(x, None)
    assert torch.equal(x_all, x.flip(-1))


@pytest.mark.parametrize(
    "transform",
    [
        RandomHorizontalFlip(p=0.5, seed=3),
        RandomCrop(padding=6, seed=3, mask_fill=0),
        RandomCrop(size=(24, 32), padding=0, seed=3, mask_fill=0),
        RandomResizedCrop(scale=(0.3, 1.0), seed=3, mask_fill=0),
        RandomResizedCrop(size=24, scale=(0.5, 2.0), seed=3, mask_fill=0),
    ],
    ids=repr,
)
def test_masks_stay_aligned_with_images(scenes, transform):
    # an image equal to its mask must still equal its mask after the joint transform
    m = scenes.instances
    x2, m2 = transform(_mask_as_image(m), m)
    assert m2.dtype == torch.int64 and m2.shape == x2.shape[:1] + x2.shape[2:]
    if isinstance(transform, RandomResizedCrop):
        # bilinear image vs nearest mask: where the bilinear neighbourhood is uniform they agree
        uniform = (x2[:, 0] - x2[:, 0].round()).abs() < 1e-4
        assert uniform.float().mean() > 0.8
        assert torch.equal(x2[:, 0].round().long()[uniform], m2[uniform])
    else:
        assert torch.allclose(x2[:, 0], m2.float(), atol=1e-4)


def test_padded_crop_matches_pad_then_slice():
    x = torch.rand(5, 3, 10, 12, generator=torch.Generator().manual_seed(0))
    p, (oh, ow) = 3, (9, 13)
    y, _ = RandomCrop(size=(oh, ow), padding=p, fill=0.5, seed=4)(x, None)
    # reference: the same offsets drawn from the same seed, applied by padding and slicing
    g = torch.Generator().manual_seed(4)
    x0 = torch.randint(-p, 12 + p - ow + 1, (5,), generator=g)
    y0 = torch.randint(-p, 10 + p - oh + 1, (5,), generator=g)
    padded = torch.nn.functional.pad(x, (p, p, p, p), value=0.5)
    for i in range(5):
        ref = padded[i, :, y0[i] + p : y0[i] + p + oh, x0[i] + p : x0[i] + p + ow]
        assert torch.allclose(y[i], ref, atol=1e-5)
    assert len({(a, b) for a, b in zip(x0.tolist(), y0.tolist())}) > 1


# tolerance (output pixels) between a mapped box and the tight box of the nearest-warped mask:
# 0 for whole-pixel moves, half a pixel when upsampling, plus one shrunk input pixel when shrinking
@pytest.mark.parametrize(
    ("transform", "tol"),
    [
        (RandomHorizontalFlip(p=0.5, seed=5), 0.0),
        (RandomCrop(padding=8, seed=5, min_box_size=1, min_visibility=0.0), 0.0),
        (RandomResizedCrop(scale=(0.3, 1.0), seed=5, min_box_size=1, min_visibility=0.0), 0.5),
        (RandomResizedCrop(size=(32, 48), scale=(0.6, 1.5), seed=5, min_box_size=1, min_visibility=0.0), 1.5),
    ],
    ids=repr,
)
def test_boxes_follow_the_instance_masks(scenes, transform, tol):
    x, inst = scenes.images, scenes.instances
    state = transform.generator.get_state()
    _, m2 = transform(x, inst)
    transform.generator.set_state(state)  # same draws for the box targets
    x2, t2 = transform(x, scenes.targets())
    H, W = x2.shape[-2:]
    n_checked = 0
    for i, t in enumerate(t2):
        b = t["boxes"]
        assert b.shape[1] == 4 and len(t["labels"]) == len(b)
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= W).all() and (b[:, 3] <= H).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        visible = [k for k in range(1, int(inst[i].max()) + 1) if (m2[i] == k).any()]
        assert len(b) <= len(scenes.boxes[i])
        # match each kept box to the warped instance whose label agrees and whose box is closest
        for box, label in zip(b, t["labels"]):
            cands = [_tight_box(m2[i] == k) for k in visible if scenes.box_labels[i][k - 1] == label]
            err = min((c - box).abs().max().item() for c in cands)
            assert err <= tol + 1e-4
            n_checked += 1
    assert n_checked >= 6


def test_boxes_dropped_when_too_small():
    x = torch.zeros(1, 3, 20, 20)
    t = [
        {
            "boxes": torch.tensor([[0.0, 0.0, 3.0, 3.0], [10.0, 10.0, 18.0, 18.0]]),
            "labels": torch.tensor([1, 2]),
        }
    ]
    # a 10x10 window at (8, 8) .. (18, 18) is not guaranteed by a random crop; use a fixed-window crop
    crop = RandomCrop(size=10, padding=0, seed=0, min_box_size=2.0)
    for s in range(20):
        crop.generator.manual_seed(s)
        _, out = crop(x, t)
        b = out[0]["boxes"]
        assert len(b) == len(out[0]["labels"])
        assert ((b[:, 2] - b[:, 0]) >= 2).all() and ((b[:, 3] - b[:, 1]) >= 2).all()
        assert set(out[0]["labels"].tolist()) <= {1, 2}
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    _, out = RandomResizedCrop(seed=0)(x, empty)
    assert out[0]["boxes"].shape == (0, 4)


def test_color_jitter_and_normalize():
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    xj, yj = ColorJitter(seed=0)(x, y)
    assert yj is y and xj.min() >= 0 and xj.max() <= 1 and not torch.equal(xj, x)
    same, _ = ColorJitter(0, 0, 0)(x, y)
    assert torch.allclose(same, x, atol=1e-6)
    grey = x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    gs, _ = ColorJitter(0, 0, 0.9, seed=1)(grey, None)  # saturation does not colour grey pixels
    assert torch.allclose(gs, grey, atol=1e-5)
    xn, _ = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(x, y)
    assert torch.allclose(xn * 0.25 + 0.5, x, atol=1e-6)


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_mix_labels_sum_to_one_and_match_pixels(cls):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 16, 16, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    mix = cls(alpha=1.0, num_classes=5, seed=0)
    state = mix.generator.get_state()
    xm, ym = mix(x, y)
    assert ym.shape == (8, 5) and torch.allclose(ym.sum(1), torch.ones(8))
    # encode the image's own label in its pixels: the mixed pixel mean must equal the label mix
    mix.generator.set_state(state)
    code = y.float()[:, None, None, None].expand(8, 3, 16, 16)
    cm, ym2 = mix(code, y)
    assert torch.allclose(ym2, ym)
    expected = (ym * torch.arange(5.0)).sum(1)
    assert torch.allclose(cm.mean(dim=(1, 2, 3)), expected, atol=1e-5)
    # soft labels in, soft labels out (chaining MixUp then CutMix)
    _, y3 = CutMix(num_classes=5, seed=1)(xm, ym)
    assert torch.allclose(y3.sum(1), torch.ones(8))


def test_determinism_and_generator():
    x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    aug = lambda s: Compose(RandomResizedCrop(seed=s), RandomHorizontalFlip(seed=s), ColorJitter(seed=s))  # noqa: E731
    assert torch.equal(aug(1)(x, None)[0], aug(1)(x, None)[0])
    assert not torch.equal(aug(1)(x, None)[0], aug(2)(x, None)[0])
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(MixUp(num_classes=3, generator=g1)(x, torch.tensor([0, 1, 2, 0]))[0],
                       MixUp(num_classes=3, generator=g2)(x, torch.tensor([0, 1, 2, 0]))[0])  # fmt: skip


def test_device_following():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    x = torch.rand(3, 3, 16, 16)
    m = torch.randint(0, 3, (3, 16, 16))
    ref = None
    for dev in devices:
        aug = Compose(RandomResizedCrop(seed=0), RandomHorizontalFlip(seed=0))
        xo, mo = aug(x.to(dev), m.to(dev))
        assert xo.device.type == dev and mo.device.type == dev
        if ref is None:
            ref = (xo, mo)
        else:  # same seed, same augmentation on every device
            assert torch.allclose(xo.cpu(), ref[0], atol=1e-4)


def test_target_kind_and_errors():
    x = torch.zeros(2, 3, 8, 8)
    assert target_kind(x, None) == "none"
    assert target_kind(x, torch.tensor([1, 2])) == "labels"
    assert target_kind(x, torch.zeros(2, 8, 8, dtype=torch.int64)) == "mask"
    assert target_kind(x, [{"boxes": torch.zeros(0, 4)}] * 2) == "boxes"
    with pytest.raises(ValueError, match="x must be"):
        target_kind(torch.zeros(3, 8, 8), None)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        target_kind(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), None)
    with pytest.raises(ValueError, match="batch size 2"):
        target_kind(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"mask \[B, 8, 8\]"):
        target_kind(x, torch.zeros(2, 7, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"y\[1\]\['boxes'\] must be \[N, 4\]"):
        target_kind(x, [{"boxes": torch.zeros(0, 4)}, {"boxes": torch.zeros(3)}])
    with pytest.raises(ValueError, match="p must be"):
        RandomHorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match="scale must be"):
        RandomResizedCrop(scale=(0.8, 0.2))
    with pytest.raises(ValueError, match="padding must be"):
        RandomCrop(padding=-1)
    with pytest.raises(ValueError, match="does not fit"):
        RandomCrop(size=20, padding=2)(x, None)
    with pytest.raises(ValueError, match="brightness must be"):
        ColorJitter(brightness=2.0)
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalize((0.5,), (0.0,))
    with pytest.raises(ValueError, match="num_classes is needed"):
        MixUp()(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="need class labels"):
        CutMix(num_classes=3)(x, torch.zeros(2, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        MixUp(alpha=0.0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        RandomHorizontalFlip(generator=3)
    with pytest.raises(TypeError, match="must be callable"):
        Compose(RandomHorizontalFlip(), 3)


def _raccoon_batch(n=4, size=160):
    """Real raccoon photos and boxes as a dataset yields them: uint8 pixels and integer boxes."""
    from cvlib.data import load_raccoon

    ds = load_raccoon("test")
    xs, ys = [], []
    for i in range(n):
        image, t = ds[i]
        img = (image[:, :size, :size] * 255).round().to(torch.uint8)
        h, w = img.shape[-2:]
        img = F.pad(img, (0, size - w, 0, size - h))
        boxes = t["boxes"].clone()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        xs.append(img)
        ys.append({"boxes": boxes.round().to(torch.int64), "labels": t["labels"]})
    return torch.stack(xs), ys


@pytest.mark.parametrize(
    "transform",
    [
        lambda: transforms.RandomResizedCrop(96, scale=(0.3, 1.0), seed=3),
        lambda: transforms.RandomCrop(128, padding=8, seed=3),
        lambda: transforms.RandomHorizontalFlip(1.0),
        lambda: transforms.ColorJitter(0.3, 0.3, 0.3),
        lambda: transforms.Compose(transforms.RandomHorizontalFlip(0.5), transforms.RandomResizedCrop(64)),
    ],
)
def test_integer_boxes_and_uint8_images_as_datasets_yield_them(transform):
    x8, y_int = _raccoon_batch()
    xf = x8.float() / 255
    y_float = [{**t, "boxes": t["boxes"].float()} for t in y_int]
    out_x, out_y = transform()(x8, y_int)
    ref_x, ref_y = transform()(xf, y_float)  # the same seed on the converted batch
    assert out_x.dtype == torch.float32 and float(out_x.max()) <= 1.0
    torch.testing.assert_close(out_x, ref_x)
    for a, b in zip(out_y, ref_y):
        assert a["boxes"].dtype == torch.float32
        torch.testing.assert_close(a["boxes"], b["boxes"])
        torch.testing.assert_close(a["labels"], b["labels"])
    assert y_int[0]["boxes"].dtype == torch.int64  # the caller's targets are not modified


def test_prepare_batch_conversions_and_errors():
    from cvlib.data.transforms import prepare_batch

    x = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
    out, y = prepare_batch(x, [{"boxes": np.array([[0, 1, 3, 4]]), "labels": torch.tensor([0])}])
    assert out.dtype == torch.float32 and float(out.max()) == 1.0
    assert y[0]["boxes"].dtype == torch.float32 and y[0]["boxes"].tolist() == [[0.0, 1.0, 3.0, 4.0]]
    with pytest.raises(TypeError, match=r"got torch.int32; convert with x.float\(\) / max_value"):
        prepare_batch(torch.zeros(1, 3, 4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"x2 >= x1 .* got \[3.0, 0.0, 1.0, 2.0\] at row 0"):
        prepare_batch(x.float(), [{"boxes": torch.tensor([[3, 0, 1, 2]])}])
    with pytest.raises(ValueError, match="must be finite"):
        prepare_batch(x.float(), [{"boxes": torch.tensor([[0.0, 0.0, float("nan"), 2.0]])}])
    with pytest.raises(TypeError, match="real numbers"):
        prepare_batch(x.float(), [{"boxes": torch.ones(1, 4, dtype=torch.bool)}])


def test_mix_and_normalize_argument_checks():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"class labels must be in \[0, 4\) .* got values from -1 to 2"):
        MixUp(0.2, 4)(x, torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"got values from 0 to 7"):
        CutMix(1.0, 4)(x, torch.tensor([0, 7]))
    with pytest.raises(TypeError, match="class labels .* must be integers, got torch.bool"):
        MixUp(0.2, 4)(x, torch.tensor([True, False]))
    with pytest.raises(TypeError, match="mean must be a sequence of floats .* got NoneType"):
        Normalize(None, [0.2] * 3)
    with pytest.raises(TypeError, match="std must be a sequence"):
        Normalize([0.5] * 3, None)
    with pytest.raises(ValueError, match="mean must be finite"):
        Normalize([float("nan")] * 3, [0.2] * 3)
