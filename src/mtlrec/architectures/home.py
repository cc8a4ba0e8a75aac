"""Hierarchy of Multi-Gate Experts (Wang, Cao, Fu, Gai, Zhou; Kuaishou, 2024)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import SoftmaxGate, mix_experts


class NormalizedExperts(nn.Module):
    """n HoME experts over one (B, D) input, batched (one einsum per layer, no loop over experts).

    Expert e reads its own feature-gated input x ⊙ 2σ(x A_e B_e) (A_e (D, r), B_e (r, D): the paper's
    LoRA-style feature gate; r = 0: x) and applies, per layer, Linear → BatchNorm → Swish (expert
    normalisation; BatchNorm1d over the n·H channels is a separate normalisation per expert).

    Args:
        input_dim: D.
        num_experts: n.
        hidden_units: each expert's layer widths (non-empty).
        feature_gate_rank: r (0: no feature gate).
        normalize: BatchNorm and Swish; False: plain Linear → ReLU experts (for ablations).
        dropout: after each layer's activation.
    """

    def __init__(
        self,
        input_dim: int,
        num_experts: int,
        hidden_units: list[int],
        feature_gate_rank: int = 0,
        normalize: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not hidden_units:
            raise ValueError("experts need at least one hidden layer")
        self.num_experts, self.rank = num_experts, feature_gate_rank
        widths = [input_dim, *hidden_units]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_experts, o, i)) for i, o in zip(widths, widths[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(num_experts, o)) for o in hidden_units)
        self.norms = nn.ModuleList(nn.BatchNorm1d(num_experts * o) for o in hidden_units) if normalize else None
        self.activation = nn.SiLU() if normalize else nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.down = nn.Linear(input_dim, num_experts * feature_gate_rank, bias=False) if feature_gate_rank else None
        self.up = nn.Parameter(torch.empty(num_experts, input_dim, feature_gate_rank)) if feature_gate_rank else None
        for weight, bias in zip(self.weights, self.biases):  # nn.Linear's initialisation, per expert
            bound = 1.0 / math.sqrt(weight.shape[2])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)
        if self.up is not None:  # random, not LoRA's zeros: A gets a gradient from the first step
            nn.init.uniform_(self.up, -1.0 / math.sqrt(feature_gate_rank), 1.0 / math.sqrt(feature_gate_rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, n, H)."""
        if self.down is not None:
            low = self.down(x).unflatten(1, (self.num_experts, self.rank))  # (B, n, r)
            gate = 2.0 * torch.sigmoid(torch.einsum("bnr,ndr->bnd", low, self.up))  # (B, n, D)
            hidden = torch.einsum("bnd,nhd->bnh", gate * x.unsqueeze(1), self.weights[0])
        else:
            hidden = torch.einsum("bd,nhd->bnh", x, self.weights[0])
        for index, bias in enumerate(self.biases):
            if index:
                hidden = torch.einsum("bni,noi->bno", hidden, self.weights[index])
            hidden = hidden + bias
            if self.norms is not None:
                hidden = self.norms[index](hidden.flatten(1)).view_as(hidden)
            hidden = self.dropout(self.activation(hidden))
        return hidden


class HoME(Architecture):
    """Hierarchy of Multi-Gate Experts (Wang, Cao, Fu, Gai, Zhou; arXiv 2408.05430, Kuaishou 2024).

    Tasks are partitioned into groups (the paper's meta-categories). Level 1: S global experts and
    m_g experts per group, all reading x; group k's gate (over the global and group k's experts) gives
    the group mixture z_k, the global gate (over every level-1 expert) the global mixture z. Level 2:
    S global experts read z; per group k, m_g group experts read z_k; per task t (in group k), m_t task
    experts read z_k, and task t's gate, reading z_k, mixes [global, group k's, task t's] level-2
    experts: h_t. With the self-gate, h_t += σ(W_t z_k) ⊙ z_k (a sigmoid-gated residual of the level-2
    input). Towers read h_t. From the paper: the two-level hierarchy of global, group and task
    experts (its hierarchy mask), expert normalisation (BatchNorm then Swish, ``NormalizedExperts``),
    LoRA-style feature gates per expert, and a self-gate. Choices of this implementation, where it may
    differ from the paper: softmax gates (the library's ``SoftmaxGate``); a PLE-style global gate over
    every level-1 expert; BatchNorm + Swish after every expert layer; feature gates on every expert
    of both levels (each expert's gated input is (B, D): memory n·B·D per block); the self-gate is
    the residual above; expert counts are the same for every group and every task.

    Ownership: the global gate reads every level-1 expert, so all level-1 experts are shared; a
    group's level-1 gate and level-2 experts are shared when the group has ≥ 2 tasks, else owned by
    its task; task t owns its level-2 experts, gate, self-gate and tower. Recorded gates:
    ``level1.group{k}``, ``level1.shared`` and ``{task}``. The shared representation is the level-1
    expert outputs (B, E₁, H).

    Args:
        input_dim: D.
        task_names: the tasks.
        task_groups: a partition of the tasks; None: each task its own group (no grouping knowledge
            assumed: the hierarchy is then global → per task, a two-level PLE with HoME's experts,
            where a task's group and task experts are both its own).
        num_shared_experts: S ≥ 1 global experts per level.
        num_group_experts: m_g ≥ 1 per group and level.
        num_task_experts: m_t ≥ 1 per task (level 2).
        expert_hidden_units: each expert's layer widths (level 2 reads the last width).
        tower_hidden_units: per-task tower MLP widths.
        feature_gate_rank: r of the feature gates (0 disables them).
        self_gate: add the self-gate residual.
        expert_normalization: BatchNorm + Swish experts (False: Linear → ReLU).
        gate_temperature: as in ``MMoE``
        gate_hidden_units: as in ``MMoE``
        activation: as in ``MMoE``
        dropout: as in ``MMoE``
        output_dims: as in ``MMoE``
            (``activation`` is the gates' and towers').
    """

    has_gates = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        task_groups: list[list[str]] | None = None,
        num_shared_experts: int = 2,
        num_group_experts: int = 1,
        num_task_experts: int = 1,
        expert_hidden_units: list[int] = (64,),
        tower_hidden_units: list[int] | dict[str, list[int]] = (32,),
        feature_gate_rank: int = 4,
        self_gate: bool = True,
        expert_normalization: bool = True,
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        groups = [list(group) for group in task_groups] if task_groups is not None else [[t] for t in task_names]
        if sorted(t for group in groups for t in group) != sorted(task_names) or not all(groups):
            raise ValueError(f"task_groups must partition the tasks {task_names} into non-empty groups, got {groups}")
        if min(num_shared_experts, num_group_experts, num_task_experts) < 1 or feature_gate_rank < 0:
            raise ValueError("HoME needs at least one expert of each kind and feature_gate_rank >= 0")
        self.groups = groups
        self.group_of = {task: k for k, group in enumerate(groups) for task in group}
        if not expert_hidden_units:
            raise ValueError("HoME's experts need at least one hidden layer")
        shared, per_group, per_task, width = num_shared_experts, num_group_experts, num_task_experts, input_dim
        hidden = expert_hidden_units[-1]

        def experts(input_width: int, count: int) -> NormalizedExperts:
            units = list(expert_hidden_units)
            return NormalizedExperts(input_width, count, units, feature_gate_rank, expert_normalization, dropout)

        def gate(input_width: int, count: int) -> SoftmaxGate:
            return SoftmaxGate(input_width, count, gate_temperature, list(gate_hidden_units), activation)

        num_first = shared + len(groups) * per_group
        self.first_experts = experts(width, num_first)  # global experts, then group 1's, ..., group G's
        self.group_gates = nn.ModuleList(gate(width, shared + per_group) for _ in groups)
        self.shared_gate = gate(width, num_first)
        self.shared_experts = experts(hidden, shared)
        self.group_experts = nn.ModuleList(experts(hidden, per_group) for _ in groups)
        self.task_experts = nn.ModuleDict({t: experts(hidden, per_task) for t in task_names})
        self.task_gates = nn.ModuleDict({t: gate(hidden, shared + per_group + per_task) for t in task_names})
        self.self_gates = nn.ModuleDict({t: nn.Linear(hidden, hidden) for t in task_names}) if self_gate else None
        self.expert_counts = (shared, per_group, per_task)
        selection = torch.zeros(len(groups), shared + per_group, num_first)  # group k's gate column → expert
        for k in range(len(groups)):
            own = list(range(shared)) + list(range(shared + k * per_group, shared + (k + 1) * per_group))
            selection[k, torch.arange(shared + per_group), own] = 1.0
        self.register_buffer("selection", selection, persistent=False)
        self.towers = self.make_towers(hidden, tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        first = self.first_experts(x)  # (B, E₁, H)
        self._remember_representation(first)
        group_weights = [gate(x) for gate in self.group_gates]  # (B, S + m_g) each
        shared_weights = self.shared_gate(x)  # (B, E₁)
        weights = torch.einsum("bks,kse->bke", torch.stack(group_weights, dim=1), self.selection)
        mixed = mix_experts(first, torch.cat([weights, shared_weights.unsqueeze(1)], dim=1)).unbind(1)
        shared_out = self.shared_experts(mixed[-1])  # (B, S, H)
        group_out = [experts(z) for experts, z in zip(self.group_experts, mixed)]  # (B, m_g, H) each
        recorded = {f"level1.group{k}": w for k, w in enumerate(group_weights)}
        recorded["level1.shared"] = shared_weights
        outputs = {}
        for task in self.task_names:
            k = self.group_of[task]
            z = mixed[k]  # (B, H): the task's level-2 input
            recorded[task] = gate = self.task_gates[task](z)  # (B, S + m_g + m_t)
            seen = torch.cat([shared_out, group_out[k], self.task_experts[task](z)], dim=1)
            h = mix_experts(seen, gate.unsqueeze(1)).squeeze(1)
            if self.self_gates is not None:
                h = h + torch.sigmoid(self.self_gates[task](z)) * z
            outputs[task] = self.towers[task](h)
        self._remember_gates(recorded)
        return outputs

    def task_modules(self, task: str) -> list[nn.Module]:
        k = self.group_of[task]
        alone = [self.group_gates[k], self.group_experts[k]] if len(self.groups[k]) == 1 else []
        self_gate = [self.self_gates[task]] if self.self_gates is not None else []
        return [self.task_experts[task], self.task_gates[task], *self_gate, *alone, self.towers[task]]

    def gate_experts(self, gate: str, width: int) -> tuple[str, list[str]]:
        """Experts ``shared.e{j}``, ``group{k}.e{j}`` and ``{task}.e{j}``, named within their level."""
        prefix, _, owner = gate.rpartition(".")
        shared, per_group, per_task = self.expert_counts
        names = [f"shared.e{j}" for j in range(shared)]
        group = [[f"group{k}.e{j}" for j in range(per_group)] for k in range(len(self.groups))]
        if owner == "shared":
            return prefix, names + [name for names_k in group for name in names_k]
        if prefix:  # a level-1 group gate
            return prefix, names + group[int(owner.removeprefix("group"))]
        return "level2", names + group[self.group_of[owner]] + [f"{owner}.e{j}" for j in range(per_task)]
