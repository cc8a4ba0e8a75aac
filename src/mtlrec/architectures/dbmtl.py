"""Deep Bayesian Multi-Target Learning (DBMTL; Alibaba, the model of EasyRec and TorchEasyRec)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import MLP, ParallelExperts, SoftmaxGate, gated_experts, mix_experts


class DBMTL(Architecture):
    """Tasks as a Bayesian network over a shared bottom (Wen, Zhang, Lin, et al., "Deep Bayesian Multi-Target
    Learning for Recommender Systems", arXiv 1902.09154, 2019; the DBMTL of EasyRec/TorchEasyRec).

    The paper factorises p(t_1, …, t_T | x) = Π_k p(t_k | x, t_parents(k)): each task's prediction reads the
    hidden representation of the tasks it depends on. As in EasyRec's implementation, for task k in order

        b = bottom(x)                                   (B, H_b), or an MMoE mixture per task when E > 0
        u_k = tower_k(b_k)                              (B, H_t)
        r_k = relation_k([u_k, r_j for j in parents(k)]) (B, H_r)
        y_k = head_k(r_k)                                (B,) logit, or (B, C)

    A parent must come earlier in the task order (the network is a DAG). ``relation_tasks=None`` is the
    full chain of the paper (every task depends on all earlier ones); ``{}`` gives independent towers.
    Ownership: a task's tower and relation network drive the outputs of the tasks that read it, so they
    are shared parameters when another task depends on the task; its head is always its own.

    Args:
        input_dim: D.
        task_names: the tasks, in the order of the network.
        bottom_hidden_units: widths of the shared bottom MLP (empty: the input itself).
        num_experts: E; > 0 puts an MMoE (E experts, one softmax gate per task) over the bottom (EasyRec's
            ``expert_dnn`` with ``num_expert``).
        expert_hidden_units: each expert's MLP widths (when E > 0).
        tower_hidden_units: per-task tower widths (EasyRec's ``task_towers[].dnn``).
        relation_tasks: {task: the earlier tasks it reads} (EasyRec's ``relation_tower_names``).
        relation_hidden_units: widths of each task's relation MLP (EasyRec's ``relation_dnn``).
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        bottom_hidden_units: list[int] = (256,),
        num_experts: int = 0,
        expert_hidden_units: list[int] = (128,),
        tower_hidden_units: list[int] | dict[str, list[int]] = (64,),
        relation_tasks: dict[str, list[str]] | None = None,
        relation_hidden_units: list[int] = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        self.parents = _parents(self.task_names, relation_tasks)
        self.has_gates = num_experts > 0
        self.bottom = MLP(input_dim, list(bottom_hidden_units), activation, dropout)
        width = self.bottom.output_dim()
        self.experts = None
        self.gates = nn.ModuleDict()
        if num_experts > 0:
            self.experts = ParallelExperts(width, num_experts, list(expert_hidden_units), activation, dropout)
            self.gates.update({task: SoftmaxGate(width, num_experts) for task in self.task_names})
            width = self.experts.output_dim()
        per_task = isinstance(tower_hidden_units, dict)
        tower_widths = {
            task: list(tower_hidden_units.get(task, ()) if per_task else tower_hidden_units) for task in self.task_names
        }
        self.towers = nn.ModuleDict(
            {task: MLP(width, tower_widths[task], activation, dropout) for task in self.task_names}
        )
        self.relations = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        for task in self.task_names:
            relation_input = self.towers[task].output_dim() + sum(
                self.relations[parent].output_dim() for parent in self.parents[task]
            )
            self.relations[task] = MLP(relation_input, list(relation_hidden_units), activation, dropout)
            self.heads[task] = nn.Linear(self.relations[task].output_dim(), self.output_dims[task])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) → {task: (B,) logit, or (B, C) class logits}."""
        bottom = self.bottom(x)
        if self.experts is None:
            self._remember_representation(bottom)
            inputs = [bottom] * len(self.task_names)
        else:
            expert_outputs, weights = gated_experts(self.experts, [self.gates[t] for t in self.task_names], bottom)
            self._remember_representation(expert_outputs)  # (B, E, H)
            self._remember_gates(dict(zip(self.task_names, weights)))
            inputs = mix_experts(expert_outputs, torch.stack(weights, dim=1)).unbind(1)  # T × (B, H)
        relations: dict[str, torch.Tensor] = {}
        outputs: dict[str, torch.Tensor] = {}
        for task, task_input in zip(self.task_names, inputs):
            parts = [self.towers[task](task_input)] + [relations[parent] for parent in self.parents[task]]
            relations[task] = self.relations[task](torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
            logits = self.heads[task](relations[task])
            outputs[task] = logits.squeeze(-1) if self.output_dims[task] == 1 else logits
        return outputs

    def task_modules(self, task: str) -> list[nn.Module]:
        """The head, and the tower and relation network unless another task reads them (and the gate)."""
        if any(task in self._ancestors(other) for other in self.task_names):
            return [self.heads[task]]
        gate = [self.gates[task]] if task in self.gates else []
        return [*gate, self.towers[task], self.relations[task], self.heads[task]]

    def _ancestors(self, task: str) -> set[str]:
        found: set[str] = set()
        pending = list(self.parents[task])
        while pending:
            parent = pending.pop()
            if parent not in found:
                found.add(parent)
                pending.extend(self.parents[parent])
        return found


def _parents(task_names: list[str], relation_tasks: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """{task: the earlier tasks it reads}; None: every earlier task (the paper's full chain)."""
    if relation_tasks is None:
        return {task: task_names[:index] for index, task in enumerate(task_names)}
    unknown = sorted(set(relation_tasks) - set(task_names))
    if unknown:
        raise ValueError(f"relation_tasks names unknown task(s) {unknown}")
    parents = {task: list(relation_tasks.get(task, ())) for task in task_names}
    for index, task in enumerate(task_names):
        later = [parent for parent in parents[task] if parent not in task_names[:index]]
        if later:
            raise ValueError(
                f"relation_tasks.{task}: {later} must be tasks listed before '{task}' (the tasks form a DAG in order)"
            )
    return parents
