"""Adaptive Task-to-Task Fusion Network (Li, Liu, Ma, et al.; KDD 2023)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ParallelExperts, SoftmaxGate, gated_experts, mix_experts


class NativeCombination(nn.Module):
    """The residual of one fusion unit: a linear combination Σ_i v_i f_i of the unit's own n experts.

    The weights v (n,) are learned, initialised U(−√(1/n), √(1/n)) as in the reference code; a unit
    with one expert adds that expert's output unweighted (no parameter), decided per unit (the
    reference's shared-expert variant learns a weight for every unit once any unit has several experts).
    """

    def __init__(self, num_experts: int):
        super().__init__()
        self.weight = None
        if num_experts > 1:
            bound = math.sqrt(1.0 / num_experts)
            self.weight = nn.Parameter(torch.empty(num_experts).uniform_(-bound, bound))

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        """(B, n, H) own expert outputs → (B, H)."""
        if self.weight is None:
            return outputs[:, 0]
        return torch.einsum("n,bnh->bh", self.weight, outputs)


class AdaTTLevel(nn.Module):
    """One fusion level: per task (and the shared branch) its experts, a gate over all experts, a residual.

    Units are the T tasks, then the shared branch when it has experts. Unit u's experts read unit u's
    input; unit u's fused output is Σ_e g_u(x_u)_e f_e over every expert of the level (the adaptive
    fusion unit) plus ``NativeCombination`` of its own experts. The shared branch has no gate, and no
    output, at the last level.

    Args:
        input_dim: width of every unit's input.
        num_tasks: T.
        num_task_experts: as in :class:`AdaTT`.
        num_shared_experts: as in :class:`AdaTT`.
        expert_hidden_units: as in :class:`AdaTT`.
        is_last: True at the last level.
        native_residual: add the native-expert residual.
        gate_temperature: as in ``MMoE``.
        gate_hidden_units: as in ``MMoE``.
        activation: as in ``MMoE``.
        dropout: as in ``MMoE``.
    """

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        num_task_experts: int,
        num_shared_experts: int,
        expert_hidden_units: list[int],
        is_last: bool,
        native_residual: bool = True,
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        counts = [num_task_experts] * num_tasks + ([num_shared_experts] if num_shared_experts else [])
        self.counts, self.num_tasks = counts, num_tasks
        num_experts, gated = sum(counts), num_tasks if is_last else len(counts)
        self.experts = nn.ModuleList(
            ParallelExperts(input_dim, count, list(expert_hidden_units), activation, dropout) for count in counts
        )
        self.gates = nn.ModuleList(
            SoftmaxGate(input_dim, num_experts, gate_temperature, list(gate_hidden_units), activation)
            for _ in range(gated)
        )
        self.native = nn.ModuleList(NativeCombination(counts[u]) for u in range(gated if native_residual else 0))

    def forward(self, inputs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """One (B, D) input per unit → the gated units' fused outputs (B, H) each, their (B, E) gate
        weights, and every expert's output (B, E, H)."""
        outputs, weights = [], []
        for unit, (experts, x) in enumerate(zip(self.experts, inputs)):
            if unit < len(self.gates):  # the gate's logits come out of the experts' first matmul
                out, (gate,) = gated_experts(experts, [self.gates[unit]], x)
                weights.append(gate)
            else:
                out = experts(x)
            outputs.append(out)
        every = torch.cat(outputs, dim=1)  # (B, E, H)
        fused = mix_experts(every, torch.stack(weights, dim=1)).unbind(1)  # (B, H) per gated unit
        fused = [f + native(out) for f, native, out in zip(fused, self.native, outputs)] if self.native else fused
        return list(fused), weights, every


class AdaTT(Architecture):
    """Adaptive Task-to-Task Fusion Network (Li, Liu, Ma, et al.; KDD 2023, arXiv 2304.04959).

    L fusion levels (``AdaTTLevel``). At level l each task t has m task-specific experts reading
    its own input x_tˡ (x at level 1, its previous fused output after): f_{t,i}ˡ. Its fused output is
    x_tˡ⁺¹ = Σ_{u,i} g_tˡ(x_tˡ)_{u,i} f_{u,i}ˡ + Σ_i v_{t,i}ˡ f_{t,i}ˡ: a softmax gate over the experts
    of every task (the adaptive fusion unit) plus a learned linear combination of the task's own
    experts (NativeExpert-LinearComb; the expert itself when m = 1). Every level fuses, as in Meta's
    reference code (``AdaTTSp``). With s > 0 shared experts (the reference's ``AdaTTWSharedExps``),
    every gate also weighs them, and a shared branch with its own gate and residual feeds them at
    the next level; it has no gate at the last level, whose shared output nothing reads. s = 0 (the
    default, the reference's default ``att_sp``) is AdaTT-sp, the variant with task experts only.
    Towers read x_tᴸ⁺¹. Expert widths are the same at every level (later levels read the last width).

    Ownership: other tasks' gates read task t's experts, so they are shared parameters, and so is
    everything that feeds a later level (the gates and residual weights of levels < L). Task t owns
    what only its output depends on: its last-level gate and residual weights, and its tower.
    Recorded gates: ``level{l}.{task}`` and ``level{l}.shared`` for l < L, ``{task}`` for level L.
    The shared representation is level 1's expert outputs (B, E, H), read by every gate.

    Args:
        input_dim: D.
        task_names: the tasks.
        num_levels: L ≥ 1.
        num_task_experts: m ≥ 1 per task and level.
        num_shared_experts: s ≥ 0 per level (0: AdaTT-sp).
        expert_hidden_units: each expert's MLP widths.
        tower_hidden_units: per-task tower MLP widths.
        native_residual: add the native-expert residual (the reference's ``self_exp_res_connect``).
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
        num_levels: int = 2,
        num_task_experts: int = 2,
        num_shared_experts: int = 0,
        expert_hidden_units: list[int] = (64,),
        tower_hidden_units: list[int] | dict[str, list[int]] = (32,),
        native_residual: bool = True,
        gate_temperature: float = 1.0,
        gate_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        if num_levels < 1 or num_task_experts < 1 or num_shared_experts < 0:
            raise ValueError("AdaTT needs num_levels >= 1, num_task_experts >= 1 and num_shared_experts >= 0")
        if not expert_hidden_units:
            raise ValueError("AdaTT's experts need at least one hidden layer")
        widths = [input_dim] + [expert_hidden_units[-1]] * (num_levels - 1)
        self.num_task_experts, self.num_shared_experts = num_task_experts, num_shared_experts
        self.levels = nn.ModuleList(
            AdaTTLevel(
                width,
                len(task_names),
                num_task_experts,
                num_shared_experts,
                expert_hidden_units,
                is_last=level == num_levels - 1,
                native_residual=native_residual,
                gate_temperature=gate_temperature,
                gate_hidden_units=gate_hidden_units,
                activation=activation,
                dropout=dropout,
            )
            for level, width in enumerate(widths)
        )
        self.towers = self.make_towers(expert_hidden_units[-1], tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        units = self.task_names + (["shared"] if self.num_shared_experts else [])
        inputs, recorded = [x] * len(units), {}
        for index, level in enumerate(self.levels):
            inputs, weights, every = level(inputs)
            if index == 0:
                self._remember_representation(every)
            prefix = f"level{index + 1}." if index < len(self.levels) - 1 else ""
            recorded.update({f"{prefix}{unit}": gate for unit, gate in zip(units, weights)})
        self._remember_gates(recorded)
        return {task: self.towers[task](inputs[t]) for t, task in enumerate(self.task_names)}

    def task_modules(self, task: str) -> list[nn.Module]:
        index, last = self.task_names.index(task), self.levels[-1]
        native = [last.native[index]] if last.native else []
        return [last.gates[index], *native, self.towers[task]]

    def gate_experts(self, gate: str, width: int) -> tuple[str, list[str]]:
        """Every gate weighs every expert of its level: ``{task}.e{i}`` task by task, then ``shared.e{j}``."""
        level = gate.rpartition(".")[0] or f"level{len(self.levels)}"
        names = [f"{task}.e{i}" for task in self.task_names for i in range(self.num_task_experts)]
        return level, names + [f"shared.e{j}" for j in range(self.num_shared_experts)]
