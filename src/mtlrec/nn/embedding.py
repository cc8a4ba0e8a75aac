"""The embedding collection: every id input looked up in its table, tables of one width fused in one gather.

The one interface between id inputs and embeddings: ``forward(inputs) -> {input name: embedding}``
for single ids (B,) → (B, E), bags of ids (B, L) pooled → (B, E) (tags; sum, mean or max, optionally
weighted per value), and sequences (B, L) → (B, L, E) for a sequence encoder. Architectures never
see ids or tables, so a sharded path (TorchRec's ``EmbeddingBagCollection`` over a
``KeyedJaggedTensor``, see :mod:`mtlrec.features.lists` for the jagged form) can replace this class
behind the same interface.

Tables of equal width E are rows of one parameter (each table at its row offset); in training every
lookup of those tables is one gather whose gradient is a coalesced row-sparse tensor over the rows
the batch touched (``row_sparse_lookup``) for the row-wise optimizer. Several features may look up one
table (``item_id`` and the item history). Padding (id 0) positions of lists are masked out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from mtlrec.nn.broadcast import same_rows, side_by_side
from mtlrec.nn.sparse_lookup import row_sparse_lookup

POOLINGS = ("sum", "mean", "max")


@dataclass(frozen=True)
class Table:
    """An embedding table: ``rows`` rows (padding and OOV included) of width ``dim``."""

    name: str
    rows: int
    dim: int


@dataclass(frozen=True)
class Lookup:
    """One id input looked up in a table.

    Attributes:
        input: the ids input: (B,) single ids, or (B, L) padded lists.
        table: the table's name.
        pooling: for a bag of ids, ``sum``, ``mean`` or ``max`` over its values → (B, E); None for single
            ids → (B, E) and for a sequence → (B, L, E).
        lengths: the (B,) lengths input of a bag.
        weights: the (B, L) per-value weights of a weighted bag (``sum`` or ``mean`` pooling).
    """

    input: str
    table: str
    pooling: str | None = None
    lengths: str | None = None
    weights: str | None = None


class Embeddings(Mapping[str, torch.Tensor]):
    """The collection's output: {input name: embedding}, and runs of single ids side by side.

    Single ids gathered together stay in their (B, K, E) gather; an input's (B, E) embedding is a view
    of it, made when asked for. :meth:`side_by_side` gives consecutive single ids as one (B, n·E) view,
    which is much cheaper forward and backward than n views concatenated again.
    """

    def __init__(
        self, gathered: dict[int, torch.Tensor], columns: dict[str, tuple[int, int]], others: dict[str, torch.Tensor]
    ):
        self.gathered, self.columns, self.others = gathered, columns, others

    def __getitem__(self, name: str) -> torch.Tensor:
        if name in self.others:
            return self.others[name]
        dim, column = self.columns[name]
        return self.gathered[dim][:, column]

    def __iter__(self) -> Iterator[str]:
        yield from self.columns
        yield from self.others

    def __len__(self) -> int:
        return len(self.columns) + len(self.others)

    def side_by_side(self, names: list[str]) -> torch.Tensor:
        """(B, Σ E) of single-id inputs: one view when they are consecutive columns of one gather."""
        places = [self.columns.get(name) for name in names]
        first = places[0]
        if first is not None and all(place == (first[0], first[1] + i) for i, place in enumerate(places)):
            return self.gathered[first[0]].narrow(1, first[1], len(names)).flatten(1)
        return side_by_side([self[name] for name in names], dim=1)


class EmbeddingCollection(nn.Module):
    """{input name: ids} → {input name: embedding} for the ``lookups`` over the ``tables``.

    Args:
        tables: the tables (names unique); initialised N(0, 0.01²) in order.
        lookups: the inputs to look up (input names unique).
        sparse: row-sparse gradients in training (else dense ones).
    """

    def __init__(self, tables: list[Table], lookups: list[Lookup], sparse: bool = True):
        super().__init__()
        self.tables = {table.name: table for table in tables}
        self.lookups = list(lookups)
        for lookup in self.lookups:
            self._check(lookup)
        self.sparse = sparse
        dims = sorted({table.dim for table in tables})
        self.weights = nn.ParameterDict()
        self.offsets: dict[str, int] = {}
        for dim in dims:
            members = [table for table in tables if table.dim == dim]
            start = 0
            for table in members:
                self.offsets[table.name] = start
                start += table.rows
            weight = nn.Parameter(torch.empty(max(start, 1), dim))
            nn.init.normal_(weight, std=0.01)
            self.weights[_key(dim)] = weight
        self._offset_rows: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    def output_dim(self, name: str) -> int:
        """E, the width of input ``name``'s embedding."""
        return self.tables[self._lookup(name).table].dim

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The tables' parameters (one per width), for the sparse-aware optimizer."""
        return list(self.weights.values())

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> Embeddings:
        """Embeddings keyed by input name: (B, E) for single ids and bags, (B, L, E) for sequences."""
        gathered: dict[int, torch.Tensor] = {}
        columns: dict[str, tuple[int, int]] = {}
        others: dict[str, torch.Tensor] = {}
        for dim in sorted({self.tables[lookup.table].dim for lookup in self.lookups}):
            lookups = [lookup for lookup in self.lookups if self.tables[lookup.table].dim == dim]
            ids = [inputs[lookup.input] for lookup in lookups]
            weight = self.weights[_key(dim)]
            if not same_rows(ids):  # rows shared by every candidate (one row) beside the candidates' own
                offsets = [self.offsets[lookup.table] for lookup in lookups]
                for lookup, part, offset in zip(lookups, ids, offsets):
                    others[lookup.input] = self._finish(lookup, self._gather(weight, part + offset), inputs)
                continue
            gathered[dim], starts = self._gather_together(dim, weight, lookups, ids)
            for lookup, part, start in zip(lookups, ids, starts):
                if part.dim() == 1:
                    columns[lookup.input] = (dim, start)
                else:
                    vectors = gathered[dim].narrow(1, start, part.shape[1])
                    others[lookup.input] = self._finish(lookup, vectors, inputs)
        return Embeddings(gathered, columns, others)

    def _gather_together(
        self, dim: int, weight: torch.Tensor, lookups: list[Lookup], ids: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[int]]:
        """One gather for every lookup of one width: ids side by side (B, K) plus each table's offset.

        Returns the (B, K, E) embeddings and each lookup's first column.
        """
        if all(part.dim() == 1 for part in ids):
            flat = torch.stack(ids, dim=1)
        else:
            flat = torch.cat([part.reshape(len(part), -1) for part in ids], dim=1)
        widths = tuple(1 if part.dim() == 1 else part.shape[1] for part in ids)
        flat = flat + self._offsets(dim, lookups, widths, flat.device)
        starts = [sum(widths[:index]) for index in range(len(widths))]
        return self._gather(weight, flat), starts

    def _gather(self, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if self.sparse and weight.requires_grad and torch.is_grad_enabled():
            return row_sparse_lookup(weight, rows)
        return nn.functional.embedding(rows, weight)

    def _offsets(self, dim: int, lookups: list[Lookup], widths: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """(K,) the table offset of every column of the side-by-side ids (cached per layout)."""
        key = (f"{dim}:{device}", widths)
        if key not in self._offset_rows:
            offsets = [self.offsets[lookup.table] for lookup in lookups]
            columns = [torch.full((width,), offset, dtype=torch.long) for offset, width in zip(offsets, widths)]
            self._offset_rows[key] = torch.cat(columns).to(device)
        return self._offset_rows[key]

    def _finish(self, lookup: Lookup, vectors: torch.Tensor, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if lookup.pooling is None:
            return vectors
        lengths = inputs[lookup.lengths]
        mask = torch.arange(vectors.shape[1], device=vectors.device) < lengths.unsqueeze(1)  # (B, L)
        if lookup.pooling == "max":
            pooled = vectors.masked_fill(~mask.unsqueeze(2), float("-inf")).amax(dim=1)
            return torch.where((lengths > 0).unsqueeze(1), pooled, torch.zeros_like(pooled))
        weights = mask.to(vectors.dtype)
        if lookup.weights is not None:
            weights = weights * inputs[lookup.weights].to(vectors.dtype)
        pooled = torch.matmul(weights.unsqueeze(1), vectors).squeeze(1)  # (B, E) weighted sum
        if lookup.pooling == "mean":
            pooled = pooled / weights.sum(dim=1, keepdim=True).clamp_min(torch.finfo(vectors.dtype).tiny)
        return pooled

    def _lookup(self, name: str) -> Lookup:
        for lookup in self.lookups:
            if lookup.input == name:
                return lookup
        raise KeyError(name)

    def _check(self, lookup: Lookup) -> None:
        if lookup.table not in self.tables:
            raise ValueError(f"lookup of '{lookup.input}': unknown table '{lookup.table}'")
        if lookup.pooling is not None:
            if lookup.pooling not in POOLINGS:
                raise ValueError(f"lookup of '{lookup.input}': pooling must be one of {POOLINGS}")
            if lookup.lengths is None:
                raise ValueError(f"lookup of '{lookup.input}': a pooled bag needs its lengths input")
            if lookup.weights is not None and lookup.pooling == "max":
                raise ValueError(f"lookup of '{lookup.input}': max pooling takes no weights")


def _key(dim: int) -> str:
    return f"dim{dim}"
