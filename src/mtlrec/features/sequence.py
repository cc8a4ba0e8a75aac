"""Sequence feature: a behaviour sequence (the user's last items), one or more aligned fields per position."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mtlrec.errors import DataError
from mtlrec.features.encoder import Encoder, FitLimits, InputSpec, Table
from mtlrec.features.lists import KEEP, Jagged, padded_from_jagged
from mtlrec.features.multi_valued import LENGTH_SUFFIX
from mtlrec.features.vocabulary import Vocabulary, VocabularyFit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceField:
    """One aligned field of a sequence: the ids of its column, looked up in ``table``.

    Attributes:
        name: the field's name; the input is ``<sequence>.<name>``.
        column: the list column.
        table: the embedding table (share it with the candidate's feature, e.g. ``item``).
        vocabulary: that table's vocabulary.
    """

    name: str
    column: str
    table: str
    vocabulary: Vocabulary


class SequenceEncoder(Encoder):
    """Aligned list columns (item ids, their categories) → per field (N, L) ids, most recent first.

    Emits per field (N, L) int64 ids padded with 0, and the (N,) lengths.

    Every field of a row must have the same number of values (position i of each describes the same
    event); a row where they differ is an error naming the file, row and columns. A sequence longer
    than L = ``max_length`` keeps its L most recent values (counted, logged once). ``recent`` says which
    end of the stored list is the most recent: ``first`` (newest first, as the sequence benchmark and
    Taobao's logs store it) or ``last`` (chronological order); the padded form always starts with the
    most recent.

    Args:
        name: the feature name; its inputs are ``name.<field>`` and ``name.length``.
        fields: the aligned fields (at least one).
        max_length: L.
        recent: ``first`` or ``last``.
        separator: between values in the text form (CSV).
    """

    kind = "sequence"

    def __init__(
        self, name: str, fields: list[SequenceField], *, max_length: int, recent: str = "first", separator: str = "|"
    ):
        if not fields:
            raise ValueError(f"sequence '{name}' needs at least one field")
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if recent not in KEEP:
            raise ValueError(f"recent must be one of {KEEP}, got {recent!r}")
        names = [field.name for field in fields]
        if len(set(names)) != len(names) or "length" in names:
            raise ValueError(f"sequence '{name}': field names {names} must be distinct and not 'length'")
        self.name, self.fields, self.max_length = name, list(fields), max_length
        self.recent, self.separator = recent, separator
        self.truncated_rows = 0

    @property
    def fitted(self) -> bool:
        return all(field.vocabulary.fitted for field in self.fields)

    def field_input(self, field: SequenceField) -> str:
        return f"{self.name}.{field.name}"

    def columns(self) -> dict[str, pa.DataType]:
        return {field.column: pa.list_(pa.string()) for field in self.fields}

    def separators(self) -> dict[str, str]:
        return {field.column: self.separator for field in self.fields}

    def vocabularies(self) -> dict[str, Vocabulary]:
        return {field.table: field.vocabulary for field in self.fields}

    def begin_fit(self, limits: FitLimits, counters: Mapping[str, VocabularyFit]) -> _SequenceFit:
        return _SequenceFit(self, counters)

    def aligned(self, table: Table, source: str) -> list[Jagged]:
        """Each field's jagged values; raises DataError naming the first row whose fields differ in length."""
        lists = [Jagged.from_arrow(table.column(field.column), self.separator) for field in self.fields]
        for field, other in zip(self.fields[1:], lists[1:]):
            differs = np.flatnonzero(other.lengths != lists[0].lengths)
            if differs.size:
                row = int(differs[0])
                raise DataError(
                    f"{source}: sequence '{self.name}': at data row {row + 1} column '{self.fields[0].column}' has "
                    f"{lists[0].lengths[row]} value(s) but column '{field.column}' has {other.lengths[row]}; the "
                    f"fields of a sequence are aligned position by position ({differs.size} row(s) affected)"
                )
        return lists

    def transform(self, table: Table, source: str = "input") -> dict[str, np.ndarray]:
        """{name.<field>: (N, L) int64 ids, most recent first, ..., name.length: (N,) int64}."""
        self._check_fitted()
        lists = self.aligned(table, source)
        self._count_truncated(lists[0].lengths, source)
        keep, reverse = ("first", False) if self.recent == "first" else ("last", True)
        encoded: dict[str, np.ndarray] = {}
        for field, jagged in zip(self.fields, lists):
            ids = field.vocabulary.transform(jagged.values)
            encoded[self.field_input(field)], lengths = padded_from_jagged(
                ids, jagged.lengths, self.max_length, keep, reverse
            )
        encoded[self.name + LENGTH_SUFFIX] = lengths
        return encoded

    def inputs(self) -> list[InputSpec]:
        specs = [
            InputSpec(
                self.field_input(field), self.name, "ids", "int64", (self.max_length,), field.table,
                field.vocabulary.num_ids,
            )
            for field in self.fields
        ]
        return [*specs, InputSpec(self.name + LENGTH_SUFFIX, self.name, "lengths", "int64")]

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "name": self.name,
            "fields": [{"name": f.name, "column": f.column, "table": f.table} for f in self.fields],
            "max_length": self.max_length,
            "recent": self.recent,
            "separator": self.separator,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], vocabularies: Mapping[str, Vocabulary]) -> SequenceEncoder:
        fields = [SequenceField(f["name"], f["column"], f["table"], vocabularies[f["table"]]) for f in state["fields"]]
        return cls(
            state["name"], fields, max_length=state["max_length"], recent=state["recent"], separator=state["separator"]
        )

    def _count_truncated(self, lengths: np.ndarray, source: str) -> None:
        over = int((lengths > self.max_length).sum())
        if over and not self.truncated_rows:
            log.warning(
                "%s: sequence '%s': %d sequence(s) longer than %d truncated to their %d most recent values "
                "(logged once; raise max_length to keep more)",
                *(source, self.name, over, self.max_length, self.max_length),
            )
        self.truncated_rows += over


class _SequenceFit:
    """Counts each field's values into its table's vocabulary (checking that the fields are aligned)."""

    def __init__(self, encoder: SequenceEncoder, counters: Mapping[str, VocabularyFit]):
        self.encoder, self.counters = encoder, counters

    def update(self, table: Table, source: str = "training data") -> None:
        for field, jagged in zip(self.encoder.fields, self.encoder.aligned(table, source)):
            self.counters[field.table].count(jagged.values)

    def finish(self) -> None:
        pass
