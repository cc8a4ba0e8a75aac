"""Label rules: how a raw column becomes a task's target (binary 0/1 or a regression value).

A label value no rule accepts, and a missing label, are errors that name the file, column, value
and data row (1-based, header not counted): silently guessing a label would give wrong numbers.
Rows outside a task's sample space get a NaN target and are not checked (their label is unused).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from mtlrec.errors import DataError
from mtlrec.features.numeric import column_to_float


class LabelRule:
    """Base class: ``arrow_type`` is what the column is read as; ``transform`` gives float32 targets."""

    arrow_type: pa.DataType = pa.float64()
    #: Whether the rule has statistics to fit on the training targets (a standardised regression target).
    needs_fit = False

    def scale(self, targets: np.ndarray) -> np.ndarray:
        """Targets as read → the space the model learns in (identity unless the rule standardises)."""
        return targets

    def fit_moments(self, mean: float, std: float) -> None:
        """Set the fitted statistics (only called when ``needs_fit``)."""

    def transform(
        self, column: pa.ChunkedArray | pa.Array, source: str, column_name: str, in_space: np.ndarray | None = None
    ) -> np.ndarray:
        """(N,) float32 targets. Rows where ``in_space`` (N,) bool is False get NaN and are not checked."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class BinaryLabel(LabelRule):
    """Binary target from listed values or a threshold.

    With none of ``positive``, ``negative`` and ``threshold``, the column must hold 0/1 (or
    true/false) numbers.

    Args:
        positive: values meaning 1 (compared as text, after stripping). Without ``negative``, every
            other value means 0.
        negative: values meaning 0; with it, a value in neither list is an error.
        threshold: 1 when the numeric value is greater than it, else 0.
    """

    def __init__(
        self, positive: list[Any] | None = None, negative: list[Any] | None = None, threshold: float | None = None
    ):
        self.positive = None if positive is None else [_as_text(v) for v in positive]
        self.negative = None if negative is None else [_as_text(v) for v in negative]
        self.threshold = threshold
        self.arrow_type = pa.string() if self.positive is not None else pa.float64()

    def transform(
        self, column: pa.ChunkedArray | pa.Array, source: str, column_name: str, in_space: np.ndarray | None = None
    ) -> np.ndarray:
        _reject_missing(column, source, column_name, in_space)
        if self.positive is None:
            values = column_to_float(column)
            if self.threshold is not None:
                return _outside_to_nan((values > self.threshold).astype(np.float32), in_space)
            _reject_outside(
                ~np.isin(values, (0.0, 1.0)),
                column,
                source,
                column_name,
                "is not 0 or 1; set label.positive or label.threshold to binarise it",
                in_space,
            )
            return _outside_to_nan(values.astype(np.float32), in_space)
        is_positive = pc.is_in(column, value_set=pa.array(self.positive, pa.string())).to_numpy(zero_copy_only=False)
        if self.negative is not None:
            is_negative = pc.is_in(column, value_set=pa.array(self.negative, pa.string())).to_numpy(
                zero_copy_only=False
            )
            _reject_outside(
                ~(is_positive | is_negative),
                column,
                source,
                column_name,
                f"fits no rule (positive: {self.positive}, negative: {self.negative})",
                in_space,
            )
        return _outside_to_nan(is_positive.astype(np.float32), in_space)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "binary", "positive": self.positive, "negative": self.negative, "threshold": self.threshold}


class RegressionLabel(LabelRule):
    """A real-valued target (must be finite), optionally transformed: clip, then log1p, then standardise.

    Clipping and log1p apply when the column is read; standardisation uses the mean and standard
    deviation of the (clipped, log1p) training targets, fitted by ``fit`` and applied by ``scale``.
    ``inverse`` maps model outputs back to the original unit (clipping has no inverse: values beyond
    the bounds come back at the bounds).

    Args:
        clip: (low, high) bounds, or None.
        log1p: apply log(1 + y) (needs y > −1 after clipping).
        standardize: (y − mean) / std with the training mean and std.
    """

    def __init__(self, clip: tuple[float, float] | None = None, log1p: bool = False, standardize: bool = False):
        if clip is not None and not clip[0] < clip[1]:
            raise ValueError(f"clip needs low < high, got {clip}")
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))
        self.log1p, self.standardize = log1p, standardize
        self.needs_fit = standardize
        self.mean_, self.std_ = 0.0, 1.0

    @property
    def transformed(self) -> bool:
        return self.clip is not None or self.log1p or self.standardize

    def transform(
        self, column: pa.ChunkedArray | pa.Array, source: str, column_name: str, in_space: np.ndarray | None = None
    ) -> np.ndarray:
        _reject_missing(column, source, column_name, in_space)
        values = column_to_float(column)
        _reject_outside(~np.isfinite(values), column, source, column_name, "is not a finite number", in_space)
        if self.clip is not None:
            values = np.clip(values, *self.clip)
        if self.log1p:
            _reject_outside(values <= -1, column, source, column_name, "is <= -1, outside log1p's domain", in_space)
            values = np.log1p(np.maximum(values, -1 + 1e-12))
        return _outside_to_nan(values.astype(np.float32), in_space)

    def fit(self, targets: np.ndarray) -> RegressionLabel:
        """Fit the standardisation on the training targets (as returned by ``transform``; NaN ignored)."""
        finite = targets[np.isfinite(targets)].astype(np.float64)
        if self.standardize and finite.size:
            self.fit_moments(float(finite.mean()), float(finite.std()))
        return self

    def fit_moments(self, mean: float, std: float) -> None:
        """Standardise with this mean and standard deviation (a zero std counts as 1)."""
        self.mean_, self.std_ = mean, std or 1.0

    def scale(self, targets: np.ndarray) -> np.ndarray:
        """Standardise targets (a no-op without ``standardize``)."""
        if not self.standardize:
            return targets
        return ((targets - self.mean_) / self.std_).astype(np.float32)

    def inverse(self, values: torch.Tensor) -> torch.Tensor:
        """Model-space values → the original unit (torch ops only, traceable for export)."""
        if self.standardize:
            values = values * self.std_ + self.mean_
        if self.log1p:
            values = torch.expm1(values)
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "regression",
            "clip": None if self.clip is None else list(self.clip),
            "log1p": self.log1p,
            "standardize": self.standardize,
            "mean": self.mean_,
            "std": self.std_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RegressionLabel:
        rule = cls(state.get("clip"), state.get("log1p", False), state.get("standardize", False))
        rule.mean_, rule.std_ = float(state.get("mean", 0.0)), float(state.get("std", 1.0))
        return rule


class ClassLabel(LabelRule):
    """A multi-class target: the index of the value in ``classes`` (compared as text, after stripping).

    Args:
        classes: the C class values, in output order; any other value is an error.
    """

    arrow_type = pa.string()

    def __init__(self, classes: list[Any]):
        self.classes = [_as_text(v) for v in classes]
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"a multi-class label needs at least two distinct classes, got {self.classes}")

    def transform(
        self, column: pa.ChunkedArray | pa.Array, source: str, column_name: str, in_space: np.ndarray | None = None
    ) -> np.ndarray:
        _reject_missing(column, source, column_name, in_space)
        index = pc.index_in(column, value_set=pa.array(self.classes, pa.string()))
        values = index.to_numpy(zero_copy_only=False).astype(np.float32)  # null (unknown value) → NaN
        _reject_outside(np.isnan(values), column, source, column_name, f"is not one of {self.classes}", in_space)
        return _outside_to_nan(values, in_space)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "multiclass", "classes": self.classes}


def label_rule_from_dict(state: dict[str, Any]) -> LabelRule:
    if state["kind"] == "regression":
        return RegressionLabel.from_dict(state)
    if state["kind"] == "multiclass":
        return ClassLabel(state["classes"])
    return BinaryLabel(state["positive"], state["negative"], state["threshold"])


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _outside_to_nan(values: np.ndarray, in_space: np.ndarray | None) -> np.ndarray:
    if in_space is not None:
        values[~in_space] = np.nan
    return values


def _reject_missing(
    column: pa.ChunkedArray | pa.Array, source: str, column_name: str, in_space: np.ndarray | None
) -> None:
    missing = pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
    if in_space is not None:
        missing &= in_space
    count = int(missing.sum())
    if count:
        first = int(np.flatnonzero(missing)[0]) + 1
        raise DataError(
            f"{source}: label column '{column_name}' has {count} missing value(s), the first at data row {first}. "
            "Drop those rows or fill the labels."
        )


def _reject_outside(
    bad: np.ndarray,
    column: pa.ChunkedArray | pa.Array,
    source: str,
    column_name: str,
    reason: str,
    in_space: np.ndarray | None,
) -> None:
    if in_space is not None:
        bad = bad & in_space
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = column[row].as_py()
        raise DataError(
            f"{source}: label column '{column_name}' value {value!r} at data row {row + 1} {reason} "
            f"({int(bad.sum())} row(s) affected)."
        )
