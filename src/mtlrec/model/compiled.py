"""Compiled stand-ins for a model's architecture and sequence encoders, used by a training step
(``model(inputs, compiled=...)``; ``train.compile``, see ``training.compilation``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


class CompiledEncoder:
    """A sequence encoder's padded (``__call__``) and jagged (``forward_jagged``) paths, compiled with dynamic
    shapes (the histories' lengths, and so the jagged path's position count, change from batch to batch)."""

    def __init__(self, encoder: nn.Module):
        self._padded = torch.compile(encoder, dynamic=True)
        if hasattr(encoder, "forward_jagged"):
            self.forward_jagged = torch.compile(encoder.forward_jagged, dynamic=True)

    def __call__(self, *args: torch.Tensor | None) -> torch.Tensor:
        return self._padded(*args)


@dataclass
class CompiledModel:
    """Compiled callables standing in for a model's modules in its training forward: ``model(inputs,
    compiled=...)``. The model's own modules stay as they were (their parameters are shared), so
    evaluation, export and ``state_dict`` see the eager model.

    Attributes:
        architecture: the compiled architecture (static shapes: the trainer runs other batch sizes eagerly).
        encoders: {sequence name: compiled encoder} of the main input layer.
        parts: {task: CompiledModel} of a model made of independent per-task models (``single_task``).
    """

    architecture: Callable[..., dict[str, torch.Tensor]] | None = None
    encoders: dict[str, CompiledEncoder] = field(default_factory=dict)
    parts: dict[str, CompiledModel] = field(default_factory=dict)

    def names(self, prefix: str = "") -> list[str]:
        """The compiled modules' attribute paths."""
        names = [f"{prefix}architecture"] if self.architecture is not None else []
        names += [f"{prefix}inputs.encoders.{name}" for name in self.encoders]
        return names + [name for task, part in self.parts.items() for name in part.names(f"{prefix}models.{task}.")]


def compile_model(model: nn.Module) -> CompiledModel:
    """Compiled stand-ins for ``model``'s architecture and sequence encoders (per task model for
    ``IndependentTaskModels``); nothing is compiled until the first call."""
    if hasattr(model, "models"):
        return CompiledModel(parts={task: compile_model(part) for task, part in model.models.items()})
    encoders = {name: CompiledEncoder(encoder) for name, encoder in model.inputs.encoders.items()}
    return CompiledModel(torch.compile(model.architecture, dynamic=False), encoders)


