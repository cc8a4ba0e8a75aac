"""Training data streamed from files: fragments → record batches → encode → shuffle buffer → batches.

Per epoch the fragments (Parquet row groups, CSV files) are shuffled with a seed that depends on the
epoch and dealt to the data-parallel ranks; each rank reads its fragments record batch by record
batch, encodes them with the fitted pipeline (vectorised: pyarrow compute and numpy), passes the
rows through a shuffle buffer and cuts batches of its share of the global batch. All of it runs in
a background thread (:func:`mtlrec.data.prefetch.prefetch`), a bounded number of batches
ahead. Memory is bounded by the shuffle buffer, the prefetch queue and one record batch.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from mtlrec.data.batch import Batch
from mtlrec.data.prefetch import prefetch
from mtlrec.data.shuffle import Columns, ShuffleBuffer, rebatch
from mtlrec.errors import DataError
from mtlrec.features import FeaturePipeline
from mtlrec.io import CsvFormat, Fragment, ReadReport, epoch_shard, iter_fragment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSettings:
    """How a stream is read and batched.

    Attributes:
        batch_size: the global batch; each of ``world_size`` ranks yields ``batch_size / world_size`` rows.
        seed: seeds the fragment order and the shuffle buffer (with the epoch and the rank).
        shuffle_buffer_rows: rows held by the shuffle buffer (0: only the fragment order is shuffled).
        prefetch_batches: batches prepared ahead in the background thread (0: no thread).
        read_batch_rows: rows per record batch read from disk.
        csv: CSV parsing options.
        rank: this process's place among the data-parallel ranks.
        world_size: this process's place among the data-parallel ranks.
    """

    batch_size: int
    seed: int = 0
    shuffle_buffer_rows: int = 262_144
    prefetch_batches: int = 8
    read_batch_rows: int = 65_536
    csv: CsvFormat = CsvFormat()
    rank: int = 0
    world_size: int = 1

    @property
    def local_batch_size(self) -> int:
        return max(1, self.batch_size // self.world_size)


Block = dict[tuple[str, str], np.ndarray]


def encoded_rows(
    pipeline: FeaturePipeline, batch: pa.RecordBatch, fragment: Fragment, first_row: int, with_labels: bool = True
) -> Block:
    """Encode one record batch: {("inputs", name) | ("labels", task) | ("weights", task): array}.

    Errors name the file and the row within the file (``first_row`` is the batch's 0-based row in it).
    """
    table = pa.Table.from_batches([batch])
    source = str(fragment.path)
    try:
        block: Block = {("inputs", k): v for k, v in pipeline.transform_features(table, source, False).items()}
        if with_labels:
            labels = pipeline.scale_labels(pipeline.transform_labels(table, source))
            block.update({("labels", task): values for task, values in labels.items()})
            weights = pipeline.transform_weights(table, source) or {}
            block.update({("weights", task): values for task, values in weights.items()})
    except DataError as exc:
        raise DataError(shift_rows(str(exc), first_row)) from None
    return block


def shift_rows(message: str, offset: int) -> str:
    """Rewrite "data row N" in an error about a record batch to the row's number within its file."""
    return re.sub(r"data row (\d+)", lambda m: f"data row {int(m.group(1)) + offset}", message)


def iter_fragment_rows(
    pipeline: FeaturePipeline, fragment: Fragment, settings: StreamSettings, columns: dict[str, pa.DataType]
) -> Iterator[Block]:
    """Encoded row blocks of one fragment, in file order."""
    first_row = fragment.first_row
    report = ReadReport()
    separators = pipeline.separators()
    for batch in iter_fragment(fragment, columns, settings.csv, settings.read_batch_rows, report, separators):
        if batch.num_rows:
            yield encoded_rows(pipeline, batch, fragment, first_row)
        first_row += batch.num_rows
    if report.skipped_rows:
        log.warning("%s: skipped %d malformed row(s)", fragment, report.skipped_rows)


class StreamingDataset:
    """Training batches streamed from fragments; implements ``mtlrec.data.sources.TrainSource``.

    Args:
        fragments: every fragment of the training data, with row counts (``mtlrec.io.count_rows``).
        pipeline: the fitted feature pipeline.
        settings: batching, shuffling, prefetching and the rank's place.
        label_correlation: the labels' (T, T) Pearson correlations and common-row counts, measured in
            the fitting pass, for the diagnostics; None if unknown.
    """

    def __init__(
        self,
        fragments: list[Fragment],
        pipeline: FeaturePipeline,
        settings: StreamSettings,
        label_correlation: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        if any(f.rows is None for f in fragments):
            raise ValueError("StreamingDataset needs fragments with row counts (mtlrec.io.count_rows)")
        self.fragments, self.pipeline, self.settings = fragments, pipeline, settings
        self.columns = pipeline.column_types(include_labels=True)
        self.task_names = pipeline.task_names
        self.labels = None  # like unlabelled EncodedData: no labels are held in memory
        self.label_correlation = label_correlation

    @property
    def rows(self) -> int:
        """Rows per epoch over all ranks."""
        return sum(f.rows or 0 for f in self.fragments)

    def __len__(self) -> int:
        return self.rows

    def shard(self, epoch: int, rank: int | None = None) -> list[Fragment]:
        """The fragments ``rank`` (default: this rank) reads in ``epoch``, in reading order."""
        s = self.settings
        return epoch_shard(self.fragments, s.seed, epoch, s.rank if rank is None else rank, s.world_size)

    def steps(self, epoch: int) -> int:
        """Batches per rank: the fewest any rank can fill (ranks with more rows drop their excess)."""
        per_rank = [sum(f.rows or 0 for f in self.shard(epoch, r)) for r in range(self.settings.world_size)]
        return min(math.ceil(rows / self.settings.local_batch_size) for rows in per_rank)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        batches = prefetch(lambda: self._produce(epoch), self.settings.prefetch_batches)
        try:
            for _ in range(self.steps(epoch)):
                batch = next(batches, None)
                if batch is None:
                    return
                yield batch
        finally:
            batches.close()  # stops and joins the reader thread, also when the consumer stops early

    def _produce(self, epoch: int) -> Iterator[Batch]:
        s = self.settings
        rng = np.random.default_rng([s.seed, epoch, s.rank, 1])
        buffer = ShuffleBuffer(s.shuffle_buffer_rows, rng)
        keys: list[tuple[str, str]] = []

        def shuffled() -> Iterator[Columns]:
            for fragment in self.shard(epoch):
                for block in iter_fragment_rows(self.pipeline, fragment, s, self.columns):
                    keys[:] = keys or list(block)
                    yield from buffer.push(tuple(block[key] for key in keys))
            yield from buffer.drain()

        for columns in rebatch(shuffled(), s.local_batch_size):
            yield Batch.from_columns({key: torch.from_numpy(array) for key, array in zip(keys, columns)})
