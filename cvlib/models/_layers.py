"""Shared building blocks for the model families.

- ``ConvNormAct``: convolution -> normalisation -> activation as an ``nn.Sequential`` (state-dict keys
  ``0.weight``, ``1.weight``, ... like torchvision's ``Conv2dNormActivation``).
- ``SqueezeExcite``: the squeeze-and-excitation block of Hu et al. 2018 (arXiv:1709.01507), with 1x1
  convolutions ``fc1``/``fc2`` so torchvision's ``SqueezeExcitation`` and timm's ``SEModule`` keys match.
- ``StochasticDepth``: drop whole residual branches at random in training (Huang et al. 2016,
  arXiv:1603.09382), as used by EfficientNet.
- ``make_divisible``: round a channel count to a multiple of ``divisor`` (MobileNet, arXiv:1801.04381).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["ConvNormAct", "SqueezeExcite", "StochasticDepth", "stochastic_depth", "make_divisible"]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never going below ``min_value`` (default
    ``divisor``) and never more than 10% below ``v``.

    This is the channel rounding of the MobileNet/EfficientNet reference code: scaled widths stay
    multiples of 8, which suits hardware, without shrinking a layer by more than 10%.

    Args:
        v (float): the unrounded channel count (e.g. ``32 * width_mult``).
        divisor (int): the multiple to round to (> 0).
        min_value (int | None): the smallest allowed result; ``None`` means ``divisor``.

    Returns:
        int: the rounded channel count.
    """
    if divisor <= 0:
        raise ValueError(f"divisor must be a positive int, got {divisor!r}")
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down lost more than 10%: go one step up
        new_v += divisor
    return new_v


class ConvNormAct(nn.Sequential):
    """Conv2d -> norm -> activation, as a Sequential (children ``0``, ``1``, ``2``).

    ``norm_layer=None`` or ``activation=None`` leave that child out. The convolution has a bias only
    when there is no norm layer (unless ``bias`` says otherwise). ``padding=None`` means "same" padding
    for odd kernels: ``(kernel_size - 1) // 2 * dilation``.

    Args:
        in_channels (int): input channels C_in.
        out_channels (int): output channels C_out.
        kernel_size (int): square kernel size.
        stride (int): convolution stride.
        padding (int | None): zero padding; ``None`` for "same" padding.
        groups (int): convolution groups (``groups=in_channels`` is a depthwise convolution).
        dilation (int): kernel dilation.
        norm_layer (Callable[[int], nn.Module] | None): e.g. ``nn.BatchNorm2d``.
        activation (Callable[..., nn.Module] | None): e.g. ``nn.ReLU``; built with ``inplace=True``
            when its constructor accepts it.
        bias (bool | None): force the convolution's bias on or off; ``None`` = ``norm_layer is None``.

    Shapes: input Tensor[B, C_in, H, W] -> output Tensor[B, C_out, H', W'].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        dilation: int = 1,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
        activation: Callable[..., nn.Module] | None = nn.ReLU,
        bias: bool | None = None,
    ) -> None:
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by "
                f"groups ({groups})"
            )
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=bias,
            )
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation is not None:
            try:
                layers.append(activation(inplace=True))
            except TypeError:  # activations without an ``inplace`` argument (nn.GELU, nn.Sigmoid)
                layers.append(activation())
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018, arXiv:1709.01507): rescale each channel by a gate
    computed from the globally pooled features.

    ``x * gate(fc2(act(fc1(avgpool(x)))))`` with 1x1 convolutions ``fc1`` (C -> squeeze_channels) and
    ``fc2`` (squeeze_channels -> C), both with bias, so the state-dict keys are ``fc1.weight``,
    ``fc1.bias``, ``fc2.weight``, ``fc2.bias`` as in torchvision and timm.

    Args:
        channels (int): channels C of the input (and output).
        squeeze_channels (int): bottleneck width (C / r for reduction ratio r in the paper).
        activation (Callable[..., nn.Module]): activation after ``fc1`` (ReLU in the paper, SiLU in
            EfficientNet).
        gate (Callable[..., nn.Module]): the gating function (sigmoid in the paper).

    Shapes: input Tensor[B, C, H, W] -> output Tensor[B, C, H, W].
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        activation: Callable[..., nn.Module] = nn.ReLU,
        gate: Callable[..., nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        if channels <= 0 or squeeze_channels <= 0:
            raise ValueError(
                f"channels and squeeze_channels must be positive, got {channels} and {squeeze_channels}"
            )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1, bias=True)
        self.act = activation()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1, bias=True)
        self.gate = gate()

    def scale(self, x: Tensor) -> Tensor:
        """The per-channel gate, Tensor[B, C, 1, 1] (values in (0, 1) for the sigmoid gate)."""
        return self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale(x)


def stochastic_depth(x: Tensor, p: float, mode: str = "row", training: bool = True) -> Tensor:
    """Zero the residual branch ``x`` with probability ``p`` and scale survivors by ``1 / (1 - p)``.

    Args:
        x (Tensor[B, ...]): the output of a residual branch.
        p (float): drop probability in [0, 1].
        mode (str): ``"row"`` drops each sample independently, ``"batch"`` the whole batch at once.
        training (bool): identity when False.

    Returns:
        Tensor[B, ...]: same shape as ``x``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    allowed = ("row", "batch")
    if mode not in allowed:
        raise ValueError(f"mode must be one of {allowed}, got {mode!r}")
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    shape = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
    if survival > 0.0:
        keep.div_(survival)
    return x * keep


class StochasticDepth(nn.Module):
    """Module form of :func:`stochastic_depth` (Huang et al. 2016, arXiv:1603.09382); identity in eval.

    Args:
        p (float): drop probability in [0, 1].
        mode (str): ``"row"`` (per sample) or ``"batch"``.
    """

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        allowed = ("row", "batch")
        if mode not in allowed:
            raise ValueError(f"mode must be one of {allowed}, got {mode!r}")
        self.p = p
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


def check_model_input(model: nn.Module, x: object, *, ndim: int | tuple[int, ...] = 4) -> Tensor:
    """Entry check of a model's ``forward``: a float image batch whose channels fit the first conv.

    uint8 (or any integer) images raise a TypeError that says to convert with ``x.float() / 255``:
    cvlib's models never rescale silently (a float image already in [0, 1] would be divided twice).

    Shapes: x Tensor[B, C, H, W]; returned unchanged.
    """
    from cvlib._validate import check_image

    # not cached: a layer swap (transfer learning) may change the first conv
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), False)
    c = first.in_channels if first is not False else "C"
    x = check_image(x, "x", ndim=ndim, shape=f"[B, {c}, H, W]" if ndim == 4 else "")
    if first is not False and x.dim() == 4 and x.shape[1] != first.in_channels:
        raise ValueError(
            f"x must have {first.in_channels} channels [B, {first.in_channels}, H, W], got {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")
    return x
