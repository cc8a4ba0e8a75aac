"""Embedding of all single-valued id features through one fused table lookup."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.nn.sparse_lookup import row_sparse_lookup


class FusedEmbedding(nn.Module):
    """One embedding table holding every id feature's rows; a single gather per batch.

    Each feature's local ids (0 padding, 1 OOV, 2.. values) are shifted by that feature's row offset,
    so all F lookups are one gather. With ``sparse=True`` the table's gradient is a coalesced sparse
    tensor over the distinct rows the batch touched (``row_sparse_lookup``), for a row-wise optimizer.

    Args:
        vocab_sizes: rows per feature (F entries).
        dim: E, embedding width shared by all features.
        sparse: produce sparse gradients.
    """

    def __init__(self, vocab_sizes: list[int], dim: int, sparse: bool = True):
        super().__init__()
        self.num_features = len(vocab_sizes)
        self.dim = dim
        self.sparse = sparse
        offsets = (
            torch.tensor([0] + list(vocab_sizes[:-1]), dtype=torch.long).cumsum(0)
            if vocab_sizes
            else torch.zeros(0, dtype=torch.long)
        )
        self.register_buffer("offsets", offsets, persistent=False)
        self.weight = nn.Parameter(torch.empty(max(sum(vocab_sizes), 1), dim))
        nn.init.normal_(self.weight, std=0.01)

    def output_dim(self) -> int:
        return self.num_features * self.dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, F) int64 local ids → (B, F·E) concatenated embeddings."""
        rows = ids + self.offsets
        if self.sparse and self.weight.requires_grad and torch.is_grad_enabled():
            return row_sparse_lookup(self.weight, rows).flatten(1)
        return nn.functional.embedding(rows, self.weight).flatten(1)


class InputLayer(nn.Module):
    """Embeds id features and appends dense features: the (B, D) input of every architecture.

    Args:
        vocab_sizes: rows per id feature.
        embedding_dim: E.
        num_dense: Dd, number of dense inputs.
        sparse: sparse embedding gradients.
    """

    def __init__(self, vocab_sizes: list[int], embedding_dim: int, num_dense: int, sparse: bool = True):
        super().__init__()
        self.embedding = FusedEmbedding(vocab_sizes, embedding_dim, sparse)
        self.num_dense = num_dense

    def output_dim(self) -> int:
        return self.embedding.output_dim() + self.num_dense

    def forward(self, ids: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """ids (B, F), dense (B, Dd) → (B, F·E + Dd)."""
        if self.num_dense == 0:
            return self.embedding(ids)
        return torch.cat([self.embedding(ids), dense], dim=1)
