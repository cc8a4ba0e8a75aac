"""PE-LTR: Pareto-efficient task weights (Lin, Chen, Pei, Sun, Xiao, Sun, Zhang, Ou, Jiang; RecSys 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import torch

from mtlrec.weighting.base import GradientTarget, GradientWeighting
from mtlrec.weighting.mgda import Normalization, min_norm_weights


class ParetoWeighting(GradientWeighting):
    """Weights w = argmin ‖Σ_t w_t ĝ_t‖² s.t. Σ_t w_t = 1 and w_t ≥ c_t, direction Σ_t w_t g_t.

    The paper's problem: the min-norm point of the task gradients' convex hull, as in MGDA,
    with a lower bound c_t on every weight (``min_weights``, Σ_t c_t < 1) so that a business
    priority keeps a share of the update. Its PECsolver (Alg. 2) substitutes w = ŵ + c, solves the
    problem without ŵ ≥ 0 in closed form, then projects ŵ back with non-negative least squares:
    feasible, but not the constrained optimum in general. We solve the constrained problem exactly:
    with s = 1 − Σ_t c_t > 0 every feasible w is c + s α for α on the simplex, so
    ‖Σ_t w_t g_t‖ = ‖Σ_j α_j h_j‖ with h_j = s g_j + Σ_t c_t g_t, and the optimum is MGDA's
    min-norm point of the h_j (``min_norm_weights`` on the Gram matrix AᵀMA, A = s I + c 1ᵀ),
    then polished: the KKT system of α's support (M_SS α_S = μ 1, Σ α_S = 1) is solved directly and
    its solution kept when it is feasible and no worse. All bounds 0 is MGDA.

    ĝ_t = g_t / n_t follow MGDA's ``normalization`` conventions (the paper uses raw gradients:
    ``none``); as there, the weights scale the raw losses, so every parameter outside the shared
    ones gets the gradient of Σ_t w_t L_t.

    Args:
        num_tasks: T.
        min_weights: the lower bounds c (T,), each ≥ 0, summing to less than 1; None: all 0.
        normalization: ``none``, ``l2``, ``loss`` or ``loss+`` (see ``MGDA``).
        max_iterations: Frank–Wolfe iterations (T > 2).
        tolerance: stop Frank–Wolfe when its duality gap falls below this times max_j ‖h_j‖².
        on: ``parameters`` or ``representation`` (see ``GradientWeighting``).
    """

    def __init__(
        self,
        num_tasks: int,
        min_weights: Sequence[float] | None = None,
        normalization: Normalization = "none",
        max_iterations: int = 1000,
        tolerance: float = 1e-10,
        on: GradientTarget = "parameters",
    ):
        super().__init__(num_tasks, on)
        if normalization not in get_args(Normalization):
            raise ValueError(f"normalization must be one of {get_args(Normalization)}, got {normalization!r}")
        self.min_weights = lower_bounds(min_weights, num_tasks)
        self.normalization, self.max_iterations, self.tolerance = normalization, max_iterations, tolerance

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gram = (grads @ grads.T).double().cpu()  # T × T: the solver's scalar steps are cheaper on the CPU
        scale = normalization_scales(gram, losses.detach().double().cpu(), self.normalization)
        bounds = torch.tensor(self.min_weights, dtype=torch.float64)
        gram = gram / torch.outer(scale, scale)
        weights = bounded_min_norm_weights(gram, bounds, self.max_iterations, self.tolerance)
        weights = weights.to(device=grads.device, dtype=grads.dtype)
        return weights @ grads, weights


def lower_bounds(min_weights: Sequence[float] | None, num_tasks: int) -> tuple[float, ...]:
    """The checked bounds c: T of them, each ≥ 0, Σ_t c_t < 1 (else no weight could move)."""
    bounds = (0.0,) * num_tasks if min_weights is None else tuple(float(c) for c in min_weights)
    if len(bounds) != num_tasks:
        raise ValueError(f"min_weights needs one bound per task ({num_tasks}), got {len(bounds)}")
    if not all(c >= 0 for c in bounds):
        raise ValueError(f"min_weights must be non-negative, got {list(bounds)}")
    if not sum(bounds) < 1:
        raise ValueError(f"min_weights must sum to less than 1, got {sum(bounds)} from {list(bounds)}")
    return bounds


def normalization_scales(gram: torch.Tensor, losses: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """n (T,) of ĝ_t = g_t / n_t: ``none`` 1, ``l2`` ‖g_t‖, ``loss`` L_t, ``loss+`` L_t ‖g_t‖ (MGDA's conventions)."""
    scale = torch.ones_like(gram.diagonal())
    if normalization in ("l2", "loss+"):
        scale = scale * gram.diagonal().sqrt()
    if normalization in ("loss", "loss+"):
        scale = scale * losses.to(scale)
    return scale.clamp_min(1e-12)


def bounded_min_norm_weights(
    gram: torch.Tensor, bounds: torch.Tensor, max_iterations: int = 1000, tolerance: float = 1e-10
) -> torch.Tensor:
    """argmin wᵀ M w s.t. Σ_t w_t = 1, w ≥ c, for a Gram matrix M (T, T) and bounds c (T,) with Σ c < 1 → w (T,)."""
    slack = 1 - bounds.sum()
    lift = slack * torch.eye(len(bounds), dtype=gram.dtype, device=gram.device) + bounds[:, None]  # w = A α on Δ
    lifted = lift.T @ gram @ lift
    alpha = polish(lifted, min_norm_weights(lifted, max_iterations, tolerance))
    return bounds + slack * alpha  # = A α; a bound whose α_t is 0 is met exactly


def polish(gram: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """α on the simplex re-solved on its support S: M_SS α_S = μ 1, Σ α_S = 1; kept if α_S ≥ 0 and no worse."""
    support = (alpha > 0).nonzero().squeeze(1)
    size = len(support)
    scale = gram.diagonal().max().clamp_min(torch.finfo(gram.dtype).tiny)
    system = gram.new_zeros(size + 1, size + 1)
    system[:size, :size] = gram[support][:, support] / scale
    system[:size, size], system[size, :size] = -1.0, 1.0
    rhs = gram.new_zeros(size + 1)
    rhs[size] = 1.0
    solution = (torch.linalg.pinv(system) @ rhs)[:size]
    if not torch.isfinite(solution).all() or solution.min() < 0:
        return alpha
    candidate = torch.zeros_like(alpha)
    candidate[support] = solution / solution.sum()
    return candidate if candidate @ gram @ candidate <= alpha @ gram @ alpha else alpha
