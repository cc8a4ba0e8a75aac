"""Mixture-of-experts building blocks: parallel experts as batched matmuls, softmax gates."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.nn.mlp import ACTIVATIONS


class ParallelExperts(nn.Module):
    """E identical-shape MLP experts evaluated together, without a Python loop over experts.

    The first layer reads the shared input, so all experts' first layers are one (B, D) × (D, E·H)
    matmul; each later layer is one batched matmul (E, B, H) × (E, H, H'). Same function as E
    separate ``MLP`` experts (Jacobs et al., 1991; Ma et al., KDD 2018, MMoE).

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
        widths = [input_dim, *hidden_units]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_experts, w_in, w_out)) for w_in, w_out in zip(widths, widths[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(num_experts, 1, w_out)) for w_out in widths[1:])
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same initialisation as ``nn.Linear`` for each expert's layers."""
        for weight, bias in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def output_dim(self) -> int:
        return self.weights[-1].shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, E, H) expert outputs."""
        batch = x.shape[0]
        first_weight = self.weights[0]
        fused = first_weight.permute(1, 0, 2).reshape(first_weight.shape[1], -1)  # (D, E·H)
        hidden = torch.addmm(self.biases[0].reshape(1, -1), x, fused)  # (B, E·H)
        hidden = self.dropout(self.activation(hidden)).view(batch, self.num_experts, -1).transpose(0, 1)  # (E, B, H)
        for weight, bias in zip(self.weights[1:], self.biases[1:]):
            hidden = self.dropout(self.activation(torch.baddbmm(bias, hidden, weight)))
        return hidden.transpose(0, 1)


class SoftmaxGate(nn.Module):
    """Gate g(x) = softmax(W x) over E experts (MMoE paper, Eq. 5), optionally with a temperature.

    Args:
        input_dim: D.
        num_experts: E.
        temperature: divides the logits before the softmax (1 = the paper's gate).
    """

    def __init__(self, input_dim: int, num_experts: int, temperature: float = 1.0):
        super().__init__()
        self.linear = nn.Linear(input_dim, num_experts)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, E) mixture weights summing to 1."""
        return torch.softmax(self.linear(x) / self.temperature, dim=-1)


def mix_experts(expert_outputs: torch.Tensor, gate_weights: torch.Tensor) -> torch.Tensor:
    """Σ_e g_e · f_e: (B, E, H) experts and (B, E) weights → (B, H)."""
    return torch.bmm(gate_weights.unsqueeze(1), expert_outputs).squeeze(1)
