"""Contract tests run over every entry of ``WEIGHTINGS`` (new entries are covered automatically).

The contract (design/ARCHITECTURE.md): ``backward(losses (T,), shared_parameters, regularizer)``
leaves finite gradients on every parameter reached and returns detached (T,) weights; the
regularizer is added unweighted; learnable and adaptive state lives in ``state_dict``; a few steps
on a toy two-task problem lower both losses. Gradient-level strategies give the shared parameters
their direction and every other parameter Σ_t w_t ∇L_t.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

from mtlrec.weighting import WEIGHTINGS, GradientWeighting, WeightingStrategy
from mtlrec.weighting.base import task_gradients

NAMES = sorted(WEIGHTINGS)
GRADIENT_LEVEL = [name for name in NAMES if issubclass(WEIGHTINGS[name], GradientWeighting)]


def make_strategy(name: str, num_tasks: int = 2) -> WeightingStrategy:
    """A registered strategy from its defaults (``weights``, when required or accepted, set to 1.5, 0.5, ...)."""
    cls = WEIGHTINGS[name]
    kwargs = {}
    for param_name, parameter in inspect.signature(cls.__init__).parameters.items():
        if param_name == "weights":
            kwargs["weights"] = [1.5, 0.5, 1.0][:num_tasks]
        elif param_name not in ("self", "num_tasks") and parameter.default is inspect.Parameter.empty:
            pytest.fail(f"{name} needs argument {param_name!r}: give every strategy parameter a default")
    return cls(num_tasks=num_tasks, **kwargs)


class Toy(nn.Module):
    """Embeddings and dense input → a shared tanh layer → one linear head per task (regression).

    ``side`` is a shared parameter that only task 0 reaches.
    """

    def __init__(self, num_tasks: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = nn.Embedding(10, 3)
        self.shared = nn.Linear(7, 5)
        self.side = nn.Parameter(0.1 * torch.randn(5))
        self.heads = nn.ModuleList(nn.Linear(5, 1) for _ in range(num_tasks))

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.shared.weight, self.shared.bias, self.side]

    def losses(self, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        dense, ids, targets = data
        hidden = torch.tanh(self.shared(torch.cat([dense, self.embedding(ids)], dim=1)))
        outputs = [head(hidden + self.side if t == 0 else hidden).squeeze(-1) for t, head in enumerate(self.heads)]
        return torch.stack([nn.functional.mse_loss(out, targets[:, t]) for t, out in enumerate(outputs)])


def toy_data(num_tasks: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    dense = torch.randn(64, 4, generator=generator)
    ids = torch.randint(0, 10, (64,), generator=generator)
    targets = torch.stack([dense[:, 0] + 0.5 * dense[:, 1], dense[:, 1] - dense[:, 2], dense[:, 3]][:num_tasks], 1)
    return dense, ids, targets


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def regularizer(model: Toy) -> torch.Tensor:
    return 0.3 * model.shared.weight.pow(2).sum() + 0.2 * model.heads[1].weight.sum()


@pytest.mark.parametrize("num_tasks", [2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_backward_returns_detached_weights_and_leaves_finite_gradients(name, num_tasks):
    model, strategy = Toy(num_tasks), make_strategy(name, num_tasks)
    weights = strategy.backward(model.losses(toy_data(num_tasks)), model.shared_parameters())
    assert weights.shape == (num_tasks,)
    assert not weights.requires_grad and torch.isfinite(weights).all()
    for param_name, parameter in model.named_parameters():
        assert parameter.grad is not None, param_name
        assert torch.isfinite(parameter.grad).all(), param_name
    for parameter in strategy.parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_a_few_sgd_steps_lower_both_losses(name):
    model, strategy = Toy(), make_strategy(name)
    optimizer = torch.optim.SGD(list(model.parameters()) + list(strategy.parameters()), lr=0.1)
    data = toy_data()
    with torch.no_grad():
        initial = model.losses(data)
    for step in range(45):
        optimizer.zero_grad()
        strategy.backward(model.losses(data), model.shared_parameters())
        optimizer.step()
        if step % 15 == 14:
            with torch.no_grad():
                strategy.end_epoch(step // 15, model.losses(data))
    with torch.no_grad():
        final = model.losses(data)
    assert (final < 0.8 * initial).all(), (initial, final)


def train_a_little(strategy: WeightingStrategy, model: Toy) -> None:
    """Three 'epochs' of two Adam steps, so adaptive and per-epoch state moves."""
    optimizer = torch.optim.Adam(list(model.parameters()) + list(strategy.parameters()), lr=0.05)
    for epoch in range(3):
        for _ in range(2):
            optimizer.zero_grad()
            losses = model.losses(toy_data())
            strategy.backward(losses, model.shared_parameters())
            optimizer.step()
        strategy.end_epoch(epoch, losses.detach() * (1 + epoch))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_the_same_next_step(name):
    strategy = make_strategy(name)
    train_a_little(strategy, Toy())
    fresh = make_strategy(name)
    fresh.load_state_dict(strategy.state_dict())
    strategy.zero_grad()
    first, second = Toy(seed=1), Toy(seed=1)
    weights = strategy.backward(first.losses(toy_data()), first.shared_parameters())
    torch.testing.assert_close(fresh.backward(second.losses(toy_data()), second.shared_parameters()), weights)
    for (param_name, a), b in zip(gradients(first).items(), gradients(second).values()):
        torch.testing.assert_close(a, b, msg=param_name)
    for a, b in zip(strategy.parameters(), fresh.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("name", NAMES)
def test_regularizer_gradient_is_added_unweighted(name):
    plain, regularized = Toy(), Toy()
    strategy = make_strategy(name)
    twin = copy.deepcopy(strategy)
    strategy.backward(plain.losses(toy_data()), plain.shared_parameters())
    twin.backward(regularized.losses(toy_data()), regularized.shared_parameters(), regularizer(regularized))
    reference = Toy()
    regularizer(reference).backward()
    expected = {n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in reference.named_parameters()}
    for (param_name, without), with_reg in zip(gradients(plain).items(), gradients(regularized).values()):
        torch.testing.assert_close(with_reg - without, expected[param_name], msg=param_name)


@pytest.mark.parametrize("name", NAMES)
def test_without_shared_parameters_every_parameter_still_gets_a_gradient(name):
    model, strategy = Toy(), make_strategy(name)
    weights = strategy.backward(model.losses(toy_data()), [])
    assert weights.shape == (2,)
    for param_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), param_name


@pytest.mark.parametrize("name", GRADIENT_LEVEL)
def test_shared_parameters_get_the_direction_and_the_rest_the_weighted_sum(name):
    model, strategy = Toy(), make_strategy(name)
    shared = model.shared_parameters()
    losses = model.losses(toy_data())
    per_task = task_gradients(losses, list(model.parameters()))  # (T, all parameters)
    direction, _ = copy.deepcopy(strategy).combine(task_gradients(losses, shared), losses.detach())
    weights = strategy.backward(losses, shared)
    assert torch.count_nonzero(task_gradients(model.losses(toy_data()), [model.side])[1]) == 0  # side: task 0 only
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in shared]), direction)
    expected = weights @ per_task
    offset, shared_ids = 0, {id(p) for p in shared}
    for param_name, parameter in model.named_parameters():
        size = parameter.numel()
        if id(parameter) not in shared_ids:
            torch.testing.assert_close(parameter.grad.reshape(-1), expected[offset : offset + size], msg=param_name)
        offset += size
