"""Any architecture × any weighting strategy: one step from a loss vector leaves finite gradients on
every parameter that the trained tasks reach (and the architecture's regulariser is included)."""

from __future__ import annotations

import pytest
import torch
from tests.contract.test_architectures import args_of, build, inputs, task_set
from tests.contract.test_weightings import make_strategy

from mtlrec.architectures import ARCHITECTURES
from mtlrec.weighting import WEIGHTINGS, GradientWeighting


@pytest.mark.parametrize("weighting", sorted(WEIGHTINGS))
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_one_step_gives_finite_gradients(architecture, weighting):
    tasks = task_set(architecture, 2, exact=False)
    model = build(architecture, tasks)
    outputs = model(*args_of(model, inputs(batch=16)))
    trained = [task for task in tasks if task not in model.untrained_tasks()]
    targets = torch.Generator().manual_seed(1)
    losses = torch.stack(
        [
            torch.nn.functional.binary_cross_entropy_with_logits(
                outputs[task], (torch.rand(16, generator=targets) < 0.5).float()
            )
            for task in trained
        ]
    )
    strategy = make_strategy(weighting, num_tasks=len(trained))
    weights = strategy.backward(losses, list(model.shared_parameters()), model.auxiliary_loss(outputs))
    assert weights.shape == (len(trained),) and torch.isfinite(weights).all()
    reached = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    assert reached
    for name, grad in reached:
        assert torch.isfinite(grad).all(), name
    for task in trained:
        assert all(p.grad is not None for p in model.task_parameters(task)), task


GRADIENT_LEVEL = sorted(name for name, cls in WEIGHTINGS.items() if issubclass(cls, GradientWeighting))


@pytest.mark.parametrize("weighting", GRADIENT_LEVEL)
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_gradient_methods_on_the_representation_give_finite_gradients(architecture, weighting):
    tasks = task_set(architecture, 2, exact=False)
    model = build(architecture, tasks)
    outputs = model(*args_of(model, inputs(batch=16)))
    trained = [task for task in tasks if task not in model.untrained_tasks()]
    losses = torch.stack([outputs[task].square().mean() for task in trained])
    strategy = WEIGHTINGS[weighting](num_tasks=len(trained), on="representation")
    strategy.backward(losses, list(model.shared_parameters()), model.auxiliary_loss(outputs), model.last_representation)
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            assert torch.isfinite(parameter.grad).all(), name
    for task in trained:
        assert all(p.grad is not None for p in model.task_parameters(task)), task
