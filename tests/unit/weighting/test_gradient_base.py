"""GradientWeighting: per-task gradients of the shared parameters, the direction on them, Σ w ∇L elsewhere."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.weighting import GradientWeighting
from mtlrec.weighting.base import graph_leaves, task_gradients

WEIGHTS = torch.tensor([2.0, 3.0])


class TwiceTheFirstTask(GradientWeighting):
    """A made-up method: direction 2 g_1 + 0.5 g_2, loss weights (2, 3)."""

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return 2 * grads[0] + 0.5 * grads[1], WEIGHTS


class Model(nn.Module):
    """Embeddings → shared layer → two heads; ``unused`` is shared but reached by no task."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(6, 2)
        self.shared = nn.Linear(3, 4)
        self.unused = nn.Parameter(torch.ones(3))
        self.heads = nn.ModuleList([nn.Linear(4, 1), nn.Linear(4, 1)])

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.shared.weight, self.shared.bias, self.unused]

    def losses(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(1)
        ids, dense = torch.randint(0, 6, (16,), generator=generator), torch.randn(16, 1, generator=generator)
        hidden = torch.relu(self.shared(torch.cat([self.embedding(ids), dense], dim=1)))
        return torch.stack([head(hidden).pow(2).mean() + 0.1 * t for t, head in enumerate(self.heads)])


def per_task(model: Model, parameters: list[nn.Parameter]) -> torch.Tensor:
    return task_gradients(model.losses(), parameters)


def test_shared_parameters_get_the_direction_and_the_rest_the_weighted_sum():
    model = Model()
    shared = model.shared_parameters()
    shared_grads = per_task(model, shared)
    others = [model.embedding.weight, *model.heads.parameters()]
    other_grads = per_task(model, others)
    weights = TwiceTheFirstTask(2).backward(model.losses(), shared)
    assert torch.equal(weights, WEIGHTS)
    torch.testing.assert_close(
        torch.cat([p.grad.reshape(-1) for p in shared]), 2 * shared_grads[0] + 0.5 * shared_grads[1]
    )
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in others]), WEIGHTS @ other_grads)


def test_a_shared_parameter_no_task_reaches_gets_zeros():
    model = Model()
    assert torch.count_nonzero(per_task(model, [model.unused])) == 0
    TwiceTheFirstTask(2).backward(model.losses(), model.shared_parameters())
    assert torch.equal(model.unused.grad, torch.zeros(3))


def test_gradients_accumulate_like_backward():
    model, reference = Model(), Model()
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)
    TwiceTheFirstTask(2).backward(model.losses(), model.shared_parameters())
    TwiceTheFirstTask(2).backward(reference.losses(), reference.shared_parameters())
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad + 1)


def test_without_shared_parameters_it_backpropagates_the_plain_sum():
    model, reference = Model(), Model()
    weights = TwiceTheFirstTask(2).backward(model.losses(), [])
    reference.losses().sum().backward()
    assert torch.equal(weights, torch.ones(2))
    for a, b in zip(model.parameters(), reference.parameters()):
        if b.grad is None:
            assert a.grad is None
        else:
            torch.testing.assert_close(a.grad, b.grad)


def test_graph_leaves_are_the_parameters_reached():
    model = Model()
    leaves = {id(leaf) for leaf in graph_leaves(model.losses().sum())}
    expected = {id(p) for p in model.parameters()} - {id(model.unused)}
    assert leaves == expected
    assert graph_leaves(torch.zeros(())) == []
