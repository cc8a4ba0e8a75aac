"""``gate_experts``: each recorded gate's level and the experts its columns weigh, checked against the forward pass."""

from __future__ import annotations

import pytest
import torch

from mtlrec.architectures import ARCHITECTURES
from mtlrec.architectures.moe import MultiLevelMMoE
from mtlrec.architectures.ple import PLE, ExpertNet, ExtractionNetwork

TASKS = ["ctr", "cvr", "like"]
GATED = sorted(name for name, cls in ARCHITECTURES.items() if cls.has_gates)


def _recorded(model) -> dict[str, torch.Tensor]:
    model.record_gates = True
    model(torch.randn(5, 1 + len(TASKS), 6) if model.embeddings_per_task else torch.randn(5, 6))
    return model.last_gate_weights


@pytest.mark.parametrize("name", GATED)
def test_every_recorded_gate_names_one_expert_per_column(name):
    torch.manual_seed(0)
    model = ARCHITECTURES[name](input_dim=6, task_names=TASKS)
    for gate, weights in _recorded(model).items():
        level, experts = model.gate_experts(gate, weights.shape[1])
        assert len(experts) == weights.shape[1] == len(set(experts)), gate
        assert isinstance(level, str)


def test_multi_level_mmoe_names_its_levels():
    model = MultiLevelMMoE(input_dim=6, task_names=TASKS, num_levels=3, num_experts=2, expert_hidden_units=[4])
    levels = {gate: model.gate_experts(gate, w.shape[1])[0] for gate, w in _recorded(model).items()}
    assert levels == {
        **{f"level1.{t}": "level1" for t in TASKS},
        **{f"level2.{t}": "level2" for t in TASKS},
        **{t: "level3" for t in TASKS},
    }


def test_ple_gate_columns_match_the_experts_they_mix():
    """A task gate's column c weighs the expert that the level's selection matrix places it on."""
    spec = ExtractionNetwork("low", expert_num_per_task=2, share_num=1, task_expert_net=ExpertNet([4]))
    spec.share_expert_net = ExpertNet([4])
    top = ExtractionNetwork("top", expert_num_per_task=1, share_num=2, task_expert_net=ExpertNet([4]))
    top.share_expert_net = ExpertNet([4])
    model = PLE(input_dim=6, task_names=TASKS, extraction_networks=[spec, top])
    gates = _recorded(model)
    for index, level_name in enumerate(["low", "top"]):
        level = model.levels[index]
        # the level's full expert order: task 1's, ..., task T's, then the shared experts
        per_task, shared = level.experts_per_task, level.num_shared
        names = [f"{t}.{i}" for t in TASKS for i in range(per_task)] + [f"shared.{j}" for j in range(shared)]
        if index == 0:
            assert model.gate_experts("low.shared", gates["low.shared"].shape[1]) == ("low", names)
        for t, task in enumerate(TASKS):
            gate = f"low.{task}" if index == 0 else task
            level_of, experts = model.gate_experts(gate, gates[gate].shape[1])
            columns = level.selection[t].argmax(dim=1).tolist()  # gate column → expert index of the level
            assert level_of == level_name and experts == [names[c] for c in columns]
