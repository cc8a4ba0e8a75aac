"""GradNorm: gradient normalisation for adaptive loss balancing (Chen, Badrinarayanan, Lee, Rabinovich; ICML 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlrec.weighting.base import WeightingStrategy, weighted_objective


class GradNorm(WeightingStrategy):
    """Learnable weights w (T,) trained so that the task gradient norms follow the tasks' training rates.

    At W, the last shared parameter in ``shared_parameters`` order (the architecture's last declared
    shared tensor: the paper's "last shared layer"): G_t = ‖∇_W w_t L_t‖ = w_t ‖∇_W L_t‖,
    L̃_t = L_t / L_t(0), r_t = L̃_t / mean(L̃), target_t = mean(G) · r_t^α treated as a constant, and
    L_grad = Σ_t |G_t − target_t| (paper Eq. 1–2). The weights' ``.grad`` is ∂L_grad/∂w only; every
    model parameter gets the gradient of Σ_t w_t L_t (+ regularizer) with w held constant.
    The trainer's optimizer steps w; the paper renormalises Σ_t w_t = T after each step, which a
    strategy cannot hook, so we renormalise at the start of the next ``backward`` (also clamping
    w ≥ 1e-4, a deviation that keeps a weight from turning negative). L(0) is recorded at the
    first step in a buffer, so it survives checkpoints. Without shared parameters w is left as is.

    Args:
        num_tasks: T.
        alpha: α, the strength of the restoring force (paper: 1.5 for most tasks).
    """

    def __init__(self, num_tasks: int, alpha: float = 1.5):
        super().__init__(num_tasks)
        self.alpha = alpha
        self.task_weights = nn.Parameter(torch.ones(num_tasks))
        self.register_buffer("initial_losses", torch.zeros(num_tasks))  # 0: not yet recorded

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
        representation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        with torch.no_grad():
            self.task_weights.clamp_(min=1e-4).mul_(self.num_tasks / self.task_weights.sum())
            if not self.initial_losses.all():
                self.initial_losses.copy_(losses.detach().clamp_min(1e-12))
        weights = self.task_weights.detach().clone()
        shared = [p for p in shared_parameters if p.requires_grad]
        if shared:
            self._set_weight_gradient(losses, shared[-1])
        weighted_objective(weights.to(losses.dtype), losses, regularizer).backward()
        return weights

    def _set_weight_gradient(self, losses: torch.Tensor, last_shared: torch.Tensor) -> None:
        norms = torch.stack([_gradient_norm(loss, last_shared) for loss in losses]).to(self.task_weights)  # ‖∇_W L_t‖
        with torch.no_grad():
            grad_norms = self.task_weights * norms  # G_t
            rates = losses.detach().to(norms) / self.initial_losses
            target = grad_norms.mean() * (rates / rates.mean()).pow(self.alpha)
            gradient = torch.sign(grad_norms - target) * norms  # ∂ Σ|w_t n_t − target_t| / ∂w_t
        self.task_weights.grad = gradient if self.task_weights.grad is None else self.task_weights.grad + gradient


def _gradient_norm(loss: torch.Tensor, parameter: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(loss, parameter, retain_graph=True, allow_unused=True)
    return torch.zeros((), device=parameter.device) if grad is None else grad.norm()
