"""Sluice networks: subspace mixing, layer weights and the orthogonality penalty against loop references."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mtlrec.architectures.sluice import Sluice, subspace_overlap

TASKS = ["ctr", "cvr", "like"]
WIDTHS = [8, 6]
S = 2


def build(**kwargs) -> Sluice:
    torch.manual_seed(0)
    params = {"hidden_units": WIDTHS, "tower_hidden_units": [4], "num_subspaces": S} | kwargs
    return Sluice(input_dim=5, task_names=TASKS, **params)


def randomise(model: Sluice) -> None:
    """Move α and β away from their initial values, so that every entry matters."""
    with torch.no_grad():
        for alpha in model.alphas:
            alpha.copy_(torch.randn_like(alpha))
        for task in TASKS:
            model.betas[task].weight.copy_(torch.randn(len(WIDTHS)))


def reference(model: Sluice, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[list[torch.Tensor]]]:
    """Per-column layers and an explicit sum over (task, subspace) blocks; also returns the raw layers."""
    columns, raws, layer_outputs = [x] * len(TASKS), [], []
    for index, alpha in enumerate(model.alphas):
        raw = []
        for column, inputs in enumerate(columns):
            weight, bias = model.columns.column_layers(column)[index]
            raw.append(torch.relu(nn.functional.linear(inputs, weight, bias)))  # (B, H)
        raws.append(raw)
        blocks = [chunk for r in raw for chunk in r.chunk(S, dim=1)]  # T·S blocks, task-major
        mixed = [sum(alpha[i, j] * blocks[j] for j in range(len(blocks))) for i in range(len(blocks))]
        columns = [torch.cat(mixed[t * S : (t + 1) * S], dim=1) for t in range(len(TASKS))]
        layer_outputs.append(columns)
    outputs = {}
    for t, task in enumerate(TASKS):
        beta = model.betas[task].weight
        features = torch.cat([beta[k] * layer_outputs[k][t] for k in range(len(WIDTHS))], dim=1)
        outputs[task] = model.towers[task](features)
    return outputs, raws


def test_forward_equals_a_loop_over_task_subspace_blocks_and_layers():
    model = build()
    randomise(model)
    x = torch.randn(7, 5)
    expected, _ = reference(model, x)
    outputs = model(x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], expected[task])


def test_identity_alpha_and_last_layer_beta_give_independent_columns():
    model = build(self_weight=1.0).eval()
    with torch.no_grad():
        for task in TASKS:
            model.betas[task].weight.copy_(torch.tensor([0.0, 1.0]))
    x = torch.randn(7, 5)
    outputs = model(x)
    for t, task in enumerate(TASKS):  # each task: its own column as a plain MLP, then its tower
        hidden = x
        for weight, bias in model.columns.column_layers(t):
            hidden = torch.relu(nn.functional.linear(hidden, weight, bias))
        features = torch.cat([torch.zeros(7, WIDTHS[0]), hidden], dim=1)
        torch.testing.assert_close(outputs[task], model.towers[task](features))
    with torch.no_grad():
        for weight in model.columns.weights:
            weight[1].add_(0.5)
    after = model(x)
    assert torch.equal(after["ctr"], outputs["ctr"]) and torch.equal(after["like"], outputs["like"])
    assert not torch.allclose(after["cvr"], outputs["cvr"])


def test_penalty_equals_the_brute_force_sum_of_subspace_cross_products():
    model = build(orthogonality_strength=0.3)
    randomise(model)
    x = torch.randn(9, 5)
    outputs = model(x)
    _, raws = reference(model, x)
    expected = 0.0
    for raw in raws:
        for column in raw:
            first, second = column.chunk(S, dim=1)  # (B, H/S) each: G_1, G_2
            expected = expected + (first.t() @ second / x.shape[0]).pow(2).sum()
    penalty = model.auxiliary_loss(outputs)
    torch.testing.assert_close(penalty, 0.3 * expected)
    assert penalty.requires_grad


def test_subspace_overlap_with_three_subspaces_sums_all_pairs():
    hidden = torch.randn(2, 9, 5)
    pairs = torch.triu_indices(3, 3, 1)
    expected = 0.0
    for column in hidden:
        blocks = column.chunk(3, dim=0)  # (3, B) each, feature-major
        for i in range(3):
            for j in range(i + 1, 3):
                expected = expected + (blocks[i] @ blocks[j].t() / 5).pow(2).sum()
    torch.testing.assert_close(subspace_overlap(hidden, 3, pairs), expected)


def test_subspace_overlap_is_zero_for_orthogonal_subspaces():
    hidden = torch.zeros(2, 4, 6)
    hidden[:, :2, :3] = torch.randn(2, 2, 3)  # subspace 0 active on the first half of the batch only
    hidden[:, 2:, 3:] = torch.randn(2, 2, 3)  # subspace 1 on the second half
    assert subspace_overlap(hidden, 2, torch.triu_indices(2, 2, 1)).item() == 0.0


def test_auxiliary_loss_is_none_when_off_in_eval_or_with_one_subspace():
    x = torch.randn(4, 5)
    assert build(orthogonality_strength=0.0).auxiliary_loss({}) is None
    model = build()
    model(x)
    assert model.auxiliary_loss({}) is not None
    model.eval()
    model(x)
    assert model.auxiliary_loss({}) is None
    single = build(num_subspaces=1)
    single(x)
    assert single.auxiliary_loss({}) is None


def test_penalty_gradient_reaches_the_columns():
    model = build()
    model.auxiliary_loss(model(torch.randn(8, 5))).backward()
    assert model.columns.weights[0].grad.abs().sum() > 0
    assert model.towers["ctr"].head.weight.grad is None


def test_initial_alpha_and_beta():
    model = build(self_weight=0.7)
    alpha = model.alphas[0].detach()
    assert alpha.shape == (len(TASKS) * S, len(TASKS) * S)
    torch.testing.assert_close(alpha.diagonal(), torch.full((6,), 0.7))
    torch.testing.assert_close(alpha.sum(1), torch.ones(6))
    torch.testing.assert_close(model.betas["ctr"].weight.detach(), torch.full((2,), 0.5))


def test_widths_must_split_into_subspaces():
    with pytest.raises(ValueError, match="divisible"):
        build(hidden_units=[8, 5])
    with pytest.raises(ValueError):
        build(orthogonality_strength=-1.0)


def test_deep_copies_after_a_training_forward():
    model = build()
    model(torch.randn(4, 5))
    clone = copy.deepcopy(model)
    assert clone._penalty is None
    assert model._penalty is not None


def test_tasks_own_their_layer_weights_and_towers():
    model = build()
    for task in TASKS:
        owned = {id(p) for p in model.task_parameters(task)}
        assert id(model.betas[task].weight) in owned
        assert owned == {id(p) for m in (model.betas[task], model.towers[task]) for p in m.parameters()}


def test_tower_widths_may_differ_per_task_and_read_all_layers():
    model = build(tower_hidden_units={"cvr": [3]})
    assert model.towers["ctr"].head.in_features == sum(WIDTHS) and model.towers["cvr"].head.in_features == 3
    assert model(torch.randn(2, 5))["cvr"].shape == (2,)
