"""Embedding lookup whose gradient is a coalesced row-sparse tensor (one row per distinct id).

``torch.nn.functional.embedding(..., sparse=True)`` returns one gradient row per *lookup* (B·F rows,
with repeats), which the optimizer must coalesce (sort + reduce) every step. Here the backward pass
sums the rows of repeated ids itself (``torch.unique`` + ``index_add_``) and marks the sparse
gradient as coalesced, so a row-wise optimizer can use it as is.
"""

from __future__ import annotations

import torch


class _RowSparseLookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.table_shape = weight.shape
        return weight.index_select(0, rows.reshape(-1)).view(*rows.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        unique, inverse = torch.unique(rows.reshape(-1), return_inverse=True)
        width = ctx.table_shape[1]
        values = grad_output.new_zeros(unique.numel(), width)
        values.index_add_(0, inverse, grad_output.reshape(-1, width))
        grad = torch.sparse_coo_tensor(
            unique.unsqueeze(0), values, ctx.table_shape, is_coalesced=True, check_invariants=False
        )
        return grad, None


def row_sparse_lookup(weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Gather ``weight`` rows: (V, E) table and (...) int64 rows → (..., E); sparse coalesced gradient."""
    return _RowSparseLookup.apply(weight, rows)
