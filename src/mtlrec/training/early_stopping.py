"""Early stopping on a validation metric."""

from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Tracks the best value of a metric and stops after ``patience`` epochs without improvement.

    Args:
        higher_is_better: direction of the metric.
        patience: epochs without improvement before stopping.
        min_delta: smallest change that counts as an improvement.
    """

    def __init__(self, higher_is_better: bool, patience: int, min_delta: float = 0.0):
        self.higher_is_better = higher_is_better
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch = -1
        self.epochs_without_improvement = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's value; True when it is the new best."""
        improved = not math.isnan(value) and (
            self.best is None
            or (value > self.best + self.min_delta if self.higher_is_better else value < self.best - self.min_delta)
        )
        if improved:
            self.best, self.best_epoch, self.epochs_without_improvement = value, epoch, 0
        else:
            self.epochs_without_improvement += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.epochs_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.epochs_without_improvement = state["epochs_without_improvement"]
