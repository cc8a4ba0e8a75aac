"""Numeric feature: fill missing values, optional signed log1p, standardise, optional quantile buckets."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.errors import DataError
from mtlrec.features.encoder import Encoder, FitLimits, InputSpec, Table
from mtlrec.features.statistics import Moments, Reservoir
from mtlrec.features.vocabulary import FIRST_ID, VocabularyFit

log = logging.getLogger(__name__)


def column_to_float(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A float64 numpy copy of an Arrow column with nulls as NaN (N,)."""
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=True)


def quantile_boundaries(values: np.ndarray, buckets: int) -> list[float]:
    """The distinct ``i / buckets`` quantiles (i = 1 .. buckets-1) of ``values`` (N,): bucket boundaries."""
    quantiles = np.quantile(values, np.arange(1, buckets) / buckets) if values.size else []
    return np.unique(np.asarray(quantiles, dtype=np.float64)).tolist()


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x)·log1p(|x|): log1p for x ≥ 0, finite and odd for negatives."""
    return np.sign(values) * np.log1p(np.abs(values))


class NumericEncoder(Encoder):
    """A numeric column → a standardised (N,) float32, or (N,) int64 bucket ids when bucketised.

    Missing values (null, NaN, ±inf) are replaced by ``fill_value`` (a number, or the training
    column's mean or median) and counted. ``log1p`` applies ``sign(x) * log1p(|x|)``, which equals
    ``log1p(x)`` for the usual non-negative counts and durations and stays finite for negatives.
    With ``buckets``, quantile boundaries fitted on the training column (or explicit ``boundaries``)
    turn the value into an id (``2 + bucket``, bucket i holding boundaries[i-1] <= x < boundaries[i])
    looked up in the feature's own embedding table. Boundaries apply to the value after fill and log1p.

    Args:
        name: the feature (and input) name.
        column: the source column (default: ``name``).
        fill_value: number, ``"mean"`` or ``"median"``.
        log1p: apply the signed log1p before standardising/bucketising.
        standardize: subtract the training mean and divide by the training std.
        buckets: number of quantile buckets (>= 2), or None.
        boundaries: explicit increasing boundaries, or None. Without either, the output is a dense float.
    """

    kind = "numeric"

    def __init__(
        self,
        name: str,
        column: str | None = None,
        *,
        fill_value: float | str = "mean",
        log1p: bool = False,
        standardize: bool = True,
        buckets: int | None = None,
        boundaries: list[float] | None = None,
    ):
        self.name, self.column = name, column or name
        self.fill_value = fill_value
        self.log1p = log1p
        self.standardize = standardize
        self.buckets = buckets
        self.boundaries = None if boundaries is None else [float(b) for b in boundaries]
        self.fill_: float | None = None
        self.mean_: float = 0.0
        self.std_: float = 1.0
        self.boundaries_: list[float] | None = self.boundaries

    @property
    def produces_ids(self) -> bool:
        return self.buckets is not None or self.boundaries is not None

    @property
    def fitted(self) -> bool:
        return self.fill_ is not None

    @property
    def num_ids(self) -> int:
        """Embedding rows for a bucketised feature (padding and the unused OOV id included)."""
        self._check_fitted()
        return FIRST_ID + len(self.boundaries_ or []) + 1

    def columns(self) -> dict[str, pa.DataType]:
        return {self.column: pa.float64()}

    def tables(self) -> set[str]:
        """Its own table of bucket ids when bucketised."""
        return {self.name} if self.produces_ids else set()

    def begin_fit(self, limits: FitLimits, counters: Mapping[str, VocabularyFit]) -> _NumericFit:
        return _NumericFit(self, limits)

    def transform(self, table: Table, source: str = "input") -> dict[str, np.ndarray]:
        """{name: (N,) float32 standardised values, or (N,) int64 bucket ids when bucketised}."""
        self._check_fitted()
        shaped = self.shape(column_to_float(table.column(self.column)))
        if self.boundaries_ is not None:
            ids = np.searchsorted(np.asarray(self.boundaries_), shaped, side="right").astype(np.int64) + FIRST_ID
            return {self.name: ids}
        if self.standardize:
            shaped = (shaped - self.mean_) / self.std_
        with np.errstate(over="ignore"):  # an overflow is reported below, naming the row
            values = shaped.astype(np.float32)
        if not np.isfinite(values).all():
            raise self._out_of_range(table, values, source)
        return {self.name: values}

    def _out_of_range(self, table: Table, values: np.ndarray, source: str) -> DataError:
        """The error for a value whose transform leaves float32 (``1.7e308`` standardised is ``inf``)."""
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raw = column_to_float(table.column(self.column))[row]
        return DataError(
            f"{source}: column '{self.column}', row {row + 1}: the value {raw:.6g} is out of range for feature "
            f"'{self.name}': after its transform it is not a finite float32 (|x| < 3.4e38); remove the value or "
            "clip it (log1p: true keeps large values finite)",
            column=self.column,
            row=row,
        )

    def inputs(self) -> list[InputSpec]:
        if self.produces_ids:
            return [InputSpec(self.name, self.name, "ids", "int64", (), self.name, self.num_ids)]
        return [InputSpec(self.name, self.name, "dense", "float32")]

    def missing_note(self, table: Table) -> str | None:
        """``"N missing/NaN value(s) filled with v"`` when the table has missing values."""
        missing = int((~np.isfinite(column_to_float(table.column(self.column)))).sum())
        if not missing:
            return None
        return f"{missing} missing/NaN value(s) filled with {self.fill_:.6g}"

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "name": self.name,
            "column": self.column,
            "fill_value": self.fill_value,
            "log1p": self.log1p,
            "standardize": self.standardize,
            "buckets": self.buckets,
            "explicit_boundaries": self.boundaries,
            "fill": self.fill_,
            "mean": self.mean_,
            "std": self.std_,
            "boundaries": self.boundaries_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], vocabularies: Mapping[str, Any] | None = None) -> NumericEncoder:
        encoder = cls(
            state["name"],
            state["column"],
            fill_value=state["fill_value"],
            log1p=state["log1p"],
            standardize=state["standardize"],
            buckets=state["buckets"],
            boundaries=state.get("explicit_boundaries"),
        )
        encoder.fill_, encoder.mean_, encoder.std_ = state["fill"], state["mean"], state["std"]
        encoder.boundaries_ = state["boundaries"]
        return encoder

    def shape(self, values: np.ndarray) -> np.ndarray:
        """Fill non-finite values with the fitted fill, then apply the signed log1p if set (N,) → (N,)."""
        values = np.where(np.isfinite(values), values, self.fill_)
        return signed_log1p(values) if self.log1p else values


class _NumericFit:
    """Moments of the finite values (raw, and after log1p), the count of missing ones, and a sample
    for a median fill or quantile buckets. The missing values all receive the same fill, so they join
    the statistics at the end as one group of identical values."""

    def __init__(self, encoder: NumericEncoder, limits: FitLimits):
        self.encoder = encoder
        self.raw, self.shaped, self.missing = Moments(), Moments(), 0
        needs_sample = encoder.fill_value == "median" or encoder.buckets is not None
        self.sample = Reservoir(limits.sample_rows, np.random.default_rng(limits.seed)) if needs_sample else None

    def update(self, table: Table, source: str = "training data") -> None:
        values = column_to_float(table.column(self.encoder.column))
        finite = values[np.isfinite(values)]
        self.raw.add(finite)
        self.shaped.add(signed_log1p(finite) if self.encoder.log1p else finite)
        self.missing += values.size - finite.size
        if self.sample is not None:
            self.sample.add(values)

    def finish(self) -> None:
        encoder = self.encoder
        sample = self.sample.values if self.sample is not None else np.empty(0)
        if encoder.fill_value == "mean":
            encoder.fill_ = self.raw.mean if self.raw.count else 0.0
        elif encoder.fill_value == "median":
            finite = sample[np.isfinite(sample)]
            encoder.fill_ = float(np.median(finite)) if finite.size else 0.0
        else:
            encoder.fill_ = float(encoder.fill_value)
        fill = encoder.fill_
        moments = Moments(self.shaped.count, self.shaped.mean, self.shaped.m2)
        moments.merge(self.missing, float(signed_log1p(np.array([fill]))[0]) if encoder.log1p else fill, 0.0)
        if self.missing:
            log.info(
                "training data: feature '%s' (column '%s'): %d missing/NaN value(s) filled with %.6g",
                *(encoder.name, encoder.column, self.missing, fill),
            )
        encoder.mean_ = moments.mean if moments.count else 0.0
        encoder.std_ = moments.std if moments.std > 1e-12 else 1.0
        if encoder.buckets is not None:
            if not self.sample.complete:
                log.info(
                    "feature '%s': quantile buckets from a sample of %d of %d rows",
                    encoder.name,
                    sample.size,
                    self.sample.seen,
                )
            encoder.boundaries_ = quantile_boundaries(encoder.shape(sample), encoder.buckets)
