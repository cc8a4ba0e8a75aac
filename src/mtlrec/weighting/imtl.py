"""IMTL-G: impartial multi-task learning, gradient balance (Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang; ICLR 2021)."""

from __future__ import annotations

import torch

from mtlrec.weighting.base import GradientWeighting


class IMTLG(GradientWeighting):
    """Direction d = Σ_t α_t g_t whose projections on every unit task gradient u_t = g_t / ‖g_t‖ are equal.

    Closed form (paper Eq. 9): α_{2:T} = g_1 Uᵀ (D Uᵀ)⁻¹ with rows D_t = g_1 − g_t, U_t = u_1 − u_t,
    and α_1 = 1 − Σ_{t ≥ 2} α_t. Computed on the Gram matrix; the (T−1) × (T−1) system is solved
    with a pseudo-inverse, so collinear or zero gradients give a least-squares answer instead of an
    error. IMTL-L (the paper's loss-scale half) is not included: combine it by hand if needed.
    Task-specific parameters and embeddings get Σ_t ∇L_t (weights 1), as in the paper's Alg. 1,
    where task-specific parameters follow their own loss.

    Args:
        num_tasks: T.
        on: ``parameters`` or ``representation`` (see ``GradientWeighting``).
    """

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = imtl_coefficients((grads @ grads.T).double())
        return alpha.to(grads.dtype) @ grads, torch.ones_like(losses)


def imtl_coefficients(gram: torch.Tensor) -> torch.Tensor:
    """α (T,) from the Gram matrix M (T, T) of the task gradients."""
    norms = gram.diagonal().sqrt().clamp_min(1e-20)
    along = gram / norms  # along[i, j] = g_i · u_j
    rhs = along[0, 0] - along[0, 1:]  # (g_1 Uᵀ)_t = g_1 · (u_1 − u_t)
    system = rhs[None, :] - along[1:, :1] + along[1:, 1:]  # (D Uᵀ)_st = (g_1 − g_s) · (u_1 − u_t)
    rest = rhs @ torch.linalg.pinv(system)
    return torch.cat([(1 - rest.sum()).reshape(1), rest])
