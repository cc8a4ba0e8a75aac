"""Per-task feature selection: each task learns how much of every input field it reads."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.nn.fields import field_spread


class TaskFeatureGates(nn.Module):
    """A learned gate per task over the fields of the architecture's input ("information selection").

    Task t reads x_t = x ⊙ spread(γ_t), with γ_t = 2 σ(a_t) ∈ (0, 2)^F one weight per field (a feature's
    embedding, a dense value, or a whole feature group), a_t learned from 0 (every gate starts at 1, so
    training starts from the ungated model). γ_t is static: it says which fields task t relies on, over
    the whole data, and is what diagnostics record and the report draws. An optional L1 penalty
    ``sparsity · mean(γ)`` pushes the gates of unused fields towards 0. The same scalar-gate form as
    PEPNet's GateNU without its input, and in the spirit of the per-task feature gates of HoME.

    Cost: every task gets its own input, so the architecture runs on the T stacked inputs (T · B rows):
    T× its forward and backward; the embeddings and sequence encoders still run once.

    Args:
        task_names: T tasks.
        field_dims: the fields' widths in the input's order (F fields, sum D).
        field_names: their names (for diagnostics).
        sparsity: the L1 penalty's coefficient (0: none).
    """

    def __init__(self, task_names: list[str], field_dims: list[int], field_names: list[str], sparsity: float = 0.0):
        super().__init__()
        if len(field_dims) != len(field_names) or not field_dims or min(field_dims) < 1:
            raise ValueError(f"need one positive width per field name, got {field_dims} for {field_names}")
        if sparsity < 0:
            raise ValueError(f"sparsity must be >= 0, got {sparsity}")
        self.task_names, self.field_names, self.sparsity = list(task_names), list(field_names), sparsity
        self.logits = nn.Parameter(torch.zeros(len(task_names), len(field_dims)))
        self.register_buffer("spread", field_spread(field_dims), persistent=False)  # (F, D)

    def gates(self) -> torch.Tensor:
        """(T, F) gate values in (0, 2)."""
        return 2.0 * torch.sigmoid(self.logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) → (T, B, D): each task's gated copy of the input."""
        return x.unsqueeze(0) * (self.gates() @ self.spread).unsqueeze(1)

    def penalty(self) -> torch.Tensor | None:
        """sparsity · mean(γ), or None without a penalty."""
        return self.sparsity * self.gates().mean() if self.sparsity > 0 else None

    def weights(self) -> dict[str, list[float]]:
        """{task: its F gate values}, for diagnostics."""
        values = self.gates().detach().cpu().tolist()
        return dict(zip(self.task_names, values))
