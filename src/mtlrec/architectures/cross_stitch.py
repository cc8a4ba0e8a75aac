"""Cross-stitch networks (Misra, Shrivastava, Gupta, Hebert; CVPR 2016) and their batched column stack."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ACTIVATIONS


class ParallelColumns(nn.Module):
    """N same-shape MLP columns over one shared input, evaluated layer by layer with batched matmuls.

    Activations are feature-major, (N, H, B), so a layer is one matmul for all columns and a mixing
    unit between layers is one (N, N) × (N, H·B) matmul with no transposed copies. The first layer
    reads the shared input: its (N, H, D) weight is viewed as (N·H, D) and applied with one ``addmm``;
    later layers are one ``baddbmm`` over (N, H', H) weights. Initialised like ``nn.Linear``.

    Args:
        input_dim: D.
        num_columns: N (the tasks).
        hidden_units: widths of each column's layers (non-empty).
        activation: a name in ``ACTIVATIONS``.
        dropout: dropout probability after each layer's activation.
    """

    def __init__(
        self, input_dim: int, num_columns: int, hidden_units: list[int], activation: str = "relu", dropout: float = 0.0
    ):
        super().__init__()
        if not hidden_units:
            raise ValueError("columns need at least one hidden layer")
        widths = [input_dim, *hidden_units]
        self.num_columns = num_columns
        self.hidden_units = list(hidden_units)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_columns, w_out, w_in)) for w_in, w_out in zip(widths, widths[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(num_columns, w_out, 1)) for w_out in hidden_units)
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(−1/√fan_in, 1/√fan_in) for weights and biases, as ``nn.Linear`` does."""
        for weight, bias in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(weight.shape[2])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def num_layers(self) -> int:
        return len(self.hidden_units)

    def column_layers(self, column: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Column ``column``'s layers as (weight (out, in), bias (out,)) views, for inspection and tests."""
        return [(weight[column], bias[column, :, 0]) for weight, bias in zip(self.weights, self.biases)]

    def layer(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        """Apply layer ``index`` of every column.

        Args:
            index: the layer, 0 to ``num_layers() - 1``.
            hidden: the shared input (B, D) for layer 0, else the columns' activations (N, H, B).

        Returns:
            (N, H', B) activations after the layer's activation function (and dropout).
        """
        weight, bias = self.weights[index], self.biases[index]
        if index == 0:
            flat = torch.addmm(bias.view(-1, 1), weight.view(-1, weight.shape[2]), hidden.t())  # (N·H, B)
            out = flat.view(self.num_columns, weight.shape[1], -1)
        else:
            out = torch.baddbmm(bias, weight, hidden)
        return self.dropout(self.activation(out))


def stitch_init(size: int, self_weight: float) -> torch.Tensor:
    """A (size, size) mixing matrix: ``self_weight`` on the diagonal, the rest of each row split evenly.

    Rows sum to 1; a 1 × 1 matrix is [[1]]. ``self_weight`` = 1 is the identity (independent columns),
    1/size mixes uniformly.
    """
    if not 0.0 <= self_weight <= 1.0:
        raise ValueError(f"self_weight must be in [0, 1], got {self_weight}")
    if size == 1:
        return torch.ones(1, 1)
    alpha = torch.full((size, size), (1.0 - self_weight) / (size - 1))
    alpha.fill_diagonal_(self_weight)
    return alpha


def cross_stitch(alpha: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """x̃_i = Σ_j α_{ij} x_j over N equal blocks: (N, N) α and (T, H, B) activations → (T, H, B).

    N may be T (one block per column) or T·S (S equal subspaces per column, in column-major order), as
    the blocks of a contiguous (T, H, B) tensor are its N consecutive slices. One matmul.
    """
    return (alpha @ hidden.reshape(alpha.shape[0], -1)).view_as(hidden)


class CrossStitch(Architecture):
    """Cross-stitch networks (Misra, Shrivastava, Gupta, Hebert; CVPR 2016).

    One column (an MLP of the same widths) per task over the shared input. After each column layer a
    cross-stitch unit mixes the T columns' activations, x̃_t = Σ_s α_{t,s} x_s (paper Eq. 1), with one
    learned (T, T) α per layer; the last layer's mixed output feeds each task's tower. α starts as in
    the paper: ``self_weight`` (0.9) on the diagonal, the rest split evenly so rows sum to 1.

    Ownership: every column's output reaches every task through the stitch units, so the column
    layers and the α's are shared; the towers are the tasks' own.

    Deviations: the columns are trained from scratch, not initialised from single-task networks, and
    α gets no larger learning rate of its own as in the paper (an optimizer parameter group can give it one).

    Args:
        input_dim: D.
        task_names: the tasks (T).
        hidden_units: widths of each column's layers; a stitch unit follows each layer.
        tower_hidden_units: tower MLP widths, or {task: widths} (see ``make_towers``).
        self_weight: initial α_tt; off-diagonal entries start at (1 − self_weight)/(T − 1).
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
        self_weight: float = 0.9,
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        num_tasks = len(self.task_names)
        self.columns = ParallelColumns(input_dim, num_tasks, list(hidden_units), activation, dropout)
        self.stitches = nn.ParameterList(nn.Parameter(stitch_init(num_tasks, self_weight)) for _ in hidden_units)
        self.towers = self.make_towers(self.columns.hidden_units[-1], tower_hidden_units, activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) → {task: (B,) logit, or (B, C) class logits}."""
        hidden = x
        for index, alpha in enumerate(self.stitches):
            hidden = cross_stitch(alpha, self.columns.layer(index, hidden))  # (T, H, B)
        return {task: self.towers[task](hidden[i].t()) for i, task in enumerate(self.task_names)}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task]]
