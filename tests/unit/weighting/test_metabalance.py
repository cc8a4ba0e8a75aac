"""MetaBalance: moving averages of gradient norms per shared parameter, and the rescaled auxiliary gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mtlrec.weighting.base import task_gradients
from mtlrec.weighting.metabalance import MetaBalance


def linear_losses(theta: torch.Tensor, rows: list[list[float]]) -> torch.Tensor:
    """L_t = a_t · θ, so ∇_θ L_t = a_t whatever θ is."""
    return torch.tensor(rows) @ theta


def test_two_hand_computed_steps():
    # β = r = 0.5. Step 1: ‖g_0‖ = 5, ‖g_1‖ = 10 → m = (2.5, 5), scale 0.5 · 2.5 / 5 + 0.5 = 0.75.
    # Step 2: ‖g_0‖ = 2, ‖g_1‖ = 1 → m = (2.25, 3), scale 0.5 · 2.25 / 3 + 0.5 = 0.875.
    strategy = MetaBalance(2, relax_factor=0.5, beta=0.5)
    theta = torch.zeros(2, requires_grad=True)
    weights = strategy.backward(linear_losses(theta, [[3.0, 4.0], [6.0, 8.0]]), [theta])
    torch.testing.assert_close(strategy.magnitudes, torch.tensor([[2.5, 5.0]]))
    torch.testing.assert_close(theta.grad, torch.tensor([3.0 + 0.75 * 6.0, 4.0 + 0.75 * 8.0]))
    torch.testing.assert_close(weights, torch.tensor([1.0, 0.75]))
    theta.grad = None
    weights = strategy.backward(linear_losses(theta, [[0.0, 2.0], [1.0, 0.0]]), [theta])
    torch.testing.assert_close(strategy.magnitudes, torch.tensor([[2.25, 3.0]]))
    torch.testing.assert_close(theta.grad, torch.tensor([0.875, 2.0]))
    torch.testing.assert_close(weights, torch.tensor([1.0, 0.875]))


class Toy(nn.Module):
    """Embeddings → two shared layers → one head per task; targets of very different scales."""

    def __init__(self, num_tasks: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(8, 3)
        self.first, self.second = nn.Linear(3, 5), nn.Linear(5, 4)
        self.heads = nn.ModuleList(nn.Linear(4, 1) for _ in range(num_tasks))

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.first.parameters(), *self.second.parameters()]

    def losses(self, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, 8, (32,), generator=generator)
        targets = (
            torch.randn(32, len(self.heads), generator=generator) * torch.tensor([1.0, 5.0, 0.2])[: len(self.heads)]
        )
        hidden = torch.tanh(self.second(torch.tanh(self.first(self.embedding(ids)))))
        return torch.stack(
            [(head(hidden).squeeze(-1) - targets[:, t]).pow(2).mean() for t, head in enumerate(self.heads)]
        )


def test_relax_factor_zero_is_the_plain_sum_everywhere():
    model = Toy()
    expected = task_gradients(model.losses(), list(model.parameters())).sum(dim=0)
    weights = MetaBalance(3, relax_factor=0.0).backward(model.losses(), model.shared_parameters())
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in model.parameters()]), expected)
    torch.testing.assert_close(weights, torch.ones(3))


@pytest.mark.parametrize("targets", [(0,), (0, 2)])
def test_relax_factor_one_scales_each_auxiliary_gradient_by_the_moving_average_ratio(targets):
    """Per parameter, .grad = g_tar + Σ_a (m_tar / m_a) g_a, so g_a's part has norm (m_tar / m_a) ‖g_a‖."""
    model, strategy = Toy(), MetaBalance(3, target_tasks=targets, relax_factor=1.0, beta=0.9)
    auxiliary = [t for t in range(3) if t not in targets]
    shared = model.shared_parameters()
    averages = torch.zeros(len(shared), 1 + len(auxiliary))
    for step in range(3):
        per_task = [torch.autograd.grad(loss, shared, retain_graph=True) for loss in model.losses(step)]
        expected = []
        for i, parameter in enumerate(shared):
            target = sum(per_task[t][i] for t in targets)
            norms = torch.stack([target.norm()] + [per_task[a][i].norm() for a in auxiliary])
            averages[i] = 0.9 * averages[i] + 0.1 * norms
            parts = [averages[i, 0] / averages[i, k + 1] * per_task[a][i] for k, a in enumerate(auxiliary)]
            expected.append(target + sum(parts))
            if step == 0:  # the averages' bias cancels in the ratio: each part has the target's own norm
                for part in parts:
                    torch.testing.assert_close(part.norm(), norms[0])
            parameter.grad = None
        strategy.backward(model.losses(step), shared)
        torch.testing.assert_close(strategy.magnitudes, averages)
        for parameter, grad in zip(shared, expected):
            torch.testing.assert_close(parameter.grad, grad, rtol=1e-5, atol=1e-6)


def test_other_parameters_get_the_plain_sum_and_the_regularizer_is_added_unweighted():
    model, plain = Toy(), Toy()
    shared_ids = {id(p) for p in model.shared_parameters()}
    others = [name for name, p in model.named_parameters() if id(p) not in shared_ids]
    expected = dict(
        zip(
            others,
            task_gradients(model.losses(), [model.get_parameter(n) for n in others])
            .sum(0)
            .split([model.get_parameter(n).numel() for n in others]),
        )
    )
    MetaBalance(3).backward(plain.losses(), plain.shared_parameters())
    regularizer = 0.1 * model.first.weight.pow(2).sum() + model.heads[1].bias.sum()
    weights = MetaBalance(3).backward(model.losses(), model.shared_parameters(), regularizer)
    regularizer_grads = {"first.weight": 0.2 * model.first.weight.detach(), "heads.1.bias": torch.ones(1)}
    for name, parameter in model.named_parameters():
        extra = regularizer_grads.get(name, torch.zeros_like(parameter))
        torch.testing.assert_close(parameter.grad - plain.get_parameter(name).grad, extra, msg=name)
        if name in expected:  # towers and embeddings: Σ_t ∇L_t
            torch.testing.assert_close(plain.get_parameter(name).grad.reshape(-1), expected[name], msg=name)
    assert weights[0] == 1.0 and (weights[1:] != 1.0).all()  # the auxiliary tasks' mean scales


def test_weights_are_the_auxiliary_scales_averaged_over_the_parameters_they_reach():
    # θ_1: ‖g_0‖ = 2, ‖g_1‖ = 0.5; θ_2: task 1 only, ‖g_1‖ = 4 (m_tar = 0). r = 0.5 → scales 2.5 and 0.5.
    first, second = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    losses = torch.stack([2 * first.sum(), 0.5 * first.sum() + 4 * second.sum(), 0 * first.sum()])
    weights = MetaBalance(3, relax_factor=0.5).backward(losses, [first, second])
    torch.testing.assert_close(weights, torch.tensor([1.0, 1.5, 1.0]))  # task 1: (2.5 + 0.5) / 2; task 2: none
    torch.testing.assert_close(first.grad, torch.tensor([2.0 + 2.5 * 0.5]))
    torch.testing.assert_close(second.grad, torch.tensor([0.5 * 4.0]))


def test_state_dict_round_trip_into_a_fresh_strategy():
    model, strategy = Toy(), MetaBalance(3, target_tasks=[1])
    for step in range(3):
        strategy.backward(model.losses(step), model.shared_parameters())
    fresh = MetaBalance(3, target_tasks=[1])
    fresh.load_state_dict(strategy.state_dict())
    torch.testing.assert_close(fresh.magnitudes, strategy.magnitudes)
    model.zero_grad()
    twin = copy.deepcopy(model)
    weights = strategy.backward(model.losses(5), model.shared_parameters())
    torch.testing.assert_close(fresh.backward(twin.losses(5), twin.shared_parameters()), weights)
    torch.testing.assert_close(fresh.magnitudes, strategy.magnitudes)
    for (name, mine), theirs in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, msg=name)


def test_the_averages_follow_the_module_to_another_dtype():
    model, strategy = Toy(), MetaBalance(3)
    strategy.backward(model.losses(0), model.shared_parameters())
    saved = strategy.magnitudes.clone()
    strategy.double()
    assert strategy.magnitudes.dtype == torch.float64
    torch.testing.assert_close(strategy.magnitudes, saved.double())
    model.zero_grad()
    weights = strategy.backward(model.losses(1), model.shared_parameters())
    assert weights.dtype == torch.float32 and all(p.grad.dtype == torch.float32 for p in model.parameters())


def test_arguments_and_the_number_of_shared_parameters_are_checked():
    for kwargs in ({"target_tasks": [3]}, {"target_tasks": []}, {"target_tasks": [0, 0]}):
        with pytest.raises(ValueError, match="target_tasks"):
            MetaBalance(3, **kwargs)
    with pytest.raises(ValueError, match="relax_factor"):
        MetaBalance(2, relax_factor=1.5)
    with pytest.raises(ValueError, match="beta"):
        MetaBalance(2, beta=1.0)
    strategy, model = MetaBalance(3), Toy()
    strategy.backward(model.losses(), model.shared_parameters())
    with pytest.raises(ValueError, match="shared parameters"):
        strategy.backward(model.losses(), model.shared_parameters()[:2])
