"""Multi-layer perceptron used for bottoms, experts' single-network form and task towers."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "prelu": nn.PReLU,
}


class MLP(nn.Module):
    """Stack of Linear → activation (→ dropout) layers.

    Args:
        input_dim: D, width of the input (B, D).
        hidden_units: widths of the layers; empty means identity.
        activation: a name in ``ACTIVATIONS``.
        dropout: dropout probability after each layer's activation.
    """

    def __init__(self, input_dim: int, hidden_units: list[int], activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for units in hidden_units:
            layers += [nn.Linear(width, units), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = units
        self.layers = nn.Sequential(*layers)
        self._output_dim = width

    def output_dim(self) -> int:
        return self._output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, hidden_units[-1])."""
        return self.layers(x)


class Tower(nn.Module):
    """A task tower: MLP then a linear head giving one logit per sample (or C class logits).

    Args:
        input_dim: D.
        hidden_units: MLP widths before the head.
        activation: as in :class:`MLP`.
        dropout: as in :class:`MLP`.
        output_dim: 1 for a (B,) output, C ≥ 2 for (B, C) class logits.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_units: list[int],
        activation: str = "relu",
        dropout: float = 0.0,
        output_dim: int = 1,
    ):
        super().__init__()
        if output_dim < 1:
            raise ValueError(f"output_dim must be >= 1, got {output_dim}")
        self.mlp = MLP(input_dim, hidden_units, activation, dropout)
        self.head = nn.Linear(self.mlp.output_dim(), output_dim)
        self.squeeze = output_dim == 1

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, hidden_units[-1]) the tower's last hidden layer (before the head)."""
        return self.mlp(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B,) logit, or (B, C) when ``output_dim`` = C ≥ 2."""
        logits = self.head(self.mlp(x))
        return logits.squeeze(-1) if self.squeeze else logits
