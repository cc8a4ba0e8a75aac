"""PCGrad: projections of conflicting gradients, against hand-computed 2-D vectors."""

from __future__ import annotations

import torch

from mtlrec.weighting import PCGrad
from mtlrec.weighting.pcgrad import projection_coefficients


def linear_losses(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L_t = g_t · θ at θ = 0: per-task gradients exactly ``grads``."""
    theta = torch.zeros(grads.shape[1], requires_grad=True)
    return grads @ theta, theta


def test_a_conflicting_pair_is_projected_onto_each_others_normal_plane():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # g1 · g2 = −1
    # g1' = g1 − (g1·g2 / ‖g2‖²) g2 = (1, 0) + ½ (−1, 1);  g2' = g2 − (g2·g1 / ‖g1‖²) g1 = (−1, 1) + (1, 0)
    projected = projection_coefficients(torch.tensor([[1.0, -1.0], [-1.0, 2.0]]), torch.tensor([[0, 1], [1, 0]]))
    vectors = projected @ torch.stack([g1, g2])
    torch.testing.assert_close(vectors, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
    assert vectors[0] @ g2 >= 0 and vectors[1] @ g1 >= 0
    losses, theta = linear_losses(torch.stack([g1, g2]))
    weights = PCGrad(2).backward(losses, [theta])
    torch.testing.assert_close(theta.grad, torch.tensor([0.5, 1.5]))
    assert torch.equal(weights, torch.ones(2))


def test_gradients_that_do_not_conflict_are_summed_unchanged():
    grads = torch.tensor([[1.0, 0.5], [0.2, 1.0]])
    losses, theta = linear_losses(grads)
    PCGrad(2).backward(losses, [theta])
    torch.testing.assert_close(theta.grad, grads.sum(dim=0))


def reference_pcgrad(grads: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Paper Alg. 1 on the vectors themselves."""
    projected = []
    for i, order in enumerate(orders.tolist()):
        vector = grads[i].clone()
        for j in order:
            if j != i and vector @ grads[j] < 0:
                vector = vector - (vector @ grads[j]) / grads[j].pow(2).sum() * grads[j]
        projected.append(vector)
    return torch.stack(projected)


def test_the_gram_matrix_form_matches_alg_1_on_the_vectors_for_any_order():
    generator = torch.Generator().manual_seed(0)
    grads = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    for _ in range(5):
        orders = torch.stack([torch.randperm(4, generator=generator) for _ in range(4)])
        torch.testing.assert_close(
            projection_coefficients(grads @ grads.T, orders) @ grads, reference_pcgrad(grads, orders)
        )


def test_the_random_order_is_seeded_and_survives_a_checkpoint():
    grads = torch.tensor([[1.0, 0.0, 0.0], [-0.6, 1.0, 0.0], [-0.3, -0.8, 1.0]])
    directions = []
    for strategy in (PCGrad(3, seed=1), PCGrad(3, seed=1)):
        directions.append(torch.stack([strategy.combine(grads, torch.ones(3))[0] for _ in range(4)]))
    torch.testing.assert_close(directions[0], directions[1])
    strategy = PCGrad(3, seed=1)
    strategy.combine(grads, torch.ones(3))
    fresh = PCGrad(3, seed=99)
    fresh.load_state_dict(strategy.state_dict())
    torch.testing.assert_close(fresh.combine(grads, torch.ones(3))[0], strategy.combine(grads, torch.ones(3))[0])
