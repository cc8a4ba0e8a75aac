"""FAMO: fast adaptive multitask optimization (Liu, Liu, Stone, Liu; NeurIPS 2023)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlrec.weighting.base import LossWeighting


class FAMO(LossWeighting):
    """Loss weights w_t = c · z_t / L_t with z = softmax(ξ) adapted so that all log-losses fall alike.

    c = (Σ_s z_s / L_s)⁻¹ (paper Alg. 1), so the gradient is d = c Σ_t (z_t / L_t) ∇L_t: the gradient
    of Σ_t z_t log L_t, rescaled; the weights sum to 1.

    ξ (T,) is updated by the paper's rule ξ ← ξ − β (J_zᵀ δ + γ ξ), where J_z is the Jacobian of
    softmax at ξ and δ_t = log L_t(θ_prev) − log L_t(θ) is the decrease of each log-loss over the
    last step. The paper takes both losses on the same batch, before and after the step; this
    contract sees one loss vector per step, so δ uses the previous step's losses and the current
    ones, measured on consecutive batches (a noisier estimate; documented deviation). The update of ξ
    is done here with plain gradient descent (step β), not by the trainer's optimizer, so ξ and the
    previous losses are buffers; both survive checkpoints. Losses must be positive (clamped at 1e-8).

    Args:
        num_tasks: T.
        beta: β, the step size of ξ (paper: 0.025).
        gamma: γ, the decay of ξ (paper: 0.001).
    """

    def __init__(self, num_tasks: int, beta: float = 0.025, gamma: float = 0.001):
        super().__init__(num_tasks)
        self.beta, self.gamma = beta, gamma
        self.register_buffer("logits", torch.zeros(num_tasks))
        self.register_buffer("previous_losses", torch.zeros(num_tasks))  # 0: none yet

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """(T,) weights c · z / L, summing to 1 (detached)."""
        inverse = torch.softmax(self.logits, dim=0) / losses.detach().clamp_min(1e-8).to(self.logits)
        return (inverse / inverse.sum()).to(losses.dtype)

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
        representation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        current = losses.detach().clamp_min(1e-8).to(self.logits)
        if self.previous_losses.all():
            decrease = self.previous_losses.log() - current.log()  # δ
            z = torch.softmax(self.logits, dim=0)
            jacobian_t_delta = z * (decrease - (z * decrease).sum())  # J_zᵀ δ (J_z symmetric)
            self.logits.sub_(self.beta * (jacobian_t_delta + self.gamma * self.logits))
        self.previous_losses.copy_(current)
        return super().backward(losses, shared_parameters, regularizer)
