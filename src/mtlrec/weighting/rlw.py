"""Random Loss Weighting (Lin, Ye, Xu, Shi, Zhang; TMLR 2022, "Reasonable effectiveness of random weighting")."""

from __future__ import annotations

import torch

from mtlrec.weighting.base import LossWeighting, draw, generator_state


class RandomLossWeighting(LossWeighting):
    """w = softmax(λ̃) with λ̃ ~ N(0, I_T) drawn afresh at every step (the paper's normal-distribution RLW).

    Weights sum to 1, as in the paper (not to T). Draws come from a generator owned by the strategy,
    seeded by ``seed``; its state is a buffer, so the sequence of weights continues across a
    checkpoint and is independent of the global RNG.

    Args:
        num_tasks: T.
        seed: seed of the strategy's generator.
    """

    def __init__(self, num_tasks: int, seed: int = 0):
        super().__init__(num_tasks)
        self.register_buffer("generator_state", generator_state(seed))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """A fresh draw of (T,) weights on the simplex."""
        draws = draw(self.generator_state, lambda generator: torch.randn(self.num_tasks, generator=generator))
        return torch.softmax(draws, dim=0).to(losses.device)
