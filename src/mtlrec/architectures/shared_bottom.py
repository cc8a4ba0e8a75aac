"""Shared-Bottom (hard parameter sharing; Caruana, 1997)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import MLP


class SharedBottom(Architecture):
    """One bottom MLP shared by all tasks, then a tower per task (Caruana, "Multitask Learning", 1997).

    Args:
        input_dim: D.
        task_names: the tasks.
        bottom_hidden_units: shared MLP widths.
        tower_hidden_units: per-task tower MLP widths.
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        bottom_hidden_units: list[int] = (256, 128),
        tower_hidden_units: list[int] | dict[str, list[int]] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        self.bottom = MLP(input_dim, list(bottom_hidden_units), activation, dropout)
        self.towers = self.make_towers(self.bottom.output_dim(), tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.bottom(x)
        self._remember_representation(shared)
        return {task: self.towers[task](shared) for task in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task]]
