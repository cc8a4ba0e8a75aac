"""Model selection on validation metrics: a criterion (one metric, or a formula over several) and constraints.

Metrics are named ``task.metric`` (``click.auc``). Formulas use the safe expression language of
:mod:`mtlrec.expressions` (arithmetic, ``min``/``max``/``abs``..., comparisons, ``and``/``or``);
since its names are plain identifiers, each ``task.metric`` is rewritten to ``task_metric`` (same
length, so error positions still point into the text as written) before parsing.

A constraint is a condition such as ``conversion.auc >= 0.8``. Selection is lexicographic: an evaluation
meeting every constraint beats any evaluation that does not; among those on the same side, the criterion
decides. A metric that is NaN (e.g. AUC of a single-class split) makes the criterion NaN (never
selected) and every comparison with it false (the constraint is not met).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtlrec.evaluation.metrics import METRICS
from mtlrec.expressions import Expression, ExpressionError, parse_expression

_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(?![\w.])")

Metrics = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class MetricFormula:
    """An expression over validation metrics.

    Attributes:
        text: how it is shown (the configured text, or ``abs(task.metric - target)``).
        expression: the parsed expression, over identifiers.
        names: {identifier in ``expression``: (task, metric)}.
    """

    text: str
    expression: Expression
    names: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def evaluate(self, metrics: Metrics) -> Any:
        """Its value (a float, or a bool for a condition) on ``{task: {metric: value}}``."""
        values = {name: float(metrics[task][metric]) for name, (task, metric) in self.names.items()}
        result = self.expression.evaluate(values)
        return bool(result) if self.expression.is_boolean else float(result)


@dataclass(frozen=True)
class SelectionCriterion:
    """What model selection optimises on the validation metrics, and the constraints an evaluation should meet.

    Attributes:
        criterion: the number to optimise.
        higher_is_better: maximise (True) or minimise it.
        constraints: conditions; evaluations meeting them all are preferred.
    """

    criterion: MetricFormula
    higher_is_better: bool
    constraints: tuple[MetricFormula, ...] = ()

    def evaluate(self, metrics: Metrics) -> dict[str, Any]:
        """``{"criterion": value, "constraints_met": bool}`` (plus ``"violated": [texts]`` when some are not met)."""
        result: dict[str, Any] = {"criterion": self.criterion.evaluate(metrics)}
        violated = [constraint.text for constraint in self.constraints if not constraint.evaluate(metrics)]
        result["constraints_met"] = not violated
        if violated:
            result["violated"] = violated
        return result

    def describe(self) -> str:
        """E.g. ``max 0.7 * click.auc + 0.3 * conversion.auc subject to conversion.auc >= 0.8``."""
        text = f"{'max' if self.higher_is_better else 'min'} {self.criterion.text}"
        return text + (f" subject to {' and '.join(c.text for c in self.constraints)}" if self.constraints else "")


def lone_metric(task: str, metric: str) -> MetricFormula:
    """The criterion of one metric: its value, or for a metric best at a target, ``abs(value - target)``."""
    target = METRICS[metric].target
    if target is None:
        return MetricFormula(f"{task}.{metric}", parse_expression("m"), {"m": (task, metric)})
    return MetricFormula(
        f"abs({task}.{metric} - {target:g})", parse_expression(f"abs(m - {target!r})"), {"m": (task, metric)}
    )


def parse_metric_formula(text: str, available: Mapping[str, Sequence[str]]) -> MetricFormula:
    """Parse a formula over ``task.metric`` names.

    Args:
        text: e.g. ``0.7 * click.auc + 0.3 * conversion.auc`` or ``conversion.auc >= 0.8``.
        available: {task: its metric names}; every name in the formula must be one of these.

    Raises:
        ExpressionError: the text does not parse, or names something other than an available ``task.metric``.
    """
    names: dict[str, tuple[str, str]] = {}
    for match in _DOTTED.finditer(text):
        identifier = f"{match.group(1)}_{match.group(2)}"
        if names.setdefault(identifier, (match.group(1), match.group(2))) != (match.group(1), match.group(2)):
            raise ExpressionError(f"'{match.group()}' is ambiguous with another task.metric name", text, match.start())
    try:
        expression = parse_expression(_DOTTED.sub(lambda m: f"{m.group(1)}_{m.group(2)}", text))
    except ExpressionError as exc:
        raise ExpressionError(exc.reason, text, exc.position, exc.hint) from None
    choices = ", ".join(f"{task}.{metric}" for task, metrics in available.items() for metric in metrics)
    for identifier in sorted(expression.names):
        if identifier not in names:
            raise ExpressionError(
                f"unknown name '{identifier}'", text, None, f"write metrics as task.metric: {choices}"
            )
        task, metric = names[identifier]
        if metric not in available.get(task, ()):
            raise ExpressionError(f"unknown '{task}.{metric}'", text, None, f"choose from {choices}")
    return MetricFormula(text, expression, {k: v for k, v in names.items() if k in expression.names})


def infer_higher_is_better(formula: MetricFormula, mode: str | None) -> bool:
    """Whether to maximise ``formula``: ``mode`` when given, else the common direction of its metrics.

    Raises:
        ValueError: no mode and the metrics disagree (or one is best at a target value, like calibration).
    """
    if mode is not None:
        return mode == "max"
    directions = {metric: METRICS[metric].direction for _, metric in formula.names.values()}
    kinds = set(directions.values())
    if kinds == {"max"} or kinds == {"min"}:
        return kinds == {"max"}
    described = ", ".join(
        f"{m} ({d}{' at ' + format(METRICS[m].target, 'g') if d == 'target' else ''})"
        for m, d in sorted(directions.items())
    )
    raise ValueError(
        f"cannot infer whether to maximise or minimise '{formula.text}' from its metrics' "
        f"directions [{described}]; set mode: max or mode: min"
    )


def split_lone_metric(text: str, available: Mapping[str, Sequence[str]]) -> tuple[str, str] | None:
    """(task, metric) when ``text`` is exactly one available ``task.metric`` (task names may hold dots), else None."""
    task, _, metric = text.strip().rpartition(".")
    return (task, metric) if metric in available.get(task, ()) else None
