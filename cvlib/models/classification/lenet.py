"""LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11); no arXiv id).

Layers C1-S2-C3-S4-C5-F6-output on a 32x32 input: C1 6@5x5 -> 28x28, S2 2x2 subsampling -> 14x14,
C3 16@5x5 -> 10x10, S4 -> 5x5, C5 120@5x5 -> 1x1, F6 84 units, then K outputs.

Simplifications, each an argument:

* C3 is fully connected to the six S2 maps unless ``c3_table=True``, which builds the paper's sparse
  connection table (its Table I: maps 0-5 see 3 contiguous S2 maps, 6-11 see 4 contiguous, 12-14 see
  4 non-contiguous, 15 sees all six; 1,516 parameters instead of 2,416).
* The paper's subsampling layers multiply a 2x2 sum by a trainable coefficient and add a trainable
  bias; here ``pool="avg"`` is a plain average and ``pool="max"`` the modern max-pool.
* ``activation="tanh"`` is a plain tanh (the paper scales it, 1.7159 tanh(2x/3)); ``"relu"`` and
  ``"sigmoid"`` are for the activation experiment of chapter 3.
* The output layer is linear (logits for cross-entropy), not the paper's Euclidean RBF units.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cvlib.models._layers import check_model_input
from cvlib.models._registry import register_model

__all__ = ["C3_TABLE", "SparseC3", "LeNet5", "lenet5"]

# LeCun et al. 1998, Table I: the S2 maps each C3 map is connected to.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (4, 5, 0),
    (5, 0, 1),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (3, 4, 5, 0),
    (4, 5, 0, 1),
    (5, 0, 1, 2),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)
_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class SparseC3(nn.Module):
    """LeNet-5's C3 with the paper's connection table: one 5x5 convolution per output map, seeing only
    the S2 maps listed in ``table``.

    Shapes: Tensor[B, 6, 14, 14] -> Tensor[B, 16, 10, 10].
    """

    def __init__(self, table: tuple[tuple[int, ...], ...] = C3_TABLE, kernel_size: int = 5) -> None:
        super().__init__()
        self.table = table
        for i, src in enumerate(table):
            self.register_buffer(f"idx{i}", torch.tensor(src, dtype=torch.long), persistent=False)
        self.convs = nn.ModuleList(nn.Conv2d(len(src), 1, kernel_size) for src in table)

    def forward(self, x: Tensor) -> Tensor:
        outs = [conv(x.index_select(1, getattr(self, f"idx{i}"))) for i, conv in enumerate(self.convs)]
        return torch.cat(outs, dim=1)  # [B, 16, H - 4, W - 4]


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) for 32x32 inputs.

    Args:
        num_classes (int): K outputs.
        in_channels (int): 1 for digits, 3 for CIFAR.
        activation (str): ``"tanh"`` (paper), ``"sigmoid"`` or ``"relu"`` (modern).
        pool (str): ``"avg"`` (paper-like subsampling) or ``"max"`` (modern).
        c3_table (bool): use the paper's sparse C3 connection table.
        dropout (float): dropout before F6 and before the output (0 = none, as in the paper).

    Shapes: input Tensor[B, in_channels, 32, 32] -> logits Tensor[B, K].
    ``forward_features`` returns S2 [B, 6, 14, 14] and S4 [B, 16, 5, 5].
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "tanh",
        pool: str = "avg",
        c3_table: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(_ACTIVATIONS)}, got {activation!r}")
        if pool not in _POOLS:
            raise ValueError(f"pool must be one of {tuple(_POOLS)}, got {pool!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        act, pl = _ACTIVATIONS[activation], _POOLS[pool]
        self.c1 = nn.Conv2d(in_channels, 6, 5)
        self.act1 = act()
        self.s2 = pl(2)
        self.c3 = SparseC3() if c3_table else nn.Conv2d(6, 16, 5)
        self.act3 = act()
        self.s4 = pl(2)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.act5 = act()
        self.drop6 = nn.Dropout(dropout)
        self.f6 = nn.Linear(120, 84)
        self.act6 = act()
        self.drop7 = nn.Dropout(dropout)
        self.output = nn.Linear(84, num_classes)
        self.feature_info = [
            dict(channels=6, reduction=2, module="s2"),
            dict(channels=16, reduction=4, module="s4"),
        ]

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """S2 and S4 maps: Tensor[B, 6, 14, 14], Tensor[B, 16, 5, 5] for a 32x32 input."""
        s2 = self.s2(self.act1(self.c1(x)))
        s4 = self.s4(self.act3(self.c3(s2)))
        return [s2, s4]

    def forward_head(self, s4: Tensor) -> Tensor:
        """C5, F6 and output: Tensor[B, 16, 5, 5] -> Tensor[B, K]."""
        x = torch.flatten(self.act5(self.c5(s4)), 1)  # [B, 120]
        x = self.act6(self.f6(self.drop6(x)))  # [B, 84]
        return self.output(self.drop7(x))

    def forward(self, x: Tensor) -> Tensor:
        x = check_model_input(self, x)
        if x.ndim != 4 or x.shape[-2:] != (32, 32):
            raise ValueError(f"x must be [B, C, 32, 32] (pad or resize 28x28 digits), got {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x)[-1])


@register_model(task="classification")
def lenet5(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    activation: str = "tanh",
    pool: str = "avg",
    c3_table: bool = False,
    dropout: float = 0.0,
    small_input: bool = True,
) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998): [B, in_channels, 32, 32] -> [B, K]; 61,706 params for K=10
    (60,806 with ``c3_table=True``). ``small_input`` is accepted for the registry contract (always 32x32)."""
    return LeNet5(
        num_classes=num_classes,
        in_channels=in_channels,
        activation=activation,
        pool=pool,
        c3_table=c3_table,
        dropout=dropout,
    )
