import pytest
import torch

from cvlib.ops.shift import center_crop_and_pad, random_shift, shift_images


def _brute_force_shift(x, dx, dy, fill=0.0):
    out = torch.full_like(x, fill)
    h, w = x.shape[-2:]
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[..., i, j] = x[..., i - dy, j - dx]
    return out


@pytest.mark.parametrize("dx,dy", [(0, 0), (2, 1), (-3, 2), (1, -4), (7, 0), (-9, 3)])
def test_shift_matches_brute_force(dx, dy):
    x = torch.arange(2 * 3 * 6 * 7, dtype=torch.float32).reshape(2, 3, 6, 7)
    torch.testing.assert_close(shift_images(x, dx, dy, fill=-1.0), _brute_force_shift(x, dx, dy, fill=-1.0))


@pytest.mark.parametrize("dx,dy", [(2, 1), (-1, 3), (0, -2)])
def test_shift_then_shift_back_restores_interior(dx, dy):
    x = torch.rand(4, 1, 10, 12)
    back = shift_images(shift_images(x, dx, dy), -dx, -dy)
    h, w = x.shape[-2:]
    rows = slice(max(-dy, 0), h - max(dy, 0))
    cols = slice(max(-dx, 0), w - max(dx, 0))
    torch.testing.assert_close(back[..., rows, cols], x[..., rows, cols])
    # ... and the strip that left the frame is gone
    assert (back == 0).sum() == x.numel() - back[..., rows, cols].numel()


def test_per_image_shifts_match_individual_shifts():
    x = torch.rand(3, 2, 8, 8)
    dx, dy = torch.tensor([1, -2, 0]), torch.tensor([0, 3, -1])
    out = shift_images(x, dx, dy)
    for i in range(3):
        torch.testing.assert_close(out[i], shift_images(x[i], int(dx[i]), int(dy[i])))


def test_shift_keeps_dtype_for_integers():
    x = torch.randint(0, 255, (1, 1, 5, 5), dtype=torch.uint8)
    out = shift_images(x, 1, 1)
    assert (
        out.dtype == torch.uint8
        and out[0, 0, 0].sum() == 0
        and torch.equal(out[0, 0, 1:, 1:], x[0, 0, :-1, :-1])
    )


def test_shift_rejects_wrong_number_of_shifts():
    with pytest.raises(ValueError, match=r"dx must have one shift per image \(2\)"):
        shift_images(torch.zeros(2, 1, 4, 4), torch.tensor([1, 2, 3]), 0)
    with pytest.raises(TypeError, match="dy must be an int"):
        shift_images(torch.zeros(2, 1, 4, 4), 0, 1.5)


def test_random_shift_is_reproducible_and_bounded():
    x = torch.zeros(16, 1, 9, 9)
    x[:, :, 4, 4] = 1.0  # a single bright pixel in the centre
    out = random_shift(x, 2, generator=torch.Generator().manual_seed(0))
    again = random_shift(x, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    pos = out[:, 0].flatten(1).argmax(1)
    r, c = pos // 9, pos % 9
    assert ((r - 4).abs() <= 2).all() and ((c - 4).abs() <= 2).all()
    assert len(set(zip(r.tolist(), c.tolist()))) > 1
    with pytest.raises(ValueError, match="max_shift must be an int >= 0"):
        random_shift(x, -1)


def test_center_crop_and_pad():
    x = torch.ones(2, 1, 6, 7)
    out = center_crop_and_pad(x, (2, 3), fill=0.0)
    assert out.shape == x.shape and out.sum() == 2 * 2 * 3
    assert torch.equal(out[0, 0, 2:4, 2:5], torch.ones(2, 3))
    torch.testing.assert_close(center_crop_and_pad(x, (6, 7)), x)
    with pytest.raises(ValueError, match="size must be between 1 and the image size"):
        center_crop_and_pad(x, 8)
