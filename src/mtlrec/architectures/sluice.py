"""Sluice networks (Ruder, Bingel, Augenstein, Søgaard; AAAI 2019, "Latent Multi-task Architecture Learning")."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.architectures.cross_stitch import ParallelColumns, cross_stitch, stitch_init


class LayerMixture(nn.Module):
    """One task's β: a weight per column layer, scaling that layer's output in the tower input.

    Args:
        num_layers: L.
    """

    def __init__(self, num_layers: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((num_layers,), 1.0 / num_layers))


def subspace_overlap(hidden: torch.Tensor, num_subspaces: int, pairs: torch.Tensor) -> torch.Tensor:
    """Σ_t Σ_{i<j} ‖G_{t,i}ᵀ G_{t,j} / B‖²_F over the subspaces of each column's activations.

    Args:
        hidden: (T, H, B) activations, H divisible by S.
        num_subspaces: S.
        pairs: (2, P) subspace index pairs i < j.

    Returns:
        A scalar; 0 when every two subspaces of a column are orthogonal over the batch.
    """
    subspaces = hidden.view(hidden.shape[0], num_subspaces, -1, hidden.shape[2])  # (T, S, H/S, B)
    left, right = subspaces[:, pairs[0]], subspaces[:, pairs[1]]  # (T, P, H/S, B)
    cross = left @ right.transpose(-1, -2) / hidden.shape[2]  # (T, P, H/S, H/S)
    return cross.pow(2).sum()


class Sluice(Architecture):
    """Sluice networks (Ruder, Bingel, Augenstein, Søgaard; AAAI 2019).

    One column (an MLP of the same widths) per task over the shared input. Each layer's output of each
    column is split into S equal subspaces; a learned (T·S, T·S) α per layer mixes all task/subspace
    blocks, as a cross-stitch unit over subspaces, and the mixed output feeds the next layer. Each task
    has β (L,) layer weights: its tower reads [β_1 h̃_1, …, β_L h̃_L], the concatenation of its mixed
    layer outputs scaled by β. The paper's orthogonality constraint between the subspaces of each
    column layer, Σ_t Σ_layers Σ_{i<j} ‖G_iᵀ G_j‖²_F, is ``auxiliary_loss``.

    α starts at ``self_weight`` on the diagonal, the rest of each row split evenly (rows sum to 1); β
    starts at 1/L for every layer.

    Ownership: the column layers and α's are shared (every block reaches every task through α); each
    task owns its β and its tower.

    Deviations: (1) the paper combines the layer outputs with β into one vector of the layers' common
    width; here the β-scaled outputs are concatenated so that the layers may have different widths (a
    tower's first linear layer over the concatenation can represent the weighted sum when widths are
    equal). (2) MLP columns instead of the paper's BiLSTM layers. (3) The constraint uses each layer's
    activations before the α mix, with the batch Gram matrices divided by B so that its scale does not
    depend on the batch size; it is a training term: computed in ``forward`` in training mode only,
    and ``auxiliary_loss`` is None in eval mode, with ``orthogonality_strength`` = 0, or with S = 1.

    Args:
        input_dim: D.
        task_names: the tasks (T).
        hidden_units: widths of each column's layers, each divisible by ``num_subspaces``.
        tower_hidden_units: tower MLP widths, or {task: widths} (see ``make_towers``).
        num_subspaces: S, subspaces per column layer (the paper uses 2).
        self_weight: initial diagonal of every α.
        orthogonality_strength: weight of the subspace orthogonality penalty.
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
        num_subspaces: int = 2,
        self_weight: float = 0.9,
        orthogonality_strength: float = 1e-3,
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        hidden_units = list(hidden_units)
        if num_subspaces < 1 or any(width % num_subspaces for width in hidden_units):
            raise ValueError(f"every width in {hidden_units} must be divisible by num_subspaces={num_subspaces}")
        if orthogonality_strength < 0:
            raise ValueError(f"orthogonality_strength must be >= 0, got {orthogonality_strength}")
        num_tasks = len(self.task_names)
        self.num_subspaces = num_subspaces
        self.orthogonality_strength = orthogonality_strength
        self.columns = ParallelColumns(input_dim, num_tasks, hidden_units, activation, dropout)
        blocks = num_tasks * num_subspaces
        self.alphas = nn.ParameterList(nn.Parameter(stitch_init(blocks, self_weight)) for _ in hidden_units)
        self.betas = nn.ModuleDict({task: LayerMixture(len(hidden_units)) for task in self.task_names})
        self.towers = self.make_towers(sum(hidden_units), tower_hidden_units, activation, dropout)
        self.register_buffer("pairs", torch.triu_indices(num_subspaces, num_subspaces, 1), persistent=False)
        self._penalty: torch.Tensor | None = None

    def _penalise(self) -> bool:
        return self.training and self.orthogonality_strength > 0 and self.num_subspaces > 1

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) → {task: (B,) logit, or (B, C) class logits}; in training, also records the penalty."""
        beta = torch.stack([self.betas[task].weight for task in self.task_names])  # (T, L)
        penalise = self._penalise()
        hidden, scaled, overlaps = x, [], []
        for index, alpha in enumerate(self.alphas):
            raw = self.columns.layer(index, hidden)  # (T, H, B)
            if penalise:
                overlaps.append(subspace_overlap(raw, self.num_subspaces, self.pairs))
            hidden = cross_stitch(alpha, raw)
            scaled.append(hidden * beta[:, index, None, None])
        if penalise:
            self._penalty = self.orthogonality_strength * torch.stack(overlaps).sum()
        features = torch.cat(scaled, dim=1)  # (T, ΣH, B)
        return {task: self.towers[task](features[i].t()) for i, task in enumerate(self.task_names)}

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """strength · Σ_t Σ_layers Σ_{i<j} ‖G_{t,i}ᵀ G_{t,j} / B‖²_F of the last training-mode forward."""
        return self._penalty if self._penalise() else None

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.betas[task], self.towers[task]]

    def __getstate__(self) -> dict:
        """Drop the recorded penalty (a non-leaf tensor) so that the module deep-copies and pickles."""
        state = self.__dict__.copy()
        state["_penalty"] = None
        return state
