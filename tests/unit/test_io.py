"""Tests for mtlrec.io: CSV/Parquet readers (types, errors naming file/line/column) and atomic writers."""

from __future__ import annotations

import bz2
import gzip
import json
import math
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from mtlrec.errors import DataError
from mtlrec.io import (
    CsvFormat,
    ReadReport,
    atomic_write,
    infer_format,
    iter_record_batches,
    read_table,
    strict_json,
    write_table,
)

COLUMNS = {"user": pa.string(), "price": pa.float64()}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def line_of(lines: list[str], text: str) -> int:
    """1-based line number of ``text`` in a file written by :func:`write_lines`."""
    return lines.index(text) + 1


# --------------------------------------------------------------------------- reading CSV


def test_csv_with_header_reads_requested_columns_in_requested_order_and_types(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["price,extra,user", "1.5,a,u1", "2,b,u2", "-3e2,c,u3"])
    table = read_table(path, COLUMNS)
    assert table.schema == pa.schema([("user", pa.string()), ("price", pa.float64())])
    assert table.column("user").to_pylist() == ["u1", "u2", "u3"]
    assert table.column("price").to_pylist() == [1.5, 2.0, -300.0]


def test_numbers_read_as_strings_for_categorical_columns(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["user,price", "0012,1", "7,2"])
    table = read_table(path, COLUMNS)
    assert table.column("user").to_pylist() == ["0012", "7"]


def test_csv_without_header_uses_column_names(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["u1,1.5,x", "u2,2.5,y"])
    fmt = CsvFormat(header=False, column_names=("user", "price", "other"))
    table = read_table(path, COLUMNS, csv_format=fmt)
    assert table.num_rows == 2  # the first line is data, not a header
    assert table.column("user").to_pylist() == ["u1", "u2"]
    assert table.column("price").to_pylist() == [1.5, 2.5]


def test_csv_header_renamed_by_column_names(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["a,b", "u1,1", "u2,2"])
    fmt = CsvFormat(header=True, column_names=("user", "price"))
    table = read_table(path, COLUMNS, csv_format=fmt)
    assert table.column("user").to_pylist() == ["u1", "u2"]
    assert table.column("price").to_pylist() == [1.0, 2.0]


def test_csv_without_header_or_names_autogenerates_f0_f1(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["u1,1.5", "u2,2.5"])
    table = read_table(path, {"f0": pa.string(), "f1": pa.float64()}, csv_format=CsvFormat(header=False))
    assert table.column("f0").to_pylist() == ["u1", "u2"]
    assert table.column("f1").to_pylist() == [1.5, 2.5]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_custom_delimiter(tmp_path, delimiter):
    rows = [["user", "price"], ["u,1", "1.25"], ["u2", "4"]]
    path = write_lines(tmp_path / "d.txt", [delimiter.join(row) for row in rows])
    table = read_table(path, COLUMNS, csv_format=CsvFormat(delimiter=delimiter))
    assert table.column("user").to_pylist() == ["u,1", "u2"]
    assert table.column("price").to_pylist() == [1.25, 4.0]


def test_gzip_csv(tmp_path):
    path = tmp_path / "d.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("user,price\nu1,1.5\nu2,\n")
    assert infer_format(path) == "csv"
    table = read_table(path, COLUMNS)
    assert table.column("user").to_pylist() == ["u1", "u2"]
    assert table.column("price").to_pylist() == [1.5, None]


def test_bz2_csv(tmp_path):
    path = tmp_path / "d.csv.bz2"
    with bz2.open(path, "wt") as handle:
        handle.write("user,price\nu1,1.5\n")
    table = read_table(path, COLUMNS)
    assert table.column("user").to_pylist() == ["u1"]


def test_batches_respect_batch_rows_and_keep_all_rows(tmp_path):
    lines = ["user,price"] + [f"u{i},{i}" for i in range(5000)]
    path = write_lines(tmp_path / "d.csv", lines)
    batches = list(iter_record_batches(path, COLUMNS, batch_rows=512))
    assert all(b.schema.names == ["user", "price"] for b in batches)
    assert sum(b.num_rows for b in batches) == 5000
    table = read_table(path, COLUMNS, batch_rows=512)
    assert table.column("price").to_pylist() == [float(i) for i in range(5000)]


def test_parquet_reads_requested_columns_and_casts_types(tmp_path):
    path = tmp_path / "d.parquet"
    source = pa.table(
        {
            "price": pa.array([1, 2, None], pa.int64()),
            "user": pa.array([10, 20, 30], pa.int32()),
            "city": pa.array(["a", "b", "a"]).dictionary_encode(),
            "unused": pa.array([1.0, 2.0, 3.0]),
        }
    )
    pq.write_table(source, path)
    table = read_table(path, {"user": pa.string(), "price": pa.float64(), "city": pa.string()})
    assert table.schema.names == ["user", "price", "city"]
    assert table.column("user").to_pylist() == ["10", "20", "30"]
    assert table.column("price").type == pa.float64()
    assert table.column("price").to_pylist() == [1.0, 2.0, None]
    assert table.column("city").to_pylist() == ["a", "b", "a"]


def test_a_file_with_an_odd_name_is_read_by_its_content(tmp_path):
    """``data.bin`` holding Parquet and ``data.gz`` holding gzipped CSV: the format is sniffed."""
    parquet = tmp_path / "data.bin"
    pq.write_table(pa.table({"user": ["x"], "price": [0.5]}), parquet)
    assert read_table(parquet, COLUMNS).to_pylist() == [{"user": "x", "price": 0.5}]
    assert read_table(parquet, COLUMNS, file_format="parquet").to_pylist() == [{"user": "x", "price": 0.5}]
    text = tmp_path / "data.gz"
    text.write_bytes(gzip.compress(b"user,price\nx,0.5\n"))
    assert infer_format(text) == "csv"
    assert read_table(text, COLUMNS).to_pylist() == [{"user": "x", "price": 0.5}]


def test_a_binary_file_with_an_odd_name_asks_for_the_format(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match="set data.format"):
        infer_format(path)


def test_parquet_float_column_as_categorical_is_an_error(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"user": [1.5, 2.5], "price": [1.0, 2.0]}), path)
    with pytest.raises(DataError, match="'user'"):
        read_table(path, COLUMNS)


def test_parquet_text_in_numeric_column_names_column(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"user": ["a"], "price": ["cheap"]}), path)
    with pytest.raises(DataError, match="'price'"):
        read_table(path, COLUMNS)


def test_parquet_missing_column(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"user": ["a"]}), path)
    with pytest.raises(DataError) as info:
        read_table(path, COLUMNS)
    assert "'price'" in str(info.value) and str(path) in str(info.value)


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_text("user,price\n")
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_table(path, COLUMNS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("A.CSV.GZ", "csv"),
        ("x.tsv", "csv"),
        ("x.csv.bz2", "csv"),
        ("y.parquet", "parquet"),
        ("y.pq", "parquet"),
    ],
)
def test_infer_format(name, expected):
    assert infer_format(name) == expected


# --------------------------------------------------------------------------- CSV errors


@pytest.mark.parametrize("name", ["missing.csv", "missing.parquet"])
def test_missing_file_names_the_path(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(DataError) as info:
        read_table(path, COLUMNS)
    assert str(path) in str(info.value)


def test_missing_column_names_the_column_and_lists_available(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["user,cost", "u1,1"])
    with pytest.raises(DataError) as info:
        read_table(path, COLUMNS)
    message = str(info.value)
    assert "'price'" in message
    assert "'user'" not in message.split("not found")[0]
    assert "cost" in message and str(path) in message


def test_malformed_row_names_its_line(tmp_path):
    lines = ["user,price"] + [f"u{i},{i}" for i in range(20)] + ["bad,1,extra"] + [f"v{i},{i}" for i in range(5)]
    path = write_lines(tmp_path / "d.csv", lines)
    with pytest.raises(DataError) as info:
        read_table(path, COLUMNS)
    message = str(info.value)
    assert f"line {line_of(lines, 'bad,1,extra')}" in message
    assert str(path) in message
    assert "bad_rows" in message


def test_malformed_row_with_too_few_fields_in_gzip(tmp_path):
    lines = ["user,price,other", "u1,1,x", "u2,2,y", "short", "u3,3,z"]
    path = tmp_path / "d.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("".join(line + "\n" for line in lines))
    with pytest.raises(DataError, match=f"line {line_of(lines, 'short')}"):
        read_table(path, COLUMNS)


def test_bad_rows_skip_skips_and_counts(tmp_path):
    lines = ["user,price", "u1,1", "x,2,3", "u2,2", "y,4,5,6", "u3,3", "z,7,8"]
    path = write_lines(tmp_path / "d.csv", lines)
    report = ReadReport()
    table = read_table(path, COLUMNS, csv_format=CsvFormat(bad_rows="skip"), report=report)
    assert table.column("user").to_pylist() == ["u1", "u2", "u3"]
    assert table.column("price").to_pylist() == [1.0, 2.0, 3.0]
    assert report.skipped_rows == 3
    assert report.skipped_examples == ["x,2,3", "y,4,5,6", "z,7,8"]


def test_bad_rows_skip_keeps_only_three_examples(tmp_path):
    lines = ["user,price"] + [f"b{i},1,2" for i in range(6)] + ["ok,1"]
    path = write_lines(tmp_path / "d.csv", lines)
    report = ReadReport()
    table = read_table(path, COLUMNS, csv_format=CsvFormat(bad_rows="skip"), report=report)
    assert table.num_rows == 1
    assert report.skipped_rows == 6
    assert report.skipped_examples == ["b0,1,2", "b1,1,2", "b2,1,2"]


def assert_non_numeric_error(path: Path, lines: list[str], bad_line: str, bad_value: str, **kwargs) -> None:
    with pytest.raises(DataError) as info:
        read_table(path, COLUMNS, **kwargs)
    message = str(info.value)
    assert "'price'" in message
    assert repr(bad_value) in message
    assert f"line {line_of(lines, bad_line)}" in message
    assert str(path) in message


def test_non_numeric_value_names_column_value_and_line(tmp_path):
    lines = ["user,price", "u1,1.5", "u2,2", "u3,abc", "u4,4", "u5,x"]
    path = write_lines(tmp_path / "d.csv", lines)
    assert_non_numeric_error(path, lines, "u3,abc", "abc")


def test_non_numeric_value_in_a_later_column_without_header(tmp_path):
    lines = ["a;u1;1", "b;u2;2", "c;u3;1,5", "d;u4;3"]
    path = write_lines(tmp_path / "d.csv", lines)
    fmt = CsvFormat(delimiter=";", header=False, column_names=("k", "user", "price"))
    assert_non_numeric_error(path, lines, "c;u3;1,5", "1,5", csv_format=fmt)


def test_non_numeric_value_far_down_a_large_file(tmp_path):
    lines = ["user,price"] + [f"u{i},{i}.5" for i in range(30000)] + ["late,N/A"] + ["u,1"] * 10
    path = write_lines(tmp_path / "d.csv", lines)
    assert_non_numeric_error(path, lines, "late,N/A", "N/A", batch_rows=1000)


def test_non_numeric_value_after_a_skipped_row_is_reported_as_non_numeric(tmp_path):
    lines = ["user,price", "u1,1", "u2,2,3", "u3,3", "u4,abc"]
    path = write_lines(tmp_path / "d.csv", lines)
    assert_non_numeric_error(path, lines, "u4,abc", "abc", csv_format=CsvFormat(bad_rows="skip"))


def test_non_numeric_line_number_counts_blank_lines(tmp_path):
    lines = ["user,price", "u1,1", "", "u2,oops"]
    path = write_lines(tmp_path / "d.csv", lines)
    assert_non_numeric_error(path, lines, "u2,oops", "oops")


def test_whitespace_is_stripped_and_null_values_apply_after_stripping(tmp_path):
    lines = ["user,price,label", " u1 ,1.5,a", " ? ,2,b", "NA,3,c", "  ,4,d", "u5, 5 ,e", "u6,?,f", "u7,,g"]
    path = write_lines(tmp_path / "d.csv", lines)
    table = read_table(path, COLUMNS)
    assert table.column("user").to_pylist() == ["u1", None, None, None, "u5", "u6", "u7"]
    assert table.column("price").to_pylist() == [1.5, 2.0, 3.0, 4.0, 5.0, None, None]


def test_custom_null_values(tmp_path):
    lines = ["user,price", "missing,1", "?,-", "u3,3"]
    path = write_lines(tmp_path / "d.csv", lines)
    table = read_table(path, COLUMNS, csv_format=CsvFormat(null_values=("missing", "-")))
    assert table.column("user").to_pylist() == [None, "?", "u3"]
    assert table.column("price").to_pylist() == [1.0, None, 3.0]


def test_strip_whitespace_off_keeps_spaces(tmp_path):
    lines = ["user,price", " u1 ,1", " ?,2"]
    path = write_lines(tmp_path / "d.csv", lines)
    table = read_table(path, COLUMNS, csv_format=CsvFormat(strip_whitespace=False))
    assert table.column("user").to_pylist() == [" u1 ", " ?"]


def test_null_value_with_spaces_in_numeric_column_is_null(tmp_path):
    lines = ["user,price", "u1,1.5", "u2, ?", "u3,3"]
    path = write_lines(tmp_path / "d.csv", lines)
    table = read_table(path, COLUMNS)
    assert table.column("price").to_pylist() == [1.5, None, 3.0]


def test_special_float_spellings(tmp_path):
    lines = ["user,price", "a,inf", "b,-inf", "c,1e3", "d,.5", "e,+2."]
    path = write_lines(tmp_path / "d.csv", lines)
    values = read_table(path, COLUMNS).column("price").to_pylist()
    assert values[0] == math.inf and values[1] == -math.inf
    assert values[2:] == [1000.0, 0.5, 2.0]


# --------------------------------------------------------------------------- writers


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_atomic_write_creates_file_and_parents_without_leftovers(tmp_path):
    target = tmp_path / "sub" / "dir" / "out.txt"
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.parent == target.parent
        assert tmp != target
        tmp.write_text("new")

    atomic_write(target, write)
    assert target.read_text() == "new"
    assert listing(target.parent) == ["out.txt"]
    assert not seen[0].exists()


def test_atomic_write_keeps_old_file_when_write_raises(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, write)
    assert target.read_text() == "old"
    assert listing(tmp_path) == ["out.txt"]


def test_atomic_write_failure_without_old_file_leaves_nothing(tmp_path):
    def write(tmp: Path) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError):
        atomic_write(tmp_path / "out.bin", write)
    assert listing(tmp_path) == []


def test_atomic_write_replaces_existing_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    assert listing(tmp_path) == ["out.txt"]


PREDICTIONS = pa.table({"row": pa.array([0, 1, 2], pa.int64()), "click": pa.array([0.25, 0.5, 0.75], pa.float32())})


@pytest.mark.parametrize("name", ["pred.parquet", "pred.pq", "PRED.PARQUET"])
def test_write_table_parquet(tmp_path, name):
    path = tmp_path / name
    write_table(PREDICTIONS, path)
    assert pq.read_table(path).equals(PREDICTIONS)
    assert listing(tmp_path) == [name]


def test_write_table_csv(tmp_path):
    path = tmp_path / "pred.csv"
    write_table(PREDICTIONS, path)
    back = pa_csv.read_csv(path)
    assert back.column("row").to_pylist() == [0, 1, 2]
    assert back.column("click").to_pylist() == [0.25, 0.5, 0.75]
    assert listing(tmp_path) == ["pred.csv"]


@pytest.mark.parametrize("name", ["pred.json", "pred.csv.gz", "pred"])
def test_write_table_other_extension_is_an_error(tmp_path, name):
    with pytest.raises(DataError, match=re.escape(name)):
        write_table(PREDICTIONS, tmp_path / name)
    assert listing(tmp_path) == []


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    atomic_write(atomic, lambda tmp: tmp.write_text("x"))
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


LISTS = {"user": pa.string(), "tags": pa.list_(pa.string())}


def test_list_columns_from_csv_text_split_on_each_columns_separator(tmp_path):
    path = write_lines(tmp_path / "tags.csv", ["user,tags,cats", "u1, a | b ,x;y", "u2,,", "u3,NA,z", "u4,c||d,"])
    table = read_table(path, {**LISTS, "cats": pa.list_(pa.string())}, separators={"cats": ";"})
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.column("tags").to_pylist() == [["a", "b"], None, None, ["c", "", "d"]]  # empty and null: no values
    assert table.column("cats").to_pylist() == [["x", "y"], None, ["z"], None]


def test_list_columns_from_parquet_lists_or_text(tmp_path):
    path = tmp_path / "tags.parquet"
    pq.write_table(
        pa.table(
            {
                "user": ["u1", "u2"],
                "tags": pa.array([[3, 4], None], pa.list_(pa.int64())),
                "text": ["a|b", ""],
                "large": pa.array([["x"], []], pa.large_list(pa.string())),
            }
        ),
        path,
    )
    wanted = {**LISTS, "text": pa.list_(pa.string()), "large": pa.list_(pa.string())}
    table = read_table(path, wanted)
    assert table.column("tags").to_pylist() == [["3", "4"], None]
    assert table.column("text").to_pylist() == [["a", "b"], None]
    assert table.column("large").to_pylist() == [["x"], []]


def test_a_column_that_is_no_list_is_named(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"user": ["u1"], "tags": [1.5], "floats": pa.array([[1.5]])}), path)
    with pytest.raises(DataError, match=r"column 'tags' has type double; a list feature reads a list column"):
        read_table(path, LISTS)
    with pytest.raises(DataError, match=r"column .floats. has type list<.*: double>; list values must be strings"):
        read_table(path, {"floats": pa.list_(pa.string())})


@pytest.mark.parametrize("row", ['"y,1.5', 'y,"1.5', 'y,1.5"x"'], ids=["first", "last", "inner"])
def test_an_unclosed_quote_names_the_line_where_it_opens(tmp_path, row):
    path = tmp_path / "d.csv"
    path.write_text("user,price\n" + "x,0.5\n" * 3 + row + "\n" + "z,2.5\n" * 5)
    with pytest.raises(DataError, match=r"line 5\b"):
        read_table(path, COLUMNS)


def test_an_unclosed_quote_in_a_last_column_not_read_is_not_a_silent_loss_of_rows(tmp_path):
    """The quote swallows every following line into one value of ``note`` (no column is short): an error."""
    path = tmp_path / "d.csv"
    path.write_text("user,price,note\n" + "x,0.5,ok\n" * 3 + 'y,1.5,"oops\n' + "z,2.5,ok\n" * 5)
    with pytest.raises(DataError, match=r"a quote opens at line 5 and does not close"):
        read_table(path, COLUMNS)


def test_an_empty_file_says_so(tmp_path):
    for name, content in [("empty.csv", b""), ("blank.csv.gz", gzip.compress(b"\n"))]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=f"{name}: the file is empty"):
            read_table(tmp_path / name, COLUMNS)


def test_a_truncated_gzip_is_named(tmp_path):
    path = tmp_path / "d.csv.gz"
    whole = gzip.compress(("user,price\n" + "".join(f"u{i},{i}.5\n" for i in range(50_000))).encode())
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"d\.csv\.gz: the file is truncated or corrupt"):
        read_table(path, COLUMNS)


def test_a_missing_relative_path_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        DataError, match=re.escape(f"data file not found: nope.csv (looked for {tmp_path / 'nope.csv'})")
    ):
        read_table("nope.csv", COLUMNS)


def test_strict_json_writes_null_for_non_finite_values_and_names_their_paths():
    text, undefined = strict_json({"valid": {"click": {"auc": math.nan, "loss": 0.5}}, "rows": [1.0, math.inf]})
    assert json.loads(text) == {"valid": {"click": {"auc": None, "loss": 0.5}}, "rows": [1.0, None]}
    assert undefined == ["valid.click.auc", "rows[1]"]
    assert strict_json({"a": 1})[1] == []
