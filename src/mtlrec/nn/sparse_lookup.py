"""Embedding lookup whose gradient is a coalesced row-sparse tensor (one row per distinct id).

``torch.nn.functional.embedding(..., sparse=True)`` returns one gradient row per *lookup* (B·F rows,
with repeats), which the optimizer must coalesce (sort + reduce) every step. Here the backward pass
sums the rows of repeated ids itself (``torch.unique`` + ``index_add_``) and marks the sparse
gradient as coalesced, so a row-wise optimizer can use it as is.
"""

from __future__ import annotations

import torch

#: Tables with at most this many rows per lookup use an O(rows) marking pass instead of a sort.
MARKING_MAX_ROWS_PER_LOOKUP = 16


def distinct_rows(rows: torch.Tensor, table_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct values of ``rows`` (N,) and each entry's position among them, like
    ``torch.unique(rows, return_inverse=True)``.

    For tables not much larger than the batch, marking the touched rows in a (V,) scratch array and
    reading them back in order is cheaper than sorting the N lookups.
    """
    if table_rows > MARKING_MAX_ROWS_PER_LOOKUP * rows.numel():
        return torch.unique(rows, return_inverse=True)
    slot = torch.zeros(table_rows, dtype=torch.long, device=rows.device)
    slot[rows] = 1
    unique = slot.nonzero().squeeze(1)
    slot[unique] = torch.arange(unique.numel(), device=rows.device)
    return unique, slot[rows]


class _RowSparseLookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.table_shape = weight.shape
        return weight.index_select(0, rows.reshape(-1)).view(*rows.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        unique, inverse = distinct_rows(rows.reshape(-1), ctx.table_shape[0])
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
