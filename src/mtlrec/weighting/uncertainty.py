"""Homoscedastic-uncertainty weighting (Kendall, Gal, Cipolla; CVPR 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from mtlrec.weighting.base import LossWeighting

TaskKind = Literal["regression", "classification", "binary", "multiclass"]


class UncertaintyWeighting(LossWeighting):
    """L = Σ_t c_t · exp(−s_t) · L_t + s_t / 2 with learnable s_t = log σ_t² (paper Eq. 7 and 10).

    c_t = 1/2 for a regression task (Gaussian likelihood, L_t = mean squared error) and 1 for a
    classification task (the paper's Boltzmann approximation); s_t / 2 = log σ_t. For fixed L_t the
    objective is minimised at s_t* = log(2 c_t L_t), e.g. s* = log MSE = log σ² for regression.
    s (T,) is an ``nn.Parameter`` stepped by the trainer's optimizer; it starts at 0 (σ = 1).
    Deviation: we learn log σ² rather than σ, as the paper recommends for stability (Sec. 3.2).

    Args:
        num_tasks: T.
        kinds: T task kinds in task order: ``regression`` (c = 1/2) or ``classification`` / ``binary`` /
            ``multiclass`` (c = 1); the loss kinds of ``mtlrec list`` are accepted. Default: all
            classification.
    """

    def __init__(self, num_tasks: int, kinds: list[TaskKind] | None = None):
        super().__init__(num_tasks)
        kinds = ["classification"] * num_tasks if kinds is None else list(kinds)
        if len(kinds) != num_tasks:
            raise ValueError(f"expected {num_tasks} kinds, got {len(kinds)}")
        self.register_buffer("scales", torch.tensor([0.5 if kind == "regression" else 1.0 for kind in kinds]))
        self.log_variances = nn.Parameter(torch.zeros(num_tasks))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Effective weights c_t · exp(−s_t) (T,), differentiable in s."""
        return self.scales * torch.exp(-self.log_variances)

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
        representation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        penalty = 0.5 * self.log_variances.sum()
        return super().backward(losses, shared_parameters, penalty if regularizer is None else regularizer + penalty)
