"""L2 soft sharing: the vectorised penalty against the pair sum, its gradient, and the independence of tasks."""

from __future__ import annotations

import itertools

import pytest
import torch

from mtlrec.architectures.soft_sharing import L2SoftSharing, pairwise_squared_distance

TASKS = ["ctr", "cvr", "like"]


def build(**kwargs) -> L2SoftSharing:
    torch.manual_seed(0)
    params = {"hidden_units": [6, 4], "tower_hidden_units": [3]} | kwargs
    return L2SoftSharing(input_dim=5, task_names=TASKS, **params)


def brute_force(model: L2SoftSharing) -> torch.Tensor:
    """Σ over corresponding bottom parameters (weights and biases) Σ over pairs t < s of ‖θ_t − θ_s‖²."""
    per_task = [list(model.bottoms[task].parameters()) for task in TASKS]
    total = torch.zeros((), dtype=per_task[0][0].dtype)
    for first, second in itertools.combinations(per_task, 2):
        for a, b in zip(first, second):
            total = total + (a - b).pow(2).sum()
    return total


@pytest.mark.parametrize("num_rows", [1, 2, 4])
def test_pairwise_distance_equals_the_sum_over_pairs_and_the_norm_identity(num_rows):
    stacked = torch.randn(num_rows, 11, dtype=torch.float64)
    pairs = sum(((stacked[t] - stacked[s]) ** 2).sum() for t, s in itertools.combinations(range(num_rows), 2))
    identity = num_rows * stacked.pow(2).sum() - stacked.sum(0).pow(2).sum()
    torch.testing.assert_close(pairwise_squared_distance(stacked), torch.as_tensor(pairs, dtype=torch.float64))
    torch.testing.assert_close(pairwise_squared_distance(stacked), identity)


def test_auxiliary_loss_is_strength_times_the_pair_sum_over_bottom_layers():
    model = build(l2_strength=0.25)
    outputs = model(torch.randn(4, 5))
    torch.testing.assert_close(model.auxiliary_loss(outputs), 0.25 * brute_force(model))


def test_gradient_is_twice_the_sum_of_differences_to_the_other_tasks():
    model = build(l2_strength=0.5).double()
    model.auxiliary_loss({}).backward()
    per_task = {task: list(model.bottoms[task].parameters()) for task in TASKS}
    for task in TASKS:
        for index, param in enumerate(per_task[task]):
            others = [per_task[other][index] for other in TASKS if other != task]
            expected = 2 * 0.5 * sum(param.detach() - other.detach() for other in others)
            torch.testing.assert_close(param.grad, expected)
        assert all(p.grad is None for p in model.towers[task].parameters())


def test_gradient_matches_finite_differences():
    model = build(l2_strength=0.5).double()
    weight = model.bottoms["cvr"].layers[0].weight
    model.auxiliary_loss({}).backward()
    step = 1e-6
    with torch.no_grad():
        weight[2, 3] += step
        up = model.auxiliary_loss({}).item()
        weight[2, 3] -= 2 * step
        down = model.auxiliary_loss({}).item()
    assert weight.grad[2, 3].item() == pytest.approx((up - down) / (2 * step), rel=1e-6)


def test_penalty_is_zero_for_identical_bottoms_and_ignores_the_towers():
    model = build()
    with torch.no_grad():
        for task in TASKS[1:]:
            model.bottoms[task].load_state_dict(model.bottoms[TASKS[0]].state_dict())
        for param in model.towers["cvr"].parameters():
            param.add_(1.0)  # towers are not tied
    assert abs(model.auxiliary_loss({}).item()) < 1e-12


def test_identical_task_networks_give_identical_outputs_but_stay_independent():
    model = build()
    with torch.no_grad():
        for task in TASKS[1:]:
            model.bottoms[task].load_state_dict(model.bottoms[TASKS[0]].state_dict())
            model.towers[task].load_state_dict(model.towers[TASKS[0]].state_dict())
    x = torch.randn(6, 5)
    with torch.no_grad():
        before = model(x)
        assert torch.equal(before["ctr"], before["cvr"])
        model.bottoms["cvr"].layers[0].weight.add_(0.5)
        after = model(x)
    assert torch.equal(after["ctr"], before["ctr"]) and torch.equal(after["like"], before["like"])
    assert not torch.allclose(after["cvr"], before["cvr"])


def test_strength_zero_turns_the_penalty_off_and_negative_is_rejected():
    assert build(l2_strength=0.0).auxiliary_loss({}) is None
    with pytest.raises(ValueError):
        build(l2_strength=-1.0)


def test_one_task_has_a_zero_penalty_and_everything_is_owned():
    torch.manual_seed(0)
    model = L2SoftSharing(input_dim=5, task_names=["ctr"], hidden_units=[4])
    assert model.auxiliary_loss({}).item() == 0.0
    assert list(model.shared_parameters()) == []


def test_minimising_the_penalty_pulls_the_bottoms_together():
    model = build(l2_strength=1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    initial = model.bottom_distance().item()
    for _ in range(20):
        optimizer.zero_grad()
        model.auxiliary_loss({}).backward()
        optimizer.step()
    assert model.bottom_distance().item() < 0.1 * initial


def test_no_bottom_layers_means_no_penalty_and_towers_may_differ_per_task():
    torch.manual_seed(0)
    model = L2SoftSharing(input_dim=5, task_names=TASKS, hidden_units=[], tower_hidden_units={"ctr": [3]})
    assert model.auxiliary_loss({}) is None
    assert len(model.towers["ctr"].mlp.layers) > 0 and len(model.towers["cvr"].mlp.layers) == 0
    assert model(torch.randn(2, 5))["like"].shape == (2,)
