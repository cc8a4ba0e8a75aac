"""Uncertainty weighting: the analytic optimum s* = log(2 c L), and recovering a known noise variance."""

from __future__ import annotations

import math

import pytest
import torch

from mtlrec.weighting import UncertaintyWeighting


def test_effective_weights_are_c_exp_minus_s():
    strategy = UncertaintyWeighting(2, kinds=["regression", "binary"])
    with torch.no_grad():
        strategy.log_variances.copy_(torch.tensor([0.5, -1.0]))
    losses = torch.tensor([2.0, 3.0], requires_grad=True)
    weights = strategy.backward(losses, [])
    expected = torch.tensor([0.5 * math.exp(-0.5), math.exp(1.0)])
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(losses.grad, expected)
    # ∂/∂s (c e^{-s} L + s/2) = −c e^{-s} L + 1/2
    torch.testing.assert_close(strategy.log_variances.grad, -expected * losses.detach() + 0.5)


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_the_gradient_in_s_vanishes_at_log_2cl_and_the_objective_is_convex_there(kind):
    scale = 0.5 if kind == "regression" else 1.0
    losses = torch.tensor([0.3, 4.0])
    optimum = torch.log(2 * scale * losses)
    strategy = UncertaintyWeighting(2, kinds=[kind, kind])
    with torch.no_grad():
        strategy.log_variances.copy_(optimum)
    strategy.backward(losses.clone().requires_grad_(), [])
    torch.testing.assert_close(strategy.log_variances.grad, torch.zeros(2), atol=1e-6, rtol=0)

    def objective(s: torch.Tensor) -> torch.Tensor:
        return scale * torch.exp(-s) * losses + s / 2

    for delta in (-0.1, 0.1):
        assert (objective(optimum + delta) > objective(optimum)).all()


def test_optimising_s_for_fixed_losses_reaches_log_2cl():
    losses = torch.tensor([0.3, 4.0])
    strategy = UncertaintyWeighting(2, kinds=["regression", "classification"])
    optimizer = torch.optim.Adam(strategy.parameters(), lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        strategy.backward(losses.clone().requires_grad_(), [])
        optimizer.step()
    torch.testing.assert_close(strategy.log_variances.detach(), torch.log(torch.tensor([0.3, 8.0])), atol=1e-2, rtol=0)


def test_learning_a_regression_recovers_the_log_noise_variance():
    """y_t = a_t x + b_t + N(0, σ_t²) with σ = (0.5, 2): s_t → log σ_t² while the lines are learnt."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4000, generator=generator)
    sigmas = torch.tensor([0.5, 2.0])
    targets = torch.stack([2 * x + 1, -x + 3], dim=1) + sigmas * torch.randn(4000, 2, generator=generator)
    slopes, offsets = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    strategy = UncertaintyWeighting(2, kinds=["regression", "regression"])
    optimizer = torch.optim.Adam([slopes, offsets, *strategy.parameters()], lr=0.05)
    for _ in range(500):
        optimizer.zero_grad()
        losses = (x[:, None] * slopes + offsets - targets).pow(2).mean(dim=0)
        strategy.backward(losses, [])
        optimizer.step()
    torch.testing.assert_close(strategy.log_variances.detach(), torch.log(sigmas**2), atol=0.08, rtol=0)


def test_rejects_a_wrong_number_of_kinds():
    with pytest.raises(ValueError, match="expected 2 kinds"):
        UncertaintyWeighting(2, kinds=["regression"])
