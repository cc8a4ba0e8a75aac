"""LabelSpec: how one task's target, sample space and sample weight are read from a table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.errors import ConfigError, DataError
from mtlrec.expressions import Expression, ExpressionError, parse_expression
from mtlrec.features.labels import LabelRule, label_rule_from_dict

log = logging.getLogger(__name__)

MISSING_LABELS = ("error", "mask")


@dataclass
class LabelSpec:
    """A task's target and the rows and weights it learns from.

    Attributes:
        task: the task name.
        column: the label column.
        rule: turns the column into numbers.
        sample_space: a condition over columns (``click == 1``); rows outside it get a NaN target.
        sample_weight: a column name or a formula over columns (``1 + 2*like + 5*share``) giving each
            row's loss weight (finite, ≥ 0).
        missing: ``error`` (a missing label stops with an error naming the row) or ``mask`` (the row
            gets a NaN target, like a row outside the space, and the count is logged).
    """

    task: str
    column: str
    rule: LabelRule
    sample_space: str | None = None
    sample_weight: str | None = None
    missing: str = "error"

    def __post_init__(self) -> None:
        if self.missing not in MISSING_LABELS:
            raise ConfigError(f"task '{self.task}': missing must be one of {MISSING_LABELS}, got {self.missing!r}")
        self.space = self._parse(self.sample_space, "sample space")
        self.weight = self._parse(self.sample_weight, "sample weight")
        if self.space is not None and not self.space.is_boolean:
            raise ConfigError(
                f"sample space of task '{self.task}': {self.sample_space!r} is not a condition (e.g. click == 1)"
            )

    @property
    def masked(self) -> bool:
        """Whether the task's targets may be NaN (a sample space, or masked missing labels)."""
        return self.space is not None or self.missing == "mask"

    def expression_columns(self) -> set[str]:
        """Columns named by the sample space and the sample weight."""
        return {name for expression in (self.space, self.weight) if expression is not None for name in expression.names}

    def targets(self, table: pa.Table, source: str) -> np.ndarray:
        """(N,) float32 targets; NaN outside the space (and where a masked label is missing)."""
        column = table.column(self.column)
        in_space = None if self.space is None else self._evaluate(self.space, table, source, "sample space")
        if self.missing == "mask":
            present = ~pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
            if not present.all():
                log.info("%s: task '%s': %d missing label(s) masked", source, self.task, int((~present).sum()))
            in_space = present if in_space is None else in_space & present
        return self.rule.transform(column, source, self.column, in_space)

    def weights(self, table: pa.Table, source: str) -> np.ndarray:
        """(N,) float32 sample weights (ones without a weight formula); errors name the first bad row."""
        if self.weight is None:
            return np.ones(table.num_rows, dtype=np.float32)
        values = np.asarray(self._evaluate(self.weight, table, source, "sample weight"), dtype=np.float64)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: sample weight of task '{self.task}' ({self.sample_weight}) is {values[row]!r} "
                f"at data row {row + 1}; weights must be finite and >= 0 ({int(bad.sum())} row(s) affected)"
            )
        return values.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "column": self.column,
            "rule": self.rule.to_dict(),
            "sample_space": self.sample_space,
            "sample_weight": self.sample_weight,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LabelSpec:
        return cls(
            state["task"],
            state["column"],
            label_rule_from_dict(state["rule"]),
            state.get("sample_space"),
            state.get("sample_weight"),
            state.get("missing", "error"),
        )

    def _parse(self, text: str | None, what: str) -> Expression | None:
        if text is None:
            return None
        try:
            return parse_expression(text)
        except ExpressionError as exc:
            raise ConfigError(f"{what} of task '{self.task}': {exc}") from None

    def _evaluate(self, expression: Expression, table: pa.Table, source: str, what: str) -> np.ndarray:
        values = {name: table.column(name).to_numpy() for name in expression.names}
        try:
            return np.broadcast_to(expression.evaluate(values), (table.num_rows,))
        except ExpressionError as exc:
            raise DataError(f"{source}: {what} of task '{self.task}': {exc}") from None
