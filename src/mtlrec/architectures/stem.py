"""STEM-Net: shared and task-specific embeddings (Su, Pan, Wang, et al.; AAAI 2024)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ParallelExperts, SoftmaxGate, mix_experts


class STEM(Architecture):
    """STEM-Net (Su, Pan, Wang, Xiao, Quan, Chen, Jiang, "STEM: Unleashing the Power of Embeddings for
    Multi-Task Recommendation", AAAI 2024).

    Every feature has T + 1 embeddings: a shared one and one per task (the model looks them up in T + 1
    copies of the embedding tables, ``embeddings_per_task``). The architecture receives them stacked,
    x (B, 1 + T, D): x[:, 0] the shared embeddings E_s, x[:, 1 + t] task t's E_t. At each level

        shared experts  S_j = f_j(E_s)           task t's experts  T_tj = f_tj(E_t)
        task t:         O_t = Σ g_t(E_t + E_s) · [⊘T_1, …, T_t, …, ⊘T_T, S]

    with ⊘ the stop-gradient: the "all forward, task-specific backward" gate (Sec. 3.2) lets task t read
    every task's experts while its gradient reaches only its own experts and embeddings and the shared
    ones. Levels after the first read the previous level's outputs (task t: O_t; the shared experts: the
    output of a shared gate over all experts). Towers read the last level's O_t. Deviation: the shared
    gate reads the task experts through the stop-gradient too (the authors' code does not), so that the
    property holds at every depth; each task then owns its experts, gates and tower at every level.

    Args:
        input_dim: D, the width of one copy of the embeddings.
        task_names: the tasks.
        num_levels: L ≥ 1 (the paper and the authors' default: 1).
        num_shared_experts: experts over the shared embeddings, per level.
        num_task_experts: experts per task, per level.
        expert_hidden_units: each expert's MLP widths.
        tower_hidden_units: per-task tower widths.
        gate_hidden_units: MLP widths inside each gate (empty: linear).
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    has_gates = True
    embeddings_per_task = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        num_levels: int = 1,
        num_shared_experts: int = 1,
        num_task_experts: int = 1,
        expert_hidden_units: list[int] = (256, 128),
        tower_hidden_units: list[int] | dict[str, list[int]] = (64,),
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        if num_levels < 1 or num_shared_experts < 1 or num_task_experts < 1:
            raise ValueError("STEM needs num_levels, num_shared_experts and num_task_experts >= 1")
        widths = [input_dim] + [expert_hidden_units[-1]] * (num_levels - 1)
        total = num_shared_experts + len(self.task_names) * num_task_experts
        units = list(expert_hidden_units)
        self.levels = nn.ModuleList()
        for level, width in enumerate(widths):
            branches = [*self.task_names] + (["shared"] if level < num_levels - 1 else [])
            experts = {t: ParallelExperts(width, num_task_experts, units, activation, dropout) for t in self.task_names}
            self.levels.append(
                nn.ModuleDict(
                    {
                        "shared_experts": ParallelExperts(width, num_shared_experts, units, activation, dropout),
                        "task_experts": nn.ModuleDict(experts),
                        "gates": nn.ModuleDict({b: SoftmaxGate(width, total, 1, gate_hidden_units) for b in branches}),
                    }
                )
            )
        self.num_task_experts = num_task_experts
        self.towers = self.make_towers(expert_hidden_units[-1], tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, 1 + T, D): shared then per-task embeddings → {task: (B,) logit, or (B, C)}."""
        shared, tasks = x[:, 0], dict(zip(self.task_names, x[:, 1:].unbind(1)))
        gates: dict[str, torch.Tensor] = {}
        for level, modules in enumerate(self.levels):
            shared_outputs = modules["shared_experts"](shared)  # (B, S, H)
            own = {t: modules["task_experts"][t](tasks[t]) for t in self.task_names}  # T × (B, K, H)
            frozen = {t: outputs.detach() for t, outputs in own.items()}
            mixed = {}
            for task in self.task_names:
                experts = torch.cat([*(own[t] if t == task else frozen[t] for t in self.task_names), shared_outputs], 1)
                weights = modules["gates"][task](tasks[task] + shared)  # (B, T·K + S)
                gates[self._gate_name(level, task)] = weights
                mixed[task] = mix_experts(experts, weights.unsqueeze(1)).squeeze(1)  # (B, H)
            if "shared" in modules["gates"]:
                every = torch.cat([*frozen.values(), shared_outputs], 1)
                weights = modules["gates"]["shared"](shared)
                gates[self._gate_name(level, "shared")] = weights
                shared = mix_experts(every, weights.unsqueeze(1)).squeeze(1)
            tasks = mixed
        self._remember_gates(gates)
        return {task: self.towers[task](tasks[task]) for task in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        parts = [[level["gates"][task], level["task_experts"][task]] for level in self.levels]
        return [module for part in parts for module in part] + [self.towers[task]]

    def gate_experts(self, gate: str, width: int) -> tuple[str, list[str]]:
        """Level ``level{l}``; the columns weigh each task's experts ``{task}.e{i}``, then ``shared.e{i}``."""
        level = gate.partition(".")[0] if gate.startswith("level") else f"level{len(self.levels)}"
        names = [f"{t}.e{i}" for t in self.task_names for i in range(self.num_task_experts)]
        return level, names + [f"shared.e{i}" for i in range(width - len(names))]

    def _gate_name(self, level: int, branch: str) -> str:
        return branch if level == len(self.levels) - 1 else f"level{level + 1}.{branch}"
