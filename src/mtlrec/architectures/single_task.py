"""Single-task baseline: an independent network per task (the reference for every MTL gain)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import MLP


class SingleTask(Architecture):
    """One bottom MLP and tower per task, nothing shared.

    ``independent_tasks`` makes the model builder give each task its own embedding tables too, so the
    T networks are exactly T single-task models trained side by side (their parameters are disjoint,
    so the summed loss gives each the gradient of its own loss).

    Args:
        input_dim: D.
        task_names: the tasks.
        hidden_units: bottom MLP widths per task.
        tower_hidden_units: tower MLP widths per task.
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    independent_tasks = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        hidden_units: list[int] = (256, 128),
        tower_hidden_units: list[int] | dict[str, list[int]] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        self.bottoms = nn.ModuleDict({t: MLP(input_dim, list(hidden_units), activation, dropout) for t in task_names})
        self.towers = self.make_towers(
            self.bottoms[task_names[0]].output_dim(), tower_hidden_units, activation, dropout
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: self.towers[task](self.bottoms[task](x)) for task in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.bottoms[task], self.towers[task]]
