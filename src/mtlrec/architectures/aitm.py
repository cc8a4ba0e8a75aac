"""Adaptive Information Transfer Multi-task framework (AITM; Xi, Chen, Li, et al.; KDD 2021)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import MLP


class AdaptiveInformationTransfer(nn.Module):
    """The AIT module: attention over the transferred vector p_{t−1} and the task's own vector q_t.

    For u ∈ {p_{t−1}, q_t}: w_u = softmax_u(⟨h1(u), h2(u)⟩ / √k) and z_t = Σ_u w_u h3(u), with h1, h2,
    h3 linear maps of width k (the AIT module of the AITM paper, Section 3; the paper names the value map
    h1 and the two scoring maps h2, h3). Both inputs are stacked, so each map is one matmul over (B, 2, d).

    Args:
        input_dim: d, width of p_{t−1} and q_t.
        attention_dim: k, width of h1, h2, h3 (and of z_t).
    """

    def __init__(self, input_dim: int, attention_dim: int):
        super().__init__()
        self.query = nn.Linear(input_dim, attention_dim)  # h1
        self.key = nn.Linear(input_dim, attention_dim)  # h2
        self.value = nn.Linear(input_dim, attention_dim)  # h3
        self.scale = 1.0 / math.sqrt(attention_dim)

    def forward(self, transferred: torch.Tensor, own: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p_{t−1} (B, d), q_t (B, d) → z_t (B, k) and the weights (B, 2) of [p_{t−1}, q_t]."""
        stacked = torch.stack([transferred, own], dim=1)  # (B, 2, d)
        scores = (self.query(stacked) * self.key(stacked)).sum(-1) * self.scale  # (B, 2)
        weights = torch.softmax(scores, dim=1)
        return torch.bmm(weights.unsqueeze(1), self.value(stacked)).squeeze(1), weights


class AITM(Architecture):
    """Adaptive Information Transfer Multi-task framework for conversion funnels (Xi et al., KDD 2021).

    Xi, Chen, Li, Zhu, Yang, Zhang, et al., "Modeling the Sequential Dependence among Audience
    Multi-step Conversions with Multi-task Learning in Targeted Display Advertising", KDD 2021.

    The tasks form a conversion funnel in the order of ``task_names`` (e.g. click → conversion). Each
    task t has an encoder q_t = MLP_t(x) over the shared input; z_1 = q_1 and, for t ≥ 2,
    z_t = AIT(p_{t−1}, q_t) with p_{t−1} = g_t(z_{t−1}) (``AdaptiveInformationTransfer``; g_t is a
    one-layer MLP of width d, as the paper's "MLP" transfer). Task t's output is a tower on z_t.
    The attention width k equals d = ``tower_hidden_units[-1]`` so that z_t can be transferred again.

    Ownership: information flows forward along the funnel without a stop-gradient (as in the paper),
    so task t's encoder, transfer and AIT module also drive every later task; they are shared, except
    the last task's, which it owns together with its head. Every head is owned by its task.

    ``auxiliary_loss`` is the behavioural-expectation calibrator of the paper's loss,
    α · Σ_{t≥2} mean_B max(ŷ_t − ŷ_{t−1}, 0) with ŷ = sigmoid(logit): it penalises a later step being
    more likely than the earlier one. Deviation: it is taken only over consecutive pairs whose tasks
    both have one output (binary); pairs with a multi-class task are skipped (their ordering has no
    meaning), and it is None when no pair is left or α = 0.

    When ``record_gates`` is set, ``last_gate_weights[task]`` holds the (B, 2) attention weights of
    [transferred, own] for every task but the first (which has no AIT module); hence ``has_gates`` is
    False: the gate contract asks for one gate per task.

    Args:
        input_dim: D.
        task_names: the tasks, in funnel order.
        tower_hidden_units: widths of each task's encoder MLP; the last is d (non-empty).
        head_hidden_units: widths of each task's head MLP before its output layer.
        calibrator_weight: α of the calibrator.
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        tower_hidden_units: list[int] = (256, 128),
        head_hidden_units: list[int] = (64,),
        calibrator_weight: float = 0.6,
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        if not tower_hidden_units:
            raise ValueError("AITM needs at least one encoder layer (tower_hidden_units)")
        width = list(tower_hidden_units)[-1]
        later = self.task_names[1:]
        self.calibrator_weight = float(calibrator_weight)
        self.encoders = nn.ModuleDict(
            {task: MLP(input_dim, list(tower_hidden_units), activation, dropout) for task in self.task_names}
        )
        self.transfers = nn.ModuleDict({task: MLP(width, [width], activation, dropout) for task in later})
        self.transfer_attention = nn.ModuleDict({task: AdaptiveInformationTransfer(width, width) for task in later})
        self.towers = self.make_towers(width, head_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) → {task: (B,) logit, or (B, C) class logits}."""
        first = self.task_names[0]
        representation = self.encoders[first](x)  # z_1 = q_1, (B, d)
        outputs = {first: self.towers[first](representation)}
        weights = {}
        for task in self.task_names[1:]:
            transferred = self.transfers[task](representation)  # p_{t−1}
            representation, weights[task] = self.transfer_attention[task](transferred, self.encoders[task](x))
            outputs[task] = self.towers[task](representation)
        self._remember_gates(weights)
        return outputs

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The calibrator α · Σ_{t≥2} mean(relu(ŷ_t − ŷ_{t−1})) over consecutive binary tasks; a scalar or None."""
        pairs = [
            (earlier, later)
            for earlier, later in zip(self.task_names, self.task_names[1:])
            if self.output_dims[earlier] == 1 and self.output_dims[later] == 1
        ]
        if not pairs or self.calibrator_weight == 0:
            return None
        penalty = sum(
            torch.relu(torch.sigmoid(outputs[later]) - torch.sigmoid(outputs[earlier])).mean()
            for earlier, later in pairs
        )
        return self.calibrator_weight * penalty

    def task_modules(self, task: str) -> list[nn.Module]:
        if task != self.task_names[-1]:
            return [self.towers[task]]
        modules = [self.towers[task], self.encoders[task]]
        if task in self.transfers:
            modules += [self.transfers[task], self.transfer_attention[task]]
        return modules
