"""CAGrad: conflict-averse gradient descent (Liu, Liu, Jin, Stone, Liu; NeurIPS 2021)."""

from __future__ import annotations

import itertools
import math

import torch

from mtlrec.weighting.base import GradientTarget, GradientWeighting


class CAGrad(GradientWeighting):
    """Direction d = (g0 + (√φ / ‖g_w‖) g_w) / (1 + c²) (paper Alg. 1, with its final rescaling).

    g0 = mean_t g_t, φ = c² ‖g0‖², g_w = Σ_t w_t g_t with w = argmin_{w ∈ Δ_T} g_wᵀ g0 + √φ ‖g_w‖, the
    dual of max_d min_t g_tᵀ d subject to ‖d − g0‖ ≤ c ‖g0‖, whose solution is that d. We solve the
    primal exactly on the Gram matrix (``cagrad_coefficients``) instead of the authors' iterative
    SLSQP on w; c = 0 gives the mean gradient. Task-specific parameters and embeddings get Σ_t ∇L_t
    (weights 1), as when the authors backpropagate every task loss before replacing the shared gradient.

    Args:
        num_tasks: T.
        c: the radius of the conflict-averse ball relative to ‖g0‖ (c ≥ 0).
        on: ``parameters`` or ``representation`` (see ``GradientWeighting``).
    """

    def __init__(self, num_tasks: int, c: float = 0.4, on: GradientTarget = "parameters"):
        super().__init__(num_tasks, on)
        if c < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        self.c = c

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coefficients = cagrad_coefficients((grads @ grads.T).double(), self.c)
        return coefficients.to(grads.dtype) @ grads, torch.ones_like(losses)


def cagrad_coefficients(gram: torch.Tensor, c: float) -> torch.Tensor:
    """a (T,) with CAGrad's direction d = Σ_t a_t g_t, from the Gram matrix M (T, T) (float64).

    Solves the primal max_{‖x − g0‖ ≤ r} min_t g_tᵀ x, r = c ‖g0‖, exactly in the span of the
    gradients: for every non-empty task subset S it maximises g_sᵀ x on {x : g_iᵀ x = g_sᵀ x, i ∈ S}
    within the ball (a projection), then keeps the candidate with the largest min_t g_tᵀ x. The optimum
    is one of them (S = the tasks attaining the min there), so this is exact for small T (2^T − 1 subsets).
    """
    num_tasks = gram.shape[0]
    mean = torch.full((num_tasks,), 1.0 / num_tasks, dtype=gram.dtype, device=gram.device)
    values, vectors = torch.linalg.eigh(gram)
    keep = values > 1e-10 * values.max()
    if c == 0 or not keep.any():
        return mean
    basis = vectors[:, keep] / values[keep].sqrt()  # x (k,) in an orthonormal basis ↔ coefficients basis @ x
    points = vectors[:, keep] * values[keep].sqrt()  # (T, k): g_t in that basis
    center = mean @ points  # g0
    radius = c * center.norm()
    subsets = torch.tensor(list(itertools.product([False, True], repeat=num_tasks))[1:], device=gram.device)  # (S, T)
    first = subsets.int().argmax(dim=1)
    rows = (points - points[first][:, None]) * subsets[..., None]  # (S, T, k): g_i − g_s for i in the subset
    identity = torch.eye(points.shape[1], dtype=gram.dtype, device=gram.device)
    projector = identity - torch.linalg.pinv(rows) @ rows  # onto {rows x = 0}
    foot = projector @ center  # nearest point of the subspace to g0
    slack = radius**2 - (center - foot).pow(2).sum(dim=1)
    ascent = projector @ points[first][..., None]  # (S, k, 1): g_s within the subspace
    ascent = ascent[..., 0] / ascent[..., 0].norm(dim=1, keepdim=True).clamp_min(1e-30)
    candidates = foot + slack.clamp_min(0).sqrt()[:, None] * ascent
    objective = (candidates @ points.T).min(dim=1).values.masked_fill(slack < -1e-12 * radius**2, -math.inf)
    best = candidates[objective.argmax()]
    return basis @ best / (1 + c**2)
