"""Knowledge distillation (Hinton, Vinyals & Dean 2015, arXiv:1503.02531).

A small *student* learns from a large *teacher*'s softened output distribution. With temperature
``T``, ``p_T = softmax(z / T)``; the distillation loss is

    L = alpha * T^2 * KL(p_T(teacher) || p_T(student)) + (1 - alpha) * CE(student, y).

The ``T^2`` factor keeps the soft term's gradients on the same scale as the hard term's when ``T``
changes (the soft gradients scale as ``1 / T^2``; Hinton et al., Sec. 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvlib._validate import check_class_ids, check_float, check_tensor

__all__ = ["kd_loss", "Distiller"]


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor | None = None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> Tensor:
    """The Hinton et al. distillation loss (mean over the batch).

    Args:
        student_logits (Tensor[B, K]): student scores.
        teacher_logits (Tensor[B, K]): teacher scores (no gradient flows into them).
        target (Tensor[B]): int64 labels for the hard term; None gives the soft term only (alpha = 1).
        temperature: T > 0; 1 is the ordinary softmax, larger values soften.
        alpha: weight of the soft term in [0, 1].

    Returns:
        scalar Tensor.
    """
    check_tensor(student_logits, "student_logits", ndim=2, dtype="float", finite=True, shape="[B, K]")
    check_tensor(teacher_logits, "teacher_logits", ndim=2, dtype="float", finite=True, shape="[B, K]")
    if student_logits.shape != teacher_logits.shape or student_logits.numel() == 0:
        raise ValueError(
            f"student and teacher logits must both be [B, K], got {tuple(student_logits.shape)} and "
            f"{tuple(teacher_logits.shape)}"
        )
    temperature = check_float(temperature, "temperature", min=0.0, min_open=True)
    alpha = check_float(alpha, "alpha", min=0.0, max=1.0)
    if target is not None:
        check_tensor(target, "target", ndim=1, dtype="int", shape="[B]")
        if len(target) != len(student_logits):
            raise ValueError(f"target must have B={len(student_logits)} labels, got {len(target)}")
        check_class_ids(target, "target", student_logits.shape[1])
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    soft = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t
    if target is None:
        return soft
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student_logits.float(), target)


class Distiller(nn.Module):
    """Wrap ``student`` and a frozen ``teacher`` for :func:`cvlib.train.fit`.

    ``takes_targets = True``: in training mode ``forward(x, y)`` returns the two weighted loss terms
    ``{"soft": alpha * T^2 * KL, "hard": (1 - alpha) * CE}`` (``fit`` sums and logs them); in eval
    mode ``forward(x)`` returns the student's logits, so validation metrics measure the student.
    The teacher stays in eval mode and receives no gradients (it is left out of the optimizer).
    """

    takes_targets = True

    def __init__(
        self, student: nn.Module, teacher: nn.Module, *, temperature: float = 4.0, alpha: float = 0.9
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.student, self.teacher = student, teacher
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        self.teacher.eval()  # BatchNorm statistics and dropout of the teacher stay frozen
        return self

    def forward(self, x: Tensor, y: Tensor | None = None):
        s = self.student(x)
        if not self.training:
            return s
        if y is None:
            raise ValueError("Distiller needs targets in training mode: call model(x, y)")
        with torch.no_grad():
            t = self.teacher(x)
        soft = kd_loss(s, t, None, temperature=self.temperature)
        hard = F.cross_entropy(s.float(), y)
        return {"soft": self.alpha * soft, "hard": (1.0 - self.alpha) * hard}
