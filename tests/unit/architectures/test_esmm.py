"""ESMM: pCTCVR = pCTR·pCVR in log space, the CVR output has no loss, every parameter is shared."""

from __future__ import annotations

import pytest
import torch

from mtlrec.architectures import ESMM
from mtlrec.architectures.esmm import product_logit


def test_product_logit_is_the_logit_of_the_product_of_probabilities():
    a = torch.linspace(-12, 12, 49, dtype=torch.float64).repeat_interleave(49)
    b = torch.linspace(-12, 12, 49, dtype=torch.float64).repeat(49)
    expected = torch.logit(torch.sigmoid(a) * torch.sigmoid(b))
    torch.testing.assert_close(product_logit(a, b), expected, rtol=1e-9, atol=1e-9)


def test_product_logit_is_finite_with_finite_gradients_at_extremes():
    a = torch.tensor([-200.0, 200.0, 200.0, -200.0, 0.0], requires_grad=True)
    b = torch.tensor([-200.0, 200.0, -200.0, 200.0, 0.0], requires_grad=True)
    logit = product_logit(a, b)
    assert torch.isfinite(logit).all()
    torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    # σ(200)·σ(200) = 1 up to float precision: the product's logit is large; σ(0)² = 1/4 → logit(1/4) = −log 3
    assert logit[1] > 100
    torch.testing.assert_close(logit[4], -torch.log(torch.tensor(3.0)))


def test_outputs_follow_the_roles_and_the_cvr_output_is_untrained():
    torch.manual_seed(0)
    model = ESMM(input_dim=6, task_names=["click", "cvr", "conversion"], tower_hidden_units=[8])
    x = torch.randn(32, 6)
    outputs = model(x)
    assert list(outputs) == ["click", "cvr", "conversion"]
    torch.testing.assert_close(
        torch.sigmoid(outputs["conversion"]), torch.sigmoid(outputs["click"]) * torch.sigmoid(outputs["cvr"])
    )
    torch.testing.assert_close(outputs["click"], model.ctr_tower(x))
    torch.testing.assert_close(outputs["cvr"], model.cvr_tower(x))
    assert model.untrained_tasks() == {"cvr"}
    assert ESMM.untrained_tasks_of(["a", "b", "c"]) == {"b"}
    assert list(model.shared_parameters()) == list(model.parameters())


def test_the_ctcvr_loss_trains_the_cvr_tower_through_the_product():
    torch.manual_seed(0)
    model = ESMM(input_dim=4, task_names=["ctr", "cvr", "ctcvr"], tower_hidden_units=[8])
    outputs = model(torch.randn(16, 4))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(outputs["ctcvr"], torch.ones(16))
    grads = torch.autograd.grad(loss, list(model.cvr_tower.parameters()))
    assert all(torch.count_nonzero(g) > 0 for g in grads)


@pytest.mark.parametrize("tasks", [["ctr"], ["ctr", "cvr"], ["a", "b", "c", "d"]])
def test_needs_exactly_three_tasks(tasks):
    with pytest.raises(ValueError, match="three tasks"):
        ESMM(input_dim=4, task_names=tasks)


def test_optional_shared_bottom():
    model = ESMM(input_dim=4, task_names=["ctr", "cvr", "ctcvr"], tower_hidden_units=[8], bottom_hidden_units=[6])
    assert model.ctr_tower.mlp.layers[0].in_features == 6
    assert model(torch.randn(3, 4))["ctcvr"].shape == (3,)
