"""The full model: input layer (embeddings + dense) followed by an architecture."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mtlrec.architectures import Architecture
from mtlrec.nn import InputLayer


class MultiTaskModel(nn.Module):
    """ids (B, F) and dense (B, Dd) → {task: (B,) logit}.

    Args:
        input_layer: embeds ids and appends dense inputs → (B, D).
        architecture: (B, D) → {task: logit}.
        domain_column: for architectures that need a domain index (STAR), the column of ``ids``
            holding the domain feature's ids.
    """

    def __init__(self, input_layer: InputLayer, architecture: Architecture, domain_column: int | None = None):
        super().__init__()
        if architecture.needs_domain and domain_column is None:
            raise ValueError(f"{type(architecture).__name__} needs a domain feature")
        self.input_layer = input_layer
        self.architecture = architecture
        self.task_names = architecture.task_names
        self.domain_column = domain_column if architecture.needs_domain else None

    def forward(self, ids: torch.Tensor, dense: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.input_layer(ids, dense)
        if self.domain_column is None:
            return self.architecture(x)
        return self.architecture(x, ids[:, self.domain_column])

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The architecture's regulariser for these outputs (None when it has none)."""
        return self.architecture.auxiliary_loss(outputs)

    def untrained_tasks(self) -> frozenset[str]:
        return self.architecture.untrained_tasks()

    def shared_representation(self) -> torch.Tensor | None:
        """The architecture's shared representation of the last training forward pass, if it has one."""
        return self.architecture.last_representation

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Embedding tables (updated by the sparse-aware optimizer)."""
        return [self.input_layer.embedding.weight]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Dense parameters shared by several tasks (embeddings excluded)."""
        return self.architecture.shared_parameters()

    def architectures(self) -> list[Architecture]:
        return [self.architecture]


class IndependentTaskModels(nn.Module):
    """T single-task models side by side, each with its own embeddings: the single-task baseline.

    Args:
        models: {task: a MultiTaskModel predicting that task only}.
    """

    def __init__(self, models: dict[str, MultiTaskModel]):
        super().__init__()
        self.models = nn.ModuleDict(models)
        self.task_names = list(models)

    def forward(self, ids: torch.Tensor, dense: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        for model in self.models.values():
            outputs.update(model(ids, dense))
        return outputs

    def embedding_parameters(self) -> list[nn.Parameter]:
        return [p for model in self.models.values() for p in model.embedding_parameters()]

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        terms = [model.auxiliary_loss(outputs) for model in self.models.values()]
        terms = [term for term in terms if term is not None]
        return torch.stack(terms).sum() if terms else None

    def untrained_tasks(self) -> frozenset[str]:
        return frozenset().union(*(model.untrained_tasks() for model in self.models.values()))

    def shared_representation(self) -> torch.Tensor | None:
        return None

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def architectures(self) -> list[Architecture]:
        return [model.architecture for model in self.models.values()]
