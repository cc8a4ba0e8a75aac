"""FAMO: weights c z / L and the logit update ξ ← ξ − β (J_zᵀ δ + γ ξ)."""

from __future__ import annotations

import torch

from mtlrec.weighting import FAMO


def test_first_step_weights_are_inverse_losses_normalised():
    losses = torch.tensor([0.5, 2.0, 1.0], requires_grad=True)
    weights = FAMO(3).backward(losses, [])
    expected = torch.tensor([2.0, 0.5, 1.0]) / 3.5
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(losses.grad, expected)  # gradient c Σ_t (z_t / L_t) ∇L_t


def test_logits_follow_the_papers_update_with_the_softmax_jacobian():
    strategy = FAMO(2, beta=0.5, gamma=0.1)
    logits = torch.tensor([0.3, -0.2])
    strategy.logits.copy_(logits)
    first, second = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.9])
    strategy.backward(first.clone().requires_grad_(), [])
    weights = strategy.backward(second.clone().requires_grad_(), [])
    delta = first.log() - second.log()
    jacobian = torch.autograd.functional.jacobian(lambda xi: torch.softmax(xi, dim=0), logits)
    expected = logits - 0.5 * (jacobian.T @ delta + 0.1 * logits)
    torch.testing.assert_close(strategy.logits, expected)
    z = torch.softmax(expected, dim=0)
    torch.testing.assert_close(weights, (z / second) / (z / second).sum())
    assert strategy.logits[0] < logits[0]  # task 1 improved more, so it loses weight


def test_state_survives_a_checkpoint():
    strategy = FAMO(2)
    for losses in ([1.0, 2.0], [0.8, 1.9], [0.7, 1.9]):
        strategy.backward(torch.tensor(losses, requires_grad=True), [])
    fresh = FAMO(2)
    fresh.load_state_dict(strategy.state_dict())
    step = torch.tensor([0.6, 1.8])
    torch.testing.assert_close(
        fresh.backward(step.clone().requires_grad_(), []), strategy.backward(step.clone().requires_grad_(), [])
    )
