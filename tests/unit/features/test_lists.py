"""Tests for list features: jagged ↔ padded against a loop reference; tags (weights, truncation logged once,
malformed weights named); sequences (most recent first, aligned fields, errors naming the row)."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pytest

from mtlrec.errors import DataError
from mtlrec.features import (
    Jagged,
    MultiValuedEncoder,
    SequenceEncoder,
    SequenceField,
    Vocabulary,
    jagged_from_padded,
    padded_from_jagged,
)


def _reference(rows: list[list[int]], length: int, keep: str, reverse: bool) -> np.ndarray:
    out = np.zeros((len(rows), length), dtype=np.int64)
    for r, row in enumerate(rows):
        kept = row[:length] if keep == "first" else row[max(len(row) - length, 0):]
        out[r, : len(kept)] = kept[::-1] if reverse else kept
    return out


@pytest.mark.parametrize(("keep", "reverse"), [("first", False), ("last", False), ("last", True), ("first", True)])
def test_padded_from_jagged_equals_a_loop(keep, reverse):
    rng = np.random.default_rng(0)
    rows = [list(rng.integers(1, 100, n)) for n in rng.integers(0, 9, 200)]
    values = np.array([v for row in rows for v in row], dtype=np.int64)
    lengths = np.array([len(row) for row in rows])
    padded, kept = padded_from_jagged(values, lengths, 5, keep, reverse)
    np.testing.assert_array_equal(padded, _reference(rows, 5, keep, reverse))
    np.testing.assert_array_equal(kept, np.minimum(lengths, 5))
    back, offsets = jagged_from_padded(padded, kept)
    expected = [v for row in _reference(rows, 5, keep, reverse).tolist() for v in row if v]
    assert back.tolist() == expected and offsets[-1] == kept.sum()


def test_jagged_reads_chunked_sliced_and_null_lists():
    column = pa.chunked_array([pa.array([["a"], None, ["b", "c"]]).slice(1), pa.array([[], ["d"]])])
    jagged = Jagged.from_arrow(column)
    assert jagged.values.to_pylist() == ["b", "c", "d"] and jagged.lengths.tolist() == [0, 2, 0, 1]
    assert jagged.row_of_value().tolist() == [1, 1, 3] and jagged.offsets.tolist() == [0, 0, 2, 2, 3]
    numbers = Jagged.from_arrow(pa.array([[3, 4], [5]], pa.list_(pa.int64())))
    assert numbers.values.to_pylist() == ["3", "4", "5"]


def test_weighted_tags_and_truncation_logged_once(caplog):
    encoder = MultiValuedEncoder("tags", kv_separator=":", max_length=2).fit(pa.table({"tags": ["a:1|b:2"]}))
    table = pa.table({"tags": ["a:0.5|b:2|a:3", "b:1", "", "zz:4"]})
    with caplog.at_level(logging.WARNING):
        encoded = encoder.transform(table, "day1.csv")
        encoder.transform(table, "day2.csv")
    assert encoded["tags"].tolist() == [[2, 3], [3, 0], [0, 0], [1, 0]]  # a=2, b=3 (ties by value); zz OOV
    np.testing.assert_allclose(encoded["tags.weight"], [[0.5, 2], [1, 0], [0, 0], [4, 0]])
    assert encoded["tags.length"].tolist() == [2, 1, 0, 1]
    truncation = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert len(truncation) == 1 and "day1.csv" in truncation[0] and "1 list(s) longer than 2" in truncation[0]
    assert encoder.truncated_rows == 2


@pytest.mark.parametrize(("cell", "problem"), [("a:1|b", "has no weight"), ("a:1|b:x", "not a finite number"),
                                               ("a:nan", "not a finite number")])
def test_a_malformed_weight_names_the_file_row_and_column(cell, problem):
    encoder = MultiValuedEncoder("tags", kv_separator=":").fit(pa.table({"tags": ["a:1"]}))
    with pytest.raises(DataError) as info:
        encoder.transform(pa.table({"tags": ["a:1", "a:2", cell]}), "clicks.csv")
    message = str(info.value)
    assert message.startswith("clicks.csv: column 'tags'") and "data row 3" in message and problem in message


def test_a_sequence_keeps_its_most_recent_values_first():
    vocabulary = Vocabulary()
    chronological = SequenceEncoder("hist", [SequenceField("item", "items", "item", vocabulary)], max_length=2,
                                    recent="last")
    chronological.fit(pa.table({"items": [["x", "y", "z"]]}))
    encoded = chronological.transform(pa.table({"items": [["x", "y", "z"], ["y"], []]}))
    ids = dict(zip(vocabulary.vocabulary_, range(2, 5)))
    assert encoded["hist.item"].tolist() == [[ids["z"], ids["y"]], [ids["y"], 0], [0, 0]]
    assert encoded["hist.length"].tolist() == [2, 1, 0]


def test_misaligned_sequence_fields_name_the_row_and_columns():
    encoder = SequenceEncoder(
        "hist",
        [SequenceField("item", "items", "item", Vocabulary()), SequenceField("cate", "cates", "cate", Vocabulary())],
        max_length=4,
    )
    table = pa.table({"items": [["a"], ["b", "c"]], "cates": [["x"], ["y"]]})
    with pytest.raises(DataError, match=r"training data: sequence 'hist': at data row 2 column 'items' has 2 value"):
        encoder.fit(table)
    encoder.fit(table.slice(0, 1))
    with pytest.raises(DataError, match=r"log.parquet: .* row 2 column 'items' has 2 value\(s\) but column 'cates'"):
        encoder.transform(table, "log.parquet")
