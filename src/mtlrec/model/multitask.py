"""The full model: the input layer (embeddings, sequence encoders, feature groups), then an architecture."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn

from mtlrec.architectures import Architecture
from mtlrec.model.compiled import CompiledModel, compile_model
from mtlrec.model.inputs import ModelInputs
from mtlrec.model.selection import TaskFeatureGates
from mtlrec.nn.broadcast import common_rows, expand_rows, side_by_side


class MultiTaskModel(nn.Module):
    """{input name: tensor} → {task: (B,) logit, or (B, C) class logits}.

    Args:
        inputs: the input layer: inputs → {group: (B, D_g)}.
        architecture: (B, D) → {task: logit}, D the width of ``input_groups`` side by side; it also
            receives the groups it reads by role (``Architecture.group_inputs``).
        input_groups: the groups concatenated into the architecture's main input, in order.
        role_groups: {role: group} for the architecture's extra inputs (default: the group named like the role).
        task_inputs: {task: its own input layer}, for architectures that read a shared and a per-task copy of
            the embeddings (``Architecture.embeddings_per_task``): x (B, 1 + T, D).
        feature_gates: per-task feature selection over the input's fields: the architecture then runs on
            the T gated inputs stacked, (T · B, D), and task t's outputs are taken from the t-th block.
    """

    def __init__(
        self,
        inputs: ModelInputs,
        architecture: Architecture,
        input_groups: list[str],
        role_groups: dict[str, str] | None = None,
        task_inputs: dict[str, ModelInputs] | None = None,
        feature_gates: TaskFeatureGates | None = None,
    ):
        super().__init__()
        roles = {role: (role_groups or {}).get(role, role) for role in architecture.group_inputs}
        missing = [f"'{group}' ({role})" for role, group in roles.items() if group not in inputs.groups and
                   group not in inputs.id_groups]
        if missing:
            raise ValueError(f"{type(architecture).__name__} reads the feature group(s) {', '.join(missing)}")
        if architecture.embeddings_per_task and sorted(task_inputs or {}) != sorted(architecture.task_names):
            raise ValueError(f"{type(architecture).__name__} reads one input layer per task besides the shared one")
        self.inputs = inputs
        self.task_inputs = nn.ModuleDict(
            {task: task_inputs[task] for task in architecture.task_names} if architecture.embeddings_per_task else {}
        )
        gated_tasks = None if feature_gates is None else feature_gates.task_names
        if gated_tasks is not None and (architecture.embeddings_per_task or gated_tasks != architecture.task_names):
            raise ValueError("per-task feature gates need an architecture over one input and the same tasks")
        self.architecture = architecture
        self.feature_gates = feature_gates
        self.task_names = architecture.task_names
        self.input_groups = list(input_groups)
        self.role_groups = roles

    def forward(
        self, inputs: Mapping[str, torch.Tensor], compiled: CompiledModel | None = None
    ) -> dict[str, torch.Tensor]:
        """``compiled``: compiled stand-ins for the architecture and sequence encoders (a training step's)."""
        x, roles = self.architecture_inputs(inputs, compiled)
        architecture = self.architecture if compiled is None else compiled.architecture
        outputs = architecture(x, **roles)
        if self.feature_gates is None:
            return outputs
        num_tasks = len(self.task_names)
        return {task: outputs[task].unflatten(0, (num_tasks, -1))[index] for index, task in enumerate(self.task_names)}

    def architecture_inputs(
        self, inputs: Mapping[str, torch.Tensor], compiled: CompiledModel | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What the architecture reads: x ((B, D); (B, 1 + T, D) with per-task embeddings; (T · B, D) with
        feature gates, task-major) and {role: tensor} (repeated T times with feature gates)."""
        groups = self.inputs(inputs, None if compiled is None else compiled.encoders)
        x = self._input(groups)
        roles = {role: groups[group] for role, group in self.role_groups.items()}
        if self.task_inputs:
            copies = [x] + [self._input(layer(inputs)) for layer in self.task_inputs.values()]
            rows = common_rows(copies)
            x = torch.stack([expand_rows(copy, rows) for copy in copies], dim=1)  # (B, 1 + T, D)
        if self.feature_gates is None:
            return x, roles
        num_tasks = len(self.task_names)
        gated = self.feature_gates(x).flatten(0, 1)  # (T · B, D), task-major
        return gated, {role: torch.cat([value] * num_tasks) for role, value in roles.items()}

    def _input(self, groups: dict[str, torch.Tensor]) -> torch.Tensor:
        return side_by_side([groups[name] for name in self.input_groups], dim=1)

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The architecture's regulariser for these outputs, plus the feature gates' penalty (None: neither)."""
        terms = [self.architecture.auxiliary_loss(outputs)]
        if self.feature_gates is not None:
            terms.append(self.feature_gates.penalty())
        terms = [term for term in terms if term is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def feature_selection(self) -> dict[str, object] | None:
        """{"fields": names, "weights": {task: gate per field}} of the per-task feature gates, or None."""
        if self.feature_gates is None:
            return None
        return {"fields": self.feature_gates.field_names, "weights": self.feature_gates.weights()}

    def untrained_tasks(self) -> frozenset[str]:
        return self.architecture.untrained_tasks()

    def shared_representation(self) -> torch.Tensor | None:
        """The architecture's shared representation of the last training forward pass, if it has one."""
        return self.architecture.last_representation

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Embedding tables (updated by the sparse-aware optimizer)."""
        layers = [self.inputs, *self.task_inputs.values()]
        return [p for layer in layers for p in layer.embedding_parameters()]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Dense parameters shared by several tasks (embeddings excluded)."""
        return self.architecture.shared_parameters()

    def architectures(self) -> list[Architecture]:
        return [self.architecture]

    def compile_parts(self) -> CompiledModel:
        """Compiled stand-ins for the architecture and sequence encoders, for ``forward(..., compiled=)``."""
        return compile_model(self)


class IndependentTaskModels(nn.Module):
    """T single-task models side by side, each with its own embeddings: the single-task baseline.

    Args:
        models: {task: a MultiTaskModel predicting that task only}.
    """

    def __init__(self, models: dict[str, MultiTaskModel]):
        super().__init__()
        self.models = nn.ModuleDict(models)
        self.task_names = list(models)

    def forward(
        self, inputs: Mapping[str, torch.Tensor], compiled: CompiledModel | None = None
    ) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        for task, model in self.models.items():
            outputs.update(model(inputs, None if compiled is None else compiled.parts[task]))
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

    def compile_parts(self) -> CompiledModel:
        """Compiled stand-ins for each task model's architecture and sequence encoders."""
        return compile_model(self)
