"""Vocabulary: string values → integer ids through a fitted vocabulary or stable hash buckets.

One vocabulary serves one embedding table; features that share a table (``item_id`` and the history
of item ids) share its vocabulary, fitted on all their values. Follows scikit-learn's encoder
conventions (``fit``/``transform``, fitted state in ``*_`` attributes, ``min_frequency``-style
``min_count``, ``max_categories``-style ``max_vocab_size``). Id layout, shared by every id input:
0 = padding (only ever produced for the empty positions of lists), 1 = out-of-vocabulary / missing,
2.. = known values (or hash buckets).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

PADDING_ID = 0
OOV_ID = 1
FIRST_ID = 2

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)

#: Pending per-batch counts are merged once they hold more entries than this (or than the merged counts).
MERGE_MIN_ENTRIES = 1 << 20


class NotFittedError(RuntimeError):
    """``transform`` (or anything needing the fitted state) was called before ``fit``."""


class Vocabulary:
    """Maps string values to ids (vocabulary with min count, or stable hashing).

    Args:
        min_count: values seen fewer times in the training data map to OOV.
        max_vocab_size: keep only the most frequent values (ties broken by value).
        hash_buckets: if set, ids are ``2 + fnv1a(value) % hash_buckets`` and no vocabulary is kept.
    """

    def __init__(self, min_count: int = 1, max_vocab_size: int | None = None, hash_buckets: int | None = None):
        self.min_count = min_count
        self.max_vocab_size = max_vocab_size
        self.hash_buckets = hash_buckets
        self.vocabulary_: list[str] | None = None
        self._value_set: pa.Array | None = None
        self._ids: dict[str, int] | None = None

    @property
    def fitted(self) -> bool:
        return self.hash_buckets is not None or self.vocabulary_ is not None

    @property
    def num_ids(self) -> int:
        """Rows the embedding table needs (padding and OOV included)."""
        self._check_fitted()
        size = self.hash_buckets if self.hash_buckets is not None else len(self.vocabulary_ or [])
        return FIRST_ID + size

    def options(self) -> dict[str, Any]:
        """The settings (not the fitted state): equal options are what lets features share a table."""
        return {"min_count": self.min_count, "max_vocab_size": self.max_vocab_size, "hash_buckets": self.hash_buckets}

    def fit(self, column: pa.Array | pa.ChunkedArray) -> Vocabulary:
        """Learn the vocabulary from a string column (nulls ignored)."""
        if self.hash_buckets is not None:
            return self
        counts = pc.value_counts(pc.drop_null(column))
        values = counts.field("values").to_numpy(zero_copy_only=False).astype(str)
        return self.fit_counts(values, counts.field("counts").to_numpy())

    def fit_counts(self, values: np.ndarray, frequency: np.ndarray) -> Vocabulary:
        """Learn the vocabulary from distinct values (V,) str and their counts (V,) int (e.g. merged
        over a streamed pass): the same result as :meth:`fit` on the column they were counted in."""
        if self.hash_buckets is not None:
            return self
        keep = frequency >= self.min_count
        values, frequency = values[keep], frequency[keep]
        order = np.lexsort((values, -frequency))  # most frequent first, then by value
        if self.max_vocab_size is not None:
            order = order[: self.max_vocab_size]
        self._set_vocabulary(values[order].tolist())
        return self

    def begin_fit(self, max_distinct_values: int | None, label: str) -> VocabularyFit:
        """An accumulator of value counts over record batches (see :class:`VocabularyFit`)."""
        return VocabularyFit(self, max_distinct_values, label)

    def transform(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Ids (N,) int64 for a string column; unseen values and nulls map to OOV (1).

        A large column is matched against the vocabulary in one pyarrow call (``index_in``, which hashes
        the whole vocabulary each time); a column much shorter than the vocabulary (a request's few
        values against a million ids) is looked up value by value in a dict built once.
        """
        self._check_fitted()
        if self.hash_buckets is not None:
            return _hash_ids(column, self.hash_buckets)
        if len(column) * 4 < len(self.vocabulary_ or []):
            ids = self._id_map()
            return np.fromiter((ids.get(value, OOV_ID) for value in column.to_pylist()), np.int64, len(column))
        positions = pc.index_in(column, value_set=self._value_set)
        return pc.fill_null(positions, -1).to_numpy(zero_copy_only=False).astype(np.int64) + FIRST_ID

    def _id_map(self) -> dict[str, int]:
        """{value: id}, built once (the first short lookup)."""
        if self._ids is None:
            self._ids = {value: index for index, value in enumerate(self.vocabulary_ or [], start=FIRST_ID)}
        return self._ids

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {**self.options(), "vocabulary": self.vocabulary_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocabulary:
        vocabulary = cls(state["min_count"], state["max_vocab_size"], state["hash_buckets"])
        if state["vocabulary"] is not None:
            vocabulary._set_vocabulary(list(state["vocabulary"]))
        return vocabulary

    def _set_vocabulary(self, vocabulary: list[str]) -> None:
        self.vocabulary_ = vocabulary
        self._value_set = pa.array(vocabulary, type=pa.string())
        self._ids = None

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError("the vocabulary is used before fit")


class VocabularyFit:
    """Exact counts of a vocabulary's values, merged batch by batch, up to ``max_distinct_values``.

    Per batch, ``pyarrow.compute.value_counts``; the pending counts are merged with a group-by when
    they outgrow the merged ones. Beyond ``max_distinct_values`` distinct values counting stops and
    :meth:`finish` falls back to hash buckets (``max_vocab_size`` buckets when set, else
    ``max_distinct_values``), with a warning naming ``label``.

    Args:
        vocabulary: the vocabulary fitted by :meth:`finish`.
        max_distinct_values: the cap (None: no cap).
        label: how warnings name the vocabulary's users, e.g. ``feature 'user' (column 'user')``.
    """

    def __init__(self, vocabulary: Vocabulary, max_distinct_values: int | None, label: str):
        self.vocabulary, self.cap, self.label = vocabulary, max_distinct_values, label
        self.merged = pa.table({"values": pa.array([], pa.string()), "counts": pa.array([], pa.int64())})
        self.pending: list[pa.Table] = []
        self.pending_entries = 0
        self.overflowed = False

    def count(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Count a batch of string values (nulls ignored)."""
        if self.overflowed or self.vocabulary.hash_buckets is not None:
            return
        counts = pc.value_counts(pc.drop_null(values))
        self.pending.append(pa.table({"values": counts.field("values"), "counts": counts.field("counts")}))
        self.pending_entries += len(counts)
        if self.pending_entries > max(MERGE_MIN_ENTRIES, self.merged.num_rows):
            self._merge()

    def finish(self) -> Vocabulary:
        """Set the vocabulary from the counts (or fall back to hash buckets after an overflow)."""
        vocabulary = self.vocabulary
        if vocabulary.hash_buckets is not None:
            return vocabulary
        self._merge()
        if not self.overflowed:
            values = self.merged.column("values").to_numpy().astype(str)
            return vocabulary.fit_counts(values, self.merged.column("counts").to_numpy())
        buckets = vocabulary.max_vocab_size or self.cap
        log.warning(
            "%s: more than %d distinct values in the training data; hashed into %d buckets instead of a "
            "vocabulary (raise data.streaming.max_distinct_values to keep one)",
            self.label,
            self.cap,
            buckets,
        )
        vocabulary.hash_buckets, vocabulary.min_count, vocabulary.max_vocab_size = buckets, 1, None
        return vocabulary

    def _merge(self) -> None:
        if self.overflowed or not self.pending:
            return
        stacked = pa.concat_tables([self.merged, *self.pending])
        self.pending, self.pending_entries = [], 0
        grouped = stacked.group_by("values").aggregate([("counts", "sum")])
        self.merged = pa.table({"values": grouped.column("values"), "counts": grouped.column("counts_sum")})
        if self.cap is not None and self.merged.num_rows > self.cap:
            self.overflowed, self.merged = True, self.merged.slice(0, 0)


def fnv1a_64(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """FNV-1a 64-bit hash of each string's UTF-8 bytes, vectorised over rows (N,) uint64.

    Loops over character positions (the longest string's length), never over rows, and is stable
    across processes and machines (unlike Python's ``hash``). Nulls hash like the empty string.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    strings = pc.cast(pc.fill_null(column, ""), pa.large_string())
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)[strings.offset : strings.offset + len(strings) + 1]
    data_buffer = strings.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = np.full(len(strings), _FNV_OFFSET, dtype=np.uint64)
    for position in range(int(lengths.max(initial=0))):
        active = np.flatnonzero(lengths > position)
        byte = data[starts[active] + position].astype(np.uint64)
        hashes[active] = (hashes[active] ^ byte) * _FNV_PRIME
    return hashes


def _hash_ids(column: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    ids = (fnv1a_64(column) % np.uint64(buckets)).astype(np.int64) + FIRST_ID
    nulls = pc.is_null(column).to_numpy(zero_copy_only=False)
    ids[nulls] = OOV_ID
    return ids
