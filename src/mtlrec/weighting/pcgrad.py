"""PCGrad: projecting conflicting gradients (Yu, Kumar, Gupta, Levine, Hausman, Finn; NeurIPS 2020)."""

from __future__ import annotations

import torch

from mtlrec.weighting.base import GradientTarget, GradientWeighting, draw, generator_state


class PCGrad(GradientWeighting):
    """Direction Σ_i g_i^PC: each task gradient projected off the gradients it conflicts with.

    Each g_i^PC starts at g_i and, for every other task j in a random order, loses its component
    along g_j when they conflict (paper Alg. 1): if g_i^PC · g_j < 0 then
    g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j.

    Projections are done on the T × T Gram matrix (every g_i^PC is a combination of the original
    g_j), then the combination is applied to G once. Only the shared parameters are projected;
    task-specific parameters and embeddings get Σ_t ∇L_t (weights 1), as in the usual practice of
    applying PCGrad to the shared trunk. The random orders come from the strategy's own seeded
    generator, whose state is a buffer (it survives checkpoints).

    Args:
        num_tasks: T.
        seed: seed of the strategy's generator.
        on: ``parameters`` or ``representation`` (see ``GradientWeighting``).
    """

    def __init__(self, num_tasks: int, seed: int = 0, on: GradientTarget = "parameters"):
        super().__init__(num_tasks, on)
        self.register_buffer("generator_state", generator_state(seed))

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        orders = draw(
            self.generator_state,
            lambda generator: torch.stack([torch.randperm(self.num_tasks, generator=generator) for _ in losses]),
        )
        coefficients = projection_coefficients((grads @ grads.T).double(), orders)
        direction = coefficients.sum(dim=0).to(grads.dtype) @ grads
        return direction, torch.ones_like(losses)


def projection_coefficients(gram: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """A (T, T) with g_i^PC = Σ_k A_ik g_k, from the Gram matrix (T, T) and T visiting orders (T, T)."""
    coefficients = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    for i, order in enumerate(orders.tolist()):
        for j in order:
            if j == i or gram[j, j] <= 0:
                continue
            dot = coefficients[i] @ gram[:, j]  # g_i^PC · g_j
            if dot < 0:
                coefficients[i, j] -= dot / gram[j, j]
    return coefficients
