import pytest
import torch
import torch.nn.functional as F

from cvlib.ops.filters import KERNELS, apply_kernel, get_kernel


@pytest.mark.parametrize("mode", ["zeros", "replicate", "reflect"])
def test_identity_kernel_returns_the_image(mode):
    x = torch.rand(2, 3, 7, 9)
    torch.testing.assert_close(apply_kernel(x, "identity", padding_mode=mode), x)


def test_shapes_for_every_rank_and_valid_padding():
    x = torch.rand(5, 6)
    assert apply_kernel(x, "box_blur").shape == (5, 6)
    assert apply_kernel(x[None], "box_blur").shape == (1, 5, 6)
    assert apply_kernel(x[None, None], "box_blur", padding="valid").shape == (1, 1, 3, 4)


def test_sobel_responds_only_at_a_vertical_step_edge():
    x = torch.zeros(1, 1, 8, 10)
    x[..., 5:] = 1.0  # step between columns 4 and 5
    gx = apply_kernel(x, "sobel_x")  # replicate padding: no border response
    cols = gx[0, 0].abs().sum(0)
    assert set(torch.nonzero(cols).flatten().tolist()) == {4, 5}
    torch.testing.assert_close(gx[0, 0, :, 4], torch.full((8,), 4.0))  # 1 + 2 + 1
    assert apply_kernel(x, "sobel_y").abs().max() == 0  # no horizontal edge anywhere


def test_matches_conv2d_per_channel_and_blur_preserves_constants():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 6)
    k = torch.randn(3, 3)
    out = apply_kernel(x, k, padding="valid")
    for c in range(3):
        torch.testing.assert_close(out[:, c : c + 1], F.conv2d(x[:, c : c + 1], k[None, None]))
    const = torch.full((1, 1, 5, 5), 0.3)
    for name in ("box_blur", "gaussian_blur", "sharpen"):
        torch.testing.assert_close(apply_kernel(const, name), const)
    assert apply_kernel(const, "laplacian").abs().max() < 1e-6


def test_integer_images_are_converted_to_float():
    x = torch.randint(0, 255, (1, 4, 4), dtype=torch.uint8)
    out = apply_kernel(x, "identity")
    assert out.dtype == torch.float32 and torch.equal(out, x.float())


def test_get_kernel_returns_a_copy():
    k = get_kernel("sharpen", dtype=torch.float64)
    k.zero_()
    assert KERNELS["sharpen"].sum() == 1.0 and k.dtype == torch.float64


def test_errors():
    with pytest.raises(ValueError, match="unknown kernel 'blurr'"):
        apply_kernel(torch.rand(4, 4), "blurr")
    with pytest.raises(ValueError, match=r"kernel must be \[kh, kw\], got \(1, 3, 3\)"):
        apply_kernel(torch.rand(4, 4), torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match="odd kernel size"):
        apply_kernel(torch.rand(4, 4), torch.ones(2, 2))
    with pytest.raises(ValueError, match="padding must be one of"):
        apply_kernel(torch.rand(4, 4), "identity", padding="full")
    with pytest.raises(ValueError, match=r"images must be \[B, C, H, W\]"):
        apply_kernel(torch.rand(4), "identity")


def test_follows_the_input_dtype():
    x = torch.rand(1, 2, 5, 5, dtype=torch.float64)
    out = apply_kernel(x, "gaussian_blur", padding_mode="zeros")
    assert out.dtype == torch.float64
    # zero padding: a corner pixel of a constant image keeps only 4/16 + 2/16 + 2/16 + 1/16 of its value
    torch.testing.assert_close(
        apply_kernel(torch.ones(1, 1, 4, 4, dtype=torch.float64), "gaussian_blur", padding_mode="zeros")[
            0, 0, 0, 0
        ],
        torch.tensor(9 / 16, dtype=torch.float64),
    )
