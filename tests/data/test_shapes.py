"""Tests for the procedural shapes scenes (cvlib.data.shapes)."""

import pytest
import torch

from cvlib.data.shapes import (
    CLASSES,
    COARSE_OF_FINE,
    FINE_CLASSES,
    ShapesClassification,
    ShapesConfig,
    ShapesDetection,
    ShapesSegmentation,
    coarse_from_fine,
    collate_detection,
    generate_scenes,
    shapes_classification,
    shapes_detection,
    shapes_segmentation,
)

MULTI = ShapesConfig(image_size=48, num_objects=(1, 4), size_range=(0.08, 0.2), overlap=0.4)


def test_class_tables():
    assert len(COARSE_OF_FINE) == len(FINE_CLASSES)
    # every fine name starts with its coarse name, and every coarse class has fine variants
    for f, c in enumerate(COARSE_OF_FINE):
        assert FINE_CLASSES[f].startswith(CLASSES[c])
    assert sorted(set(COARSE_OF_FINE)) == list(range(len(CLASSES)))


def test_shapes_dtypes_and_ranges():
    b = generate_scenes(6, MULTI, seed=0)
    assert b.images.shape == (6, 3, 48, 48) and b.images.dtype == torch.float32
    assert 0 <= b.images.min() and b.images.max() <= 1
    assert b.masks.shape == b.instances.shape == (6, 48, 48)
    assert b.masks.dtype == b.instances.dtype == b.labels.dtype == torch.int64
    assert b.masks.max() <= len(CLASSES) and b.labels.max() < len(CLASSES)
    assert len(b) == len(b.boxes) == len(b.box_labels) == 6


def test_determinism_by_seed():
    a, b, c = (generate_scenes(5, MULTI, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.images, b.images) and torch.equal(a.instances, b.instances)
    assert all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes))
    assert not torch.equal(a.images, c.images)


def test_masks_instances_boxes_consistent():
    b = generate_scenes(12, MULTI, seed=1)
    S = MULTI.image_size
    assert sum(len(x) for x in b.boxes) > 12  # several scenes hold more than one shape
    for i in range(len(b)):
        inst, mask = b.instances[i], b.masks[i]
        assert torch.equal(inst == 0, mask == 0)  # background agrees
        n = len(b.boxes[i])
        assert n >= 1 and inst.max() == n and len(b.box_labels[i]) == n
        for k in range(n):
            ys, xs = torch.nonzero(inst == k + 1, as_tuple=True)
            tight = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
            assert torch.equal(b.boxes[i][k], tight)
            assert torch.all(mask[ys, xs] == b.box_labels[i][k])  # label of mask pixels = instance label
        assert b.boxes[i].min() >= 0 and b.boxes[i].max() <= S


def test_scene_label_is_dominant_shape():
    b = generate_scenes(10, MULTI, seed=2)
    for i in range(len(b)):
        areas = torch.bincount(b.instances[i].flatten(), minlength=len(b.boxes[i]) + 1)[1:]
        assert b.labels[i] + 1 == b.box_labels[i][areas.argmax()]


def test_coarse_labels_derived_from_fine():
    coarse = generate_scenes(40, ShapesConfig(), seed=5)
    fine = generate_scenes(40, ShapesConfig(fine=True), seed=5)
    assert torch.equal(coarse.images, fine.images)  # the label space does not change the scene
    assert torch.equal(fine.labels, fine.fine_labels) and torch.equal(coarse.labels, coarse.coarse_labels)
    assert torch.equal(coarse_from_fine(fine.fine_labels), coarse.labels)
    assert torch.equal(coarse_from_fine(fine.masks.clamp(min=1) - 1) + 1, coarse.masks.clamp(min=1))
    assert fine.labels.unique().numel() == len(FINE_CLASSES)


def test_class_subset_and_balance():
    b = generate_scenes(100, ShapesConfig(classes=("circle", "cross")), seed=0)
    assert set(b.labels.tolist()) == {CLASSES.index("circle"), CLASSES.index("cross")}
    counts = torch.bincount(generate_scenes(400, ShapesConfig(fine=True), seed=0).labels)
    assert counts.min() > 0.6 * counts.max()  # roughly balanced fine classes


def test_every_placed_object_is_visible():
    # small shapes with disjoint bounding circles: all three are placed and none is hidden
    cfg = ShapesConfig(image_size=64, num_objects=(3, 3), size_range=(0.08, 0.12), overlap=0.0)
    b = generate_scenes(8, cfg, seed=0)
    assert [len(x) for x in b.boxes] == [3] * 8
    assert all(int(inst.max()) == 3 for inst in b.instances)


def test_device_following():
    b = generate_scenes(3, MULTI, seed=0, device="cpu")
    assert b.images.device.type == "cpu" and b.boxes[0].device.type == "cpu"
    if torch.cuda.is_available():
        g = generate_scenes(3, MULTI, seed=0, device="cuda")
        assert g.images.device.type == "cuda" and g.boxes[0].device.type == "cuda"
        assert torch.equal(g.instances.cpu(), b.instances)


def test_task_views_and_datasets():
    x, y = shapes_classification(7, fine=True, seed=1)
    assert x.shape == (7, 3, 32, 32) and y.max() < len(FINE_CLASSES)
    x2, m = shapes_segmentation(7, fine=True, seed=1)
    assert torch.equal(x, x2) and torch.equal(m.flatten(1).max(1).values, y + 1)
    xd, targets = shapes_detection(4, MULTI, seed=0)
    assert xd.shape == (4, 3, 48, 48) and set(targets[0]) == {"boxes", "labels"}
    assert len(ShapesClassification(5)) == 5 and ShapesSegmentation(5, fine=True).classes == FINE_CLASSES
    ds = ShapesDetection(3)
    imgs, tg = ds.collate_fn([ds[0], ds[1], ds[2]])
    assert imgs.shape == (3, 3, 64, 64) and len(tg) == 3 and tg[1]["boxes"].shape[1] == 4
    assert generate_scenes(0).images.shape == (0, 3, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 8}, "image_size"),
        ({"num_objects": (3, 2)}, "num_objects"),
        ({"classes": ("hexagon",)}, "classes"),
        ({"size_range": (0.1, 0.6)}, "size_range"),
        ({"overlap": 1.0}, "overlap"),
        ({"noise": -0.1}, "noise"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShapesConfig(**kwargs)


def test_argument_errors():
    with pytest.raises(ValueError, match="n must be"):
        generate_scenes(-1)
    with pytest.raises(TypeError, match="config must be a ShapesConfig"):
        generate_scenes(2, {"image_size": 32})
    with pytest.raises(TypeError, match="fine_labels must be an integer"):
        coarse_from_fine(torch.zeros(3))
    with pytest.raises(ValueError, match="fine_labels must be in"):
        coarse_from_fine(torch.tensor([len(FINE_CLASSES)]))
    with pytest.raises(ValueError, match="at least one"):
        collate_detection([])
