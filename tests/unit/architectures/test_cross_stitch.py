"""Cross-stitch networks: batched columns and stitch units against a per-task loop reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.architectures.cross_stitch import CrossStitch, ParallelColumns, cross_stitch, stitch_init

TASKS = ["ctr", "cvr", "like"]


def build(**kwargs) -> CrossStitch:
    torch.manual_seed(0)
    params = {"hidden_units": [10, 6], "tower_hidden_units": [4]} | kwargs
    return CrossStitch(input_dim=5, task_names=TASKS, **params).eval()


def reference(model: CrossStitch, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each column as its own MLP, the stitch written out as a loop: x̃_t = Σ_s α_ts x_s."""
    columns = [x] * len(TASKS)
    for index, alpha in enumerate(model.stitches):
        activated = []
        for column, inputs in enumerate(columns):
            weight, bias = model.columns.column_layers(column)[index]
            activated.append(torch.relu(nn.functional.linear(inputs, weight, bias)))
        columns = [sum(alpha[t, s] * activated[s] for s in range(len(TASKS))) for t in range(len(TASKS))]
    return {task: model.towers[task](columns[t]) for t, task in enumerate(TASKS)}


def test_forward_equals_a_per_task_loop_with_explicit_stitches():
    model = build()
    with torch.no_grad():
        for alpha in model.stitches:  # away from the initial values, so every entry matters
            alpha.copy_(torch.randn_like(alpha))
    x = torch.randn(7, 5)
    expected = reference(model, x)
    outputs = model(x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], expected[task])


def test_identity_stitches_make_the_columns_independent():
    model = build(self_weight=1.0)
    for alpha in model.stitches:
        torch.testing.assert_close(alpha.detach(), torch.eye(len(TASKS)))
    x = torch.randn(7, 5)
    with torch.no_grad():
        before = model(x)
        for weight, bias in zip(model.columns.weights, model.columns.biases):
            weight[1].add_(0.5)
            bias[1].add_(0.5)
        after = model(x)
    assert torch.equal(after["ctr"], before["ctr"])
    assert torch.equal(after["like"], before["like"])
    assert not torch.allclose(after["cvr"], before["cvr"])


def test_default_stitches_mix_every_column_into_every_task():
    model = build()
    x = torch.randn(7, 5)
    with torch.no_grad():
        before = model(x)
        model.columns.weights[0][1].add_(0.5)
        after = model(x)
    for task in TASKS:
        assert not torch.allclose(after[task], before[task]), task


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_stitch_init_rows_sum_to_one_with_the_self_weight_on_the_diagonal(size):
    alpha = stitch_init(size, 0.9)
    torch.testing.assert_close(alpha.sum(1), torch.ones(size))
    if size > 1:
        torch.testing.assert_close(alpha.diagonal(), torch.full((size,), 0.9))
        off = alpha[~torch.eye(size, dtype=torch.bool)]
        torch.testing.assert_close(off, torch.full_like(off, 0.1 / (size - 1)))


def test_paper_init_for_two_tasks_and_the_constructor_knob():
    torch.testing.assert_close(stitch_init(2, 0.9), torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    model = build(self_weight=0.6)
    torch.testing.assert_close(model.stitches[0].detach(), stitch_init(3, 0.6))
    with pytest.raises(ValueError):
        stitch_init(3, 1.5)


def test_cross_stitch_over_subspace_blocks_matches_a_loop():
    hidden = torch.randn(2, 6, 4)  # T=2 columns of width 6, as S=3 blocks of 2 features each
    alpha = torch.randn(6, 6)
    blocks = hidden.reshape(6, 2, 4)
    expected = torch.stack([sum(alpha[i, j] * blocks[j] for j in range(6)) for i in range(6)]).reshape(2, 6, 4)
    torch.testing.assert_close(cross_stitch(alpha, hidden), expected)


def test_parallel_columns_layers_equal_separate_linear_layers():
    torch.manual_seed(1)
    columns = ParallelColumns(5, 3, [8, 4], activation="tanh")
    x = torch.randn(6, 5)
    hidden = columns.layer(1, columns.layer(0, x))  # (3, 4, 6)
    for column in range(3):
        expected = x
        for weight, bias in columns.column_layers(column):
            expected = torch.tanh(nn.functional.linear(expected, weight, bias))
        torch.testing.assert_close(hidden[column].t(), expected)


def test_only_towers_are_owned_by_tasks():
    model = build()
    owned = {id(p) for task in TASKS for p in model.task_parameters(task)}
    assert owned == {id(p) for p in model.towers.parameters()}
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in [*model.columns.parameters(), *model.stitches]}


def test_one_task_is_a_plain_mlp_with_a_unit_stitch():
    torch.manual_seed(0)
    model = CrossStitch(input_dim=5, task_names=["ctr"], hidden_units=[6], tower_hidden_units=[]).eval()
    assert model.stitches[0].item() == 1.0
    x = torch.randn(4, 5)
    weight, bias = model.columns.column_layers(0)[0]
    expected = model.towers["ctr"](torch.relu(nn.functional.linear(x, weight, bias)))
    torch.testing.assert_close(model(x)["ctr"], expected)


def test_tower_widths_may_differ_per_task():
    model = build(tower_hidden_units={"cvr": [3]})
    assert len(model.towers["ctr"].mlp.layers) == 0 and model.towers["cvr"].head.in_features == 3
    assert model(torch.randn(2, 5))["cvr"].shape == (2,)
