"""PE-LTR: the exact bounded min-norm weights, against SLSQP, MGDA, the KKT conditions and a simplex grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtlrec.weighting.mgda import min_norm_weights
from mtlrec.weighting.pareto import ParetoWeighting, bounded_min_norm_weights


def random_problem(num_tasks: int, seed: int, total: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """Task gradients (T, 8) of varied scales, and bounds c ≥ 0 with Σ c = total · u for a random u in [0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    grads = torch.randn(num_tasks, 8, generator=generator, dtype=torch.float64)
    grads = grads * torch.rand(num_tasks, 1, generator=generator, dtype=torch.float64).mul(3).add(0.2)
    bounds = torch.rand(num_tasks, generator=generator, dtype=torch.float64)
    bounds = bounds / bounds.sum() * total * torch.rand(1, generator=generator, dtype=torch.float64)
    return grads, bounds


def slsqp(gram: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """The oracle: SciPy's SLSQP on min wᵀMw s.t. Σ w = 1, w ≥ c."""
    matrix = gram.numpy()
    result = minimize(
        lambda w: w @ matrix @ w,
        np.full(len(bounds), 1 / len(bounds)),
        jac=lambda w: 2 * matrix @ w,
        bounds=[(c, None) for c in bounds.tolist()],
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones_like(w)}],
        method="SLSQP",
        options={"ftol": 1e-13, "maxiter": 1000},
    )
    assert result.success, result.message
    return torch.from_numpy(result.x)


def assert_kkt(gram: torch.Tensor, bounds: torch.Tensor, weights: torch.Tensor) -> None:
    """Feasible, and (M w)_t = μ where w_t > c_t, (M w)_t ≥ μ where w_t = c_t (a minimum of the convex QP)."""
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (weights >= bounds).all()
    product, free = gram @ weights, weights > bounds + 1e-9
    assert free.any()
    multiplier = product[free].mean()
    scale = float(gram.diagonal().max())
    torch.testing.assert_close(product[free], multiplier.expand(int(free.sum())), rtol=0, atol=1e-9 * scale)
    assert (product[~free] >= multiplier - 1e-9 * scale).all()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("num_tasks", [2, 3, 5])
def test_weights_match_slsqp_and_satisfy_kkt(num_tasks, seed):
    grads, bounds = random_problem(num_tasks, seed)
    gram = grads @ grads.T
    weights = bounded_min_norm_weights(gram, bounds)
    assert_kkt(gram, bounds, weights)
    oracle = slsqp(gram, bounds)
    assert weights @ gram @ weights <= oracle @ gram @ oracle + 1e-12  # no worse than SLSQP
    torch.testing.assert_close(weights, oracle, rtol=0, atol=1e-6)


def test_three_tasks_match_a_simplex_grid():
    grads, bounds = random_problem(3, 11)
    steps, slack = 300, 1 - bounds.sum()
    grid = torch.tensor([(i, j, steps - i - j) for i in range(steps + 1) for j in range(steps + 1 - i)]) / steps
    candidates = bounds + slack * grid.double()  # every feasible point on a grid of the shifted, scaled simplex
    norms = (candidates @ grads).norm(dim=1)
    weights = bounded_min_norm_weights(grads @ grads.T, bounds)
    assert (weights @ grads).norm() <= norms.min() + 1e-12
    torch.testing.assert_close(weights, candidates[norms.argmin()], rtol=0, atol=5e-3)


@pytest.mark.parametrize("num_tasks", [2, 3, 5])
def test_zero_bounds_give_mgda(num_tasks):
    grads, _ = random_problem(num_tasks, 3)
    gram = grads @ grads.T
    weights = bounded_min_norm_weights(gram, torch.zeros(num_tasks, dtype=torch.float64))
    reference = min_norm_weights(gram, max_iterations=10_000, tolerance=1e-14)
    torch.testing.assert_close(weights, reference, rtol=0, atol=1e-7)
    direction, combined = ParetoWeighting(num_tasks).combine(grads, torch.ones(num_tasks))
    torch.testing.assert_close(combined, weights)
    torch.testing.assert_close(direction, weights @ grads)


def test_an_active_bound_is_met_exactly():
    # Unbounded, all weight goes to the small gradient g_2 = 0.1 g_1; the bound keeps 0.3 on task 1.
    grads = torch.tensor([[1.0, 0.0], [0.1, 0.0]], dtype=torch.float64)
    assert torch.equal(min_norm_weights(grads @ grads.T), torch.tensor([0.0, 1.0], dtype=torch.float64))
    _, weights = ParetoWeighting(2, min_weights=[0.3, 0.0]).combine(grads, torch.ones(2))
    assert weights[0] == 0.3 and weights[1] == 0.7
    grads3, bounds = random_problem(3, 5, total=0.9)
    weights3 = bounded_min_norm_weights(grads3 @ grads3.T, bounds)
    active = weights3 <= bounds + 1e-9
    assert active.any() and torch.equal(weights3[active], bounds[active])


def test_bounds_are_checked():
    with pytest.raises(ValueError, match="min_weights must sum to less than 1"):
        ParetoWeighting(3, min_weights=[0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match="min_weights needs one bound per task"):
        ParetoWeighting(3, min_weights=[0.1, 0.1])
    with pytest.raises(ValueError, match="min_weights must be non-negative"):
        ParetoWeighting(2, min_weights=[-0.1, 0.2])
    with pytest.raises(ValueError, match="normalization"):
        ParetoWeighting(2, normalization="max")


def test_l2_normalisation_ignores_the_gradients_scale():
    grads, _ = random_problem(3, 7)
    bounds = [0.1, 0.2, 0.05]
    rescaled = grads * torch.tensor([[10.0], [0.1], [1.0]], dtype=torch.float64)
    _, weights = ParetoWeighting(3, bounds, normalization="l2").combine(grads, torch.ones(3))
    _, again = ParetoWeighting(3, bounds, normalization="l2").combine(rescaled, torch.ones(3))
    torch.testing.assert_close(again, weights, rtol=0, atol=1e-9)


def test_backward_gives_the_shared_parameters_the_bounded_min_norm_direction():
    grads, bounds = random_problem(3, 2)
    theta = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    weights = ParetoWeighting(3, bounds.tolist()).backward(grads @ theta, [theta])
    torch.testing.assert_close(weights, bounded_min_norm_weights(grads @ grads.T, bounds))
    torch.testing.assert_close(theta.grad, weights @ grads)
