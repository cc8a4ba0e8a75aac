"""Mixture-of-experts building blocks: parallel experts as batched matmuls, softmax gates."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.nn.expert_stack import expert_stack
from mtlrec.nn.mlp import ACTIVATIONS, MLP


class ParallelExperts(nn.Module):
    """E identical-shape MLP experts evaluated together, without a Python loop over experts.

    The first layer reads the shared input, so all experts' first layers are one (E·H, D) × (D, B)
    matmul; each later layer is one batched matmul (E, H', H) × (E, H, B) (``expert_stack``, which
    also has the hand-written training backward). Same function as E separate ``MLP`` experts
    (Jacobs et al., 1991; Ma et al., KDD 2018, MMoE); ``expert_layers(e)`` gives expert e's layers
    as (weight (in, out), bias (out,)) views. ``forward_with_side`` adds linear projections of the
    input (linear gates) to the first matmul.

    Args:
        input_dim: D.
        num_experts: E.
        hidden_units: widths of each expert's layers (non-empty).
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
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
        """(B, D) → (B, E, H) expert outputs (possibly a strided view: ``mix_experts`` reads it as is)."""
        return self.forward_with_side(x)[0]

    def forward_with_side(
        self, x: torch.Tensor, side_weights: list[torch.Tensor] = (), side_biases: list[torch.Tensor] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) → (B, E, H) expert outputs and the (B, S) side projections x Wₛᵀ + bₛ.

        Args:
            x: (B, D).
            side_weights: (S_i, D) blocks computed in the experts' first matmul; S = Σ S_i.
            side_biases: their (S_i,) biases.
        """
        weight, bias = self.first.weight, self.first.bias
        if side_weights:
            weight, bias = torch.cat([weight, *side_weights]), torch.cat([bias, *side_biases])
        num_side = sum(block.shape[0] for block in side_weights)
        layers = (list(self.weights), list(self.biases))
        return expert_stack(x, self.num_experts, weight, bias, *layers, self.activation, self.dropout, num_side)


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

    @property
    def is_linear(self) -> bool:
        """True for the paper's gate (no MLP): its logits can be computed in another layer's matmul."""
        return isinstance(self.mlp, nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, E) mixture weights summing to 1."""
        return self.weights_from_logits(self.linear(self.mlp(x)))

    def weights_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, E) logits W x (+ b) → (B, E) mixture weights."""
        return torch.softmax(logits / self.temperature if self.temperature != 1.0 else logits, dim=-1)


def gated_experts(
    experts: ParallelExperts, gates: list[SoftmaxGate], x: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Expert outputs (B, E, H) and each gate's (B, E_g) weights, all reading the same x (B, D).

    Linear gates are computed in the experts' first matmul (``ParallelExperts.forward_with_side``);
    gates with an MLP on their own.
    """
    if not all(gate.is_linear for gate in gates):
        return experts(x), [gate(x) for gate in gates]
    linears = [gate.linear for gate in gates]
    outputs, logits = experts.forward_with_side(x, [lin.weight for lin in linears], [lin.bias for lin in linears])
    widths = [linear.out_features for linear in linears]
    return outputs, [gate.weights_from_logits(part) for gate, part in zip(gates, logits.split(widths, dim=1))]


def mix_experts(expert_outputs: torch.Tensor, gate_weights: torch.Tensor) -> torch.Tensor:
    """Σ_e g_{t,e} · f_e for every task at once: (B, E, H) experts, (B, T, E) weights → (B, T, H).

    One batched matmul over the batch. ``expert_outputs`` may be strided (``ParallelExperts``' output
    is a view of (E, B, H) memory); it is copied only when no matrix layout can read it.
    """
    if expert_outputs.stride(-1) != 1 and expert_outputs.stride(-2) != 1:
        expert_outputs = expert_outputs.contiguous()
    return torch.bmm(gate_weights.contiguous(), expert_outputs)
