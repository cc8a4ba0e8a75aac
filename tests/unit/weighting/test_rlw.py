"""Random loss weighting: softmax of standard normal draws from the strategy's own generator."""

from __future__ import annotations

import torch

from mtlrec.weighting import RandomLossWeighting


def draws(strategy: RandomLossWeighting, steps: int) -> torch.Tensor:
    return torch.stack([strategy.weights(torch.ones(strategy.num_tasks)) for _ in range(steps)])


def test_weights_are_a_fresh_point_of_the_simplex_each_step():
    weights = draws(RandomLossWeighting(3), 4)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    assert not torch.equal(weights[0], weights[1])


def test_weights_are_the_softmax_of_standard_normal_draws_of_the_seeded_generator():
    generator = torch.Generator().manual_seed(7)
    expected = torch.stack([torch.softmax(torch.randn(3, generator=generator), dim=0) for _ in range(3)])
    torch.testing.assert_close(draws(RandomLossWeighting(3, seed=7), 3), expected)


def test_the_global_rng_is_left_alone():
    state = torch.get_rng_state()
    draws(RandomLossWeighting(2), 3)
    assert torch.equal(torch.get_rng_state(), state)


def test_the_sequence_continues_after_a_checkpoint():
    strategy = RandomLossWeighting(2, seed=3)
    draws(strategy, 5)
    fresh = RandomLossWeighting(2, seed=0)
    fresh.load_state_dict(strategy.state_dict())
    torch.testing.assert_close(draws(fresh, 3), draws(strategy, 3))


def test_weights_average_to_one_over_t():
    weights = draws(RandomLossWeighting(4), 4000)
    torch.testing.assert_close(weights.mean(dim=0), torch.full((4,), 0.25), atol=0.01, rtol=0)
