"""AdaTT against a reference written one unit, expert and gate at a time (Li et al., KDD 2023)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.architectures.adatt import AdaTT
from mtlrec.nn import ParallelExperts

TASKS = ["ctr", "cvr", "like"]


def _expert(experts: ParallelExperts, index: int, x: torch.Tensor) -> torch.Tensor:
    """Expert ``index`` as a plain ReLU MLP over x (B, D) → (B, H), from its weight views."""
    for weight, bias in experts.expert_layers(index):
        x = torch.relu(x @ weight + bias)
    return x


def _reference(model: AdaTT, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Towers' inputs per task, and each gate's weights, with explicit loops over units and experts."""
    units = model.task_names + (["shared"] if model.num_shared_experts else [])
    inputs = {unit: x for unit in units}
    gates = {}
    for index, level in enumerate(model.levels):
        last = index == len(model.levels) - 1
        outputs = {}  # unit → its experts' outputs, each (B, H)
        for u, unit in enumerate(units):
            experts = level.experts[u]
            outputs[unit] = [_expert(experts, e, inputs[unit]) for e in range(experts.num_experts)]
        every = [output for unit in units for output in outputs[unit]]
        fused = {}
        for u, unit in enumerate(units):
            if last and unit == "shared":
                continue  # nothing reads the shared branch after the last level
            linear = level.gates[u].linear
            weights = torch.softmax(inputs[unit] @ linear.weight.T + linear.bias, dim=-1)
            gates[f"level{index + 1}.{unit}" if not last else unit] = weights
            fused[unit] = sum(weights[:, e : e + 1] * output for e, output in enumerate(every))
            if level.native:
                own = outputs[unit]
                native = level.native[u].weight
                fused[unit] = fused[unit] + (own[0] if native is None else sum(v * f for v, f in zip(native, own)))
        inputs = fused
    return inputs, gates


@pytest.mark.parametrize(
    "per_task, shared, residual", [(2, 0, True), (1, 0, True), (2, 1, True), (1, 2, True), (3, 1, False)]
)
def test_adatt_matches_the_unit_by_unit_reference(per_task, shared, residual):
    torch.manual_seed(0)
    model = AdaTT(
        5,
        TASKS,
        num_levels=3,
        num_task_experts=per_task,
        num_shared_experts=shared,
        expert_hidden_units=[6, 4],
        tower_hidden_units=[3],
        native_residual=residual,
    )
    x = torch.randn(7, 5)
    expected, expected_gates = _reference(model, x)
    model.record_gates = True
    outputs = model(x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], model.towers[task](expected[task]), rtol=0, atol=1e-6)
    assert set(model.last_gate_weights) == set(expected_gates)
    for name, weights in expected_gates.items():
        torch.testing.assert_close(model.last_gate_weights[name], weights, rtol=0, atol=1e-6)


def test_recorded_gates_weigh_every_expert_of_their_level_and_sum_to_one():
    torch.manual_seed(0)
    model = AdaTT(6, TASKS, num_levels=2, num_task_experts=2, num_shared_experts=1)
    model.record_gates = True
    model(torch.randn(5, 6))
    gates = model.last_gate_weights
    assert set(gates) == {*TASKS, *(f"level1.{t}" for t in TASKS), "level1.shared"}  # no last-level shared gate
    for name, weights in gates.items():
        assert weights.shape == (5, 3 * 2 + 1)
        torch.testing.assert_close(weights.sum(1), torch.ones(5))
        level, experts = model.gate_experts(name, weights.shape[1])
        assert level == ("level1" if name.startswith("level1.") else "level2")
        assert experts == ["ctr.e0", "ctr.e1", "cvr.e0", "cvr.e1", "like.e0", "like.e1", "shared.e0"]


@pytest.mark.parametrize("column", range(7))
def test_gate_column_names_the_expert_it_weighs(column):
    """A one-hot gate on column c gives exactly the output of the expert ``gate_experts`` names at c."""
    torch.manual_seed(0)
    model = AdaTT(6, TASKS, num_levels=1, num_task_experts=2, num_shared_experts=1, native_residual=False)
    model.towers["cvr"] = nn.Identity()  # read the fused output itself
    gate = model.levels[0].gates[1].linear
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.copy_(torch.nn.functional.one_hot(torch.tensor(column), 7) * 100.0)
    x = torch.randn(4, 6)
    owner, _, expert = model.gate_experts("cvr", 7)[1][column].partition(".e")
    unit = 3 if owner == "shared" else TASKS.index(owner)
    torch.testing.assert_close(model(x)["cvr"], _expert(model.levels[0].experts[unit], int(expert), x))


def test_one_level_task_owns_its_gate_native_weights_and_tower_but_its_experts_are_shared():
    torch.manual_seed(0)
    model = AdaTT(6, TASKS, num_levels=1, num_task_experts=2)
    outputs = model(torch.randn(16, 6))
    level = model.levels[0]
    for t, owner in enumerate(TASKS):
        owned = list(model.task_parameters(owner))
        assert {id(p) for p in owned} == {
            id(p) for module in (level.gates[t], level.native[t], model.towers[owner]) for p in module.parameters()
        }
        for task in TASKS:
            grads = torch.autograd.grad(outputs[task].sum(), owned, retain_graph=True, allow_unused=True)
            zero = [g is None or torch.count_nonzero(g) == 0 for g in grads]
            assert all(zero) if task != owner else not any(zero), (owner, task)
            # other tasks' gates weigh task t's experts: they drive every output, hence shared
            (grad,) = torch.autograd.grad(outputs[task].sum(), [level.experts[t].first.weight], retain_graph=True)
            assert torch.count_nonzero(grad) > 0, (owner, task)


def test_lower_level_native_weights_and_gates_drive_other_tasks_so_are_shared():
    torch.manual_seed(0)
    model = AdaTT(6, TASKS, num_levels=2, num_task_experts=2)
    outputs = model(torch.randn(16, 6))
    lower = model.levels[0]
    shared = {id(p) for p in model.shared_parameters()}
    assert {id(lower.native[0].weight), id(lower.gates[0].linear.weight)} <= shared
    grads = torch.autograd.grad(outputs["cvr"].sum(), [lower.native[0].weight, lower.gates[0].linear.weight])
    assert all(torch.count_nonzero(g) > 0 for g in grads)  # ctr's level-1 fusion feeds cvr through ctr's experts


def test_single_expert_units_add_their_expert_and_have_no_native_parameter():
    model = AdaTT(6, TASKS, num_levels=2, num_task_experts=1, num_shared_experts=1)
    assert all(native.weight is None for level in model.levels for native in level.native)
    assert len(model.levels[0].native) == 4 and len(model.levels[1].native) == 3  # shared branch: level 1 only


@pytest.mark.parametrize(
    "kwargs", [{"num_levels": 0}, {"num_task_experts": 0}, {"num_shared_experts": -1}, {"expert_hidden_units": []}]
)
def test_rejects_invalid_sizes(kwargs):
    with pytest.raises(ValueError):
        AdaTT(6, TASKS, **kwargs)
