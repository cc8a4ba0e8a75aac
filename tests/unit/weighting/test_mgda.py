"""MGDA: the min-norm point of the convex hull, against brute force over a grid of the simplex."""

from __future__ import annotations

import pytest
import torch

from mtlrec.weighting import MGDA
from mtlrec.weighting.mgda import min_norm_weights


def simplex_grid(steps: int) -> torch.Tensor:
    """Every point of the 3-simplex with coordinates in multiples of 1/steps, (N, 3)."""
    points = [(i, j, steps - i - j) for i in range(steps + 1) for j in range(steps + 1 - i)]
    return torch.tensor(points, dtype=torch.float64) / steps


def random_gradients(num_tasks: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    grads = torch.randn(num_tasks, 6, generator=generator, dtype=torch.float64)
    return grads * torch.rand(num_tasks, 1, generator=generator, dtype=torch.float64).mul(3).add(0.2)


@pytest.mark.parametrize("seed", range(6))
def test_two_tasks_match_the_min_norm_point_of_a_fine_grid(seed):
    grads = random_gradients(2, seed)
    if seed % 2:
        grads[1] = 0.2 * grads[0] + 0.05 * grads[1]  # an optimum on the boundary: all weight on task 2
    gamma = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    norms = (gamma[:, None] * grads[0] + (1 - gamma[:, None]) * grads[1]).norm(dim=1)
    best = gamma[norms.argmin()]
    weights = min_norm_weights(grads @ grads.T)
    torch.testing.assert_close(weights, torch.stack([best, 1 - best]), atol=2e-5, rtol=0)


@pytest.mark.parametrize("seed", range(6))
def test_frank_wolfe_for_three_tasks_matches_a_simplex_grid(seed):
    grads = random_gradients(3, seed)
    grid = simplex_grid(300)
    norms = (grid @ grads).norm(dim=1)
    weights = min_norm_weights(grads @ grads.T, max_iterations=100, tolerance=1e-10)
    assert weights.min() >= 0 and torch.isclose(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert (weights @ grads).norm() <= norms.min() + 1e-9  # at least as good as every grid point
    torch.testing.assert_close(weights, grid[norms.argmin()], atol=5e-3, rtol=0)


def test_combine_returns_the_min_norm_direction_and_its_weights():
    grads = random_gradients(3, 0).float()
    direction, weights = MGDA(3).combine(grads, torch.ones(3))
    torch.testing.assert_close(direction, weights @ grads)
    torch.testing.assert_close(weights.double(), min_norm_weights(grads.double() @ grads.double().T))


def test_l2_normalisation_ignores_the_gradients_scale_and_loss_normalisation_the_losses_scale():
    grads, losses = random_gradients(3, 1).float(), torch.tensor([0.5, 2.0, 1.0])
    rescaled = grads * torch.tensor([[10.0], [0.1], [1.0]])
    _, l2 = MGDA(3, normalization="l2").combine(grads, losses)
    torch.testing.assert_close(MGDA(3, normalization="l2").combine(rescaled, losses)[1], l2)
    _, loss = MGDA(3, normalization="loss").combine(grads, losses)
    scale = torch.tensor([10.0, 0.1, 1.0])
    torch.testing.assert_close(MGDA(3, normalization="loss").combine(rescaled, losses * scale)[1], loss)
    torch.testing.assert_close(MGDA(3, normalization="loss+").combine(rescaled, torch.ones(3))[1], l2)


def test_equal_and_zero_gradients():
    same = torch.tensor([[1.0, 2.0], [1.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(min_norm_weights(same @ same.T), torch.tensor([0.5, 0.5], dtype=torch.float64))
    with_zero = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(
        min_norm_weights(with_zero @ with_zero.T) @ with_zero, torch.zeros(2, dtype=torch.float64)
    )


def test_backward_gives_the_shared_parameters_the_min_norm_direction():
    grads = random_gradients(2, 3).float()
    theta = torch.zeros(6, requires_grad=True)
    weights = MGDA(2).backward(grads @ theta, [theta])
    torch.testing.assert_close(theta.grad, weights @ grads)
