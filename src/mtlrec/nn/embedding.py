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
from mtlrec.nn.jagged import POOLINGS, JaggedRows, pool_jagged, pool_padded
from mtlrec.nn.sparse_lookup import row_sparse_lookup


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
        lengths: the (B,) lengths input of a list (a bag or a sequence); None for single ids.
        weights: the (B, L) per-value weights of a weighted bag (``sum`` or ``mean`` pooling).
    """

    input: str
    table: str
    pooling: str | None = None
    lengths: str | None = None
    weights: str | None = None


class Embeddings(Mapping[str, torch.Tensor]):
    """The collection's output: {input name: embedding}, with cheap access to what the model reads.

    Single ids gathered together stay in their (B, F, E) gather: :meth:`side_by_side` gives consecutive
    ones as one (B, n·E) view (much cheaper forward and backward than n views concatenated again).
    Sequences gathered jagged (only their valid positions) are given as values + positions by
    :meth:`jagged`; indexing gives any input's embedding in its usual form ((B, E), or (B, L, E)
    padded with zeros for a sequence).
    """

    def __init__(
        self,
        singles: dict[int, torch.Tensor],
        columns: dict[str, tuple[int, int]],
        others: dict[str, torch.Tensor],
        sequences: dict[str, tuple[torch.Tensor, JaggedRows]],
    ):
        self.singles, self.columns, self.others, self.sequences = singles, columns, others, sequences

    def __getitem__(self, name: str) -> torch.Tensor:
        if name in self.others:
            return self.others[name]
        if name in self.sequences:
            values, rows = self.sequences[name]
            return rows.padded(values)
        dim, column = self.columns[name]
        return self.singles[dim][:, column]

    def __iter__(self) -> Iterator[str]:
        yield from self.columns
        yield from self.others
        yield from self.sequences

    def __len__(self) -> int:
        return len(self.columns) + len(self.others) + len(self.sequences)

    def jagged(self, name: str) -> tuple[torch.Tensor, JaggedRows] | None:
        """A sequence's (T, E) values at its valid positions and where they sit, when gathered jagged."""
        return self.sequences.get(name)

    def side_by_side(self, names: list[str]) -> torch.Tensor:
        """(B, Σ E) of single-id inputs: one view when they are consecutive columns of one gather."""
        places = [self.columns.get(name) for name in names]
        first = places[0]
        if first is not None and all(place == (first[0], first[1] + i) for i, place in enumerate(places)):
            gathered = self.singles[first[0]]
            if len(names) == gathered.shape[1]:
                return gathered.flatten(1)
            return gathered.narrow(1, first[1], len(names)).flatten(1)
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
        self.by_width = {dim: [lk for lk in self.lookups if self.tables[lk.table].dim == dim] for dim in dims}
        self._offset_rows: dict[str, torch.Tensor] = {}

    def output_dim(self, name: str) -> int:
        """E, the width of input ``name``'s embedding."""
        return self.tables[self._lookup(name).table].dim

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The tables' parameters (one per width), for the sparse-aware optimizer."""
        return list(self.weights.values())

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> Embeddings:
        """Embeddings keyed by input name: (B, E) for single ids and bags, (B, L, E) for sequences."""
        out = Embeddings({}, {}, {}, {})
        for dim, lookups in self.by_width.items():
            ids = [inputs[lookup.input] for lookup in lookups]
            if not ids:
                continue
            if same_rows(ids):
                self._gather_together(dim, lookups, inputs, out)
            else:  # padded, one gather per input: rows shared by every candidate beside theirs, or export
                for lookup, part in zip(lookups, ids):
                    vectors = self._gather(self.weights[_key(dim)], part + self.offsets[lookup.table])
                    out.others[lookup.input] = (
                        vectors
                        if lookup.pooling is None
                        else pool_padded(vectors, inputs[lookup.lengths], lookup.pooling, _weights(lookup, inputs))
                    )
        return out

    def _gather_together(
        self, dim: int, lookups: list[Lookup], inputs: Mapping[str, torch.Tensor], out: Embeddings
    ) -> None:
        """One gather for every lookup of one width: the single ids side by side, then each list's valid
        positions only; bags are pooled per row, sequences kept jagged."""
        singles = [lookup for lookup in lookups if lookup.lengths is None]
        lists = [lookup for lookup in lookups if lookup.lengths is not None]
        parts: list[torch.Tensor] = []
        if singles:
            wrong = [lookup.input for lookup in singles if inputs[lookup.input].dim() != 1]
            if wrong:
                raise ValueError(f"lookup of '{wrong[0]}': a list of ids needs its lengths input")
            ids = torch.stack([inputs[lookup.input] for lookup in singles], dim=1)
            parts.append((ids + self._offsets(dim, singles, ids.device)).reshape(-1))
        positions: dict[str, JaggedRows] = {}
        for lookup in lists:
            ids = inputs[lookup.input]
            if lookup.lengths not in positions:
                positions[lookup.lengths] = JaggedRows.from_lengths(inputs[lookup.lengths], ids.shape[1])
            parts.append(positions[lookup.lengths].values(ids) + self.offsets[lookup.table])
        vectors = self._gather(self.weights[_key(dim)], torch.cat(parts) if len(parts) > 1 else parts[0])
        pieces = list(vectors.split([len(part) for part in parts]))
        if singles:
            batch = len(inputs[singles[0].input])
            out.singles[dim] = pieces.pop(0).view(batch, len(singles), dim)
            out.columns.update({lookup.input: (dim, column) for column, lookup in enumerate(singles)})
        for lookup, values in zip(lists, pieces):
            rows = positions[lookup.lengths]
            if lookup.pooling is None:
                out.sequences[lookup.input] = (values, rows)
            else:
                weights = _weights(lookup, inputs)
                out.others[lookup.input] = pool_jagged(
                    values, rows, lookup.pooling, None if weights is None else rows.values(weights)
                )

    def _gather(self, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if self.sparse and weight.requires_grad and torch.is_grad_enabled():
            return row_sparse_lookup(weight, rows)
        return nn.functional.embedding(rows, weight)

    def _offsets(self, dim: int, lookups: list[Lookup], device: torch.device) -> torch.Tensor:
        """(F,) the table offset of each single-id lookup of one width (cached per device)."""
        key = f"{dim}:{device}"
        if key not in self._offset_rows:
            offsets = [self.offsets[lookup.table] for lookup in lookups]
            self._offset_rows[key] = torch.tensor(offsets, dtype=torch.long, device=device)
        return self._offset_rows[key]

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


def _weights(lookup: Lookup, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """A weighted bag's (B, L) value weights, else None."""
    return None if lookup.weights is None else inputs[lookup.weights]


def _key(dim: int) -> str:
    return f"dim{dim}"
