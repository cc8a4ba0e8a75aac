"""Tests for mtlrec.data.reading: splits carved out of one file (at random, or the last rows in order)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mtlrec.data.reading import RandomSplit, RawSplit, random_split
from mtlrec.errors import DataError


def _raw(rows: int) -> RawSplit:
    r = np.arange(rows)
    return RawSplit(pa.table({"row": r}), {"click": (r % 2).astype(np.float32)}, "log.parquet", {"click": r * 1.0})


def test_a_random_split_partitions_the_rows_reproducibly_and_keeps_labels_with_their_rows():
    parts = random_split(_raw(100), RandomSplit("train", {"valid": 0.1, "test": 0.2}, seed=3), "train")
    rows = {name: part.table.column("row").to_pylist() for name, part in parts.items()}
    assert {name: len(r) for name, r in rows.items()} == {"valid": 10, "test": 20, "train": 70}
    assert sorted(sum(rows.values(), [])) == list(range(100))
    assert rows["test"] != list(range(80, 100))  # not the last rows
    for part in parts.values():
        np.testing.assert_array_equal(part.labels["click"], np.array(part.table.column("row")) % 2)
        np.testing.assert_array_equal(part.weights["click"], np.array(part.table.column("row")))
    again = random_split(_raw(100), RandomSplit("train", {"valid": 0.1, "test": 0.2}, seed=3), "train")
    assert {name: part.table.column("row").to_pylist() for name, part in again.items()} == rows


def test_an_ordered_split_takes_the_last_rows_block_by_block():
    parts = random_split(_raw(100), RandomSplit("train", {"valid": 0.1, "test": 0.2}, ordered=True), "train")
    rows = {name: part.table.column("row").to_pylist() for name, part in parts.items()}
    assert rows == {"valid": list(range(70, 80)), "test": list(range(80, 100)), "train": list(range(70))}
    assert parts["test"].source == "log.parquet (test part)"


def test_a_split_that_leaves_a_part_empty_is_an_error():
    with pytest.raises(DataError, match="leaves 'test' empty"):
        random_split(_raw(3), RandomSplit("train", {"test": 0.1}, ordered=True), "train")
