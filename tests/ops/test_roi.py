"""RoIAlign / RoIPool against brute-force per-box, per-bin, per-sample loops written here."""

import math

import pytest
import torch

from cvlib.ops.roi import roi_align, roi_pool


def bilinear(f, y, x):
    """Value of the [C, H, W] map at (y, x), with the out-of-map and edge rules of RoIAlign."""
    h, w = f.shape[-2:]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return torch.zeros(f.shape[0], dtype=f.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * f[:, y0, x0] + hy * lx * f[:, y0, x1] + ly * hx * f[:, y1, x0] + ly * lx * f[:, y1, x1]


def ref_roi_align(feat, rois, out, scale, ratio, aligned):
    res = torch.zeros(len(rois), feat.shape[1], out, out, dtype=feat.dtype)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sx, sy = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sx, y2 * scale - off - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = ratio if ratio > 0 else math.ceil(rh / out)
        gw = ratio if ratio > 0 else math.ceil(rw / out)
        gh, gw = max(gh, 1), max(gw, 1)
        for ph in range(out):
            for pw in range(out):
                acc = 0
                for iy in range(gh):
                    y = sy + ph * rh / out + (iy + 0.5) * rh / out / gh
                    for ix in range(gw):
                        x = sx + pw * rw / out + (ix + 0.5) * rw / out / gw
                        acc = acc + bilinear(feat[int(b)], y, x)
                res[k, :, ph, pw] = acc / (gh * gw)
    return res


def ref_roi_pool(feat, rois, out, scale):
    h, w = feat.shape[-2:]
    res = torch.zeros(len(rois), feat.shape[1], out, out, dtype=feat.dtype)
    for k, (b, *xyxy) in enumerate(rois.tolist()):
        # C's round (torchvision's kernel): halves away from zero
        x1, y1, x2, y2 = [math.copysign(math.floor(abs(v * scale) + 0.5), v) for v in xyxy]
        x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
        rw, rh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        for ph in range(out):
            hs = min(max(math.floor(ph * rh / out) + y1, 0), h)
            he = min(max(math.ceil((ph + 1) * rh / out) + y1, 0), h)
            for pw in range(out):
                ws = min(max(math.floor(pw * rw / out) + x1, 0), w)
                we = min(max(math.ceil((pw + 1) * rw / out) + x1, 0), w)
                if he > hs and we > ws:
                    res[k, :, ph, pw] = feat[int(b), :, hs:he, ws:we].amax(dim=(1, 2))
    return res


def make_rois(seed, k=7, size=24.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * size - 3  # some start outside the map
    wh = torch.rand(k, 2, generator=g, dtype=torch.float64) * size * 0.8
    wh[0] = 0.3  # tiny roi
    b = torch.randint(0, 2, (k, 1), generator=g).double()
    return torch.cat([b, xy, xy + wh], dim=1)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ratio", [-1, 2])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_loops(seed, ratio, aligned):
    feat = torch.randn(2, 3, 12, 10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    rois = make_rois(seed)
    got = roi_align(feat, rois, 3, spatial_scale=0.5, sampling_ratio=ratio, aligned=aligned)
    torch.testing.assert_close(got, ref_roi_align(feat, rois, 3, 0.5, ratio, aligned))


def test_roi_align_list_input_and_grad():
    feat = torch.randn(2, 4, 8, 8, dtype=torch.float64, requires_grad=True)
    boxes = [
        torch.tensor([[0.0, 0, 7, 7]], dtype=torch.float64),
        torch.tensor([[1.0, 2, 5, 6], [0, 0, 2, 2]]).double(),
    ]
    out = roi_align(feat, boxes, (2, 3), sampling_ratio=2, aligned=True)
    assert out.shape == (3, 4, 2, 3)
    rois = torch.tensor([[0.0, 0, 0, 7, 7], [1, 1, 2, 5, 6], [1, 0, 0, 2, 2]], dtype=torch.float64)
    torch.testing.assert_close(out, roi_align(feat, rois, (2, 3), sampling_ratio=2, aligned=True))
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 2, sampling_ratio=2), (feat,))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roi_pool_matches_loops(seed):
    feat = torch.randn(2, 3, 12, 10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    rois = make_rois(seed)
    torch.testing.assert_close(roi_pool(feat, rois, 3, 0.5), ref_roi_pool(feat, rois, 3, 0.5))


def test_empty_and_errors():
    feat = torch.randn(1, 2, 5, 5)
    assert roi_align(feat, torch.zeros(0, 5), 7).shape == (0, 2, 7, 7)
    assert roi_pool(feat, [torch.zeros(0, 4)], 2).shape == (0, 2, 2, 2)
    with pytest.raises(ValueError, match=r"roi 1 has image index 3.0, expected an int in \[0, 1\)"):
        roi_align(feat, torch.tensor([[0.0, 0, 0, 1, 1], [3, 0, 0, 1, 1]]), 2)
    with pytest.raises(ValueError, match=r"boxes\[0\] must be a Tensor\[K, 4\]"):
        roi_align(feat, [torch.zeros(2, 5)], 2)
    with pytest.raises(ValueError, match=r"input must be a Tensor\[B, C, H, W\]"):
        roi_pool(feat[0], torch.zeros(0, 5), 2)
    with pytest.raises(ValueError, match="non-finite value at roi 0"):
        roi_align(feat, torch.tensor([[0.0, float("nan"), 0, 1, 1]]), 2)


def test_low_precision_input_keeps_coordinates_exact():
    # bfloat16 features: sampling positions are computed in float32, the result is cast back
    feat = torch.randn(1, 2, 64, 300, generator=torch.Generator().manual_seed(0))
    rois = torch.tensor([[0.0, 257.3, 3.1, 291.7, 40.2]])
    ref = roi_align(feat.bfloat16().float(), rois, 3, sampling_ratio=2)
    got = roi_align(feat.bfloat16(), rois, 3, sampling_ratio=2)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), ref, atol=0.02, rtol=0.02)
    assert roi_pool(feat.half(), rois, 2).dtype == torch.float16


def test_matches_torchvision_when_available():
    tv = pytest.importorskip("torchvision.ops")
    feat = torch.randn(2, 3, 20, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rois = make_rois(5, k=20, size=30.0)
    for aligned in (False, True):
        for ratio in (-1, 2):
            torch.testing.assert_close(
                roi_align(feat, rois, (4, 3), 0.5, ratio, aligned),
                tv.roi_align(feat, rois, (4, 3), 0.5, ratio, aligned),
            )
    torch.testing.assert_close(roi_pool(feat, rois, (4, 3), 0.5), tv.roi_pool(feat, rois, (4, 3), 0.5))


def test_roi_pool_rounds_half_away_from_zero():
    # stride-16 half-cell boxes: 40 / 16 = 2.5 -> 3 (half to even would give 2), 72 / 16 = 4.5 -> 5
    feat = torch.arange(8 * 8, dtype=torch.float32).view(1, 1, 8, 8)
    out = roi_pool(feat, torch.tensor([[0.0, 40, 40, 72, 72]]), 1, spatial_scale=1 / 16)
    assert out.item() == feat[0, 0, 3:6, 3:6].max().item() == 45.0
    # negative halves go away from zero too: -8 / 16 = -0.5 -> -1, clipped to the map
    rois = torch.tensor([[0.0, -8, -8, 24, 24]])  # cells [-1, 2] (half to even: [0, 2])
    out = roi_pool(feat, rois, 2, spatial_scale=1 / 16)  # 4 cells -> 2 bins of 2: [-1, 0], [1, 2]
    assert out[0, 0].tolist() == [[feat[0, 0, 0, 0].item(), feat[0, 0, 0, 2].item()], [16.0, 18.0]]


def test_roi_align_rejects_inverted_boxes_and_bad_scale():
    feat = torch.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match=r"roi 1 is inverted"):
        roi_align(feat, torch.tensor([[0.0, 0, 0, 4, 4], [0, 5, 0, 2, 4]]), 2)
    with pytest.raises(ValueError, match=r"roi 0 is inverted"):
        roi_align(feat, [torch.tensor([[0.0, 5, 4, 1]])], 2)
    for bad in (-0.5, 0.0, float("nan")):
        with pytest.raises(ValueError, match="spatial_scale must be a finite number > 0"):
            roi_align(feat, torch.tensor([[0.0, 0, 0, 4, 4]]), 2, spatial_scale=bad)
    with pytest.raises(ValueError, match="spatial_scale"):
        roi_pool(feat, torch.tensor([[0.0, 0, 0, 4, 4]]), 2, spatial_scale=-1.0)


def test_roi_align_chunked_equals_unchunked_and_memory_is_bounded():
    from cvlib.ops.roi import _roi_align

    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, 40, 40, generator=g)
    rois = torch.cat(
        [torch.randint(0, 2, (9, 1), generator=g).float(), torch.rand(9, 2, generator=g) * 15], 1
    )
    rois = torch.cat([rois, rois[:, 1:] + torch.rand(9, 2, generator=g) * 30 + 1], 1)
    full = _roi_align(feat, rois, (3, 4), 0.9, -1, True, max_elements=2**40)  # one block
    for budget in (1, 500, 5000, 2**15):  # per-row blocks, one roi per block, several rois per block
        torch.testing.assert_close(_roi_align(feat, rois, (3, 4), 0.9, -1, True, max_elements=budget), full)
    torch.testing.assert_close(roi_align(feat, rois, (3, 4), 0.9, -1, True), full)
    # the case, 64 rois of 500 px on a 64-channel 512 x 512 map, asked for 4.16 GB per tap
    # (65 MB per roi); two such rois here (the work, not the memory, grows with their number). The
    # default block is 2**24 samples x channels (64 MB in float32): record the largest block
    big = torch.zeros(1, 64, 512, 512)
    boxes = torch.tensor([[0.0, 5, 5, 505, 505]]).repeat(2, 1)
    sizes = []
    real = torch.Tensor.index_select

    def spy(self, dim, index):
        sizes.append(index.numel() * self.shape[1])
        return real(self, dim, index)

    torch.Tensor.index_select = spy
    try:
        out = roi_align(big, boxes, 7, sampling_ratio=-1)
    finally:
        torch.Tensor.index_select = real
    assert out.shape == (2, 64, 7, 7)
    # each gather is a chunk of at most 2**20 cells x channels (4 MB in float32), a 16th of one roi's crop
    assert sizes and max(sizes) <= 2**20 < 504 * 504 * 64 // 15


def mixed_rois(seed, k=40, size=24.0):
    """Tiny, large, zero-size and fully-outside rois on two images, in random order."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * size * 1.6 - size * 0.4
    wh = torch.rand(k, 2, generator=g, dtype=torch.float64) ** 3 * size * 1.5
    wh[:4] = 0  # zero-size rois
    wh[4:8] = 0.2  # smaller than a cell
    xy[8:10] = -size  # fully outside (above / left of the map)
    xy[10:12] = size * 3  # fully outside (below / right)
    b = torch.randint(0, 2, (k, 1), generator=g).double()
    return torch.cat([b, xy, xy + wh], dim=1)[torch.randperm(k, generator=g)]


@pytest.mark.parametrize("ratio", [1, 2, -1])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_mixed_sizes_match_loops(ratio, aligned):
    # rois of very different sizes in one call: grouped by crop size, each still on its own grid
    feat = torch.randn(2, 2, 13, 11, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rois = mixed_rois(ratio + 10 * aligned)
    got = roi_align(feat, rois, 3, spatial_scale=0.5, sampling_ratio=ratio, aligned=aligned)
    torch.testing.assert_close(got, ref_roi_align(feat, rois, 3, 0.5, ratio, aligned))


def test_roi_align_each_roi_independent_of_the_others():
    # a small roi gives the same output alone, next to a huge roi (another grid), and in any order
    feat = torch.randn(2, 3, 40, 50, generator=torch.Generator().manual_seed(1))
    small = torch.tensor([[1.0, 10.3, 5.2, 14.9, 12.8]])
    huge = torch.tensor([[0.0, -30.0, -20.0, 90.0, 70.0]])
    alone = roi_align(feat, small, (4, 5), 1.0, -1, True)
    both = roi_align(feat, torch.cat([huge, small, huge]), (4, 5), 1.0, -1, True)
    torch.testing.assert_close(both[1:2], alone, rtol=1e-6, atol=1e-6)
    rois = mixed_rois(4, k=60, size=45.0).float()
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(2))
    out = roi_align(feat, rois, 3, 1.0, -1, False)
    torch.testing.assert_close(
        roi_align(feat, rois[perm], 3, 1.0, -1, False), out[perm], rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("budget", [1, 200, 3000, 2**40])
def test_roi_align_chunks_of_many_rois_and_rows(budget):
    from cvlib.ops.roi import _roi_align

    feat = torch.randn(2, 3, 30, 26, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    rois = mixed_rois(7, k=50, size=60.0)
    got = _roi_align(feat, rois, (3, 2), 0.5, -1, False, max_elements=budget)
    torch.testing.assert_close(got, ref_roi_align_hw(feat, rois, (3, 2), 0.5, -1, False))


def ref_roi_align_hw(feat, rois, out, scale, ratio, aligned):
    """:func:`ref_roi_align` for a non-square output, from its per-bin definition."""
    oh, ow = out
    res = torch.zeros(len(rois), feat.shape[1], oh, ow, dtype=feat.dtype)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sx, sy = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sx, y2 * scale - off - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = max(ratio if ratio > 0 else math.ceil(rh / oh), 1)
        gw = max(ratio if ratio > 0 else math.ceil(rw / ow), 1)
        for ph in range(oh):
            for pw in range(ow):
                acc = 0
                for iy in range(gh):
                    y = sy + ph * rh / oh + (iy + 0.5) * rh / oh / gh
                    for ix in range(gw):
                        x = sx + pw * rw / ow + (ix + 0.5) * rw / ow / gw
                        acc = acc + bilinear(feat[int(b)], y, x)
                res[k, :, ph, pw] = acc / (gh * gw)
    return res


def test_roi_align_gradcheck_adaptive_grid_and_chunks():
    from cvlib.ops.roi import _roi_align

    feat = torch.randn(2, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor(
        [[0.0, -1.5, 0.5, 9.0, 4.0], [1, 2.2, 1.1, 3.4, 6.9], [1, 0.3, 0.2, 0.4, 0.3], [0, 5, 5, 20, 20]],
        dtype=torch.float64,
    )
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, (2, 3), 0.8, -1, True), (feat,))
    assert torch.autograd.gradcheck(
        lambda f: _roi_align(f, rois, (2, 3), 0.8, 1, False, max_elements=5), (feat,)
    )


def test_malformed_roi_inputs_are_clear_errors():
    feat, rois = torch.rand(1, 2, 8, 8), torch.tensor([[0.0, 0, 0, 4, 4]])
    for size in (None, 2.0, (2,), (2, 0), "ab", True):
        with pytest.raises(ValueError, match="output_size must be a positive int"):
            roi_align(feat, rois, size)
    with pytest.raises(TypeError, match="input must be a floating-point feature map, got dtype torch.int64"):
        roi_pool(feat.long(), rois, 2)
    with pytest.raises(TypeError, match="input must be a Tensor"):
        roi_align(feat.numpy(), rois, 2)
    with pytest.raises(TypeError, match=r"boxes\[0\] must hold real coordinates"):
        roi_align(feat, [rois[:, 1:].to(torch.complex64)], 2)
    with pytest.raises(TypeError, match="spatial_scale must be a float"):
        roi_align(feat, rois, 2, spatial_scale="a")


def test_roi_align_under_autocast_keeps_float32_sums():
    # the matmuls must not drop to bfloat16 under autocast: same result as outside it
    feat = torch.randn(2, 4, 20, 20, generator=torch.Generator().manual_seed(0))
    rois = mixed_rois(9, k=12, size=40.0).float()
    ref = roi_align(feat, rois, 5, 0.5, 2, True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = roi_align(feat, rois, 5, 0.5, 2, True)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
