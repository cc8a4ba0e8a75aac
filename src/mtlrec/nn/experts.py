"""Mixture-of-experts building blocks: parallel experts as batched matmuls, softmax gates."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.nn.mlp import ACTIVATIONS, MLP


class ParallelExperts(nn.Module):
    """E identical-shape MLP experts evaluated together, without a Python loop over experts.

    Activations are kept feature-major, (E·H, B) and (E, H, B), so no layer needs a transposed copy:
    the first layer reads the shared input, so all experts' first layers are one (E·H, D) × (D, B)
    matmul; each later layer is one batched matmul (E, H', H) × (E, H, B). Same function as E
    separate ``MLP`` experts (Jacobs et al., 1991; Ma et al., KDD 2018, MMoE); ``expert_layers(e)``
    gives expert e's layers as (weight (in, out), bias (out,)) views.

    Args:
        input_dim: D.
        num_experts: E.
        hidden_units: widths of each expert's layers (non-empty).
        activation, dropout: as in ``MLP``.
    """

    def __init__(
        self, input_dim: int, num_experts: int, hidden_units: list[int], activation: str = "relu", dropout: float = 0.0
    ):
        super().__init__()
        if not hidden_units:
            raise ValueError("experts need at least one hidden layer")
        self.num_experts = num_experts
        self.hidden_units = list(hidden_units)
        self.first = nn.Linear(input_dim, num_experts * hidden_units[0])
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_experts, w_out, w_in)) for w_in, w_out in zip(hidden_units, hidden_units[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(num_experts, w_out, 1)) for w_out in hidden_units[1:])
        # in place on the fresh matmul outputs: saves an allocation of the largest activations
        self.activation = nn.ReLU(inplace=True) if activation == "relu" else ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same initialisation as ``nn.Linear`` for each expert's layers."""
        self.first.reset_parameters()
        for weight, bias in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(weight.shape[2])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def output_dim(self) -> int:
        return self.hidden_units[-1]

    def expert_layers(self, expert: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Expert ``expert``'s layers as (weight (in, out), bias (out,)) views of the fused parameters."""
        width = self.hidden_units[0]
        rows = slice(expert * width, (expert + 1) * width)
        layers = [(self.first.weight[rows].t(), self.first.bias[rows])]
        layers += [(weight[expert].t(), bias[expert, :, 0]) for weight, bias in zip(self.weights, self.biases)]
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, E, H) expert outputs (a view of feature-major memory)."""
        batch = x.shape[0]
        hidden = torch.addmm(self.first.bias.unsqueeze(1), self.first.weight, x.t())  # (E·H, B)
        hidden = self.dropout(self.activation(hidden)).view(self.num_experts, -1, batch)  # (E, H, B)
        for weight, bias in zip(self.weights, self.biases):
            hidden = self.dropout(self.activation(torch.baddbmm(bias, weight, hidden)))  # (E, H', B)
        return hidden.permute(2, 0, 1)


class SoftmaxGate(nn.Module):
    """Gate g(x) = softmax(W x / τ) over E experts (MMoE paper, Eq. 5), optionally after an MLP.

    Args:
        input_dim: D.
        num_experts: E.
        temperature: τ, divides the logits before the softmax (1 = the paper's gate).
        hidden_units: MLP widths before the linear layer (empty = the paper's linear gate).
        activation: the MLP's activation.
    """

    def __init__(
        self,
        input_dim: int,
        num_experts: int,
        temperature: float = 1.0,
        hidden_units: list[int] = (),
        activation: str = "relu",
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"gate temperature must be > 0, got {temperature}")
        self.mlp = MLP(input_dim, list(hidden_units), activation) if hidden_units else nn.Identity()
        self.linear = nn.Linear(hidden_units[-1] if hidden_units else input_dim, num_experts)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, E) mixture weights summing to 1."""
        logits = self.linear(self.mlp(x))
        return torch.softmax(logits / self.temperature if self.temperature != 1.0 else logits, dim=-1)


def mix_experts(expert_outputs: torch.Tensor, gate_weights: torch.Tensor) -> torch.Tensor:
    """Σ_e g_{t,e} · f_e for every task at once: (B, E, H) experts, (B, T, E) weights → (B, T, H).

    One batched matmul over the batch (after one copy of the experts into batch-major memory),
    which is cheaper than a broadcast product and sum per task.
    """
    return torch.bmm(gate_weights, expert_outputs.contiguous())
