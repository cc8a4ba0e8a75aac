"""Categorical feature: one id per row from a (possibly shared) vocabulary or hash buckets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from mtlrec.features.encoder import Encoder, FitLimits, InputSpec, Table
from mtlrec.features.vocabulary import Vocabulary, VocabularyFit


class CategoricalEncoder(Encoder):
    """A string (or integer) column → (N,) int64 ids: 1 for unseen values and nulls, 2.. known values.

    Args:
        name: the feature (and input) name.
        column: the source column (default: ``name``).
        table: the embedding table (default: ``name``); features naming the same table share it.
        vocabulary: the table's vocabulary when shared; else one is made from the options below.
        min_count: as in :class:`~mtlrec.features.vocabulary.Vocabulary`.
        max_vocab_size: as in :class:`~mtlrec.features.vocabulary.Vocabulary`.
        hash_buckets: as in :class:`~mtlrec.features.vocabulary.Vocabulary`.
    """

    kind = "categorical"

    def __init__(
        self,
        name: str,
        column: str | None = None,
        *,
        table: str | None = None,
        vocabulary: Vocabulary | None = None,
        min_count: int = 1,
        max_vocab_size: int | None = None,
        hash_buckets: int | None = None,
    ):
        self.name, self.column, self.table = name, column or name, table or name
        self.vocabulary = vocabulary or Vocabulary(min_count, max_vocab_size, hash_buckets)

    @property
    def fitted(self) -> bool:
        return self.vocabulary.fitted

    def columns(self) -> dict[str, pa.DataType]:
        return {self.column: pa.string()}

    def vocabularies(self) -> dict[str, Vocabulary]:
        return {self.table: self.vocabulary}

    def values(self, table: Table) -> pa.Array | pa.ChunkedArray:
        """(N,) the values looked up in the vocabulary: the column itself (a cross joins its columns)."""
        return table.column(self.column)

    def begin_fit(self, limits: FitLimits, counters: Mapping[str, VocabularyFit]) -> _CountValues:
        return _CountValues(counters[self.table], self)

    def transform(self, table: Table, source: str = "input") -> dict[str, np.ndarray]:
        self._check_fitted()
        return {self.name: self.vocabulary.transform(self.values(table))}

    def inputs(self) -> list[InputSpec]:
        return [InputSpec(self.name, self.name, "ids", "int64", (), self.table, self.vocabulary.num_ids)]

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"kind": self.kind, "name": self.name, "column": self.column, "table": self.table}

    @classmethod
    def from_dict(cls, state: dict[str, Any], vocabularies: Mapping[str, Vocabulary]) -> CategoricalEncoder:
        return cls(state["name"], state["column"], table=state["table"], vocabulary=vocabularies[state["table"]])


class _CountValues:
    """Counts an encoder's values into its vocabulary's counter."""

    def __init__(self, counter: VocabularyFit, encoder: CategoricalEncoder):
        self.counter, self.encoder = counter, encoder

    def update(self, table: Table, source: str = "training data") -> None:
        self.counter.count(self.encoder.values(table))

    def finish(self) -> None:
        pass
