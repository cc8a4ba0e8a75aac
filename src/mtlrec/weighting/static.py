"""Static weightings: equal weights and fixed per-task weights."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mtlrec.weighting.base import LossWeighting


class FixedWeighting(LossWeighting):
    """L = Σ_t w_t L_t with constant user-given weights (``tasks[].weight`` unless ``weights`` is given).

    Args:
        num_tasks: T.
        weights: T non-negative weights, in task order.
    """

    def __init__(self, num_tasks: int, weights: Sequence[float]):
        super().__init__(num_tasks)
        if len(weights) != num_tasks:
            raise ValueError(f"expected {num_tasks} weights, got {len(weights)}")
        if any(not math.isfinite(w) or w < 0 for w in weights):
            raise ValueError("weights must be finite and non-negative")
        self.register_buffer("fixed_weights", torch.tensor(list(weights), dtype=torch.float32))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        return self.fixed_weights


class EqualWeighting(FixedWeighting):
    """L = Σ_t L_t (every task weight 1)."""

    def __init__(self, num_tasks: int):
        super().__init__(num_tasks, [1.0] * num_tasks)
