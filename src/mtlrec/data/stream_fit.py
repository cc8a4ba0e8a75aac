"""Fit the feature pipeline in one streamed pass over the training fragments (bounded memory)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from mtlrec.data.prefetch import prefetch
from mtlrec.data.streaming import shift_rows
from mtlrec.errors import DataError
from mtlrec.features import FeaturePipeline, FitLimits, PipelineFit
from mtlrec.io import CsvFormat, Fragment, ReadReport, iter_fragment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """Bounds of the streamed fit (see :class:`mtlrec.features.streaming_fit.StreamingFit`)."""

    sample_rows: int = 1_000_000
    max_distinct_values: int = 5_000_000
    seed: int = 0
    read_batch_rows: int = 65_536
    csv: CsvFormat = CsvFormat()
    prefetch_batches: int = 4


def fit_streaming(
    pipeline: FeaturePipeline,
    fragments: list[Fragment],
    settings: FitSettings,
    on_labels: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> tuple[FeaturePipeline, list[Fragment]]:
    """Fit ``pipeline`` on every fragment, read once in order; also count each fragment's rows.

    Labels are checked as they are read (errors name the file and its data row).

    Args:
        pipeline: the pipeline to fit.
        fragments: the training data's fragments.
        settings: the fit's bounds and reading options.
        on_labels: called with each record batch's labels ({task: (N,)}, NaN where a task has none), e.g.
            to measure the label correlation in the same pass.

    Returns:
        The fitted pipeline and the fragments with ``rows`` filled in.

    Raises:
        DataError: unreadable data, bad labels, or no rows at all.
    """
    fit = PipelineFit(pipeline, FitLimits(settings.sample_rows, settings.max_distinct_values, settings.seed))
    columns, separators = pipeline.column_types(include_labels=True), pipeline.separators()
    rows = [0] * len(fragments)

    def produce() -> Iterator[tuple[int, pa.Table, dict[str, np.ndarray], int]]:
        for index, fragment in enumerate(fragments):
            first_row, report = fragment.first_row, ReadReport()
            for batch in iter_fragment(fragment, columns, settings.csv, settings.read_batch_rows, report, separators):
                table = pa.Table.from_batches([batch])
                try:
                    labels = pipeline.transform_labels(table, str(fragment.path))
                except DataError as exc:
                    raise DataError(shift_rows(str(exc), first_row)) from None
                yield index, table, labels, first_row
                first_row += batch.num_rows
            if report.skipped_rows:
                log.warning("%s: skipped %d malformed row(s)", fragment, report.skipped_rows)

    for index, table, labels, first_row in prefetch(produce, settings.prefetch_batches, "mtlrec-fit-reader"):
        try:
            fit.update(table, labels, str(fragments[index].path))
        except DataError as exc:
            raise DataError(shift_rows(str(exc), first_row)) from None
        if on_labels is not None:
            on_labels(labels)
        rows[index] += table.num_rows
    if fit.rows == 0:
        raise DataError(f"{', '.join(sorted({str(f.path) for f in fragments}))}: no data rows to fit the features on")
    log.info("fitted the features in one streamed pass over %d rows in %d fragment(s)", fit.rows, len(fragments))
    counted = [replace(fragment, rows=count) for fragment, count in zip(fragments, rows)]
    return fit.finish(), counted
