"""CAGrad: c = 0 is the mean gradient; the direction solves the paper's max-min problem."""

from __future__ import annotations

import math

import pytest
import torch

from mtlrec.weighting import CAGrad
from mtlrec.weighting.cagrad import cagrad_coefficients

F64 = torch.float64


def direction(grads: torch.Tensor, c: float) -> torch.Tensor:
    """The direction before the final 1 / (1 + c²) rescaling."""
    return cagrad_coefficients(grads @ grads.T, c) @ grads * (1 + c**2)


def brute_force_2d(grads: torch.Tensor, c: float) -> tuple[float, torch.Tensor]:
    """max over the circle ‖d − g0‖ = c ‖g0‖ of min_t g_t · d, on a fine grid of angles."""
    center = grads.mean(dim=0)
    angles = torch.linspace(0, 2 * math.pi, 200_001, dtype=F64)
    points = center + c * center.norm() * torch.stack([angles.cos(), angles.sin()], dim=1)
    values = (points @ grads.T).min(dim=1).values
    return float(values.max()), points[values.argmax()]


def test_c_zero_gives_the_mean_gradient():
    grads = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    theta = torch.zeros(5, requires_grad=True)
    weights = CAGrad(3, c=0.0).backward(grads @ theta, [theta])
    torch.testing.assert_close(theta.grad, grads.mean(dim=0))
    assert torch.equal(weights, torch.ones(3))


@pytest.mark.parametrize("c", [0.4, 1.0])
def test_a_hand_case_reaches_the_max_min_on_the_ball(c):
    grads = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=F64)  # conflicting: g1 · g2 = −0.5
    ours = direction(grads, c)
    best, point = brute_force_2d(grads, c)
    center = grads.mean(dim=0)
    torch.testing.assert_close((ours - center).norm(), c * center.norm())  # on the ball's boundary
    assert float((grads @ ours).min()) >= best - 1e-12  # at least as good as every grid angle
    assert float((grads @ ours).min()) == pytest.approx(best, abs=1e-5)
    torch.testing.assert_close(ours, point, atol=1e-4, rtol=0)
    # the paper's closed form: d = g0 + (√φ / ‖g_w‖) g_w with g_w a convex combination of the g_t
    g_w = ours - center
    weights = torch.linalg.lstsq(grads.T, g_w[:, None]).solution[:, 0]
    assert (weights >= -1e-9).all()


@pytest.mark.parametrize("seed", range(4))
def test_three_tasks_attain_the_dual_optimum_on_a_simplex_grid(seed):
    """Strong duality: max_d min_t g_t · d equals min_w g_wᵀ g0 + √φ ‖g_w‖ over the simplex."""
    generator = torch.Generator().manual_seed(seed)
    grads = torch.randn(3, 4, generator=generator, dtype=F64) * torch.tensor([[1.0], [3.0], [0.3]], dtype=F64)
    c = 0.5
    steps = 300
    grid = (
        torch.tensor([(i, j, steps - i - j) for i in range(steps + 1) for j in range(steps + 1 - i)], dtype=F64) / steps
    )
    center = grads.mean(dim=0)
    dual = grid @ grads @ center + c * center.norm() * (grid @ grads).norm(dim=1)
    primal = float((grads @ direction(grads, c)).min())
    assert primal == pytest.approx(float(dual.min()), rel=1e-3, abs=1e-6)
    assert primal <= float(dual.min()) + 1e-9


def test_degenerate_gradients_give_finite_directions():
    for grads in ([[1.0, 0.0], [-1.0, 0.0]], [[1.0, 2.0], [1.0, 2.0]], [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0]] * 2):
        grads = torch.tensor(grads, dtype=F64)
        assert torch.isfinite(direction(grads, 0.4)).all()


def test_the_final_direction_is_rescaled_by_one_over_one_plus_c_squared():
    grads = torch.tensor([[1.0, 0.0], [-0.5, 1.0]])
    combined, _ = CAGrad(2, c=0.5).combine(grads, torch.ones(2))
    torch.testing.assert_close(combined.double() * 1.25, direction(grads.double(), 0.5))


def test_rejects_a_negative_c():
    with pytest.raises(ValueError):
        CAGrad(2, c=-0.1)
