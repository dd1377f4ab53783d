"""Classic 3x3 image kernels and their per-channel application.

The Sobel operator is from Sobel & Feldman (1968), the Laplacian and box/Gaussian blurs are the
textbook discrete operators (Gonzalez & Woods, *Digital Image Processing*, ch. 3). Convolution as
the building block of CNNs: LeCun et al. (1998), "Gradient-based learning applied to document
recognition". There is no arXiv id for these; the CNN-basics chapter cites them from
``references.bib``.

Like :class:`torch.nn.Conv2d`, :func:`apply_kernel` computes a *cross-correlation*: the kernel is
not flipped. For the symmetric kernels (blurs, Laplacian, sharpen) this makes no difference; for
Sobel it only changes the sign of the response.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["KERNELS", "get_kernel", "apply_kernel"]

KERNELS: dict[str, Tensor] = {
    "identity": torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
    "box_blur": torch.full((3, 3), 1.0 / 9.0),
    "gaussian_blur": torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0,
    "sharpen": torch.tensor([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
    # d/dx: responds to vertical edges (intensity changing from left to right)
    "sobel_x": torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]),
    # d/dy: responds to horizontal edges (intensity changing from top to bottom)
    "sobel_y": torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]),
    "laplacian": torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
    "emboss": torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]),
}
"""Named 3x3 kernels (float32, CPU). Use :func:`get_kernel` for a copy on a given device/dtype."""

_PADDINGS = ("same", "valid")
_PADDING_MODES = ("zeros", "replicate", "reflect")


def get_kernel(
    name: str, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """A copy of the named kernel from :data:`KERNELS`.

    Returns:
        Tensor[3, 3]: on ``device`` with ``dtype`` (defaults: CPU, float32).

    Raises:
        ValueError: for an unknown name (the error lists the known ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; expected one of {tuple(KERNELS)}")
    return KERNELS[name].to(device=device, dtype=dtype or torch.float32, copy=True)


def apply_kernel(
    images: Tensor,
    kernel: Tensor | str,
    *,
    padding: str = "same",
    padding_mode: str = "replicate",
) -> Tensor:
    """Apply one 2D kernel to every channel of every image independently (depthwise cross-correlation).

    Args:
        images (Tensor[B, C, H, W] | Tensor[C, H, W] | Tensor[H, W]): any float or integer dtype
            (integers are converted to float32), any device.
        kernel (Tensor[kh, kw] | str): the kernel, or a name from :data:`KERNELS`. It is moved to
            the images' device and dtype.
        padding: ``"same"`` (output has the input's size; needs odd ``kh`` and ``kw``) or ``"valid"``
            (no padding; output ``[H - kh + 1, W - kw + 1]``).
        padding_mode: how ``"same"`` fills the border: ``"zeros"``, ``"replicate"`` or ``"reflect"``.

    Returns:
        Tensor: the response, with the same number of dimensions as ``images``.

    Raises:
        ValueError: for a bad shape or option.
        TypeError: if ``images`` or ``kernel`` has the wrong type.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a Tensor, got {type(images).__name__}")
    if images.dim() not in (2, 3, 4):
        raise ValueError(f"images must be [B, C, H, W], [C, H, W] or [H, W], got {tuple(images.shape)}")
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    x = images if images.is_floating_point() else images.float()
    if isinstance(kernel, str):
        kernel = get_kernel(kernel)
    if not isinstance(kernel, Tensor):
        raise TypeError(f"kernel must be a Tensor or a kernel name, got {type(kernel).__name__}")
    if kernel.dim() != 2:
        raise ValueError(f"kernel must be [kh, kw], got {tuple(kernel.shape)}")
    kh, kw = kernel.shape
    if padding == "same" and (kh % 2 == 0 or kw % 2 == 0):
        raise ValueError(f"padding='same' needs an odd kernel size, got {(kh, kw)}")

    ndim = x.dim()
    x4 = x.reshape((1,) * (4 - ndim) + tuple(x.shape))  # [B, C, H, W]
    b, c, h, w = x4.shape
    if padding == "valid" and (h < kh or w < kw):
        raise ValueError(f"images ({h}x{w}) are smaller than the kernel ({kh}x{kw}) with padding='valid'")
    if padding == "same":
        ph, pw = kh // 2, kw // 2
        mode = "constant" if padding_mode == "zeros" else padding_mode
        if mode == "reflect" and (h <= ph or w <= pw):
            raise ValueError(f"padding_mode='reflect' needs images larger than {(ph, pw)}, got {(h, w)}")
        x4 = F.pad(x4, (pw, pw, ph, ph), mode=mode)
    weight = kernel.to(device=x4.device, dtype=x4.dtype).expand(c, 1, kh, kw).contiguous()  # [C, 1, kh, kw]
    out = F.conv2d(x4, weight, groups=c)  # [B, C, H', W']
    return out.reshape(tuple(x.shape[:-2]) + tuple(out.shape[-2:]))
