"""Mixture-of-experts architectures: MMoE (Ma et al., KDD 2018)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ParallelExperts, SoftmaxGate, mix_experts


class MMoE(Architecture):
    """Multi-gate Mixture-of-Experts (Ma, Zhao, Yi, Chen, Hong, Chi; KDD 2018).

    E shared experts f_e; per task k a softmax gate g^k(x) = softmax(W_gk x) (paper Eq. 5) and
    a tower h^k over f^k(x) = Σ_e g^k_e(x) f_e(x) (Eq. 4). Experts are computed together by
    ``ParallelExperts`` (one matmul for the first layer, batched matmuls after).
    Deviation: an optional gate temperature (1.0 = the paper).

    Args:
        input_dim: D.
        task_names: the tasks.
        num_experts: E.
        expert_hidden_units: each expert's MLP widths.
        tower_hidden_units: per-task tower MLP widths.
        gate_temperature: softmax temperature of the gates.
        activation, dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    has_gates = True

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        num_experts: int = 8,
        expert_hidden_units: list[int] = (64,),
        tower_hidden_units: list[int] = (32,),
        gate_temperature: float = 1.0,
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        self.experts = ParallelExperts(input_dim, num_experts, list(expert_hidden_units), activation, dropout)
        self.gates = nn.ModuleDict({t: SoftmaxGate(input_dim, num_experts, gate_temperature) for t in task_names})
        self.towers = self.make_towers(self.experts.output_dim(), tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        expert_outputs = self.experts(x)  # (B, E, H)
        gates = {task: self.gates[task](x) for task in self.task_names}  # {task: (B, E)}
        self._remember_gates(gates)
        mixed = mix_experts(expert_outputs, torch.stack(list(gates.values()), dim=1))  # (B, T, H)
        return {task: self.towers[task](mixed[:, index]) for index, task in enumerate(self.task_names)}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.gates[task], self.towers[task]]
