"""Lists inside the model: padded (B, L) ids + lengths ↔ jagged values, and reductions per row.

Inputs arrive padded (the batch and the exported graph keep one rectangular tensor per list). For
training and evaluation the embedding collection gathers only the valid positions — the jagged form,
about ΣL of B·L positions (a third for histories of mean length 15 in 50) — and the reductions below
pool or attend over them per row without touching padding. Exported graphs keep the padded form;
the two give the same values (tests compare them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

POOLINGS = ("sum", "mean", "max")


def valid_positions(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B, L) bool: position j of row b holds a value (j < lengths[b])."""
    return torch.arange(length, device=lengths.device) < lengths.unsqueeze(1)


@dataclass
class JaggedRows:
    """Where the valid positions of a padded (B, L) list sit.

    Attributes:
        mask: (B, L) bool, position j of row b is valid.
        rows: (T,) int64, the row of each valid position, in row-major order (T = Σ lengths).
        positions: (T,) int64, its position within the row.
    """

    mask: torch.Tensor
    rows: torch.Tensor
    positions: torch.Tensor

    @classmethod
    def from_lengths(cls, lengths: torch.Tensor, length: int) -> JaggedRows:
        """The valid positions of (B,) lengths in a padded width L."""
        mask = valid_positions(lengths, length)
        nonzero = mask.nonzero()
        return cls(mask, nonzero[:, 0], nonzero[:, 1])

    @property
    def batch(self) -> int:
        return self.mask.shape[0]

    def values(self, padded: torch.Tensor) -> torch.Tensor:
        """(B, L, ...) → (T, ...) the valid positions, row after row."""
        return padded[self.mask]

    def padded(self, values: torch.Tensor) -> torch.Tensor:
        """(T, ...) → (B, L, ...) with zeros at the padding."""
        out = values.new_zeros(*self.mask.shape, *values.shape[1:])
        out[self.mask] = values
        return out


def segment_sum(values: torch.Tensor, rows: torch.Tensor, batch: int) -> torch.Tensor:
    """Σ of the values of each row: (T, ...) → (B, ...) (zeros for rows without values)."""
    return values.new_zeros(batch, *values.shape[1:]).index_add(0, rows, values)


def segment_max(values: torch.Tensor, rows: torch.Tensor, batch: int) -> torch.Tensor:
    """Elementwise max of each row's values: (T, D) → (B, D) (zeros for rows without values)."""
    index = rows.unsqueeze(1).expand_as(values)
    return values.new_zeros(batch, values.shape[1]).scatter_reduce(0, index, values, "amax", include_self=False)


def segment_softmax(scores: torch.Tensor, rows: torch.Tensor, batch: int) -> torch.Tensor:
    """Softmax of (T,) scores within each row (the max subtracted per row, for stability)."""
    peak = scores.new_full((batch,), float("-inf")).scatter_reduce(0, rows, scores.detach(), "amax")
    exponent = (scores - peak[rows]).exp()
    return exponent / segment_sum(exponent, rows, batch)[rows]


def pool_padded(
    vectors: torch.Tensor, lengths: torch.Tensor, pooling: str, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum, mean or max of each row's valid positions: (B, L, E) with (B,) lengths → (B, E), 0 for an
    empty row. ``weights`` (B, L) weigh the values of a sum or mean (the mean divides by their total)."""
    mask = valid_positions(lengths, vectors.shape[1])
    if pooling == "max":
        pooled = vectors.masked_fill(~mask.unsqueeze(2), float("-inf")).amax(dim=1)
        return torch.where((lengths > 0).unsqueeze(1), pooled, torch.zeros_like(pooled))
    factors = mask.to(vectors.dtype) if weights is None else mask.to(vectors.dtype) * weights.to(vectors.dtype)
    pooled = torch.matmul(factors.unsqueeze(1), vectors).squeeze(1)  # (B, E) weighted sum
    if pooling == "mean":
        pooled = pooled / factors.sum(dim=1, keepdim=True).clamp_min(torch.finfo(vectors.dtype).tiny)
    return pooled


def pool_jagged(
    values: torch.Tensor, rows: JaggedRows, pooling: str, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`pool_padded` on the valid positions only: (T, E) values of B rows → (B, E); ``weights`` (T,)."""
    if pooling == "max":
        return segment_max(values, rows.rows, rows.batch)
    if weights is not None:
        weights = weights.to(values.dtype)
        values = values * weights.unsqueeze(1)
    pooled = segment_sum(values, rows.rows, rows.batch)
    if pooling == "sum":
        return pooled
    total = rows.mask.sum(dim=1).to(values.dtype) if weights is None else segment_sum(weights, rows.rows, rows.batch)
    return pooled / total.clamp_min(torch.finfo(values.dtype).tiny).unsqueeze(1)
