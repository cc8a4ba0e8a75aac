"""Multi-valued feature (tags): a list of ids per row, optionally weighted, pooled into one embedding."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.errors import DataError
from mtlrec.features.encoder import Encoder, FitLimits, InputSpec, Table
from mtlrec.features.lists import Jagged, padded_from_jagged
from mtlrec.features.vocabulary import Vocabulary, VocabularyFit

log = logging.getLogger(__name__)

LENGTH_SUFFIX = ".length"
WEIGHT_SUFFIX = ".weight"


class MultiValuedEncoder(Encoder):
    """A list column (tags) → (N, L) padded ids, (N,) lengths and optional per-value weights.

    Emits (N, L) int64 ids padded with 0, their (N,) int64 lengths and, with ``kv_separator``, (N, L)
    float32 weights.

    In CSV a cell holds the values joined by ``separator`` (``a|b|c``; an empty cell is an empty list);
    Parquet holds ``list<string>`` or ``list<int>``. With ``kv_separator`` every value carries a
    weight (``a:0.5|b:2``). Unseen values and empty elements map to OOV. L is ``max_length``, or the
    longest list of the training data; longer lists keep their first L values (counted, logged once).

    Args:
        name: the feature name; its inputs are ``name``, ``name.length`` (and ``name.weight``).
        column: the source column (default: ``name``).
        separator: between values in the text form.
        kv_separator: between a value and its weight, or None for unweighted lists.
        max_length: L, or None to take the longest training list.
        table: as in ``CategoricalEncoder``.
        vocabulary: as in ``CategoricalEncoder``.
        min_count: as in ``CategoricalEncoder``.
        max_vocab_size: as in ``CategoricalEncoder``.
        hash_buckets: as in ``CategoricalEncoder``.
    """

    kind = "multi_valued"

    def __init__(
        self,
        name: str,
        column: str | None = None,
        *,
        separator: str = "|",
        kv_separator: str | None = None,
        max_length: int | None = None,
        table: str | None = None,
        vocabulary: Vocabulary | None = None,
        min_count: int = 1,
        max_vocab_size: int | None = None,
        hash_buckets: int | None = None,
    ):
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.name, self.column, self.table = name, column or name, table or name
        self.separator, self.kv_separator, self.max_length = separator, kv_separator, max_length
        self.vocabulary = vocabulary or Vocabulary(min_count, max_vocab_size, hash_buckets)
        self.max_length_: int | None = max_length
        self.truncated_rows = 0

    @property
    def fitted(self) -> bool:
        return self.vocabulary.fitted and self.max_length_ is not None

    def columns(self) -> dict[str, pa.DataType]:
        return {self.column: pa.list_(pa.string())}

    def separators(self) -> dict[str, str]:
        return {self.column: self.separator}

    def vocabularies(self) -> dict[str, Vocabulary]:
        return {self.table: self.vocabulary}

    def begin_fit(self, limits: FitLimits, counters: Mapping[str, VocabularyFit]) -> _ListFit:
        return _ListFit(self, counters[self.table])

    def keys_and_weights(self, jagged: Jagged, source: str) -> tuple[pa.Array, np.ndarray | None]:
        """The (T,) values without their weights, and the (T,) float32 weights (None when unweighted).

        Raises:
            DataError: a value without a weight, or a weight that is not a finite number (names the row).
        """
        if self.kv_separator is None:
            return jagged.values, None
        parts = pc.split_pattern(jagged.values, self.kv_separator, max_splits=1)
        counts = pc.fill_null(pc.list_value_length(parts), 0).to_numpy(zero_copy_only=False)
        if (counts != 2).any():
            self._bad_value(jagged, int(np.flatnonzero(counts != 2)[0]), "has no weight", source)
        keys, texts = pc.list_element(parts, 0), pc.list_element(parts, 1)
        try:
            weights = pc.cast(pc.utf8_trim_whitespace(texts), pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            weights = None
        if weights is None or not np.isfinite(weights).all():
            bad = _first_bad_number(texts)
            self._bad_value(jagged, bad, "has a weight that is not a finite number", source)
        return keys, weights.astype(np.float32)

    def transform(self, table: Table, source: str = "input") -> dict[str, np.ndarray]:
        """{name: (N, L) int64 ids, name.length: (N,) int64[, name.weight: (N, L) float32]}."""
        self._check_fitted()
        jagged = Jagged.from_arrow(table.column(self.column), self.separator)
        keys, weights = self.keys_and_weights(jagged, source)
        length = self.max_length_
        self._count_truncated(jagged.lengths, source)
        ids, lengths = padded_from_jagged(self.vocabulary.transform(keys), jagged.lengths, length)
        encoded = {self.name: ids, self.name + LENGTH_SUFFIX: lengths}
        if weights is not None:
            encoded[self.name + WEIGHT_SUFFIX] = padded_from_jagged(weights, jagged.lengths, length)[0]
        return encoded

    def inputs(self) -> list[InputSpec]:
        length = (self.max_length_,)
        specs = [
            InputSpec(self.name, self.name, "ids", "int64", length, self.table, self.vocabulary.num_ids),
            InputSpec(self.name + LENGTH_SUFFIX, self.name, "lengths", "int64"),
        ]
        if self.kv_separator is not None:
            specs.append(InputSpec(self.name + WEIGHT_SUFFIX, self.name, "weights", "float32", length))
        return specs

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "name": self.name,
            "column": self.column,
            "table": self.table,
            "separator": self.separator,
            "kv_separator": self.kv_separator,
            "max_length": self.max_length,
            "fitted_max_length": self.max_length_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], vocabularies: Mapping[str, Vocabulary]) -> MultiValuedEncoder:
        encoder = cls(
            state["name"],
            state["column"],
            separator=state["separator"],
            kv_separator=state["kv_separator"],
            max_length=state["max_length"],
            table=state["table"],
            vocabulary=vocabularies[state["table"]],
        )
        encoder.max_length_ = state["fitted_max_length"]
        return encoder

    def _count_truncated(self, lengths: np.ndarray, source: str) -> None:
        over = int((lengths > self.max_length_).sum())
        if over and not self.truncated_rows:
            log.warning(
                "%s: feature '%s' (column '%s'): %d list(s) longer than %d truncated to their first %d values "
                "(logged once; raise max_length to keep more)",
                *(source, self.name, self.column, over, self.max_length_, self.max_length_),
            )
        self.truncated_rows += over

    def _bad_value(self, jagged: Jagged, index: int, problem: str, source: str) -> None:
        row = int(jagged.row_of_value()[index])
        value = jagged.values[index].as_py()
        raise DataError(
            f"{source}: column '{self.column}' (feature '{self.name}'): value {value!r} at data row {row + 1} "
            f"{problem}; each value must be written key{self.kv_separator}weight, e.g. 'sports{self.kv_separator}0.5'"
        )


def _first_bad_number(texts: pa.Array) -> int:
    """Index of the first text that does not parse as a finite number (error path only)."""
    for index, text in enumerate(texts.to_pylist()):
        try:
            if not np.isfinite(float(text)):
                return index
        except (TypeError, ValueError):
            return index
    return 0


class _ListFit:
    """Counts a list column's values into its vocabulary and finds the longest training list."""

    def __init__(self, encoder: MultiValuedEncoder, counter: VocabularyFit):
        self.encoder, self.counter, self.longest = encoder, counter, 0

    def update(self, table: Table, source: str = "training data") -> None:
        jagged = Jagged.from_arrow(table.column(self.encoder.column), self.encoder.separator)
        keys, _ = self.encoder.keys_and_weights(jagged, source)
        self.counter.count(keys)
        self.longest = max(self.longest, int(jagged.lengths.max(initial=0)))

    def finish(self) -> None:
        if self.encoder.max_length is None:
            self.encoder.max_length_ = max(self.longest, 1)
            log.info("feature '%s': lists padded to the longest training list, %d", self.encoder.name, self.longest)
