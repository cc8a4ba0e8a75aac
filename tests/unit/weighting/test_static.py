"""Weighting strategies: the contract over ``WEIGHTINGS``, and the static ones against autograd."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

from mtlrec.weighting import WEIGHTINGS, EqualWeighting, FixedWeighting, WeightingStrategy

NUM_TASKS = 2
FIXED_WEIGHTS = [2.0, 0.5]


def make_strategy(name: str, num_tasks: int = NUM_TASKS) -> WeightingStrategy:
    """Construct a registered strategy from ``num_tasks`` (and ``weights`` when it takes them)."""
    cls = WEIGHTINGS[name]
    kwargs = {}
    for param_name, parameter in inspect.signature(cls.__init__).parameters.items():
        if param_name in ("self", "num_tasks") or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if param_name == "weights":
            kwargs["weights"] = FIXED_WEIGHTS[:num_tasks]
        elif parameter.default is inspect.Parameter.empty:
            pytest.skip(f"{name} needs argument {param_name!r}, unknown to this test")
    return cls(num_tasks=num_tasks, **kwargs)


class ToyTwoTask(nn.Module):
    """A shared linear trunk and two linear heads: regression on two related targets."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(4, 3)
        self.heads = nn.ModuleList([nn.Linear(3, 1), nn.Linear(3, 1)])

    def losses(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.shared(x))
        return torch.stack(
            [nn.functional.mse_loss(head(hidden).squeeze(-1), targets[:, t]) for t, head in enumerate(self.heads)]
        )


def toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    targets = torch.stack([x[:, 0] + 0.5 * x[:, 1], x[:, 1] - x[:, 2]], dim=1)
    return x, targets


def toy_model(seed: int = 0) -> ToyTwoTask:
    torch.manual_seed(seed)
    return ToyTwoTask()


def expected_gradients(model: ToyTwoTask, weights: list[float]) -> list[torch.Tensor]:
    """Σ_t w_t ∇L_t, with each task's gradient computed separately by autograd on a copy of the model."""
    clone = copy.deepcopy(model)
    x, targets = toy_data()
    params = list(clone.parameters())
    total = [torch.zeros_like(p) for p in params]
    for t, weight in enumerate(weights):
        grads = torch.autograd.grad(clone.losses(x, targets)[t], params)
        total = [acc + weight * grad for acc, grad in zip(total, grads)]
    return total


def run_backward(model: ToyTwoTask, strategy: WeightingStrategy) -> torch.Tensor:
    x, targets = toy_data()
    return strategy.backward(model.losses(x, targets), list(model.shared.parameters()))


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_backward_leaves_finite_gradients(name):
    model, strategy = toy_model(), make_strategy(name)
    weights = run_backward(model, strategy)
    for param_name, parameter in model.named_parameters():
        assert parameter.grad is not None, param_name
        assert torch.isfinite(parameter.grad).all(), param_name
    assert weights.shape == (NUM_TASKS,)
    assert torch.isfinite(weights).all()
    assert not weights.requires_grad


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_state_dict_round_trip_into_a_fresh_instance(name):
    strategy = make_strategy(name)
    run_backward(toy_model(), strategy)  # let adaptive strategies move their state
    fresh = make_strategy(name)
    fresh.load_state_dict(strategy.state_dict())
    assert fresh.state_dict().keys() == strategy.state_dict().keys()
    for key, value in strategy.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    first, second = toy_model(), toy_model()
    torch.testing.assert_close(run_backward(first, strategy), run_backward(second, fresh))
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_a_few_adam_steps_lower_both_losses(name):
    model, strategy = toy_model(), make_strategy(name)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(strategy.parameters()), lr=0.05)
    x, targets = toy_data()
    with torch.no_grad():
        initial = model.losses(x, targets)
    for _ in range(30):
        optimizer.zero_grad()
        strategy.backward(model.losses(x, targets), list(model.shared.parameters()))
        optimizer.step()
    with torch.no_grad():
        final = model.losses(x, targets)
    assert (final < 0.7 * initial).all(), (initial, final)


def test_equal_weighting_gradients_are_those_of_the_summed_losses():
    model = toy_model()
    expected = expected_gradients(model, [1.0, 1.0])
    weights = run_backward(model, EqualWeighting(NUM_TASKS))
    assert torch.equal(weights, torch.ones(NUM_TASKS))
    for parameter, grad in zip(model.parameters(), expected):
        torch.testing.assert_close(parameter.grad, grad)


def test_equal_weighting_matches_autograd_of_the_sum_on_a_clone():
    model = toy_model()
    clone = copy.deepcopy(model)
    x, targets = toy_data()
    clone.losses(x, targets).sum().backward()
    run_backward(model, EqualWeighting(NUM_TASKS))
    for a, b in zip(model.parameters(), clone.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


def test_fixed_weighting_gradients_are_the_weighted_sum_of_task_gradients():
    model = toy_model()
    expected = expected_gradients(model, FIXED_WEIGHTS)
    weights = run_backward(model, FixedWeighting(NUM_TASKS, FIXED_WEIGHTS))
    assert torch.equal(weights, torch.tensor(FIXED_WEIGHTS))
    for parameter, grad in zip(model.parameters(), expected):
        torch.testing.assert_close(parameter.grad, grad)


def test_fixed_weighting_zero_weight_ignores_a_task():
    model = toy_model()
    run_backward(model, FixedWeighting(NUM_TASKS, [1.0, 0.0]))
    assert torch.count_nonzero(model.heads[1].weight.grad) == 0
    for parameter, grad in zip(model.parameters(), expected_gradients(model, [1.0, 0.0])):
        torch.testing.assert_close(parameter.grad, grad)


def test_fixed_weights_survive_a_state_dict_round_trip():
    source = FixedWeighting(NUM_TASKS, FIXED_WEIGHTS)
    target = FixedWeighting(NUM_TASKS, [1.0, 1.0])
    target.load_state_dict(source.state_dict())
    assert torch.equal(target.weights(torch.ones(NUM_TASKS)), torch.tensor(FIXED_WEIGHTS))


@pytest.mark.parametrize("weights", [[1.0], [1.0, 2.0, 3.0], []])
def test_fixed_weighting_rejects_a_wrong_number_of_weights(weights):
    with pytest.raises(ValueError, match="expected 2 weights"):
        FixedWeighting(NUM_TASKS, weights)


def test_fixed_weighting_rejects_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        FixedWeighting(NUM_TASKS, [1.0, -0.5])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_fixed_weighting_rejects_non_finite_weights(bad):
    with pytest.raises(ValueError):
        FixedWeighting(NUM_TASKS, [1.0, bad])
