"""Early stopping on a validation criterion, optionally subject to constraints."""

from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Tracks the best value of a criterion and stops after ``patience`` evaluations without improvement.

    An evaluation is an epoch's end, or every ``train.eval_every_steps`` steps; each is numbered by its
    0-based index in the run's history.

    With constraints, evaluations compare lexicographically: one that meets the constraints (``feasible``)
    always beats one that does not; otherwise the values compare (by more than ``min_delta``). A NaN
    value never improves.

    Args:
        higher_is_better: direction of the metric.
        patience: evaluations without improvement before stopping.
        min_delta: smallest change that counts as an improvement.
    """

    def __init__(self, higher_is_better: bool, patience: int, min_delta: float = 0.0):
        self.higher_is_better = higher_is_better
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_index = -1
        self.best_feasible = True
        self.evaluations_without_improvement = 0

    def update(self, value: float, index: int, feasible: bool = True) -> bool:
        """Record evaluation ``index``'s value and whether it meets the constraints; True when it is the new best."""
        if math.isnan(value):
            improved = False
        elif self.best is None or feasible != self.best_feasible:
            improved = self.best is None or feasible
        elif self.higher_is_better:
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved:
            self.best, self.best_index, self.evaluations_without_improvement = value, index, 0
            self.best_feasible = feasible
        else:
            self.evaluations_without_improvement += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.evaluations_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_index": self.best_index,
            "best_feasible": self.best_feasible,
            "evaluations_without_improvement": self.evaluations_without_improvement,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # checkpoints written before step-level evaluation name these by epochs
        self.best, self.best_index = state["best"], state.get("best_index", state.get("best_epoch"))
        self.evaluations_without_improvement = state.get(
            "evaluations_without_improvement", state.get("epochs_without_improvement")
        )
        self.best_feasible = state.get("best_feasible", True)  # checkpoints from before constraints existed
