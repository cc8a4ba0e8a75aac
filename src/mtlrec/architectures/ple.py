"""Progressive Layered Extraction and its one-level form CGC (Tang, Liu, Zhao, Gong; RecSys 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ParallelExperts, SoftmaxGate, gated_experts, mix_experts


@dataclass
class ExpertNet:
    """One expert's MLP (EasyRec's ``task_expert_net`` / ``share_expert_net``)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 (read by the config validator)

    hidden_units: list[int] = field(default_factory=lambda: [64])


@dataclass
class ExtractionNetwork:
    """One level of PLE, spelled as in EasyRec's ``extraction_networks``.

    Attributes:
        network_name: a label for logs and diagnostics.
        expert_num_per_task: task-specific experts per task (m_k in the paper).
        share_num: shared experts (m_s).
        task_expert_net: the task-specific experts' MLP.
        share_expert_net: the shared experts' MLP (its last width must equal the task experts').
    """

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012

    network_name: str = ""
    expert_num_per_task: int = 1
    share_num: int = 1
    task_expert_net: ExpertNet = field(default_factory=ExpertNet)
    share_expert_net: ExpertNet = field(default_factory=ExpertNet)


DEFAULT_LEVELS = (ExtractionNetwork("level1"), ExtractionNetwork("level2"))


class ExtractionLevel(nn.Module):
    """One CGC block: per-task experts and shared experts, task gates, and (if not last) a shared gate.

    Task t's gate reads task t's input and weighs its own experts and the shared ones (paper Eq. 2–4);
    the shared gate reads the shared input and weighs every expert (Eq. 5). All mixtures are one
    batched matmul over a (B, G, E) weight matrix (zero where a gate does not see an expert).

    Args:
        input_dim: D, width of every input of this level.
        num_tasks: T.
        spec: the level's sizes.
        has_shared_gate: False at the last level.
        one_input: True when every task input and the shared input are the same tensor (level 1).
        gate_temperature: as in ``MMoE``.
        gate_hidden_units: as in ``MMoE``.
        activation: as in ``MMoE``.
        dropout: as in ``MMoE``.
    """

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        spec: ExtractionNetwork,
        has_shared_gate: bool,
        one_input: bool = False,
        gate_temperature: float = 1.0,
        gate_hidden_units: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        per_task, shared = spec.expert_num_per_task, spec.share_num
        task_units, share_units = list(spec.task_expert_net.hidden_units), list(spec.share_expert_net.hidden_units)
        if per_task < 1 or shared < 0 or not task_units or not share_units:
            raise ValueError("an extraction network needs expert_num_per_task >= 1, share_num >= 0 and hidden_units")
        if shared and task_units[-1] != share_units[-1]:
            raise ValueError(f"task and shared experts must end at the same width, got {task_units} and {share_units}")
        self.has_shared_gate = has_shared_gate
        self.experts_per_task, self.num_shared = per_task, shared
        num_experts = num_tasks * per_task + shared
        # When every expert reads the same input and feeds the shared gate (level 1 of a multi-level PLE),
        # all experts are shared parameters anyway: one fused ParallelExperts computes them in one GEMM.
        self.fused_experts = (
            ParallelExperts(input_dim, num_experts, task_units, activation, dropout)
            if one_input and has_shared_gate and task_units == share_units
            else None
        )
        self.task_experts = nn.ModuleList(
            ParallelExperts(input_dim, per_task, task_units, activation, dropout)
            for _ in range(num_tasks if self.fused_experts is None else 0)
        )
        separate_shared = shared and self.fused_experts is None
        self.shared_experts = (
            ParallelExperts(input_dim, shared, share_units, activation, dropout) if separate_shared else None
        )
        gate_args = (gate_temperature, list(gate_hidden_units), activation)
        self.task_gates = nn.ModuleList(SoftmaxGate(input_dim, per_task + shared, *gate_args) for _ in range(num_tasks))
        self.shared_gate = SoftmaxGate(input_dim, num_experts, *gate_args) if has_shared_gate else None
        self.register_buffer("selection", _selection(num_tasks, per_task, shared), persistent=False)
        self.output_width = task_units[-1]

    def forward(
        self, task_inputs: list[torch.Tensor], shared_input: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """T task inputs and the shared input, each (B, D) → mixtures (B, G, H), the gate weights, and
        the outputs of the experts every task reads ((B, E, H) when fused, else the shared experts').

        G = T + 1 (the last row is the shared mixture) when the level has a shared gate, else T.
        """
        shared_gates = [] if self.shared_gate is None else [self.shared_gate]
        if self.fused_experts is not None:  # every expert and gate reads the one input
            all_gates = [*self.task_gates, *shared_gates]
            expert_outputs, gates = gated_experts(self.fused_experts, all_gates, shared_input)  # (B, E, H)
            shared_outputs = expert_outputs
        else:  # each gate is computed with the experts that read the same input
            own_gates = [[gate] for gate in self.task_gates]
            parts = [gated_experts(*part) for part in zip(self.task_experts, own_gates, task_inputs)]
            outputs, gates = [out for out, _ in parts], [weights for _, (weights,) in parts]
            if self.shared_experts is None:
                shared_outputs, shared_weights = None, [gate(shared_input) for gate in shared_gates]
            else:
                shared_outputs, shared_weights = gated_experts(self.shared_experts, shared_gates, shared_input)
                outputs.append(shared_outputs)
            expert_outputs, gates = torch.cat(outputs, dim=1), gates + shared_weights
        task_gates = torch.stack(gates[: len(self.task_gates)], dim=1)  # (B, T, m_k + m_s)
        weights = torch.einsum("bts,tse->bte", task_gates, self.selection)  # (B, T, E)
        if self.shared_gate is not None:
            weights = torch.cat([weights, gates[-1].unsqueeze(1)], dim=1)  # (B, T + 1, E)
        return mix_experts(expert_outputs, weights), gates, shared_outputs


def _selection(num_tasks: int, per_task: int, shared: int) -> torch.Tensor:
    """(T, m_k + m_s, E) 0/1 matrices placing task t's gate weights on its own and the shared experts."""
    num_experts = num_tasks * per_task + shared
    selection = torch.zeros(num_tasks, per_task + shared, num_experts)
    for task in range(num_tasks):
        own = list(range(task * per_task, (task + 1) * per_task)) + list(range(num_tasks * per_task, num_experts))
        selection[task, torch.arange(per_task + shared), own] = 1.0
    return selection


class PLE(Architecture):
    """Progressive Layered Extraction (Tang, Liu, Zhao, Gong; RecSys 2020).

    L stacked extraction levels (``ExtractionLevel``); level 1 reads x for every input, level l reads
    level l−1's task mixtures (task experts and gates) and its shared mixture (shared experts and
    shared gate); the last level has no shared gate; task towers read the last level's mixtures
    (paper Eq. 6–7). One level is CGC. Parameters are owned by task t when only task t depends on
    them: its gates at every level, its experts at the last level, and its tower; task experts of
    earlier levels feed the shared gate and are shared. The shared representation (for gradient
    methods on it) is level 1's fused expert outputs, or its shared experts' outputs.

    Args:
        input_dim: D.
        task_names: the tasks.
        extraction_networks: the levels, EasyRec style (dicts are accepted).
        tower_hidden_units: per-task tower MLP widths (or {task: widths}).
        gate_temperature: as in ``MMoE``.
        gate_hidden_units: as in ``MMoE``.
        activation: as in ``MMoE``.
        dropout: as in ``MMoE``.
        output_dims: as in ``MMoE``.
    """

    has_gates = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        extraction_networks: list[ExtractionNetwork] = DEFAULT_LEVELS,
        tower_hidden_units: list[int] | dict[str, list[int]] = (32,),
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        specs = [_as_extraction_network(spec) for spec in extraction_networks]
        if not specs:
            raise ValueError("PLE needs at least one extraction network")
        self.levels = nn.ModuleList()
        width = input_dim
        for index, spec in enumerate(specs):
            is_last = index == len(specs) - 1
            level = ExtractionLevel(
                width,
                len(task_names),
                spec,
                has_shared_gate=not is_last,
                one_input=index == 0,
                gate_temperature=gate_temperature,
                gate_hidden_units=gate_hidden_units,
                activation=activation,
                dropout=dropout,
            )
            self.levels.append(level)
            width = level.output_width
        self.level_names = [spec.network_name or f"level{i + 1}" for i, spec in enumerate(specs)]
        self.towers = self.make_towers(width, tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        num_tasks = len(self.task_names)
        task_inputs, shared_input = [x] * num_tasks, x
        recorded: dict[str, torch.Tensor] = {}
        for index, (name, level) in enumerate(zip(self.level_names, self.levels)):
            mixed, gates, shared_outputs = level(task_inputs, shared_input)  # (B, G, H)
            if index == 0 and shared_outputs is not None:
                self._remember_representation(shared_outputs)
            views = mixed.unbind(1)  # (B, H) each; the backward stacks their gradients once
            task_inputs = list(views[:num_tasks])
            if level.has_shared_gate:
                shared_input = views[num_tasks]
                recorded.update({f"{name}.{task}": g for task, g in zip(self.task_names, gates)})
                recorded[f"{name}.shared"] = gates[-1]
            else:
                recorded.update(zip(self.task_names, gates))
        self._remember_gates(recorded)
        return {task: self.towers[task](task_inputs[i]) for i, task in enumerate(self.task_names)}

    def task_modules(self, task: str) -> list[nn.Module]:
        index = self.task_names.index(task)
        gates = [level.task_gates[index] for level in self.levels]
        return gates + [self.levels[-1].task_experts[index], self.towers[task]]

    def gate_experts(self, gate: str, width: int) -> tuple[str, list[str]]:
        """Experts ``{task}.{i}`` (task t's own) and ``shared.{j}``: task t's gate weighs its own then the
        shared ones, a shared gate every expert of its level (task 1's, ..., task T's, then the shared)."""
        prefix, _, owner = gate.rpartition(".")
        index = self.level_names.index(prefix) if prefix else len(self.levels) - 1
        level = self.levels[index]
        own = {task: [f"{task}.{i}" for i in range(level.experts_per_task)] for task in self.task_names}
        shared = [f"shared.{j}" for j in range(level.num_shared)]
        if owner == "shared":
            return self.level_names[index], [name for names in own.values() for name in names] + shared
        return self.level_names[index], own[owner] + shared


class CGC(PLE):
    """Customized Gate Control (Tang et al., RecSys 2020, Section 4.2): PLE with a single level.

    Args:
        input_dim: D.
        task_names: the tasks.
        expert_num_per_task: task-specific experts per task.
        share_num: shared experts.
        task_expert_hidden_units: each task expert's MLP widths.
        share_expert_hidden_units: each shared expert's MLP widths.
        tower_hidden_units: as in :class:`PLE`.
        gate_temperature: as in :class:`PLE`.
        gate_hidden_units: as in :class:`PLE`.
        activation: as in :class:`PLE`.
        dropout: as in :class:`PLE`.
        output_dims: as in :class:`PLE`.
    """

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        expert_num_per_task: int = 1,
        share_num: int = 1,
        task_expert_hidden_units: list[int] = (64,),
        share_expert_hidden_units: list[int] = (64,),
        tower_hidden_units: list[int] | dict[str, list[int]] = (32,),
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        spec = ExtractionNetwork(
            "cgc",
            expert_num_per_task,
            share_num,
            ExpertNet(list(task_expert_hidden_units)),
            ExpertNet(list(share_expert_hidden_units)),
        )
        super().__init__(
            input_dim,
            task_names,
            [spec],
            tower_hidden_units,
            gate_temperature,
            gate_hidden_units,
            activation,
            dropout,
            output_dims,
        )


def _as_extraction_network(spec: ExtractionNetwork | dict) -> ExtractionNetwork:
    if isinstance(spec, ExtractionNetwork):
        return spec
    spec = dict(spec)
    for key in ("task_expert_net", "share_expert_net"):
        if isinstance(spec.get(key), dict):
            spec[key] = ExpertNet(**spec[key])
    return ExtractionNetwork(**spec)
