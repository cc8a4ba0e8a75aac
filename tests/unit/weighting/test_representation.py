"""Gradient-level strategies on the shared representation (MGDA-UB style): the layers below the
representation receive the method's direction pushed through them, everything else Σ_t w_t ∇L_t."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.architectures import MMoE
from mtlrec.weighting import WEIGHTINGS, GradientWeighting

GRADIENT_LEVEL = sorted(name for name, cls in WEIGHTINGS.items() if issubclass(cls, GradientWeighting))


class Trunk(nn.Module):
    """z = x Wᵀ (shared), then one linear head per task on z."""

    def __init__(self, num_tasks: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.shared = nn.Linear(4, 6, bias=False)
        self.heads = nn.ModuleList(nn.Linear(6, 1) for _ in range(num_tasks))

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.shared(x)
        losses = torch.stack(
            [nn.functional.mse_loss(head(z).squeeze(-1), y[:, t]) for t, head in enumerate(self.heads)]
        )
        return losses, z


@pytest.mark.parametrize("name", GRADIENT_LEVEL)
def test_the_shared_layer_gets_the_direction_through_the_representation(name):
    model = Trunk()
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, generator=generator), torch.randn(16, 3, generator=generator)
    losses, z = model.losses(x, y)
    grads = torch.stack([torch.autograd.grad(loss, z, retain_graph=True)[0].reshape(-1) for loss in losses])
    head_grads = [
        [torch.autograd.grad(loss, list(head.parameters()), retain_graph=True) for head in model.heads]
        for loss in losses
    ]
    reference = WEIGHTINGS[name](num_tasks=3, on="representation")
    expected_direction, expected_weights = reference.combine(grads, losses.detach())

    strategy = WEIGHTINGS[name](num_tasks=3, on="representation")
    weights = strategy.backward(losses, list(model.shared.parameters()), representation=z)
    torch.testing.assert_close(weights, expected_weights.to(weights.dtype))
    # dL/dW for z = x Wᵀ with the gradient d entering z: dᵀ x
    torch.testing.assert_close(model.shared.weight.grad, expected_direction.view(16, 6).T @ x, rtol=1e-5, atol=1e-6)
    for t, head in enumerate(model.heads):  # head t: only L_t reaches it, with weight w_t
        for parameter, grad in zip(head.parameters(), head_grads[t][t]):
            torch.testing.assert_close(parameter.grad, weights[t] * grad, rtol=1e-5, atol=1e-7)


def test_mmoe_keeps_its_expert_outputs_as_the_representation_while_training():
    """MMoE keeps its expert outputs as the representation while training, and not in eval."""
    model = MMoE(5, ["a", "b"], num_experts=3, expert_hidden_units=[4], tower_hidden_units=[3])
    model(torch.randn(2, 5))
    assert model.last_representation is not None and model.last_representation.shape == (2, 3, 4)
    model.eval()
    model.last_representation = None
    model(torch.randn(2, 5))
    assert model.last_representation is None


def test_without_a_representation_the_parameters_are_used():
    model = Trunk()
    x, y = torch.randn(8, 4), torch.randn(8, 3)
    losses, _ = model.losses(x, y)
    strategy = WEIGHTINGS["pcgrad"](num_tasks=3, on="representation")
    strategy.backward(losses, list(model.shared.parameters()), representation=None)
    assert model.shared.weight.grad is not None and torch.isfinite(model.shared.weight.grad).all()


def test_unknown_target_is_rejected():
    with pytest.raises(ValueError, match="on must be one of"):
        WEIGHTINGS["mgda"](num_tasks=2, on="embeddings")
