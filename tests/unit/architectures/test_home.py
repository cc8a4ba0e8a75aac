"""HoME against a reference written one expert, gate and task at a time (Wang et al., Kuaishou 2024)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.architectures.home import HoME, NormalizedExperts

TASKS = ["ctr", "cvr", "like"]
GROUPS = [["ctr", "like"], ["cvr"]]


def _expert(block: NormalizedExperts, e: int, x: torch.Tensor, training: bool) -> torch.Tensor:
    """Expert e of a block, by hand: feature gate, then Linear → BatchNorm → Swish per layer (or → ReLU)."""
    if block.rank:
        rows = block.down.weight[e * block.rank : (e + 1) * block.rank]  # (r, D): A_eᵀ
        x = x * 2 * torch.sigmoid(x @ rows.T @ block.up[e].T)
    for index, (weight, bias) in enumerate(zip(block.weights, block.biases)):
        h = x @ weight[e].T + bias[e]
        if block.norms is None:
            x = torch.relu(h)
            continue
        norm, width = block.norms[index], h.shape[1]
        channels = slice(e * width, (e + 1) * width)
        if training:
            mean, var = h.mean(0), h.var(0, unbiased=False)
        else:
            mean, var = norm.running_mean[channels], norm.running_var[channels]
        h = (h - mean) / torch.sqrt(var + norm.eps) * norm.weight[channels] + norm.bias[channels]
        x = h * torch.sigmoid(h)
    return x


def _experts(block: NormalizedExperts, x: torch.Tensor, training: bool) -> list[torch.Tensor]:
    return [_expert(block, e, x, training) for e in range(block.num_experts)]


def _gate(gate: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x @ gate.linear.weight.T + gate.linear.bias, dim=-1)


def _mix(weights: torch.Tensor, outputs: list[torch.Tensor]) -> torch.Tensor:
    return sum(weights[:, e : e + 1] * output for e, output in enumerate(outputs))


def _reference(model: HoME, x: torch.Tensor, training: bool) -> tuple[dict, dict, dict]:
    """Towers' inputs, gate weights and each task's level-2 experts {name: (B, H)}, computed by hand."""
    shared, per_group, _ = model.expert_counts
    first = _experts(model.first_experts, x, training)
    global_first = first[:shared]
    group_first = [first[shared + k * per_group : shared + (k + 1) * per_group] for k in range(len(model.groups))]
    gates = {"level1.shared": _gate(model.shared_gate, x)}
    mixtures = []
    for k, gate in enumerate(model.group_gates):
        gates[f"level1.group{k}"] = _gate(gate, x)
        mixtures.append(_mix(gates[f"level1.group{k}"], global_first + group_first[k]))
    global_mixture = _mix(gates["level1.shared"], first)
    global_second = _experts(model.shared_experts, global_mixture, training)
    inputs, seen = {}, {}
    for task in model.task_names:
        k = model.group_of[task]
        z = mixtures[k]
        group_second = _experts(model.group_experts[k], z, training)
        own = _experts(model.task_experts[task], z, training)
        names = [f"shared.e{j}" for j in range(shared)] + [f"group{k}.e{j}" for j in range(per_group)]
        names += [f"{task}.e{j}" for j in range(len(own))]
        seen[task] = dict(zip(names, global_second + group_second + own))
        gates[task] = _gate(model.task_gates[task], z)
        inputs[task] = _mix(gates[task], global_second + group_second + own)
        if model.self_gates is not None:
            linear = model.self_gates[task]
            inputs[task] = inputs[task] + torch.sigmoid(z @ linear.weight.T + linear.bias) * z
    return inputs, gates, seen


def _model(**kwargs) -> HoME:
    torch.manual_seed(0)
    params = dict(num_shared_experts=2, num_group_experts=2, num_task_experts=2, expert_hidden_units=[5, 4])
    model = HoME(6, TASKS, GROUPS, **{**params, **kwargs}, tower_hidden_units=[3])
    with torch.no_grad():  # BatchNorm away from its identity initialisation
        for norm in (m for m in model.modules() if isinstance(m, nn.BatchNorm1d)):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "options",
    [{}, {"feature_gate_rank": 0}, {"self_gate": False}, {"expert_normalization": False, "feature_gate_rank": 3}],
)
def test_home_matches_the_expert_by_expert_reference(options, training):
    model = _model(**options).train(training)
    x = torch.randn(9, 6)
    expected, expected_gates, _ = _reference(model, x, training)
    model.record_gates = True
    outputs = model(x)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], model.towers[task](expected[task]), rtol=0, atol=1e-6)
    assert set(model.last_gate_weights) == set(expected_gates)
    for name, weights in expected_gates.items():
        torch.testing.assert_close(model.last_gate_weights[name], weights, rtol=0, atol=1e-6)
        torch.testing.assert_close(weights.sum(1), torch.ones(9))


def test_gate_widths_and_expert_names():
    model = _model()
    model.record_gates = True
    model(torch.randn(5, 6))
    gates = model.last_gate_weights
    assert {name: w.shape[1] for name, w in gates.items()} == {
        "level1.group0": 4,
        "level1.group1": 4,
        "level1.shared": 6,
        "ctr": 6,
        "cvr": 6,
        "like": 6,
    }
    assert model.gate_experts("level1.group1", 4) == ("level1", ["shared.e0", "shared.e1", "group1.e0", "group1.e1"])
    assert model.gate_experts("level1.shared", 6)[1][2:] == ["group0.e0", "group0.e1", "group1.e0", "group1.e1"]
    assert model.gate_experts("like", 6) == (
        "level2",
        ["shared.e0", "shared.e1", "group0.e0", "group0.e1", "like.e0", "like.e1"],
    )


@pytest.mark.parametrize("column", range(6))
def test_task_gate_column_names_the_expert_it_weighs(column):
    """A one-hot task gate on column c gives exactly the level-2 expert ``gate_experts`` names at c."""
    model = _model(self_gate=False).eval()
    model.towers["like"] = nn.Identity()  # read the mixture itself
    with torch.no_grad():
        model.task_gates["like"].linear.weight.zero_()
        model.task_gates["like"].linear.bias.copy_(nn.functional.one_hot(torch.tensor(column), 6) * 100.0)
    x = torch.randn(4, 6)
    _, _, seen = _reference(model, x, training=False)
    name = model.gate_experts("like", 6)[1][column]
    torch.testing.assert_close(model(x)["like"], seen["like"][name], rtol=0, atol=1e-6)


def _grad(output: torch.Tensor, params: list[nn.Parameter]) -> bool:
    """True when the output drives any of the parameters."""
    grads = torch.autograd.grad(output.sum(), params, retain_graph=True, allow_unused=True)
    return any(g is not None and torch.count_nonzero(g) > 0 for g in grads)


def test_gradients_reach_exactly_the_tasks_that_read_each_expert():
    model = _model()
    outputs = model(torch.randn(16, 6))
    reads = {  # parameters → the tasks whose outputs they drive
        "ctr experts": (list(model.task_experts["ctr"].parameters()), {"ctr"}),
        "group {ctr, like} level-2 experts": (list(model.group_experts[0].parameters()), {"ctr", "like"}),
        "group {ctr, like} gate": (list(model.group_gates[0].parameters()), {"ctr", "like"}),
        "group {cvr} level-2 experts": (list(model.group_experts[1].parameters()), {"cvr"}),
        "group {cvr} gate": (list(model.group_gates[1].parameters()), {"cvr"}),
        # the global gate mixes every level-1 expert, and the global level-2 experts read that mixture
        "level-1 experts": (list(model.first_experts.parameters()), set(TASKS)),
        "global level-2 experts": (list(model.shared_experts.parameters()), set(TASKS)),
        "cvr self-gate": (list(model.self_gates["cvr"].parameters()), {"cvr"}),
    }
    for what, (params, tasks) in reads.items():
        assert {task for task in TASKS if _grad(outputs[task], params)} == tasks, what


def test_single_task_groups_are_owned_by_their_task_and_larger_groups_shared():
    model = _model()
    owned = {task: {id(p) for p in model.task_parameters(task)} for task in TASKS}
    shared = {id(p) for p in model.shared_parameters()}
    alone = [*model.group_gates[1].parameters(), *model.group_experts[1].parameters()]
    assert {id(p) for p in alone} <= owned["cvr"]
    together = [*model.group_gates[0].parameters(), *model.group_experts[0].parameters()]
    assert {id(p) for p in together} <= shared
    assert {id(p) for p in model.first_experts.parameters()} <= shared
    for task in TASKS:
        mine = [model.task_experts[task], model.task_gates[task], model.self_gates[task], model.towers[task]]
        assert {id(p) for m in mine for p in m.parameters()} <= owned[task]


def test_eval_mode_uses_running_statistics_row_by_row():
    model = _model()
    x = torch.randn(8, 6)
    model(x)  # a training step updates the running statistics
    model.eval()
    with torch.no_grad():
        batch = model(x)
        for row in range(8):  # batch of one: only possible without batch statistics
            single = model(x[row : row + 1])
            for task in TASKS:
                torch.testing.assert_close(single[task], batch[task][row : row + 1], rtol=0, atol=1e-6)
        model.train()
        assert not torch.allclose(model(x)["ctr"], batch["ctr"])


def test_default_groups_put_each_task_alone_and_one_task_works():
    torch.manual_seed(0)
    model = HoME(6, TASKS)
    assert model.groups == [[task] for task in TASKS]
    single = HoME(6, ["ctr"])
    assert single(torch.randn(5, 6))["ctr"].shape == (5,)
    assert list(single.task_parameters("ctr"))


@pytest.mark.parametrize(
    "groups",
    [
        [["ctr"], ["cvr"]],
        [["ctr", "cvr"], ["cvr", "like"]],
        [["ctr", "cvr", "like"], []],
        [["ctr", "cvr", "like", "other"]],
    ],
)
def test_rejects_groups_that_do_not_partition_the_tasks(groups):
    with pytest.raises(ValueError, match="partition"):
        HoME(6, TASKS, groups)


@pytest.mark.parametrize(
    "kwargs",
    [{"num_shared_experts": 0}, {"num_task_experts": 0}, {"feature_gate_rank": -1}, {"expert_hidden_units": []}],
)
def test_rejects_invalid_sizes(kwargs):
    with pytest.raises(ValueError):
        HoME(6, TASKS, **kwargs)
