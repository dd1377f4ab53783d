import pytest
import torch

from cvlib.ops.filters import apply_kernel, get_kernel

pytest.importorskip("ipywidgets")

from cvlib.widgets.kernels import kernel_explorer  # noqa: E402


def test_preset_fills_the_inputs_and_editing_switches_to_custom():
    img = torch.rand(3, 12, 12)
    ex = kernel_explorer(img, initial="laplacian")
    assert torch.equal(ex.kernel, get_kernel("laplacian"))
    ex.preset.value = "sobel_y"
    assert torch.equal(ex.kernel, get_kernel("sobel_y"))
    torch.testing.assert_close(ex.response(), apply_kernel(img.mean(0), "sobel_y"))
    ex.cells[4].value = 2.0
    assert ex.preset.value == "custom" and ex.kernel[1, 1] == 2.0
    ex.preset.value = "identity"
    torch.testing.assert_close(ex.response(), img.mean(0))


def test_rejects_unknown_preset():
    with pytest.raises(ValueError, match="initial must be one of"):
        kernel_explorer(torch.rand(8, 8), initial="blurry")
