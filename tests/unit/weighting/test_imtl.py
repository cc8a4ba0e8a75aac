"""IMTL-G: the combined gradient has equal projections on every task's unit gradient."""

from __future__ import annotations

import pytest
import torch

from mtlrec.weighting import IMTLG
from mtlrec.weighting.imtl import imtl_coefficients


@pytest.mark.parametrize("num_tasks", [2, 3, 5])
def test_equal_projections_on_all_unit_task_gradients(num_tasks):
    generator = torch.Generator().manual_seed(num_tasks)
    grads = torch.randn(num_tasks, 20, generator=generator) * torch.rand(num_tasks, 1, generator=generator).mul(5)
    combined, weights = IMTLG(num_tasks).combine(grads, torch.ones(num_tasks))
    projections = (grads / grads.norm(dim=1, keepdim=True)) @ combined
    torch.testing.assert_close(projections, projections.mean().expand(num_tasks), atol=1e-4, rtol=1e-4)
    assert (projections > 0).all()
    assert torch.equal(weights, torch.ones(num_tasks))


def test_two_tasks_weight_each_gradient_by_the_others_norm():
    grads = torch.tensor([[3.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    norms = grads.norm(dim=1)
    torch.testing.assert_close(imtl_coefficients(grads @ grads.T), norms.flip(0) / norms.sum())


def test_the_coefficients_sum_to_one_and_the_direction_is_their_combination():
    grads = torch.randn(4, 10, generator=torch.Generator().manual_seed(1))
    alpha = imtl_coefficients((grads @ grads.T).double())
    torch.testing.assert_close(alpha.sum(), torch.tensor(1.0, dtype=torch.float64))
    theta = torch.zeros(10, requires_grad=True)
    IMTLG(4).backward(grads @ theta, [theta])
    torch.testing.assert_close(theta.grad, alpha.float() @ grads)


@pytest.mark.parametrize(
    "grads", [[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]
)
def test_degenerate_gradients_give_finite_coefficients(grads):
    grads = torch.tensor(grads, dtype=torch.float64)
    assert torch.isfinite(imtl_coefficients(grads @ grads.T)).all()
