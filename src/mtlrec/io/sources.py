"""Data sources larger than one file: a file, a directory or a glob, split into shardable fragments.

A *fragment* is the unit that is shuffled per epoch and dealt to ranks: one Parquet row group, or
one whole CSV file (CSV cannot be entered in the middle). Parquet fragments know their row counts
from the file metadata; CSV fragments are counted by one read when a count is needed.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mtlrec.errors import DataError
from mtlrec.io.readers import CsvFormat, ReadReport, format_from_name, infer_format, iter_record_batches, looked_for

_GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class Fragment:
    """A piece of a data source read as a unit.

    Attributes:
        path: the file.
        file_format: ``csv`` or ``parquet``.
        row_group: the Parquet row group, or None for a whole (CSV) file.
        first_row: 0-based index of the fragment's first data row within its file.
        rows: number of rows, or None while unknown (CSV before counting).
    """

    path: Path
    file_format: str
    row_group: int | None = None
    first_row: int = 0
    rows: int | None = None

    def __str__(self) -> str:
        return str(self.path) if self.row_group is None else f"{self.path} (row group {self.row_group})"


def expand_paths(spec: str | Path) -> list[Path]:
    """The data files of ``spec``: the file itself, a directory's data files, or a glob's matches (sorted).

    In a directory, hidden files and files whose name starts with ``_`` (``_SUCCESS``) are skipped,
    as are files whose format cannot be told from the name.

    Raises:
        DataError: nothing found.
    """
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith((".", "_")) and _known(f))
        if not files:
            raise DataError(f"{path}: the directory holds no .csv/.csv.gz/.parquet files")
        return files
    if _GLOB_CHARACTERS & set(str(spec)):
        files = sorted(Path(name) for name in glob.glob(str(spec), recursive=True) if Path(name).is_file())
        if not files:
            raise DataError(f"{spec}: no file matches this pattern")
        return files
    raise DataError(f"data file not found: {path}{looked_for(path)}")


def list_fragments(spec: str | Path, file_format: str | None = None) -> list[Fragment]:
    """Every fragment of a source (file, directory or glob), in file order then row-group order."""
    fragments: list[Fragment] = []
    for path in expand_paths(spec):
        kind = file_format or infer_format(path)
        if kind != "parquet":
            fragments.append(Fragment(path, kind))
            continue
        try:
            metadata = pq.ParquetFile(path).metadata
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        first = 0
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            fragments.append(Fragment(path, kind, index, first, rows))
            first += rows
    return fragments


def iter_fragment(
    fragment: Fragment,
    columns: dict[str, pa.DataType],
    csv_format: CsvFormat | None = None,
    batch_rows: int = 65536,
    report: ReadReport | None = None,
    separators: Mapping[str, str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Record batches of one fragment (see :func:`mtlrec.io.iter_record_batches`)."""
    row_groups = None if fragment.row_group is None else [fragment.row_group]
    yield from iter_record_batches(
        fragment.path, columns, fragment.file_format, csv_format, batch_rows, report, row_groups, separators
    )


def count_rows(
    fragments: list[Fragment], column: str, csv_format: CsvFormat | None = None, batch_rows: int = 65536
) -> list[Fragment]:
    """The fragments with ``rows`` filled in; CSV files are read once (only ``column``) to count them."""
    counted = []
    for fragment in fragments:
        if fragment.rows is None:
            batches = iter_fragment(fragment, {column: pa.string()}, csv_format, batch_rows, ReadReport())
            rows = sum(batch.num_rows for batch in batches)
            fragment = replace(fragment, rows=rows)
        counted.append(fragment)
    return counted


def epoch_shard(fragments: list[Fragment], seed: int, epoch: int, rank: int, world_size: int) -> list[Fragment]:
    """This rank's fragments for an epoch, in reading order.

    Every rank draws the same seeded permutation of all fragments (it depends on ``seed`` and
    ``epoch`` only) and deals it out the same way, so the shards partition the data: each fragment
    in turn goes to the rank holding the fewest rows so far (the lowest such rank on ties), which
    balances fragments of unequal sizes; round-robin while row counts are unknown. With one rank
    the result is the whole permuted list.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(fragments))
    if any(fragments[i].rows is None for i in order):
        return [fragments[i] for i in order[rank::world_size]]
    loads = [0] * world_size
    mine = []
    for index in order:
        owner = loads.index(min(loads))
        loads[owner] += fragments[index].rows or 0
        if owner == rank:
            mine.append(fragments[index])
    return mine


def _known(path: Path) -> bool:
    """Whether a directory's file is data by its name (``notes.md`` beside the parts is not)."""
    return format_from_name(path) is not None
