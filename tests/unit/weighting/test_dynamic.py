"""PLE's dynamic weights: ω_0 · γ^epoch, advanced by end_epoch."""

from __future__ import annotations

import pytest
import torch

from mtlrec.weighting import DynamicWeighting

INITIAL, GAMMAS = [1.0, 0.5], [0.9, 1.1]


def test_weights_are_initial_weights_times_gamma_to_the_epoch():
    strategy = DynamicWeighting(2, INITIAL, GAMMAS)
    losses = torch.ones(2)
    torch.testing.assert_close(strategy.weights(losses), torch.tensor(INITIAL), rtol=0, atol=0)
    for epoch in range(5):
        strategy.end_epoch(epoch, losses)
        expected = torch.tensor([w * g ** (epoch + 1) for w, g in zip(INITIAL, GAMMAS)])
        torch.testing.assert_close(strategy.weights(losses), expected, rtol=1e-6, atol=0)


def test_the_epoch_comes_from_end_epoch_and_survives_a_checkpoint():
    strategy = DynamicWeighting(2, INITIAL, GAMMAS)
    strategy.end_epoch(6, torch.ones(2))  # resumed after epoch index 6: the next epoch is 7
    fresh = DynamicWeighting(2, INITIAL, GAMMAS)
    fresh.load_state_dict(strategy.state_dict())
    torch.testing.assert_close(fresh.weights(torch.ones(2)), torch.tensor([0.9**7, 0.5 * 1.1**7]))


def test_defaults_are_equal_weights_forever():
    strategy = DynamicWeighting(3)
    strategy.end_epoch(10, torch.ones(3))
    assert torch.equal(strategy.weights(torch.ones(3)), torch.ones(3))


def test_backward_uses_the_weights():
    losses = torch.tensor([2.0, 3.0], requires_grad=True)
    weights = DynamicWeighting(2, INITIAL, GAMMAS).backward(losses, [])
    torch.testing.assert_close(losses.grad, torch.tensor(INITIAL))
    torch.testing.assert_close(weights, torch.tensor(INITIAL))


@pytest.mark.parametrize(
    ("weights", "gammas", "message"),
    [([1.0], None, "expected 2 weights"), (None, [1.0, 1.0, 1.0], "expected 2 gammas"), (None, [1.0, -1.0], "gammas")],
)
def test_rejects_bad_parameters(weights, gammas, message):
    with pytest.raises(ValueError, match=message):
        DynamicWeighting(2, weights, gammas)
