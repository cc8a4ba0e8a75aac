"""The architecture contract: (B, D) tensor in, {task: (B,) logit} out; parameters shared or per task."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


class Architecture(nn.Module):
    """Base class of multi-task architectures.

    Subclasses build their layers in ``__init__(input_dim, task_names, **params)`` from plain
    arguments, implement ``forward`` and ``task_modules``; every parameter not inside one task's
    modules is shared. Architectures see tensors only: never a Batch, a feature or a label.

    Args:
        task_names: T task names; the keys of ``forward``'s output, in this order.
    """

    has_gates = False
    #: True when the tasks must not share the input embeddings either (independent baselines).
    independent_tasks = False

    def __init__(self, task_names: list[str]):
        super().__init__()
        if not task_names:
            raise ValueError("an architecture needs at least one task")
        self.task_names = list(task_names)
        self.record_gates = False
        self.last_gate_weights: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) → {task: (B,) logit}."""
        raise NotImplementedError

    def task_modules(self, task: str) -> list[nn.Module]:
        """The modules whose parameters belong to ``task`` alone."""
        raise NotImplementedError

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        for module in self.task_modules(task):
            yield from module.parameters()

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters used by more than one task (what gradient-balancing methods act on)."""
        owned = {id(p) for task in self.task_names for p in self.task_parameters(task)}
        return (p for p in self.parameters() if id(p) not in owned)

    def _remember_gates(self, gates: dict[str, torch.Tensor]) -> None:
        if self.record_gates:
            self.last_gate_weights = {task: weights.detach() for task, weights in gates.items()}
