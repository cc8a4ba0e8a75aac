"""Contract tests run over every entry of ``ARCHITECTURES`` (new entries are covered automatically).

The contract (design/ARCHITECTURE.md): ``forward(x: (B, D)) -> {task: (B,)}`` with keys = the task
names (plus the (B,) domain index for architectures that need one); every parameter is either shared
or belongs to exactly one task, and a task's own parameters drive only its output; gate weights are
exposed when the architecture has gates; the model traces / exports unchanged.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from mtlrec.architectures import ARCHITECTURES, Architecture

INPUT_DIM = 6
BATCH = 5
TASK_SETS = {1: ["ctr"], 2: ["ctr", "cvr"], 3: ["ctr", "cvr", "like"]}
NAMES = sorted(ARCHITECTURES)
GATED = [name for name in NAMES if ARCHITECTURES[name].has_gates]
INDEPENDENT = [name for name in NAMES if ARCHITECTURES[name].independent_tasks]


def small_params(cls: type[Architecture]) -> dict:
    """Shrink the defaults of any architecture: widths of list-of-int arguments, counts named ``num_*``."""
    params = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        default = parameter.default
        if name in ("self", "input_dim", "task_names") or default is inspect.Parameter.empty:
            continue
        if isinstance(default, (list, tuple)) and default and all(isinstance(v, int) for v in default):
            params[name] = [12, 8][-min(len(default), 2) :]
        elif name.startswith("num_") and isinstance(default, int) and not isinstance(default, bool):
            params[name] = min(default, 3)
    return params


NUM_DOMAINS = 3
ROLE_DIM = 4
MAX_TASKS = max(TASK_SETS)


def supplied(cls: type[Architecture]) -> dict:
    """The constructor arguments build supplies for the groups read by role: ``num_<role>s`` or ``<role>_dim``."""
    return {
        f"num_{role}s" if how == "ids" else f"{role}_dim": NUM_DOMAINS if how == "ids" else ROLE_DIM
        for role, how in cls.group_inputs.items()
    }


def task_set(name: str, num_tasks: int, exact: bool = True) -> list[str]:
    """The test tasks for ``num_tasks``; architectures defined for a fixed count get that count instead
    (``exact=False``) or skip the case (``exact=True``)."""
    required = ARCHITECTURES[name].required_num_tasks
    if required is None or required == num_tasks:
        return TASK_SETS[num_tasks]
    if exact:
        pytest.skip(f"{name} is defined for {required} tasks")
    return TASK_SETS[required]


def build(name: str, tasks: list[str], seed: int = 0, input_dim: int = INPUT_DIM) -> Architecture:
    torch.manual_seed(seed)
    cls = ARCHITECTURES[name]
    return cls(input_dim=input_dim, task_names=list(tasks), **small_params(cls), **supplied(cls))


def inputs(batch: int = BATCH, seed: int = 123, input_dim: int = INPUT_DIM) -> dict[str, torch.Tensor]:
    """Every input an architecture may read: x (B, D), its T + 1 copies (B, 1 + T, D) for per-task
    embeddings, ids (B,) and a tensor (B, ROLE_DIM) for groups read by role."""
    generator = torch.Generator().manual_seed(seed)
    copies = torch.randn(batch, 1 + MAX_TASKS, input_dim, generator=generator)
    ids = torch.randint(0, NUM_DOMAINS, (batch,), generator=generator)
    tensor = torch.randn(batch, ROLE_DIM, generator=generator)
    return {"x": copies[:, 0], "copies": copies, "ids": ids, "tensor": tensor}


def run(model: Architecture, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return model(*args_of(model, data))


def args_of(model: Architecture, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``forward``'s positional arguments: the input, then each role's ids or tensor."""
    x = data["copies"][:, : 1 + len(model.task_names)] if model.embeddings_per_task else data["x"]
    return (x, *(data["ids"] if how == "ids" else data["tensor"] for how in model.group_inputs.values()))


class TupleOutputs(nn.Module):
    """Wraps an architecture so that it returns its outputs as a tuple in task order (for tracing)."""

    def __init__(self, model: Architecture):
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(*args)
        return tuple(outputs[task] for task in self.model.task_names)


def test_registry_is_not_empty_and_holds_architectures():
    assert NAMES
    for cls in ARCHITECTURES.values():
        assert issubclass(cls, Architecture)


@pytest.mark.parametrize("name", NAMES)
def test_rejects_empty_task_list(name):
    with pytest.raises(ValueError):
        build(name, [])


@pytest.mark.parametrize("num_tasks", sorted(TASK_SETS))
@pytest.mark.parametrize("name", NAMES)
def test_output_keys_and_shapes(name, num_tasks):
    tasks = task_set(name, num_tasks)
    model = build(name, tasks)
    outputs = run(model, inputs())
    assert list(outputs) == tasks
    for task in tasks:
        assert outputs[task].shape == (BATCH,)
        assert outputs[task].dtype == torch.float32
        assert torch.isfinite(outputs[task]).all()


@pytest.mark.parametrize("num_tasks", sorted(TASK_SETS))
@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_shared_or_owned_by_exactly_one_task(name, num_tasks):
    tasks = task_set(name, num_tasks)
    model = build(name, tasks)
    all_ids = [id(p) for p in model.parameters()]
    shared_ids = [id(p) for p in model.shared_parameters()]
    task_ids = {task: [id(p) for p in model.task_parameters(task)] for task in tasks}

    assert len(set(shared_ids)) == len(shared_ids)
    for task in tasks:
        assert task_ids[task] or ARCHITECTURES[name].every_parameter_shared, f"task {task} owns no parameters"
        assert len(set(task_ids[task])) == len(task_ids[task])
        assert set(task_ids[task]).isdisjoint(shared_ids)
        assert set(task_ids[task]) <= set(all_ids), "task parameters must be parameters of the model"
    for i, first in enumerate(tasks):
        for second in tasks[i + 1 :]:
            assert set(task_ids[first]).isdisjoint(task_ids[second]), f"{first} and {second} share parameters"
    owned = set(shared_ids).union(*task_ids.values())
    assert owned == set(all_ids)
    assert len(shared_ids) + sum(len(ids) for ids in task_ids.values()) == len(all_ids)


@pytest.mark.parametrize("num_tasks", [2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_shared_parameters_are_used_by_more_than_one_task(name, num_tasks):
    """A parameter that only one task's output depends on must be owned by that task, not shared."""
    tasks = task_set(name, num_tasks)
    model = build(name, tasks)
    outputs = run(model, inputs(batch=16))
    shared_ids = {id(p) for p in model.shared_parameters()}
    shared = {id(p): n for n, p in model.named_parameters() if id(p) in shared_ids}
    params = [p for p in model.parameters() if id(p) in shared]
    if not params:
        return  # nothing shared (independent tasks): nothing to check
    users = dict.fromkeys(shared, 0)
    for task in tasks:
        grads = torch.autograd.grad(outputs[task].sum(), params, retain_graph=True, allow_unused=True)
        for param, grad in zip(params, grads):
            if grad is not None and torch.count_nonzero(grad) > 0:
                users[id(param)] += 1
    for pid, count in users.items():
        assert count >= 2, f"shared parameter {shared[pid]} drives {count} task output(s)"


@pytest.mark.parametrize("num_tasks", sorted(TASK_SETS))
@pytest.mark.parametrize("name", NAMES)
def test_gradients_of_summed_outputs_are_finite(name, num_tasks):
    tasks = task_set(name, num_tasks)
    model = build(name, tasks)
    sum(output.sum() for output in run(model, inputs()).values()).backward()
    received = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    assert received
    for param_name, grad in received:
        assert torch.isfinite(grad).all(), param_name
    # each task's own parameters drive that task's output, so they all receive a gradient
    for task in tasks:
        assert all(p.grad is not None for p in model.task_parameters(task)), task


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_outputs_other_seed_differs(name):
    tasks = task_set(name, 2, exact=False)
    x = inputs()
    first = run(build(name, tasks, seed=7), x)
    second = run(build(name, tasks, seed=7), x)
    other = run(build(name, tasks, seed=8), x)
    for task in tasks:
        assert torch.equal(first[task], second[task])
        assert not torch.allclose(first[task], other[task])


def synthetic_problem(rows: int = 512, input_dim: int = 8) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Binary tasks from known rules: a linear half-space, a (nonlinear) disc, and both (a funnel's last stage)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, input_dim, generator=generator)
    w = torch.randn(input_dim, generator=generator)
    linear = (x @ w > 0).float()
    radial = ((x[:, :2] ** 2).sum(1) > 1.386).float()  # median of chi-square(2): balanced classes
    domain = torch.randint(0, NUM_DOMAINS, (rows,), generator=generator)
    data = {"x": x, "copies": x.unsqueeze(1).expand(-1, 1 + MAX_TASKS, -1), "ids": domain,
            "tensor": torch.randn(rows, ROLE_DIM, generator=generator)}
    return data, {"ctr": linear, "cvr": radial, "like": linear * radial}


@pytest.mark.parametrize("name", NAMES)
def test_trainable_on_a_synthetic_problem(name):
    data, all_labels = synthetic_problem()
    tasks = task_set(name, 2, exact=False)
    model = build(name, tasks, seed=0, input_dim=data["x"].shape[1])
    labels = {task: all_labels[task] for task in tasks if task not in model.untrained_tasks()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def losses() -> dict[str, torch.Tensor]:
        outputs = run(model, data)
        return {t: nn.functional.binary_cross_entropy_with_logits(outputs[t], labels[t]) for t in labels}

    initial = {t: v.item() for t, v in losses().items()}
    for _ in range(200):
        optimizer.zero_grad()
        sum(losses().values()).backward()
        optimizer.step()
    with torch.no_grad():
        final = {t: v.item() for t, v in losses().items()}
    for task in labels:
        assert final[task] < 0.7 * initial[task], (task, initial[task], final[task])


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
@pytest.mark.parametrize("num_tasks", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_torch_jit_trace_matches_eager(name, num_tasks):
    tasks = task_set(name, num_tasks)
    model = build(name, tasks).eval()
    wrapper = TupleOutputs(model)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, args_of(model, inputs(seed=1)), check_trace=False)
        for batch, seed in [(BATCH, 2), (BATCH + 3, 3)]:  # new values, and a batch size not traced
            args = args_of(model, inputs(batch=batch, seed=seed))
            eager = model(*args)
            result = traced(*args)
            assert len(result) == len(tasks)
            for task, value in zip(tasks, result):
                assert value.shape == (batch,)
                torch.testing.assert_close(value, eager[task], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_tasks", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_torch_export_matches_eager(name, num_tasks):
    tasks = task_set(name, num_tasks)
    model = build(name, tasks).eval()
    example = args_of(model, inputs(seed=1))
    batch = torch.export.Dim("batch")  # serving batches vary in size
    dynamic = tuple({0: batch} for _ in example)
    exported = torch.export.export(model, example, dynamic_shapes=dynamic, strict=False)
    for size, seed in [(BATCH, 2), (BATCH + 3, 3)]:
        args = args_of(model, inputs(batch=size, seed=seed))
        with torch.no_grad():
            eager = model(*args)
            result = exported.module()(*args)
        assert list(result) == tasks
        for task in tasks:
            assert result[task].shape == (size,)
            torch.testing.assert_close(result[task], eager[task], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_tasks", [2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_task_parameters_drive_only_their_task(name, num_tasks):
    """A task's own parameters get no gradient from any other task's output."""
    tasks = task_set(name, num_tasks)
    model = build(name, tasks)
    outputs = run(model, inputs(batch=16))
    for owner in tasks:
        owned = list(model.task_parameters(owner))
        for task in tasks:
            if task == owner or not owned:
                continue
            grads = torch.autograd.grad(outputs[task].sum(), owned, retain_graph=True, allow_unused=True)
            for grad in grads:
                assert grad is None or torch.count_nonzero(grad) == 0, (owner, task)


@pytest.mark.parametrize("name", NAMES)
def test_auxiliary_loss_is_none_or_a_finite_differentiable_scalar(name):
    model = build(name, task_set(name, 2, exact=False))
    auxiliary = model.auxiliary_loss(run(model, inputs()))
    if auxiliary is None:
        return
    assert auxiliary.shape == ()
    assert torch.isfinite(auxiliary)
    assert auxiliary.requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_multi_class_tasks_get_class_logits(name):
    tasks = task_set(name, 2, exact=False)
    torch.manual_seed(0)
    cls = ARCHITECTURES[name]
    if not cls.supports_multi_class:
        with pytest.raises(ValueError):
            cls(input_dim=INPUT_DIM, task_names=tasks, output_dims={"cvr": 4}, **small_params(cls), **supplied(cls))
        return
    model = cls(input_dim=INPUT_DIM, task_names=tasks, output_dims={"cvr": 4}, **small_params(cls), **supplied(cls))
    outputs = run(model, inputs())
    assert outputs["ctr"].shape == (BATCH,)
    assert outputs["cvr"].shape == (BATCH, 4)


@pytest.mark.parametrize("num_tasks", sorted(TASK_SETS))
@pytest.mark.parametrize("name", GATED)
def test_gate_weights_are_recorded_per_task(name, num_tasks):
    tasks = task_set(name, num_tasks)
    model = build(name, tasks)
    run(model, inputs())
    assert model.last_gate_weights == {}, "gates are recorded only when record_gates is set"

    model.record_gates = True
    run(model, inputs())
    gates = model.last_gate_weights
    assert set(tasks) <= set(gates), "every task's (last-level) gate is recorded under the task's name"
    expected_experts = small_params(ARCHITECTURES[name]).get("num_experts")
    for gate_name, weights in gates.items():
        assert weights.ndim == 2 and weights.shape[0] == BATCH, gate_name
        if expected_experts is not None and gate_name in tasks:
            assert weights.shape[1] == expected_experts
        assert not weights.requires_grad
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(1), torch.ones(BATCH))


@pytest.mark.parametrize("name", INDEPENDENT)
def test_independent_tasks_do_not_influence_each_other(name):
    tasks = task_set(name, 3)
    model = build(name, tasks)
    assert list(model.shared_parameters()) == []
    x = inputs()
    with torch.no_grad():
        before = run(model, x)
        for changed in tasks:
            for parameter in model.task_parameters(changed):
                parameter.add_(0.5)
            after = run(model, x)
            assert not torch.allclose(after[changed], before[changed])
            for task in tasks:
                if task != changed:
                    assert torch.equal(after[task], before[task]), (changed, task)
            before = after


@pytest.mark.parametrize("name", NAMES)
def test_shared_representation_if_any_is_read_by_every_task(name):
    tasks = task_set(name, 3, exact=False)
    model = build(name, tasks)
    outputs = run(model, inputs(batch=8))
    representation = model.last_representation
    if representation is None:
        return  # no single shared tensor: gradient methods use the shared parameters
    for task in tasks:
        (grad,) = torch.autograd.grad(outputs[task].sum(), representation, retain_graph=True, allow_unused=True)
        assert grad is not None and torch.count_nonzero(grad) > 0, task
    model.eval()
    model.last_representation = None
    run(model, inputs(batch=8))
    assert model.last_representation is None, "kept only while training"
