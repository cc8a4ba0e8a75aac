"""Where a run stands between two evaluations: the position to resume from, and the losses summed so far."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mtlrec.training.distributed import DistributedContext


@dataclass
class LossSums:
    """Row-weighted sums of the loss vector (T,) and the loss weights (T,) over some training steps."""

    losses: torch.Tensor
    weights: torch.Tensor
    rows: int = 0

    @classmethod
    def zeros(cls, tasks: int, device: torch.device) -> LossSums:
        return cls(torch.zeros(tasks, device=device), torch.zeros(tasks, device=device))

    def add(self, losses: torch.Tensor, weights: torch.Tensor, rows: int) -> None:
        """Count one step: its (T,) losses and (T,) loss weights, over ``rows`` rows."""
        self.losses += losses * rows
        self.weights += weights.to(self.weights) * rows
        self.rows += rows

    def reduce(self, context: DistributedContext) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Mean losses (T,), mean loss weights (T,) and rows, over every rank's rows."""
        sums = torch.cat([self.losses.double().cpu(), self.weights.double().cpu(), torch.tensor([float(self.rows)])])
        sums = context.all_reduce_sum(sums.double())
        tasks, rows = len(self.losses), int(sums[-1])
        count = max(float(rows), 1.0)
        return (sums[:tasks] / count).float(), (sums[tasks : 2 * tasks] / count).float(), rows

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses.cpu(), "weights": self.weights.cpu(), "rows": self.rows}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> LossSums:
        return cls(state["losses"].to(device), state["weights"].to(device), int(state["rows"]))


@dataclass
class Position:
    """The next step to train: ``step`` of 0-based ``epoch``, ``global_step`` steps done in all.

    ``epoch_sums`` holds the epoch's losses before ``step`` (None at an epoch's start): what its mean,
    handed to the weighting strategy at the epoch's end, still needs after a resume.
    """

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    epoch_sums: LossSums | None = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"position": {"epoch": self.epoch, "step": self.step, "global_step": self.global_step}}
        if self.epoch_sums is not None:
            state["epoch_sums"] = self.epoch_sums.state_dict()
        return state

    @classmethod
    def from_state_dict(
        cls, state: dict[str, Any], steps_of_epoch: Callable[[int], int], device: torch.device
    ) -> Position:
        """The position a checkpoint saved.

        Args:
            state: the checkpoint.
            steps_of_epoch: steps in an epoch (for checkpoints from before step-level evaluation, which
                hold the last finished epoch only).
            device: where the epoch's loss sums go.
        """
        if "position" not in state:
            epoch = state["epoch"] + 1
            return cls(epoch, 0, sum(steps_of_epoch(e) for e in range(epoch)))
        position = state["position"]
        sums = LossSums.from_state_dict(state["epoch_sums"], device) if "epoch_sums" in state else None
        return cls(position["epoch"], position["step"], position["global_step"], sums)
