"""Dynamic Weight Average against hand-computed weights."""

from __future__ import annotations

import math

import pytest
import torch

from mtlrec.weighting import DynamicWeightAverage


def hand_weights(previous: list[float], last: list[float], temperature: float) -> torch.Tensor:
    ratios = [b / a for a, b in zip(previous, last)]
    exps = [math.exp(r / temperature) for r in ratios]
    return torch.tensor([len(exps) * e / sum(exps) for e in exps])


def test_equal_weights_for_the_first_two_epochs_then_the_softmax_of_loss_ratios():
    strategy = DynamicWeightAverage(3)
    epochs = [[1.0, 2.0, 0.5], [0.5, 1.8, 0.5], [0.4, 0.9, 0.45]]
    assert torch.equal(strategy.weights(torch.ones(3)), torch.ones(3))
    strategy.end_epoch(0, torch.tensor(epochs[0]))
    assert torch.equal(strategy.weights(torch.ones(3)), torch.ones(3))
    strategy.end_epoch(1, torch.tensor(epochs[1]))
    # ratios 0.5, 0.9, 1.0 → 3 · softmax(ratios / 2)
    expected = hand_weights(epochs[0], epochs[1], 2.0)
    torch.testing.assert_close(expected, torch.tensor([0.8558, 1.0453, 1.0989]), atol=1e-4, rtol=0)
    torch.testing.assert_close(strategy.weights(torch.ones(3)), expected)
    strategy.end_epoch(2, torch.tensor(epochs[2]))
    torch.testing.assert_close(strategy.weights(torch.ones(3)), hand_weights(epochs[1], epochs[2], 2.0))


def test_temperature_and_weights_sum_to_the_number_of_tasks():
    strategy = DynamicWeightAverage(2, temperature=0.5)
    strategy.end_epoch(0, torch.tensor([1.0, 1.0]))
    strategy.end_epoch(1, torch.tensor([0.2, 0.9]))
    weights = strategy.weights(torch.ones(2))
    torch.testing.assert_close(weights, hand_weights([1.0, 1.0], [0.2, 0.9], 0.5))
    torch.testing.assert_close(weights.sum(), torch.tensor(2.0))
    assert weights[1] > weights[0]  # the task whose loss fell less gets more weight


def test_epoch_losses_survive_a_checkpoint():
    strategy = DynamicWeightAverage(2)
    strategy.end_epoch(0, torch.tensor([1.0, 1.0]))
    strategy.end_epoch(1, torch.tensor([0.2, 0.9]))
    fresh = DynamicWeightAverage(2)
    fresh.load_state_dict(strategy.state_dict())
    torch.testing.assert_close(fresh.weights(torch.ones(2)), strategy.weights(torch.ones(2)))


def test_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        DynamicWeightAverage(2, temperature=0.0)
