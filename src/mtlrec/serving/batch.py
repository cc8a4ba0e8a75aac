"""Batch prediction through an artifact: stream a CSV/Parquet file in record batches, write Parquet (or CSV).

Memory stays bounded by a few record batches whatever the file size: each batch is read, encoded,
scored and appended to the output, which is written to a temporary file and renamed into place
only when every row is done. A worker thread reads and encodes the next batch while the current one
is scored (pyarrow's readers and compute functions and ONNX Runtime all release the GIL).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mtlrec.errors import DataError
from mtlrec.io import ReadReport, atomic_write, expand_paths, iter_record_batches
from mtlrec.serving.predictor import Predictor

log = logging.getLogger(__name__)


def score_table(scores: dict[str, np.ndarray]) -> pa.Table:
    """Scores as a table: one float column per single-score output, a fixed-size list of C per multi-class task."""
    columns = {}
    for name, values in scores.items():
        if values.ndim == 1:
            columns[name] = pa.array(values)
        else:
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    return pa.table(columns)


def predict_file(
    predictor: Predictor,
    data_path: str | Path,
    output: str | Path,
    batch_rows: int = 65536,
    file_format: str | None = None,
) -> int:
    """Score every row of ``data_path`` into ``output`` (``.parquet``/``.pq`` or ``.csv``); returns the row count.

    ``data_path`` is a CSV or Parquet file, a directory or a glob (files in sorted order, one output).

    Output columns: each task's score (a list of C class probabilities for a multi-class task, Parquet
    only), then ``score``, the fused score; row order is the input's.

    Raises:
        DataError: unreadable input, a missing column, or an output name that is neither Parquet nor CSV.
    """
    name = str(output).lower()
    if not name.endswith((".parquet", ".pq", ".csv")):
        raise DataError(f"{output}: output must end in .parquet or .csv")
    report = ReadReport()
    batches = itertools.chain.from_iterable(
        iter_record_batches(
            path,
            predictor.input_columns,
            file_format,
            predictor.csv_format,
            batch_rows,
            report,
            separators=predictor.separators,
        )
        for path in expand_paths(data_path)
    )
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        writer = None
        try:
            for scores in _scored(predictor, batches, str(data_path)):
                table = score_table(scores)
                if writer is None:
                    writer = _open_writer(tmp, table.schema, csv=name.endswith(".csv"), output=output)
                writer.write_table(table)
                rows += table.num_rows
            if writer is None:  # an empty input still gives a file with the columns
                empty = score_table(
                    {n: np.zeros((0, *predictor.output_shape(n)), np.float32) for n in predictor.output_names}
                )
                writer = _open_writer(tmp, empty.schema, csv=name.endswith(".csv"), output=output)
        finally:
            if writer is not None:
                writer.close()

    atomic_write(output, write)
    if report.skipped_rows:
        log.warning("%s: skipped %d malformed row(s)", data_path, report.skipped_rows)
    return rows


def _scored(predictor: Predictor, batches: Iterator[pa.RecordBatch], source: str) -> Iterator[dict[str, np.ndarray]]:
    """Scores of each batch; a worker thread reads and encodes batch k+1 while batch k is scored."""

    def read_and_encode() -> dict[str, np.ndarray] | None:
        batch = next(batches, None)
        return None if batch is None else predictor.encode(pa.Table.from_batches([batch]), source)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtlrec-read") as reader:
        pending = reader.submit(read_and_encode)
        while (encoded := pending.result()) is not None:
            pending = reader.submit(read_and_encode)
            yield predictor.score(encoded)


def _open_writer(tmp: Path, schema: pa.Schema, csv: bool, output: str | Path) -> pq.ParquetWriter | pa_csv.CSVWriter:
    if not csv:
        return pq.ParquetWriter(tmp, schema)
    listed = [field.name for field in schema if pa.types.is_fixed_size_list(field.type)]
    if listed:
        raise DataError(f"{output}: multi-class task(s) {listed} give C probabilities per row; write .parquet instead")
    return pa_csv.CSVWriter(tmp, schema)
