"""Numeric encoder: fill missing values, optional signed log1p, standardise, optional quantile buckets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.features.categorical import FIRST_ID, NotFittedError


def column_to_float(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A float64 numpy copy of an Arrow column with nulls as NaN (N,)."""
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=True)


def quantile_boundaries(values: np.ndarray, buckets: int) -> list[float]:
    """The distinct ``i / buckets`` quantiles (i = 1 .. buckets-1) of ``values`` (N,): bucket boundaries."""
    quantiles = np.quantile(values, np.arange(1, buckets) / buckets) if values.size else []
    return np.unique(np.asarray(quantiles, dtype=np.float64)).tolist()


class NumericEncoder:
    """Turns a numeric column into a standardised float, or into a bucket id when ``buckets`` is set.

    Missing values (null, NaN, ±inf) are replaced by ``fill_value`` (a number, or the training
    column's mean or median) and counted. ``log1p`` applies ``sign(x) * log1p(|x|)``, which equals
    ``log1p(x)`` for the usual non-negative counts and durations and stays finite for negatives.
    With ``buckets``, quantile boundaries fitted on the training column (or explicit ``boundaries``)
    turn the value into an id (``2 + bucket``, bucket i holding boundaries[i-1] <= x < boundaries[i])
    that is embedded like a categorical feature. Boundaries apply to the value after fill and log1p.

    Args:
        fill_value: number, ``"mean"`` or ``"median"``.
        log1p: apply the signed log1p before standardising/bucketising.
        standardize: subtract the training mean and divide by the training std.
        buckets: number of quantile buckets (>= 2), or None.
        boundaries: explicit increasing boundaries, or None. Without either, the output is a dense float.
    """

    kind = "numeric"

    def __init__(
        self,
        fill_value: float | str = "mean",
        log1p: bool = False,
        standardize: bool = True,
        buckets: int | None = None,
        boundaries: list[float] | None = None,
    ):
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
    def num_ids(self) -> int:
        """Embedding rows for a bucketised feature (padding and the unused OOV id included)."""
        self._check_fitted()
        return FIRST_ID + len(self.boundaries_ or []) + 1

    def fit(self, column: pa.Array | pa.ChunkedArray) -> NumericEncoder:
        values = column_to_float(column)
        finite = values[np.isfinite(values)]
        if isinstance(self.fill_value, str):
            statistic = np.mean if self.fill_value == "mean" else np.median
            self.fill_ = float(statistic(finite)) if finite.size else 0.0
        else:
            self.fill_ = float(self.fill_value)
        shaped = self.shape(values)
        self.mean_ = float(shaped.mean()) if shaped.size else 0.0
        std = float(shaped.std()) if shaped.size else 0.0
        self.std_ = std if std > 1e-12 else 1.0
        if self.buckets is not None:
            self.boundaries_ = quantile_boundaries(shaped, self.buckets)
        return self

    def transform(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """(N,) float32 standardised values, or (N,) int64 bucket ids when bucketised."""
        self._check_fitted()
        shaped = self.shape(column_to_float(column))
        if self.boundaries_ is not None:
            return np.searchsorted(np.asarray(self.boundaries_), shaped, side="right").astype(np.int64) + FIRST_ID
        if self.standardize:
            shaped = (shaped - self.mean_) / self.std_
        return shaped.astype(np.float32)

    @staticmethod
    def count_missing(column: pa.Array | pa.ChunkedArray) -> int:
        """How many values are null, NaN or infinite (they get the fill value)."""
        return int((~np.isfinite(column_to_float(column))).sum())

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
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
    def from_dict(cls, state: dict[str, Any]) -> NumericEncoder:
        encoder = cls(
            state["fill_value"],
            state["log1p"],
            state["standardize"],
            state["buckets"],
            state.get("explicit_boundaries"),
        )
        encoder.fill_, encoder.mean_, encoder.std_ = state["fill"], state["mean"], state["std"]
        encoder.boundaries_ = state["boundaries"]
        return encoder

    def shape(self, values: np.ndarray) -> np.ndarray:
        """Fill non-finite values with the fitted fill, then apply the signed log1p if set (N,) → (N,)."""
        values = np.where(np.isfinite(values), values, self.fill_)
        if self.log1p:
            values = np.sign(values) * np.log1p(np.abs(values))
        return values

    def _check_fitted(self) -> None:
        if self.fill_ is None:
            raise NotFittedError("NumericEncoder.transform called before fit")
