"""L2-constrained soft parameter sharing (Duong, Cohn, Bird, Cook; ACL 2015)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import MLP


def pairwise_squared_distance(stacked: torch.Tensor) -> torch.Tensor:
    """Σ_{t<s} ‖W_t − W_s‖² of T stacked parameter vectors, without forming the pairs.

    Uses Σ_{t<s} ‖W_t − W_s‖² = T · Σ_t ‖W_t − W̄‖² (W̄ the mean), which equals T·Σ_t‖W_t‖² − ‖Σ_t W_t‖²
    but does not lose precision to cancellation when the W_t are close.

    Args:
        stacked: (T, P) one row per task.

    Returns:
        A scalar; 0 for a single task or identical rows.
    """
    centered = stacked - stacked.mean(dim=0, keepdim=True)
    return stacked.shape[0] * centered.pow(2).sum()


class L2SoftSharing(Architecture):
    """Soft parameter sharing: a network per task and an L2 penalty between them (Duong et al., ACL 2015).

    Duong, Cohn, Bird, Cook, "Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in a
    Neural Network Parser", ACL 2015.

    Each task has its own bottom MLP and tower over the (B, D) input; nothing in the architecture is
    shared. The tasks' bottoms are tied softly: ``auxiliary_loss`` is
    λ · Σ_{t<s} ‖θ_t − θ_s‖², the squared distance between the two tasks' corresponding bottom
    parameters (weights and biases of every layer) summed over all task pairs, as the paper's
    λ‖W_source − W_target‖²_F generalised from two networks to T. Its gradient for task t is
    2λ Σ_{s≠t} (θ_t − θ_s).

    Deviations: (1) the input embeddings stay shared by the tasks (the model builds one input layer;
    in the paper each language's parser is a whole network of its own); (2) only the bottoms are
    tied: the towers, whose heads may differ in width (``output_dims``), stay free; (3) the paper
    regularises a low-resource parser towards a source-language one; here all T tasks are trained
    together and the penalty is symmetric.

    Args:
        input_dim: D.
        task_names: the tasks (T).
        hidden_units: bottom MLP widths per task.
        tower_hidden_units: tower MLP widths, or {task: widths} (see ``make_towers``).
        l2_strength: λ; 0 turns the penalty off (``auxiliary_loss`` returns None, as it does when
            ``hidden_units`` is empty and there is nothing to tie).
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        hidden_units: list[int] = (256, 128),
        tower_hidden_units: list[int] | dict[str, list[int]] = (64,),
        l2_strength: float = 1e-3,
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        if l2_strength < 0:
            raise ValueError(f"l2_strength must be >= 0, got {l2_strength}")
        self.l2_strength = l2_strength
        self.bottoms = nn.ModuleDict({t: MLP(input_dim, list(hidden_units), activation, dropout) for t in task_names})
        width = self.bottoms[self.task_names[0]].output_dim()
        self.towers = self.make_towers(width, tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) → {task: (B,) logit, or (B, C) class logits}."""
        return {task: self.towers[task](self.bottoms[task](x)) for task in self.task_names}

    def bottom_distance(self) -> torch.Tensor:
        """Σ_{t<s} ‖θ_t − θ_s‖² over the tasks' flattened bottom parameters (a scalar)."""
        flat = [torch.cat([p.reshape(-1) for p in self.bottoms[task].parameters()]) for task in self.task_names]
        return pairwise_squared_distance(torch.stack(flat))  # stacked: (T, P)

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """λ · Σ_{t<s} ‖θ_t − θ_s‖² (computed from the parameters; ``outputs`` is unused)."""
        if self.l2_strength == 0 or not any(True for _ in self.bottoms.parameters()):
            return None
        return self.l2_strength * self.bottom_distance()

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.bottoms[task], self.towers[task]]
