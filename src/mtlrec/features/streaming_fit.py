"""Fit a FeaturePipeline in one streamed pass over record batches, with bounded memory.

What is kept per batch, and merged:

* numeric features: count, mean and sum of squared deviations of the finite values, merged with
  the pairwise update of Chan, Golub & LeVeque ("Updating formulae and a pairwise algorithm for
  computing sample variances", 1979), before and after the feature's log1p; the count of missing
  values. The missing values all receive the same fill, so they join the statistics at the end as
  one group of identical values — the result equals the in-memory fit up to rounding.
* a median fill and quantile buckets need the values themselves: they come from a uniform sample
  of at most ``sample_rows`` values per column (reservoir sampling, Vitter's Algorithm R, drawn
  per batch). When the sample holds every row the boundaries equal the in-memory fit exactly.
* categorical features: exact value counts per batch (``pyarrow.compute.value_counts``), merged
  with a group-by when the pending counts outgrow the merged ones. A column with more than
  ``max_distinct_values`` distinct values stops being counted and its features fall back to hash
  buckets (``max_vocab_size`` buckets when set, else ``max_distinct_values``), with a warning.
* regression labels: the standardisation's mean and std, merged like the numeric features.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.features.categorical import CategoricalEncoder
from mtlrec.features.labels import RegressionLabel
from mtlrec.features.numeric import NumericEncoder, column_to_float, quantile_boundaries
from mtlrec.features.pipeline import FeaturePipeline

log = logging.getLogger(__name__)

#: Pending per-batch counts are merged once they hold more entries than this (or than the merged counts).
MERGE_MIN_ENTRIES = 1 << 20


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (M2) of a stream of values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        """Merge a batch of (finite) values (N,)."""
        if values.size:
            batch_mean = float(values.mean())
            self.merge(values.size, batch_mean, float(np.square(values - batch_mean).sum()))

    def merge(self, count: int, mean: float, m2: float) -> None:
        """Merge another group's statistics (Chan et al. 1979, eq. 2.1)."""
        if count == 0:
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total

    @property
    def std(self) -> float:
        """Population standard deviation (0 without values)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


class Reservoir:
    """A uniform sample without replacement of at most ``capacity`` values of a stream (Algorithm R).

    Args:
        capacity: K, the most values kept.
        rng: the random generator (the sample is deterministic given its seed and the stream).
    """

    def __init__(self, capacity: int, rng: np.random.Generator):
        self.capacity, self.rng = capacity, rng
        self.values = np.empty(0, dtype=np.float64)
        self.seen = 0

    def add(self, values: np.ndarray) -> None:
        """Offer a batch (N,): the i-th value of the stream replaces a random slot with probability K/i."""
        free = self.capacity - self.values.size
        if free > 0:
            self.values = np.concatenate([self.values, values[:free]])
        rest = values[max(free, 0) :]
        if rest.size:
            positions = self.seen + max(free, 0) + 1 + np.arange(rest.size)  # 1-based stream positions
            accepted = np.flatnonzero(self.rng.random(rest.size) * positions < self.capacity)
            slots = self.rng.integers(0, self.capacity, accepted.size)
            # sequential semantics: a later value overwrites an earlier one drawn for the same slot
            last = slots.size - 1 - np.unique(slots[::-1], return_index=True)[1]
            self.values[slots[last]] = rest[accepted[last]]
        self.seen += values.size

    @property
    def complete(self) -> bool:
        """Whether the sample holds every value seen."""
        return self.values.size == self.seen


class ValueCounts:
    """Exact counts of a string column's values, merged batch by batch, up to ``cap`` distinct values."""

    def __init__(self, cap: int):
        self.cap = cap
        self.merged = pa.table({"values": pa.array([], pa.string()), "counts": pa.array([], pa.int64())})
        self.pending: list[pa.Table] = []
        self.pending_entries = 0
        self.overflowed = False

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        if self.overflowed:
            return
        counts = pc.value_counts(pc.drop_null(column))
        self.pending.append(pa.table({"values": counts.field("values"), "counts": counts.field("counts")}))
        self.pending_entries += len(counts)
        if self.pending_entries > max(MERGE_MIN_ENTRIES, self.merged.num_rows):
            self._merge()

    def result(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Distinct values (V,) str and counts (V,) int64, or None after an overflow."""
        self._merge()
        if self.overflowed:
            return None
        return (
            self.merged.column("values").to_numpy().astype(str),
            self.merged.column("counts").to_numpy(),
        )

    def _merge(self) -> None:
        if self.overflowed or not self.pending:
            return
        stacked = pa.concat_tables([self.merged, *self.pending])
        self.pending, self.pending_entries = [], 0
        grouped = stacked.group_by("values").aggregate([("counts", "sum")])
        self.merged = pa.table({"values": grouped.column("values"), "counts": grouped.column("counts_sum")})
        if self.merged.num_rows > self.cap:
            self.overflowed, self.merged = True, self.merged.slice(0, 0)


class StreamingFit:
    """Fits ``pipeline``'s encoders from record batches offered one at a time.

    Args:
        pipeline: the unfitted pipeline (its encoders are fitted in place by :meth:`finish`).
        sample_rows: values kept per numeric column for a median fill and quantile buckets.
        max_distinct_values: distinct values counted per categorical column before it is hashed.
        seed: seeds the reservoir samples.
    """

    def __init__(
        self,
        pipeline: FeaturePipeline,
        sample_rows: int = 1_000_000,
        max_distinct_values: int = 5_000_000,
        seed: int = 0,
    ):
        self.pipeline, self.max_distinct_values, self.rows = pipeline, max_distinct_values, 0
        rng = np.random.default_rng(seed)
        categorical = [f for f in pipeline.features if _counted(f.encoder)]
        numeric = [f for f in pipeline.features if isinstance(f.encoder, NumericEncoder)]
        self.counts = {f.column: ValueCounts(max_distinct_values) for f in categorical}
        self.raw = {f.column: Moments() for f in numeric}
        self.missing = {f.column: 0 for f in numeric}
        self.shaped = {f.name: Moments() for f in numeric}
        self.samples = {f.column: Reservoir(sample_rows, rng) for f in numeric if _needs_sample(f.encoder)}
        self.targets = {i: Moments() for i, s in enumerate(pipeline.labels) if isinstance(s.rule, RegressionLabel)}

    def update(self, batch: pa.RecordBatch | pa.Table, labels: np.ndarray | None = None) -> None:
        """Count one batch of input columns and its (N, T) targets as read (before standardisation)."""
        self.rows += batch.num_rows
        for column, counts in self.counts.items():
            counts.add(batch.column(column))
        values_by_column = {column: column_to_float(batch.column(column)) for column in self.raw}
        for column, values in values_by_column.items():
            finite = values[np.isfinite(values)]
            self.raw[column].add(finite)
            self.missing[column] += values.size - finite.size
            if column in self.samples:
                self.samples[column].add(values)
        for feature in self.pipeline.features:
            if feature.name in self.shaped:
                values = values_by_column[feature.column]
                finite = values[np.isfinite(values)]
                self.shaped[feature.name].add(_signed_log1p(finite) if feature.encoder.log1p else finite)
        if labels is not None:
            for index, moments in self.targets.items():
                target = labels[:, index].astype(np.float64)
                moments.add(target[np.isfinite(target)])

    def finish(self) -> FeaturePipeline:
        """Set every encoder's fitted state; returns the pipeline."""
        for feature in self.pipeline.features:
            if isinstance(feature.encoder, NumericEncoder):
                self._finish_numeric(feature.name, feature.column, feature.encoder)
            elif _counted(feature.encoder):
                self._finish_categorical(feature.name, feature.column, feature.encoder)
        for index, moments in self.targets.items():
            rule = self.pipeline.labels[index].rule
            if rule.standardize and moments.count:
                rule.mean_, rule.std_ = moments.mean, moments.std or 1.0
        return self.pipeline

    def _finish_categorical(self, name: str, column: str, encoder: CategoricalEncoder) -> None:
        counted = self.counts[column].result()
        if counted is not None:
            encoder.fit_counts(*counted)
            return
        buckets = encoder.max_vocab_size or self.max_distinct_values
        log.warning(
            "feature '%s' (column '%s'): more than %d distinct values in the training data; hashed into %d "
            "buckets instead of a vocabulary (raise data.streaming.max_distinct_values to keep one)",
            name,
            column,
            self.max_distinct_values,
            buckets,
        )
        encoder.hash_buckets, encoder.min_count, encoder.max_vocab_size = buckets, 1, None

    def _finish_numeric(self, name: str, column: str, encoder: NumericEncoder) -> None:
        sample = self.samples[column].values if column in self.samples else np.empty(0)
        if encoder.fill_value == "mean":
            encoder.fill_ = self.raw[column].mean if self.raw[column].count else 0.0
        elif encoder.fill_value == "median":
            finite = sample[np.isfinite(sample)]
            encoder.fill_ = float(np.median(finite)) if finite.size else 0.0
        else:
            encoder.fill_ = float(encoder.fill_value)
        moments = Moments(self.shaped[name].count, self.shaped[name].mean, self.shaped[name].m2)
        fill = np.array([encoder.fill_], dtype=np.float64)
        moments.merge(self.missing[column], float(_signed_log1p(fill)[0] if encoder.log1p else fill[0]), 0.0)
        encoder.mean_ = moments.mean if moments.count else 0.0
        encoder.std_ = moments.std if moments.std > 1e-12 else 1.0
        if encoder.buckets is not None:
            if not self.samples[column].complete:
                log.info("feature '%s': quantile buckets from a sample of %d of %d rows", name, sample.size, self.rows)
            encoder.boundaries_ = quantile_boundaries(encoder.shape(sample), encoder.buckets)


def _counted(encoder: object) -> bool:
    return isinstance(encoder, CategoricalEncoder) and encoder.hash_buckets is None


def _needs_sample(encoder: NumericEncoder) -> bool:
    return encoder.fill_value == "median" or encoder.buckets is not None


def _signed_log1p(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))
