"""Rows shared by every candidate: inputs with one row broadcast against inputs with N rows.

When a request's context (the user, their behaviour sequence) is sent once for N candidates, its
inputs arrive with one row and the candidates' with N. Layers that combine them bring the one-row
tensors to N rows as views (``expand``), so the context is looked up and encoded once. Traced for
export, the row count is computed with tensor operations, so the exported graph accepts 1 or N rows
for every input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def common_rows(tensors: Sequence[torch.Tensor]) -> int | torch.Tensor:
    """The largest first dimension of ``tensors`` (a traced 0-d tensor while tracing for export)."""
    if torch.jit.is_tracing():
        rows = torch.as_tensor(tensors[0].shape[0])
        for tensor in tensors[1:]:
            rows = torch.maximum(rows, torch.as_tensor(tensor.shape[0]))
        return rows
    return max(tensor.shape[0] for tensor in tensors)


def expand_rows(tensor: torch.Tensor, rows: int | torch.Tensor) -> torch.Tensor:
    """``tensor`` (1 or ``rows`` rows, ...) as a (rows, ...) view."""
    if not torch.jit.is_tracing() and tensor.shape[0] == rows:
        return tensor
    return tensor.expand(rows, *tensor.shape[1:])


def side_by_side(parts: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    """``parts`` concatenated along ``dim``, one-row parts broadcast to the others' rows first."""
    if len(parts) == 1:
        return parts[0]
    rows = common_rows(parts)
    return torch.cat([expand_rows(part, rows) for part in parts], dim=dim)


def same_rows(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every tensor has the same first dimension (never assumed while tracing for export)."""
    if torch.jit.is_tracing():
        return False
    return len({tensor.shape[0] for tensor in tensors}) <= 1
