"""MMoE, OMoE, multi-level MMoE, CGC and PLE against references written one expert and one gate at a time."""

from __future__ import annotations

import pytest
import torch

from mtlrec.architectures import CGC, PLE, MMoE, MultiLevelMMoE, OMoE
from mtlrec.architectures.ple import ExpertNet, ExtractionNetwork
from mtlrec.nn import ParallelExperts

TASKS = ["ctr", "cvr", "like"]


def _expert(experts: ParallelExperts, index: int, x: torch.Tensor) -> torch.Tensor:
    """Expert ``index`` as a plain MLP over x (B, D) → (B, H), from its weight views."""
    for weight, bias in experts.expert_layers(index):
        x = torch.relu(x @ weight + bias)
    return x


def _all_experts(experts: ParallelExperts, x: torch.Tensor) -> list[torch.Tensor]:
    return [_expert(experts, e, x) for e in range(experts.num_experts)]


def _mix(weights: torch.Tensor, outputs: list[torch.Tensor]) -> torch.Tensor:
    return sum(weights[:, e : e + 1] * output for e, output in enumerate(outputs))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_mmoe_equals_the_papers_equations_one_gate_and_expert_at_a_time(temperature):
    """y_k = h^k(Σ_e g^k_e(x) f_e(x)), g^k(x) = softmax(W_gk x / τ): Ma et al. 2018, Eq. 4–5."""
    torch.manual_seed(0)
    model = MMoE(5, TASKS, num_experts=3, expert_hidden_units=[6, 4], tower_hidden_units=[3],
                 gate_temperature=temperature)
    x = torch.randn(7, 5)
    experts = _all_experts(model.experts, x)
    model.record_gates = True
    outputs = model(x)
    for task in TASKS:
        gate = model.gates[task].linear
        weights = torch.softmax((x @ gate.weight.T + gate.bias) / temperature, dim=-1)
        torch.testing.assert_close(model.last_gate_weights[task], weights)
        torch.testing.assert_close(outputs[task], model.towers[task](_mix(weights, experts)))
    assert not torch.allclose(outputs["ctr"], model.towers["ctr"](_mix(model.gates["cvr"](x), experts)))  # own gate


def test_omoe_gives_every_task_the_same_mixture():
    torch.manual_seed(0)
    model = OMoE(5, TASKS, num_experts=3, expert_hidden_units=[6, 4], tower_hidden_units=[3])
    x = torch.randn(7, 5)
    mixture = _mix(model.gate(x), _all_experts(model.experts, x))
    outputs = model(x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], model.towers[task](mixture))
    assert [p for p in model.shared_parameters()] == list(model.experts.parameters()) + list(model.gate.parameters())


def test_multi_level_mmoe_runs_each_task_through_the_upper_experts_on_its_own_mixture():
    torch.manual_seed(0)
    model = MultiLevelMMoE(5, TASKS, num_levels=3, num_experts=2, expert_hidden_units=[6, 4], tower_hidden_units=[])
    x = torch.randn(6, 5)
    mixtures = {task: _mix(model.gates[0][task](x), _all_experts(model.experts[0], x)) for task in TASKS}
    for level in (1, 2):
        mixtures = {
            task: _mix(model.gates[level][task](m), _all_experts(model.experts[level], m))
            for task, m in mixtures.items()
        }
    model.record_gates = True
    outputs = model(x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], model.towers[task](mixtures[task]))
    assert set(model.last_gate_weights) == set(TASKS) | {f"level{level}.{t}" for level in (1, 2) for t in TASKS}


def _ple_reference(model: PLE, x: torch.Tensor, per_task: int) -> dict[str, torch.Tensor]:
    """PLE one expert at a time: Tang et al. 2020, Eq. 2–7."""
    num_tasks = len(model.task_names)
    task_inputs, shared_input = [x] * num_tasks, x
    for level in model.levels:
        if level.fused_experts is not None:  # task experts first (per_task each), then the shared ones
            fused = _all_experts(level.fused_experts, x)
            task_outputs = [fused[t * per_task : (t + 1) * per_task] for t in range(num_tasks)]
            shared_outputs = fused[num_tasks * per_task :]
        else:
            task_outputs = [_all_experts(e, xi) for e, xi in zip(level.task_experts, task_inputs)]
            shared_outputs = _all_experts(level.shared_experts, shared_input)
        new_inputs = [
            _mix(gate(xi), own + shared_outputs) for gate, xi, own in zip(level.task_gates, task_inputs, task_outputs)
        ]
        if level.shared_gate is not None:
            every = [o for outputs in task_outputs for o in outputs] + shared_outputs
            shared_input = _mix(level.shared_gate(shared_input), every)
        task_inputs = new_inputs
    return {task: model.towers[task](task_inputs[t]) for t, task in enumerate(model.task_names)}


@pytest.mark.parametrize("per_task, shared", [(1, 1), (2, 1), (1, 3)])
def test_ple_matches_the_one_expert_at_a_time_reference(per_task, shared):
    torch.manual_seed(0)
    levels = [
        ExtractionNetwork("a", per_task, shared, ExpertNet([8, 6]), ExpertNet([8, 6])),
        ExtractionNetwork("b", per_task, shared, ExpertNet([5]), ExpertNet([7, 5])),
        ExtractionNetwork("c", per_task, shared, ExpertNet([4]), ExpertNet([4])),
    ]
    model = PLE(5, TASKS, levels, tower_hidden_units=[3])
    assert model.levels[0].fused_experts is not None and model.levels[1].fused_experts is None
    x = torch.randn(9, 5)
    expected = _ple_reference(model, x, per_task)
    outputs = model(x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], expected[task])


def test_cgc_is_one_level_and_owns_its_task_experts():
    torch.manual_seed(0)
    model = CGC(
        5, TASKS, expert_num_per_task=2, share_num=1, task_expert_hidden_units=[6], share_expert_hidden_units=[6]
    )
    assert len(model.levels) == 1 and model.levels[0].shared_gate is None
    x = torch.randn(4, 5)
    expected = _ple_reference(model, x, 2)
    model.record_gates = True
    outputs = model(x)
    for index, task in enumerate(TASKS):
        torch.testing.assert_close(outputs[task], expected[task])
        owned = {id(p) for p in model.task_parameters(task)}
        assert {id(p) for p in model.levels[0].task_experts[index].parameters()} <= owned
        assert model.last_gate_weights[task].shape == (4, 3)  # 2 own + 1 shared expert
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in model.levels[0].shared_experts.parameters()}


def test_ple_records_every_levels_gates():
    torch.manual_seed(0)
    model = PLE(5, TASKS[:2])
    model.record_gates = True
    model(torch.randn(3, 5))
    assert set(model.last_gate_weights) == {"level1.ctr", "level1.cvr", "level1.shared", "ctr", "cvr"}
    assert model.last_gate_weights["level1.shared"].shape == (3, 3)  # 2 task experts + 1 shared


def test_ple_rejects_experts_of_different_output_widths():
    level = ExtractionNetwork("a", 1, 1, ExpertNet([8, 6]), ExpertNet([8, 5]))
    with pytest.raises(ValueError, match="same width"):
        PLE(5, TASKS, [level])


def test_ple_accepts_easyrec_style_dicts():
    spec = {
        "network_name": "x",
        "expert_num_per_task": 2,
        "share_num": 1,
        "task_expert_net": {"hidden_units": [4]},
        "share_expert_net": {"hidden_units": [4]},
    }
    model = PLE(5, TASKS[:2], [spec])
    assert model.level_names == ["x"]
    assert model.levels[0].task_experts[0].num_experts == 2
