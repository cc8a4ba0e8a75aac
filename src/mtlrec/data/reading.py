"""From files to encoded splits: read (pyarrow), check labels, split at random, fit, encode.

Labels are checked on each file as read, before any split, so errors name the file's data rows.
Encoders are fitted on the training split only; unseen values elsewhere map to OOV.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.data.batch import Batch, EncodedData
from mtlrec.errors import DataError
from mtlrec.features import FeaturePipeline
from mtlrec.io import CsvFormat, ReadReport, expand_paths, read_table

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


@dataclass
class ReadOptions:
    """How files are read: format (None = from the file name), CSV options, rows per record batch.

    ``group_column`` (``evaluation.group_by``) is also read with labelled data, for grouped metrics (GAUC).
    """

    file_format: str | None = None
    csv: CsvFormat = CsvFormat()
    batch_rows: int = 65536
    group_column: str | None = None


@dataclass
class RandomSplit:
    """Move seeded random fractions of the ``source`` split's rows into other splits (with ``ordered``:
    the last rows of the file, one block per split in the order given, as a time-ordered log is split)."""

    source: str
    fractions: dict[str, float]
    seed: int = 0
    ordered: bool = False


@dataclass
class RawSplit:
    """One split as read: the Arrow table of input columns, its labels and sample weights ({task: (N,)}), if any."""

    table: pa.Table
    labels: dict[str, np.ndarray] | None
    source: str
    weights: dict[str, np.ndarray] | None = None


def read_split(path: str | Path, pipeline: FeaturePipeline, options: ReadOptions, with_labels: bool) -> RawSplit:
    """Read a split's input (and label) columns and encode its labels.

    ``path`` is a file, a directory or a glob; several files are read one by one (label errors name
    each file's own rows) and concatenated in sorted file order.
    """
    parts = [_read_file(file, pipeline, options, with_labels) for file in expand_paths(path)]
    if len(parts) == 1:
        return parts[0]
    table = pa.concat_tables([part.table for part in parts])
    labels = None if not with_labels else _joined([part.labels for part in parts])
    weights = None if parts[0].weights is None else _joined([part.weights for part in parts])
    log.info("read %s: %d files, %d rows", path, len(parts), table.num_rows)
    return RawSplit(table, labels, str(path), weights)


def _read_file(path: Path, pipeline: FeaturePipeline, options: ReadOptions, with_labels: bool) -> RawSplit:
    report = ReadReport()
    table = read_table(
        path,
        _column_types(pipeline, options, with_labels),
        options.file_format,
        options.csv,
        options.batch_rows,
        report,
        pipeline.separators(),
    )
    if report.skipped_rows:
        log.warning("%s: skipped %d malformed row(s), e.g. %r", path, report.skipped_rows, report.skipped_examples[0])
    if table.num_rows == 0:
        raise DataError(f"{path}: the file has no data rows")
    labels = pipeline.transform_labels(table, str(path)) if with_labels else None
    weights = pipeline.transform_weights(table, str(path)) if with_labels else None
    log.info("read %s: %d rows", path, table.num_rows)
    return RawSplit(table, labels, str(path), weights)


def read_splits(
    files: dict[str, str], pipeline: FeaturePipeline, options: ReadOptions, split: RandomSplit | None = None
) -> dict[str, RawSplit]:
    """Read every configured file, then carve random splits (if any). Keys are split names."""
    raw = {name: read_split(path, pipeline, options, with_labels=True) for name, path in files.items()}
    if split is not None:
        raw.update(random_split(raw.pop(split.source), split, split.source))
    return raw


def random_split(data: RawSplit, split: RandomSplit, source_name: str) -> dict[str, RawSplit]:
    """Assign rows to splits by a seeded permutation (or the file's last rows, when ``ordered``); the source
    keeps the rows not moved."""
    rows = data.table.num_rows
    if split.ordered:
        moved = sum(int(round(fraction * rows)) for fraction in split.fractions.values())
        order = np.concatenate([np.arange(rows - moved, rows), np.arange(rows - moved)])
    else:
        order = np.random.default_rng(split.seed).permutation(rows)
    result: dict[str, RawSplit] = {}
    start = 0
    for name, fraction in split.fractions.items():
        count = int(round(fraction * rows))
        result[name] = _take(data, np.sort(order[start : start + count]), f"{data.source} ({name} part)")
        start += count
    result[source_name] = _take(data, np.sort(order[start:]), f"{data.source} ({source_name} part)")
    for name, part in result.items():
        if part.table.num_rows == 0:
            raise DataError(f"{data.source}: the random split leaves '{name}' empty; use larger fractions")
    return result


def encode(raw: RawSplit, pipeline: FeaturePipeline, group_column: str | None = None) -> EncodedData:
    """Encode a split's inputs with a fitted pipeline (and its rows' group ids, if ``group_column`` was read)."""
    inputs = pipeline.transform_features(raw.table, raw.source)
    labels = None if raw.labels is None else pipeline.scale_labels(raw.labels)
    groups = None
    if group_column is not None and group_column in raw.table.column_names:
        groups = group_codes(raw.table.column(group_column))
    return EncodedData(Batch.from_numpy(inputs, labels, raw.weights), pipeline.task_names, groups)


def group_codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """(N,) int64 ids of a column's distinct values (e.g. user ids), in first-seen order; nulls get -1."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    indices = pc.dictionary_encode(column, null_encoding="mask").indices
    return pc.fill_null(indices.cast(pa.int64()), -1).to_numpy()


def _column_types(pipeline: FeaturePipeline, options: ReadOptions, with_labels: bool) -> dict[str, pa.DataType]:
    """The columns to read: the pipeline's, plus the group column (as text unless already read) with labels."""
    types = pipeline.column_types(include_labels=with_labels)
    if with_labels and options.group_column is not None:
        types.setdefault(options.group_column, pa.string())
    return types


def _take(data: RawSplit, indices: np.ndarray, source: str) -> RawSplit:
    labels = None if data.labels is None else {task: values[indices] for task, values in data.labels.items()}
    weights = None if data.weights is None else {task: values[indices] for task, values in data.weights.items()}
    return RawSplit(data.table.take(pa.array(indices)), labels, source, weights)


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {task: np.concatenate([part[task] for part in parts]) for task in parts[0]}
