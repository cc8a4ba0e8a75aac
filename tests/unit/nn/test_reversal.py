"""The gradient reversal layer and its schedule (Ganin & Lempitsky, ICML 2015, Eq. 12–14)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtlrec.nn.reversal import GradientReversal, ReversedInputs


def test_forward_is_the_identity_and_backward_negates_and_scales():
    layer = GradientReversal(strength=0.3)
    x = torch.randn(4, 3, requires_grad=True)
    (y,) = layer(x)
    torch.testing.assert_close(y, x)
    upstream = torch.randn(4, 3)
    (grad,) = torch.autograd.grad(y, x, upstream)
    torch.testing.assert_close(grad, -0.3 * upstream)


def test_the_strength_follows_the_papers_schedule_over_the_ramp():
    layer = GradientReversal(strength=2.0, ramp_steps=10)
    x = torch.ones(1, requires_grad=True)
    for step in range(14):
        expected = 2.0 * (2.0 / (1.0 + math.exp(-10.0 * min(step / 10, 1.0))) - 1.0)
        assert layer.current_strength() == pytest.approx(expected)
        (y,) = layer(x)
        (grad,) = torch.autograd.grad(y.sum(), x)
        assert grad.item() == pytest.approx(-expected, rel=1e-6)
    assert int(layer.steps) == 14
    assert layer.current_strength() == pytest.approx(2.0 * (2.0 / (1.0 + math.exp(-10.0)) - 1.0))


def test_evaluation_neither_counts_nor_reverses():
    layer = GradientReversal(ramp_steps=5).eval()
    x = torch.randn(2, requires_grad=True)
    (y,) = layer(x)
    assert y is x and int(layer.steps) == 0


def test_the_step_count_survives_the_state_dict():
    layer = GradientReversal(ramp_steps=100)
    for _ in range(7):
        layer(torch.randn(2, requires_grad=True))
    restored = GradientReversal(ramp_steps=100)
    restored.load_state_dict(layer.state_dict())
    assert restored.current_strength() == layer.current_strength() > 0


def test_a_wrapped_module_with_two_inputs_counts_one_step_and_reverses_both():
    class Sum(nn.Module):
        def forward(self, a, b):
            return (a * b).sum()

    layer = GradientReversal(strength=0.5, ramp_steps=1000)
    wrapped = ReversedInputs(Sum(), layer)
    a, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    grads = torch.autograd.grad(wrapped(a, b), (a, b))
    assert int(layer.steps) == 1
    strength = GradientReversal(strength=0.5, ramp_steps=1000).current_strength()  # λ at step 0
    torch.testing.assert_close(grads[0], -strength * b.detach())
    torch.testing.assert_close(grads[1], -strength * a.detach())


@pytest.mark.parametrize("strength, ramp", [(0.0, 0), (-1.0, 0), (1.0, -1)])
def test_bad_settings_are_refused(strength, ramp):
    with pytest.raises(ValueError, match="strength"):
        GradientReversal(strength, ramp)
