"""The full model: the input layer (embeddings, sequence encoders, feature groups), then an architecture."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn

from mtlrec.architectures import Architecture
from mtlrec.model.inputs import ModelInputs
from mtlrec.nn.broadcast import side_by_side


class MultiTaskModel(nn.Module):
    """{input name: tensor} → {task: (B,) logit, or (B, C) class logits}.

    Args:
        inputs: the input layer: inputs → {group: (B, D_g)}.
        architecture: (B, D) → {task: logit}, D the width of ``input_groups`` side by side; it also
            receives the groups it reads by role (``Architecture.group_inputs``).
        input_groups: the groups concatenated into the architecture's main input, in order.
        role_groups: {role: group} for the architecture's extra inputs (default: the group named like the role).
    """

    def __init__(
        self,
        inputs: ModelInputs,
        architecture: Architecture,
        input_groups: list[str],
        role_groups: dict[str, str] | None = None,
    ):
        super().__init__()
        roles = {role: (role_groups or {}).get(role, role) for role in architecture.group_inputs}
        missing = [f"'{group}' ({role})" for role, group in roles.items() if group not in inputs.groups and
                   group not in inputs.id_groups]
        if missing:
            raise ValueError(f"{type(architecture).__name__} reads the feature group(s) {', '.join(missing)}")
        self.inputs = inputs
        self.architecture = architecture
        self.task_names = architecture.task_names
        self.input_groups = list(input_groups)
        self.role_groups = roles

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        groups = self.inputs(inputs)
        x = side_by_side([groups[name] for name in self.input_groups], dim=1)
        return self.architecture(x, **{role: groups[group] for role, group in self.role_groups.items()})

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
        return self.inputs.embedding_parameters()

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

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        for model in self.models.values():
            outputs.update(model(inputs))
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
