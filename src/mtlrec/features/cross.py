"""Cross feature: a combination of two or more categorical columns as one id (feature crossing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.features.categorical import CategoricalEncoder
from mtlrec.features.encoder import Table
from mtlrec.features.vocabulary import Vocabulary

#: Joins the crossed values (a control character that does not occur in ordinary ids).
JOINER = "\x1f"


class CrossEncoder(CategoricalEncoder):
    """Columns a, b, ... → one (N,) int64 id per combination of their values (OOV when any is null).

    The combination is the values joined by an ASCII unit separator, then mapped like a categorical
    value: hash buckets (``hash_buckets``, the usual choice for crosses of large vocabularies, as
    EasyRec's ``ComboFeature``) or a vocabulary of the combinations seen in training (``min_count``
    drops the rare ones).

    Args:
        name: the feature (and input) name.
        columns: the crossed columns (two or more).
        table: as in ``CategoricalEncoder``.
        vocabulary: as in ``CategoricalEncoder``.
        min_count: as in ``CategoricalEncoder``.
        max_vocab_size: as in ``CategoricalEncoder``.
        hash_buckets: as in ``CategoricalEncoder``.
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
        super().__init__(
            name,
            table=table,
            vocabulary=vocabulary,
            min_count=min_count,
            max_vocab_size=max_vocab_size,
            hash_buckets=hash_buckets,
        )
        self.crossed = list(columns)

    def columns(self) -> dict[str, pa.DataType]:
        return {column: pa.string() for column in self.crossed}

    def values(self, table: Table) -> pa.Array:
        """(N,) strings: the crossed values joined by ``JOINER``; null where any is null."""
        columns = [table.column(name) for name in self.crossed]
        columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
        return pc.binary_join_element_wise(*columns, JOINER)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"kind": self.kind, "name": self.name, "columns": self.crossed, "table": self.table}

    @classmethod
    def from_dict(cls, state: dict[str, Any], vocabularies: Mapping[str, Vocabulary]) -> CrossEncoder:
        return cls(state["name"], state["columns"], table=state["table"], vocabulary=vocabularies[state["table"]])
