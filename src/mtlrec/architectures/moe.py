"""Mixture-of-experts architectures: OMoE, MMoE (Ma et al., KDD 2018) and multi-level MMoE."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ParallelExperts, SoftmaxGate, gated_experts, mix_experts


class MMoE(Architecture):
    """Multi-gate Mixture-of-Experts (Ma, Zhao, Yi, Chen, Hong, Chi; KDD 2018).

    E shared experts f_e; per task k a softmax gate g^k(x) = softmax(W_gk x) (paper Eq. 5) and
    a tower h^k over f^k(x) = Σ_e g^k_e(x) f_e(x) (Eq. 4). Experts are computed together by
    ``ParallelExperts`` (one matmul for the first layer, batched matmuls after).
    Deviations (off by default): a gate temperature and an MLP inside the gates.

    Args:
        input_dim: D.
        task_names: the tasks.
        num_experts: E.
        expert_hidden_units: each expert's MLP widths.
        tower_hidden_units: per-task tower MLP widths.
        gate_temperature: softmax temperature of the gates.
        gate_hidden_units: MLP widths inside each gate (empty: the paper's linear gate).
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    has_gates = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        num_experts: int = 8,
        expert_hidden_units: list[int] = (64,),
        tower_hidden_units: list[int] | dict[str, list[int]] = (32,),
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        self.experts = ParallelExperts(input_dim, num_experts, list(expert_hidden_units), activation, dropout)
        self.gates = nn.ModuleDict(
            {t: SoftmaxGate(input_dim, num_experts, gate_temperature, gate_hidden_units) for t in task_names}
        )
        self.towers = self.make_towers(self.experts.output_dim(), tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        expert_outputs, weights = gated_experts(self.experts, [self.gates[t] for t in self.task_names], x)
        self._remember_representation(expert_outputs)  # (B, E, H)
        self._remember_gates(dict(zip(self.task_names, weights)))  # {task: (B, E)}
        mixed = mix_experts(expert_outputs, torch.stack(weights, dim=1))  # (B, T, H)
        # unbind: its backward stacks the tasks' gradients once (indexing would zero-fill (B, T, H) per task)
        return {task: self.towers[task](inputs) for task, inputs in zip(self.task_names, mixed.unbind(1))}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.gates[task], self.towers[task]]


class OMoE(Architecture):
    """One-gate Mixture-of-Experts: the baseline of the MMoE paper (Ma et al., KDD 2018, Eq. 1 + Eq. 3).

    y_k = h^k(Σ_e g_e(x) f_e(x)) with a single softmax gate g shared by all tasks, so every task
    sees the same mixture; only the towers are task-specific.

    Args:
        input_dim: as in :class:`MMoE`.
        task_names: as in :class:`MMoE`.
        num_experts: as in :class:`MMoE`.
        expert_hidden_units: as in :class:`MMoE`.
        tower_hidden_units: as in :class:`MMoE`.
        gate_temperature: as in :class:`MMoE`.
        gate_hidden_units: as in :class:`MMoE`.
        activation: as in :class:`MMoE`.
        dropout: as in :class:`MMoE`.
        output_dims: as in :class:`MMoE`.
    """

    has_gates = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        num_experts: int = 8,
        expert_hidden_units: list[int] = (64,),
        tower_hidden_units: list[int] | dict[str, list[int]] = (32,),
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        self.experts = ParallelExperts(input_dim, num_experts, list(expert_hidden_units), activation, dropout)
        self.gate = SoftmaxGate(input_dim, num_experts, gate_temperature, gate_hidden_units)
        self.towers = self.make_towers(self.experts.output_dim(), tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        expert_outputs, (weights,) = gated_experts(self.experts, [self.gate], x)  # (B, E, H), (B, E)
        self._remember_gates({task: weights for task in self.task_names})
        self._remember_representation(expert_outputs)
        mixed = mix_experts(expert_outputs, weights.unsqueeze(1)).squeeze(1)  # (B, H)
        return {task: self.towers[task](mixed) for task in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task]]


class MultiLevelMMoE(Architecture):
    """Stacked MMoE layers (multi-level MMoE, the ML-MMoE baseline of Tang et al., RecSys 2020, PLE).

    Level 1 is an MMoE layer over x: per task t, m_t¹ = Σ_e g_t¹(x)_e f_e¹(x). At level l ≥ 2 the
    level's experts read each task's previous mixture: m_tˡ = Σ_e g_tˡ(m_tˡ⁻¹)_e f_eˡ(m_tˡ⁻¹), so the
    experts are shared while every task keeps its own path through them (T× the expert compute of
    level 1, done as one batched call over the T·B stacked rows). Towers read the last level.
    Recorded gates: ``{task}`` for the last level, ``level{l}.{task}`` for level l < L.

    Args:
        input_dim: D.
        task_names: the tasks.
        num_levels: L ≥ 1 (1 = MMoE).
        num_experts: E per level.
        expert_hidden_units: each expert's MLP widths (every level; later levels read the previous
            level's width).
        tower_hidden_units: as in :class:`MMoE`.
        gate_temperature: as in :class:`MMoE`.
        gate_hidden_units: as in :class:`MMoE`.
        activation: as in :class:`MMoE`.
        dropout: as in :class:`MMoE`.
        output_dims: as in :class:`MMoE`.
    """

    has_gates = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        num_levels: int = 2,
        num_experts: int = 4,
        expert_hidden_units: list[int] = (64,),
        tower_hidden_units: list[int] | dict[str, list[int]] = (32,),
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        widths = [input_dim] + [expert_hidden_units[-1]] * (num_levels - 1)
        self.experts = nn.ModuleList(
            ParallelExperts(width, num_experts, list(expert_hidden_units), activation, dropout) for width in widths
        )
        self.gates = nn.ModuleList(
            nn.ModuleDict({t: SoftmaxGate(width, num_experts, gate_temperature, gate_hidden_units) for t in task_names})
            for width in widths
        )
        self.towers = self.make_towers(expert_hidden_units[-1], tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, num_tasks = x.shape[0], len(self.task_names)
        first_outputs, first_weights = gated_experts(self.experts[0], [self.gates[0][t] for t in self.task_names], x)
        gates = dict(zip(self.task_names, first_weights))
        self._remember_representation(first_outputs)  # (B, E, H): every task reads them
        mixed = mix_experts(first_outputs, torch.stack(list(gates.values()), dim=1))  # (B, T, H)
        recorded = {}
        for level, (experts, level_gates) in enumerate(zip(self.experts[1:], self.gates[1:]), start=1):
            recorded.update({f"level{level}.{task}": weights for task, weights in gates.items()})
            gates = {task: level_gates[task](mixed[:, i]) for i, task in enumerate(self.task_names)}
            outputs = experts(mixed.reshape(batch * num_tasks, -1))  # (B·T, E, H): each task's path
            weights = torch.stack(list(gates.values()), dim=1).reshape(batch * num_tasks, 1, -1)
            mixed = mix_experts(outputs, weights).view(batch, num_tasks, -1)  # (B, T, H)
        self._remember_gates({**recorded, **gates})
        return {task: self.towers[task](inputs) for task, inputs in zip(self.task_names, mixed.unbind(1))}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [level[task] for level in self.gates] + [self.towers[task]]

    def gate_experts(self, gate: str, width: int) -> tuple[str, list[str]]:
        """Level ``level{l}`` of a gate (the last level's gates carry no prefix); column i weighs ``e{i}``."""
        level, experts = super().gate_experts(gate, width)
        return level or f"level{len(self.experts)}", experts
