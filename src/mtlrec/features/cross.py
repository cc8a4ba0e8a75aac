"""Cross feature: a combination of two or more categorical columns as one id (feature crossing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.features.encoder import Encoder, FitLimits, InputSpec, Table
from mtlrec.features.vocabulary import Vocabulary, VocabularyFit

#: Joins the crossed values (a control character that does not occur in ordinary ids).
JOINER = "\x1f"


class CrossEncoder(Encoder):
    """Columns a, b, ... → one (N,) int64 id per combination of their values (OOV when any is null).

    The combination is the values joined by an ASCII unit separator, then mapped like a categorical
    value: hash buckets (``hash_buckets``, the usual choice for crosses of large vocabularies, as
    EasyRec's ``ComboFeature``) or a vocabulary of the combinations seen in training (``min_count``
    drops the rare ones).

    Args:
        name: the feature (and input) name.
        columns: the crossed columns (two or more).
        table, vocabulary, min_count, max_vocab_size, hash_buckets: as in ``CategoricalEncoder``.
    """

    kind = "cross"

    def __init__(
        self,
        name: str,
        columns: list[str],
        *,
        table: str | None = None,
        vocabulary: Vocabulary | None = None,
        min_count: int = 1,
        max_vocab_size: int | None = None,
        hash_buckets: int | None = None,
    ):
        if len(columns) < 2:
            raise ValueError(f"cross '{name}' needs at least two columns, got {columns}")
        self.name, self.crossed, self.table = name, list(columns), table or name
        self.vocabulary = vocabulary or Vocabulary(min_count, max_vocab_size, hash_buckets)

    @property
    def fitted(self) -> bool:
        return self.vocabulary.fitted

    def columns(self) -> dict[str, pa.DataType]:
        return {column: pa.string() for column in self.crossed}

    def vocabularies(self) -> dict[str, Vocabulary]:
        return {self.table: self.vocabulary}

    def combined(self, table: Table) -> pa.Array:
        """(N,) strings: the crossed values joined by ``JOINER``; null where any is null."""
        columns = [table.column(name) for name in self.crossed]
        columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
        return pc.binary_join_element_wise(*columns, JOINER)

    def begin_fit(self, limits: FitLimits, counters: Mapping[str, VocabularyFit]) -> _CrossFit:
        return _CrossFit(self, counters[self.table])

    def transform(self, table: Table, source: str = "input") -> dict[str, np.ndarray]:
        self._check_fitted()
        return {self.name: self.vocabulary.transform(self.combined(table))}

    def inputs(self) -> list[InputSpec]:
        return [InputSpec(self.name, self.name, "ids", "int64", (), self.table, self.vocabulary.num_ids)]

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"kind": self.kind, "name": self.name, "columns": self.crossed, "table": self.table}

    @classmethod
    def from_dict(cls, state: dict[str, Any], vocabularies: Mapping[str, Vocabulary]) -> CrossEncoder:
        return cls(state["name"], state["columns"], table=state["table"], vocabulary=vocabularies[state["table"]])


class _CrossFit:
    def __init__(self, encoder: CrossEncoder, counter: VocabularyFit):
        self.encoder, self.counter = encoder, counter

    def update(self, table: Table, source: str = "training data") -> None:
        self.counter.count(self.encoder.combined(table))

    def finish(self) -> None:
        pass
