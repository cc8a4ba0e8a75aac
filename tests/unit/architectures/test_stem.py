"""STEM-Net: all forward, task-specific backward (Su et al., AAAI 2024)."""

from __future__ import annotations

import torch

from mtlrec.architectures.stem import STEM
from mtlrec.nn import ParallelExperts

TASKS = ["ctr", "cvr", "like"]


def _expert(experts: ParallelExperts, index: int, x: torch.Tensor) -> torch.Tensor:
    for weight, bias in experts.expert_layers(index):
        x = torch.relu(x @ weight + bias)
    return x


def _model(levels: int = 1) -> STEM:
    torch.manual_seed(0)
    return STEM(4, TASKS, num_levels=levels, num_shared_experts=2, num_task_experts=2, expert_hidden_units=[16],
                tower_hidden_units=[8])


def test_one_level_matches_the_expert_by_expert_reference():
    model = _model()
    x = torch.randn(6, 1 + len(TASKS), 4)
    level = model.levels[0]
    shared = [_expert(level["shared_experts"], e, x[:, 0]) for e in range(2)]
    own = {t: [_expert(level["task_experts"][t], e, x[:, 1 + i]) for e in range(2)] for i, t in enumerate(TASKS)}
    outputs = model(x)
    for i, task in enumerate(TASKS):
        gate = level["gates"][task].linear
        weights = torch.softmax((x[:, 1 + i] + x[:, 0]) @ gate.weight.T + gate.bias, dim=-1)
        experts = [e for t in TASKS for e in own[t]] + shared
        mixed = sum(weights[:, j : j + 1] * expert for j, expert in enumerate(experts))
        torch.testing.assert_close(outputs[task], model.towers[task](mixed))


def test_a_task_pushes_gradients_only_into_its_own_and_the_shared_embeddings():
    """The stop-gradient on the other tasks' experts: ∂y_ctr/∂E_cvr = 0 although cvr's experts enter y_ctr."""
    for levels in (1, 2):
        model = _model(levels)
        x = torch.randn(32, 1 + len(TASKS), 4, requires_grad=True)
        outputs = model(x)
        for i, task in enumerate(TASKS):
            (grad,) = torch.autograd.grad(outputs[task].sum(), x, retain_graph=True)
            others = [1 + j for j in range(len(TASKS)) if j != i]
            assert torch.count_nonzero(grad[:, others]) == 0, (levels, task)
            assert torch.count_nonzero(grad[:, 0]) > 0 and torch.count_nonzero(grad[:, 1 + i]) > 0


def test_every_task_reads_every_tasks_experts_forward():
    model = _model()
    x = torch.randn(6, 1 + len(TASKS), 4)
    before = model(x)
    changed = x.clone()
    changed[:, 2] += 1.0  # cvr's embeddings
    after = model(changed)
    assert not torch.allclose(after["ctr"], before["ctr"]), "ctr reads cvr's experts in the forward pass"


def test_gates_weigh_every_expert_and_name_them():
    model = _model()
    model.record_gates = True
    model(torch.randn(6, 1 + len(TASKS), 4))
    weights = model.last_gate_weights["ctr"]
    assert weights.shape == (6, 2 * len(TASKS) + 2)
    level, experts = model.gate_experts("ctr", weights.shape[1])
    assert level == "level1"
    assert experts[:2] == ["ctr.e0", "ctr.e1"] and experts[-2:] == ["shared.e0", "shared.e1"]
