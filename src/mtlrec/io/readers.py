"""Read CSV and Parquet files as pyarrow record batches, with errors that name file, line and column.

Only the columns asked for are read, each with the Arrow type the caller wants (categorical columns
as strings, numeric ones as float64), so no per-row Python runs on this path. Parse and conversion
errors from pyarrow are turned into :class:`DataError` messages; the slow work of locating the bad
line happens only on that error path.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mtlrec.errors import DataError
from mtlrec.io.lists import ListSplitting, cast_list

_NUMBER_PATTERN = r"^\s*[-+]?((\d+\.?\d*)|(\.\d+))([eE][-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity|nan)\s*$"


@dataclass(frozen=True)
class CsvFormat:
    """CSV parsing options (mirrors ``config.CsvOptions`` without depending on it)."""

    delimiter: str = ","
    header: bool = True
    column_names: tuple[str, ...] | None = None
    null_values: tuple[str, ...] = ("", "NA", "NaN", "nan", "null", "NULL", "?")
    strip_whitespace: bool = True
    bad_rows: str = "error"


@dataclass
class ReadReport:
    """What a read noticed: rows skipped as malformed (only with ``bad_rows='skip'``)."""

    skipped_rows: int = 0
    skipped_examples: list[str] = field(default_factory=list)


def looked_for(path: Path) -> str:
    """`` (looked for /abs/path)`` for a relative path that was not found: says which directory it was tried in."""
    return "" if path.is_absolute() else f" (looked for {path.absolute()})"


def infer_format(path: str | Path) -> str:
    """``csv`` or ``parquet`` from the file name (see :func:`format_from_name`), or, for another name
    (``data.gz``), from the content: Parquet starts with ``PAR1``, CSV is text."""
    found = format_from_name(path) or _sniff(Path(path))
    if found is None:
        raise DataError(f"{path}: cannot tell the format from the file name; set data.format to csv or parquet")
    return found


def format_from_name(path: str | Path) -> str | None:
    """``csv`` or ``parquet`` from the name (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``, ``.pq``), else None."""
    name = str(path).lower()
    for suffix in (".gz", ".bz2", ".zst"):
        name = name.removesuffix(suffix)
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv", ".txt", ".data", ".test")):
        return "csv"
    return None


def _sniff(path: Path) -> str | None:
    """``parquet`` or ``csv`` from a file's first bytes (decompressed by the extension), None if neither."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(4096)
    except (OSError, pa.ArrowException):
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.decode("utf-8", errors="replace")  # a character cut at the 4 KiB boundary is replaced
    binary = "\x00" in text or text.count("\ufffd") > 4
    return None if binary or not text.strip() else "csv"


def iter_record_batches(
    path: str | Path,
    columns: dict[str, pa.DataType],
    file_format: str | None = None,
    csv_format: CsvFormat | None = None,
    batch_rows: int = 65536,
    report: ReadReport | None = None,
    row_groups: list[int] | None = None,
    separators: Mapping[str, str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream record batches holding exactly ``columns`` (name → wanted Arrow type), in that order.

    A column wanted as a list (``pa.list_(pa.string())``) comes from a list column (Parquet
    ``list<int|string>``) or from text joined by its separator (a CSV cell ``a|b|c``; an empty or
    missing cell is an empty list, a null one a null list).

    Args:
        path: CSV (optionally gzip/bz2/zstd-compressed) or Parquet file.
        columns: the columns to read and the type each must have.
        file_format: ``csv`` or ``parquet``; inferred from the name when None.
        csv_format: CSV options.
        batch_rows: about how many rows per batch.
        report: filled with counts of skipped malformed rows.
        row_groups: Parquet only: read just these row groups (all when None).
        separators: list columns' separators in their text form (default ``|``).

    Raises:
        DataError: missing file, missing column, malformed row or a value of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}{looked_for(path)}")
    file_format = file_format or infer_format(path)
    lists = ListSplitting(dict(separators or {}))
    if file_format == "parquet":
        yield from _iter_parquet(path, columns, batch_rows, row_groups, lists)
    else:
        yield from _iter_csv(path, columns, csv_format or CsvFormat(), batch_rows, report or ReadReport(), lists)


def read_table(
    path: str | Path,
    columns: dict[str, pa.DataType],
    file_format: str | None = None,
    csv_format: CsvFormat | None = None,
    batch_rows: int = 65536,
    report: ReadReport | None = None,
    separators: Mapping[str, str] | None = None,
) -> pa.Table:
    """Read a whole file as one table (see :func:`iter_record_batches`)."""
    schema = pa.schema([(name, dtype) for name, dtype in columns.items()])
    batches = list(iter_record_batches(path, columns, file_format, csv_format, batch_rows, report, None, separators))
    return pa.Table.from_batches(batches, schema=schema)


def _iter_parquet(
    path: Path, columns: dict[str, pa.DataType], batch_rows: int, row_groups: list[int] | None, lists: ListSplitting
) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    available = parquet.schema_arrow.names
    _check_columns_present(path, columns, available)
    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=row_groups, columns=list(columns)):
        arrays = [_cast_column(path, name, batch.column(name), dtype, lists) for name, dtype in columns.items()]
        yield pa.RecordBatch.from_arrays(arrays, names=list(columns))


def _cast_column(path: Path, name: str, array: pa.Array, dtype: pa.DataType, lists: ListSplitting) -> pa.Array:
    if array.type == dtype:
        return array
    if pa.types.is_list(dtype):
        return cast_list(path, name, array, dtype, lists)
    if pa.types.is_string(dtype) and not (
        pa.types.is_integer(array.type)
        or pa.types.is_string(array.type)
        or pa.types.is_large_string(array.type)
        or pa.types.is_dictionary(array.type)
        or pa.types.is_boolean(array.type)
    ):
        raise DataError(
            f"{path}: column '{name}' has type {array.type}; a categorical column must hold strings or integers"
        )
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    try:
        return pc.cast(array, dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"{path}: column '{name}' of type {array.type} cannot be read as {dtype} ({exc})") from None


def _iter_csv(
    path: Path,
    columns: dict[str, pa.DataType],
    fmt: CsvFormat,
    batch_rows: int,
    report: ReadReport,
    lists: ListSplitting,
) -> Iterator[pa.RecordBatch]:
    if not _first_line(path).strip() and (fmt.header or not fmt.column_names):
        raise DataError(f"{path}: the file is empty (no header and no rows)")
    header_names = _csv_header(path, fmt)
    _check_columns_present(path, columns, header_names)
    error_rows: list[str] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        if fmt.bad_rows == "skip":
            report.skipped_rows += 1
            if len(report.skipped_examples) < 3:
                report.skipped_examples.append(row.text)
            return "skip"
        error_rows.append(row.text)
        return "error"

    read_options = pa_csv.ReadOptions(
        column_names=list(fmt.column_names) if fmt.column_names else None,
        autogenerate_column_names=not fmt.header and not fmt.column_names,
        skip_rows=1 if (fmt.header and fmt.column_names) else 0,
        block_size=max(1 << 20, batch_rows * 256),
    )
    parse_options = pa_csv.ParseOptions(delimiter=fmt.delimiter, invalid_row_handler=on_invalid_row)
    # With stripping on, every column is read as text, stripped, null-checked, then cast, so padded
    # values such as " 5" or " ?" behave as in the file's intent. The last column is read (as text if
    # not asked for) to see an unclosed quote there: it swallows the following lines without an error.
    last = header_names[-1]
    types = {name: pa.string() if fmt.strip_whitespace or not pa.types.is_floating(t) else pa.float64()
             for name, t in columns.items()}
    convert_options = pa_csv.ConvertOptions(
        include_columns=list(dict.fromkeys([*columns, last])),
        column_types={last: pa.string(), **types},
        null_values=list(fmt.null_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        reader = pa_csv.open_csv(
            path, read_options=read_options, parse_options=parse_options, convert_options=convert_options
        )
        null_values = pa.array(list(fmt.null_values), pa.string())
        lists = ListSplitting(lists.separators, fmt.strip_whitespace)
        for batch in reader:
            _check_quotes(path, batch.column(last))
            yield _finish_csv_batch(path, batch, columns, fmt, null_values, lists)
    except pa.ArrowInvalid as exc:
        raise _explain_csv_error(path, str(exc), error_rows, fmt) from None
    except OSError as exc:  # a truncated or corrupt compressed stream
        raise DataError(f"{path}: the file is truncated or corrupt ({exc}); write it again") from None


def _check_quotes(path: Path, last_column: pa.Array) -> None:
    """A last-column value spanning lines means a quote opened there and never closed: pyarrow then reads the
    rest of the file as that value. (Elsewhere an unclosed quote leaves a row short of columns: an error.)"""
    if pa.types.is_string(last_column.type) and pc.any(pc.match_substring(last_column, "\n")).as_py():
        line = _unclosed_quote_line(path)
        where = f"at line {line}" if line else "in the file"
        raise DataError(
            f"{path}: a quote opens {where} and does not close on its line, so the following lines were read "
            "as one value; close the quote (or quote the whole value)"
        )


def _unclosed_quote_line(path: Path) -> int | None:
    """1-based line where the first quote that is not closed on its own line opens (error path only)."""
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.count('"') % 2:
                return number
    return None


def _finish_csv_batch(
    path: Path,
    batch: pa.RecordBatch,
    columns: dict[str, pa.DataType],
    fmt: CsvFormat,
    null_values: pa.Array,
    lists: ListSplitting,
) -> pa.RecordBatch:
    arrays = []
    for name, dtype in columns.items():
        array = batch.column(name)
        if pa.types.is_string(array.type) and fmt.strip_whitespace:
            array = pc.utf8_trim_whitespace(array)
            array = pc.if_else(pc.is_in(array, value_set=null_values), None, array)
        if pa.types.is_string(array.type) and pa.types.is_floating(dtype):
            array = _text_to_number(path, name, array, fmt)
        arrays.append(_cast_column(path, name, array, dtype, lists))
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))


def _text_to_number(path: Path, name: str, array: pa.Array, fmt: CsvFormat) -> pa.Array:
    try:
        return pc.cast(array, pa.float64())
    except pa.ArrowInvalid:
        ok = pc.or_(pc.is_null(array), pc.match_substring_regex(array, _NUMBER_PATTERN, ignore_case=True))
        bad = pc.indices_nonzero(pc.invert(pc.fill_null(ok, True)))
        value = array[bad[0].as_py()].as_py() if len(bad) else "?"
        raise _not_a_number(path, name, value, fmt) from None


def _not_a_number(path: Path, column: str, value: str, fmt: CsvFormat) -> DataError:
    line = _find_value_line(path, fmt, column, value)
    where = f" at line {line}" if line else ""
    return DataError(
        f"{path}: column '{column}' must be numeric but holds {value!r}{where}. "
        "Declare the feature as categorical, add the value to data.csv.null_values, or clean the column."
    )


def _csv_header(path: Path, fmt: CsvFormat) -> list[str]:
    if fmt.column_names:
        return list(fmt.column_names)
    first = _first_line(path)
    fields = first.rstrip("\r\n").split(fmt.delimiter)
    if not fmt.header:
        return [f"f{i}" for i in range(len(fields))]
    return [f.strip().strip('"') for f in fields]


def _first_line(path: Path) -> str:
    try:
        with _open_text(path) as handle:
            return handle.readline()
    except (OSError, EOFError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read the file; it is truncated or corrupt ({exc})") from None


def _open_text(path: Path) -> io.TextIOWrapper:
    """The file as text, decompressed by its extension (.gz, .bz2, .zst, ...) like pyarrow's reader."""
    return io.TextIOWrapper(
        pa.input_stream(str(path), compression="detect"), encoding="utf-8", errors="replace", newline=""
    )


def _check_columns_present(path: Path, columns: dict[str, pa.DataType], available: list[str]) -> None:
    missing = [name for name in columns if name not in available]
    if missing:
        shown = ", ".join(available[:50]) + (" ..." if len(available) > 50 else "")
        raise DataError(f"{path}: column(s) {', '.join(repr(m) for m in missing)} not found; the file has: {shown}")


def _explain_csv_error(path: Path, message: str, error_rows: list[str], fmt: CsvFormat) -> DataError:
    if error_rows:
        row = error_rows[-1]
        spans_lines = "\n" in row.rstrip("\r\n")  # an unclosed quote joined this line to the next ones
        line = _find_line_number(path, row.splitlines()[0] if spans_lines else row)
        where = f"line {line}" if line else "a line"
        quote = " (a quote opens there and does not close on its line)" if spans_lines else ""
        detail = message.removeprefix("CSV parse error: ").split("\n")[0]
        return DataError(
            f"{path}: malformed row at {where}{quote}: {detail}. "
            "Fix the file, or set data.csv.bad_rows: skip to drop such rows (they are counted in the log)."
        )
    match = re.search(r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", message)
    if match:
        names = _csv_header(path, fmt)
        index = int(match.group(1))
        return _not_a_number(path, names[index] if index < len(names) else f"#{index}", match.group(3), fmt)
    return DataError(f"{path}: cannot parse the CSV file: {message}")


def _find_line_number(path: Path, row_text: str) -> int | None:
    """1-based line of the first line equal to ``row_text`` (error path only)."""
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.rstrip("\r\n") == row_text.rstrip("\r\n"):
                return number
    return None


def _find_value_line(path: Path, fmt: CsvFormat, column: str, value: str) -> int | None:
    """1-based file line of the first record whose ``column`` holds ``value`` (error path only)."""
    names = _csv_header(path, fmt)
    if column not in names:
        return None
    index = names.index(column)
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=fmt.delimiter)
        if fmt.header:
            next(reader, None)
        for record in reader:
            if len(record) > index and record[index].strip() == value.strip():
                return reader.line_num
    return None
