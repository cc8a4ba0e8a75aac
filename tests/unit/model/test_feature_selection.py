"""Per-task feature gates in front of an architecture: oracle checks against the ungated model."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.keyed_models import id_dense_inputs, keyed

from mtlrec.architectures import MMoE
from mtlrec.model import MultiTaskModel
from mtlrec.model.selection import TaskFeatureGates

TASKS = ["ctr", "cvr"]
VOCAB, EMBED, DENSE = [5, 7], 3, 2  # fields f0, f1 (3 wide each), d0, d1 (1 wide each)
FIELDS = ["f0", "f1", "d0", "d1"]


def _models(sparsity: float = 0.0) -> tuple[MultiTaskModel, MultiTaskModel]:
    """The same MMoE without and with per-task gates over the four fields."""
    torch.manual_seed(0)
    inputs = id_dense_inputs(VOCAB, EMBED, DENSE)
    architecture = MMoE(inputs.output_dim("all"), TASKS, num_experts=2, expert_hidden_units=[6], tower_hidden_units=[4])
    plain = MultiTaskModel(inputs, architecture, ["all"])
    gates = TaskFeatureGates(TASKS, inputs.field_dims(["all"]), inputs.field_names(["all"]), sparsity)
    gated = MultiTaskModel(copy.deepcopy(inputs), copy.deepcopy(architecture), ["all"], feature_gates=gates)
    return plain.eval(), gated.eval()


def _batch(rows: int = 9, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randint(0, size, (rows,), generator=generator) for size in VOCAB], dim=1)
    return keyed(ids, torch.randn(rows, DENSE, generator=generator))


def test_gates_start_at_one_so_the_gated_model_starts_as_the_plain_one():
    plain, gated = _models()
    assert gated.feature_gates.field_names == FIELDS
    torch.testing.assert_close(gated.feature_gates.gates(), torch.ones(2, 4))
    batch = _batch()
    expected, outputs = plain(batch), gated(batch)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], expected[task])


def test_a_closed_gate_hides_the_field_from_that_task_only():
    _, gated = _models()
    with torch.no_grad():
        gated.feature_gates.logits[0, 3] = -1e4  # ctr's gate on d1 → 0
    batch = _batch()
    changed = dict(batch, d1=batch["d1"] + 5.0)
    before, after = gated(batch), gated(changed)
    torch.testing.assert_close(after["ctr"], before["ctr"])
    assert not torch.allclose(after["cvr"], before["cvr"])


def test_each_task_reads_its_own_gated_input():
    """Task t's output equals the plain model's output on the input scaled field by field by γ_t."""
    plain, gated = _models()
    with torch.no_grad():
        gated.feature_gates.logits.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0], [-1.0, 0.3, 2.0, -0.5]]))
    batch = _batch()
    outputs = gated(batch)
    x = plain._input(plain.inputs(batch))
    for index, task in enumerate(TASKS):
        gamma = gated.feature_gates.gates()[index]
        scale = torch.cat([gamma[:1].expand(3), gamma[1:2].expand(3), gamma[2:]])
        expected = plain.architecture(x * scale)[task]
        torch.testing.assert_close(outputs[task], expected)


def test_the_sparsity_penalty_is_the_mean_gate_times_its_coefficient():
    _, gated = _models(sparsity=0.2)
    with torch.no_grad():
        gated.feature_gates.logits.normal_()
    penalty = gated.auxiliary_loss({})
    torch.testing.assert_close(penalty, 0.2 * gated.feature_gates.gates().mean())
    penalty.backward()
    assert gated.feature_gates.logits.grad is not None
    assert _models()[1].auxiliary_loss({}) is None


def test_the_gates_are_reported_per_task():
    _, gated = _models()
    selection = gated.feature_selection()
    assert selection["fields"] == FIELDS
    assert set(selection["weights"]) == set(TASKS) and len(selection["weights"]["ctr"]) == 4


def test_bad_gates_are_refused():
    with pytest.raises(ValueError, match="width"):
        TaskFeatureGates(TASKS, [3, 0], ["a", "b"])
    with pytest.raises(ValueError, match="sparsity"):
        TaskFeatureGates(TASKS, [3], ["a"], sparsity=-1.0)
