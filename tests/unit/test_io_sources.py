"""Tests for mtlrec.io.sources: file/directory/glob sources, Parquet row-group fragments, rank shards."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mtlrec.errors import DataError
from mtlrec.io import Fragment, count_rows, epoch_shard, expand_paths, iter_fragment, list_fragments


def _parquet(path: Path, start: int, rows: int, row_group_size: int) -> Path:
    pq.write_table(pa.table({"x": list(range(start, start + rows))}), path, row_group_size=row_group_size)
    return path


def test_a_file_a_directory_and_a_glob(tmp_path):
    first = _parquet(tmp_path / "part-1.parquet", 0, 10, 10)
    second = _parquet(tmp_path / "part-0.parquet", 10, 10, 10)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".hidden.parquet").write_text("")
    (tmp_path / "notes.md").write_text("not data")
    assert expand_paths(first) == [first]
    assert expand_paths(tmp_path) == [second, first]  # sorted, data files only
    assert expand_paths(str(tmp_path / "part-*.parquet")) == [second, first]


@pytest.mark.parametrize(
    "spec, message",
    [("missing.parquet", "data file not found"), ("nothing-*.parquet", "no file matches"), ("empty", "holds no")],
)
def test_nothing_to_read_is_an_error_naming_the_source(tmp_path, spec, message):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=message):
        expand_paths(str(tmp_path / spec))


def test_parquet_row_groups_are_fragments_that_read_back_their_rows(tmp_path):
    _parquet(tmp_path / "a.parquet", 0, 25, 10)
    _parquet(tmp_path / "b.parquet", 25, 5, 10)
    fragments = list_fragments(tmp_path)
    assert [(f.path.name, f.row_group, f.first_row, f.rows) for f in fragments] == [
        ("a.parquet", 0, 0, 10),
        ("a.parquet", 1, 10, 10),
        ("a.parquet", 2, 20, 5),
        ("b.parquet", 0, 0, 5),
    ]
    values = [
        v
        for fragment in fragments
        for batch in iter_fragment(fragment, {"x": pa.float64()})
        for v in batch["x"].to_pylist()
    ]
    assert values == list(range(30))


def test_csv_files_are_counted_by_reading_them(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n" + "".join(f"{i},{i}\n" for i in range(7)))
    (tmp_path / "b.csv").write_text("x,y\n1,2\n")
    fragments = list_fragments(str(tmp_path / "*.csv"))
    assert [f.rows for f in fragments] == [None, None]
    assert [f.rows for f in count_rows(fragments, "y")] == [7, 1]


def test_epoch_shards_partition_the_fragments_change_per_epoch_and_balance_rows():
    sizes = [100, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 5]
    fragments = [Fragment(Path(f"f{i}.parquet"), "parquet", 0, 0, rows) for i, rows in enumerate(sizes)]
    for epoch in range(3):
        shards = [epoch_shard(fragments, seed=1, epoch=epoch, rank=r, world_size=3) for r in range(3)]
        names = sorted(f.path.name for shard in shards for f in shard)
        assert names == sorted(f.path.name for f in fragments)  # each fragment on exactly one rank
        loads = sorted(sum(f.rows for f in shard) for shard in shards)
        assert loads[-1] - loads[0] <= max(sizes)  # list scheduling: each fragment goes to the least-loaded rank
    equal = [Fragment(Path(f"e{i}.parquet"), "parquet", 0, 0, 10) for i in range(7)]
    counts = sorted(len(epoch_shard(equal, 0, 0, r, 3)) for r in range(3))
    assert counts == [2, 2, 3]
    orders = {tuple(f.path.name for f in epoch_shard(fragments, 1, epoch, 0, 1)) for epoch in range(4)}
    assert len(orders) == 4  # a fresh file order every epoch
    assert epoch_shard(fragments, 1, 2, 0, 1) == epoch_shard(fragments, 1, 2, 0, 1)  # deterministic
