"""DBMTL against a reference written task by task (Wen et al. 2019; EasyRec's DBMTL)."""

from __future__ import annotations

import pytest
import torch

from mtlrec.architectures.dbmtl import DBMTL

TASKS = ["ctr", "cvr", "like"]


def _mlp(mlp, x):
    for layer in mlp.layers:
        x = layer(x)
    return x


def _reference(model: DBMTL, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """b = bottom(x); r_k = relation_k([tower_k(b), r_parents]); y_k = head_k(r_k), computed one task at a time."""
    bottom = torch.relu(x @ model.bottom.layers[0].weight.T + model.bottom.layers[0].bias)
    relations, outputs = {}, {}
    for task in model.task_names:
        tower = _mlp(model.towers[task], bottom)
        relation_input = torch.cat([tower, *(relations[parent] for parent in model.parents[task])], dim=1)
        relations[task] = _mlp(model.relations[task], relation_input)
        outputs[task] = (relations[task] @ model.heads[task].weight.T + model.heads[task].bias).squeeze(1)
    return outputs


@pytest.mark.parametrize("relation_tasks", [None, {}, {"like": ["ctr"]}, {"cvr": ["ctr"], "like": ["ctr", "cvr"]}])
def test_dbmtl_matches_the_task_by_task_reference(relation_tasks):
    torch.manual_seed(0)
    model = DBMTL(6, TASKS, bottom_hidden_units=[8], tower_hidden_units=[5], relation_tasks=relation_tasks,
                  relation_hidden_units=[4])
    x = torch.randn(7, 6)
    outputs, expected = model(x), _reference(model, x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], expected[task])


def test_default_relations_are_the_full_chain():
    model = DBMTL(4, TASKS)
    assert model.parents == {"ctr": [], "cvr": ["ctr"], "like": ["ctr", "cvr"]}


def test_a_task_reads_its_parents_hidden_output():
    """Changing ctr's tower changes cvr (its child) but not like when like does not read ctr."""
    torch.manual_seed(0)
    model = DBMTL(4, TASKS, relation_tasks={"cvr": ["ctr"]})
    x = torch.randn(5, 4)
    before = model(x)
    with torch.no_grad():
        model.towers["ctr"].layers[0].weight.add_(0.5)
    after = model(x)
    assert not torch.allclose(after["cvr"], before["cvr"])
    torch.testing.assert_close(after["like"], before["like"])


def test_a_tower_read_by_another_task_is_shared():
    model = DBMTL(4, TASKS, relation_tasks={"cvr": ["ctr"]})
    assert model.task_modules("ctr") == [model.heads["ctr"]]
    assert model.task_modules("like") == [model.towers["like"], model.relations["like"], model.heads["like"]]


def test_mmoe_over_the_bottom_records_gates():
    torch.manual_seed(0)
    model = DBMTL(4, TASKS, num_experts=3, expert_hidden_units=[6])
    model.record_gates = True
    model(torch.randn(5, 4))
    assert model.has_gates and set(model.last_gate_weights) == set(TASKS)
    assert model.last_gate_weights["ctr"].shape == (5, 3)
    assert not DBMTL(4, TASKS).has_gates


@pytest.mark.parametrize(
    "relations, message",
    [({"ctr": ["cvr"]}, "listed before"), ({"cvr": ["cvr"]}, "listed before"), ({"buy": ["ctr"]}, "unknown task")],
)
def test_relations_must_point_backwards_to_known_tasks(relations, message):
    with pytest.raises(ValueError, match=message):
        DBMTL(4, TASKS, relation_tasks=relations)
