"""Gradient reversal (Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015)."""

from __future__ import annotations

import math

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the incoming gradient times −λ backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(strength)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (strength,) = ctx.saved_tensors
        return -strength.to(grad.dtype) * grad, None


class GradientReversal(nn.Module):
    """The gradient reversal layer: R(x) = x forward, ∂R/∂x = −λ I backward (paper Eq. 12–13).

    λ follows the paper's schedule λ_p = λ_max · (2 / (1 + exp(−γ p)) − 1), γ = 10, where p ∈ [0, 1]
    is the share of ``ramp_steps`` done (λ = λ_max once they are, or from the start when ramp_steps = 0):
    the adversary's gradient is damped while its classifier is still noise. Steps are counted by training
    forward passes, in a buffer, so a resumed run continues the schedule.

    Args:
        strength: λ_max > 0.
        ramp_steps: training steps over which λ rises from 0 to λ_max (0: constant).
        gamma: γ of the schedule.
    """

    def __init__(self, strength: float = 1.0, ramp_steps: int = 0, gamma: float = 10.0):
        super().__init__()
        if strength <= 0 or ramp_steps < 0:
            raise ValueError(f"gradient reversal needs strength > 0 and ramp_steps >= 0, got {strength}, {ramp_steps}")
        self.strength, self.ramp_steps, self.gamma = strength, ramp_steps, gamma
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def current_strength(self) -> float:
        """λ at the current step."""
        if self.ramp_steps == 0:
            return self.strength
        progress = min(int(self.steps) / self.ramp_steps, 1.0)
        return self.strength * (2.0 / (1.0 + math.exp(-self.gamma * progress)) - 1.0)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Tensors → the same values, whose gradients flowing back are reversed and scaled (one step)."""
        if not self.training or not torch.is_grad_enabled():
            return inputs
        strength = torch.tensor(self.current_strength(), device=inputs[0].device)
        self.steps += 1
        return tuple(_ReverseGradient.apply(x, strength) for x in inputs)


class ReversedInputs(nn.Module):
    """A module whose inputs pass through a gradient reversal first (an adversarial task's tower).

    Args:
        module: the wrapped module (e.g. a ``Tower``).
        reversal: the reversal layer.
    """

    def __init__(self, module: nn.Module, reversal: GradientReversal):
        super().__init__()
        self.module = module
        self.reversal = reversal

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.module(*self.reversal(*inputs))
