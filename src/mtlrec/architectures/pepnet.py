"""PEPNet: parameter- and embedding-personalised networks (Chang, Zhang, Fu, et al.; Kuaishou, KDD 2023)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ACTIVATIONS
from mtlrec.nn.fields import field_spread


class GateNU(nn.Module):
    """The paper's Gate Neural Unit: δ = γ · sigmoid(W₂ ReLU(W₁ z + b₁) + b₂), in [0, γ] (γ = 2, Eq. 2–3).

    At initialisation δ ≈ 1 (W₂ small), so a gated network starts as the ungated one.

    Args:
        input_dim: width of z.
        output_dim: width of δ.
        hidden_dim: width of the hidden layer.
        scale: γ.
    """

    def __init__(self, input_dim: int, output_dim: int, hidden_dim: int = 64, scale: float = 2.0):
        super().__init__()
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.output = nn.Linear(hidden_dim, output_dim)
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) → (B, output_dim) in [0, γ]."""
        return self.scale * torch.sigmoid(self.output(torch.relu(self.hidden(z))))


class PEPNet(Architecture):
    """PEPNet (Chang et al., "PEPNet: Parameter and Embedding Personalized Network for Infusing with
    Personalized Prior Information", KDD 2023): EPNet personalises the embeddings per scenario, PPNet the
    hidden layers of every task tower per user/item.

    * EPNet (Eq. 4–5): δ_domain = GateNU(E(domain) ⊕ ⊘(E)), O_ep = δ_domain ⊗ E, with ⊘ the stop-gradient:
      the gate reads the scenario's embeddings and, without pushing gradients into them, the general ones.
      δ_domain has one value per field (a feature's embedding, or a dense value), broadcast over the
      field's width (``field_dims``); without field widths every input column is its own field.
    * PPNet (Eq. 6–8): per task t and tower layer l, δ_t⁽ˡ⁾ = GateNU_t⁽ˡ⁾(E(prior) ⊕ ⊘(O_ep)) rescales the
      layer's input, H⁽ˡ⁺¹⁾ = f((δ_t⁽ˡ⁾ ⊗ H⁽ˡ⁾) W⁽ˡ⁾ + b⁽ˡ⁾), H⁽⁰⁾ = O_ep; a linear head gives the logit.

    The scenario group (role ``domain``) and the prior group (role ``prior``: user, item, author ids) are
    read as embeddings; both normally also appear in the general input. Each task owns its tower and its
    gates; EPNet is shared. Deviation: the paper gates each PPNet layer with one GateNU for all tasks,
    split per task; here each task has its own GateNU per layer (the same function class, owned by the
    task, and with T× the gate's hidden units).

    Args:
        input_dim: D, width of the general input E.
        task_names: the tasks.
        domain_dim: width of the scenario group's embeddings.
        prior_dim: width of the prior group's embeddings.
        field_dims: the widths of the fields of E in order (sum D); None: D fields of width 1.
        tower_hidden_units: per-task tower widths.
        gate_hidden_dim: hidden width of every GateNU.
        gate_scale: γ of every GateNU.
        activation: of the tower layers.
        dropout: of the tower layers.
        output_dims: per-task output widths (see ``Architecture``).
    """

    group_inputs = {"domain": "tensor", "prior": "tensor"}

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        domain_dim: int,
        prior_dim: int,
        field_dims: list[int] | None = None,
        tower_hidden_units: list[int] | dict[str, list[int]] = (256, 128, 64),
        gate_hidden_dim: int = 64,
        gate_scale: float = 2.0,
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        field_dims = list(field_dims) if field_dims is not None else [1] * input_dim
        if sum(field_dims) != input_dim or min(field_dims) < 1:
            raise ValueError(f"field_dims {field_dims} must be positive widths adding up to input_dim {input_dim}")
        self.register_buffer("field_spread", field_spread(field_dims), persistent=False)  # (F, D)
        self.epnet = GateNU(domain_dim + input_dim, len(field_dims), gate_hidden_dim, gate_scale)
        per_task = isinstance(tower_hidden_units, dict)
        self.towers = nn.ModuleDict()
        for task in self.task_names:
            widths = list(tower_hidden_units.get(task, ()) if per_task else tower_hidden_units)
            self.towers[task] = PersonalizedTower(
                input_dim, prior_dim + input_dim, widths, self.output_dims[task], gate_hidden_dim, gate_scale,
                activation, dropout,
            )

    def forward(self, x: torch.Tensor, domain: torch.Tensor, prior: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, D), domain (B, D_domain), prior (B, D_prior) → {task: (B,) logit, or (B, C)}."""
        field_gates = self.epnet(torch.cat([domain, x.detach()], dim=1))  # (B, F)
        personalized = x * (field_gates @ self.field_spread)  # O_ep (B, D)
        self._remember_representation(personalized)
        gate_input = torch.cat([prior, personalized.detach()], dim=1)
        return {task: self.towers[task](personalized, gate_input) for task in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task]]


class PersonalizedTower(nn.Module):
    """A PPNet tower: each layer's input rescaled by its GateNU over the gate input, then a linear head.

    Args:
        input_dim: width of H⁽⁰⁾.
        gate_input_dim: width of the gates' input.
        hidden_units: the layers' widths.
        output_dim: 1 (a (B,) logit) or C (class logits).
        gate_hidden_dim: of the GateNUs.
        gate_scale: of the GateNUs.
        activation: of the layers.
        dropout: of the layers.
    """

    def __init__(
        self,
        input_dim: int,
        gate_input_dim: int,
        hidden_units: list[int],
        output_dim: int,
        gate_hidden_dim: int,
        gate_scale: float,
        activation: str,
        dropout: float,
    ):
        super().__init__()
        widths = [input_dim, *hidden_units]
        self.gates = nn.ModuleList(GateNU(gate_input_dim, width, gate_hidden_dim, gate_scale) for width in widths[:-1])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(widths[-1], output_dim)
        self.squeeze = output_dim == 1

    def forward(self, hidden: torch.Tensor, gate_input: torch.Tensor) -> torch.Tensor:
        """hidden (B, input_dim), gate_input (B, gate_input_dim) → (B,) logit, or (B, C)."""
        for gate, layer in zip(self.gates, self.layers):
            hidden = self.dropout(self.activation(layer(hidden * gate(gate_input))))
        logits = self.head(hidden)
        return logits.squeeze(-1) if self.squeeze else logits

