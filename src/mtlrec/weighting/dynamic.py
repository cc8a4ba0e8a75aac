"""Per-epoch decayed task weights (Tang, Liu, Zhao, Gong; RecSys 2020, PLE, Sec. 5.3)."""

from __future__ import annotations

import math

import torch

from mtlrec.weighting.base import LossWeighting


class DynamicWeighting(LossWeighting):
    """L = Σ_k ω_k L_k with ω_k = ω_k,0 · γ_k^epoch (PLE's "dynamic loss weight", 0-based epochs).

    The epoch advances in ``end_epoch`` and is a buffer, so a resumed run continues the schedule.
    With every γ_k = 1 (the default) it is the ``fixed`` weighting.

    Args:
        num_tasks: T.
        weights: ω_0, the T initial weights (default: ``tasks[].weight``, filled in by the builder).
        gammas: γ, T per-epoch decay factors (γ < 1 decays a task's weight; default 1).
    """

    def __init__(self, num_tasks: int, weights: list[float] | None = None, gammas: list[float] | None = None):
        super().__init__(num_tasks)
        weights = [1.0] * num_tasks if weights is None else list(weights)
        gammas = [1.0] * num_tasks if gammas is None else list(gammas)
        for name, values in (("weights", weights), ("gammas", gammas)):
            if len(values) != num_tasks:
                raise ValueError(f"expected {num_tasks} {name}, got {len(values)}")
            if any(not math.isfinite(v) or v < 0 for v in values):
                raise ValueError(f"{name} must be finite and non-negative")
        self.register_buffer("initial_weights", torch.tensor(weights, dtype=torch.float32))
        self.register_buffer("gammas", torch.tensor(gammas, dtype=torch.float32))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """ω_0 · γ^epoch (T,)."""
        return self.initial_weights * self.gammas.pow(self.epoch.item())

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        self.epoch.fill_(epoch + 1)
