"""Pick one fusion setting of a sweep: maximise a criterion subject to constraints, e.g.
``--maximize click.gauc --constraint "conversion.auc >= 0.8"``.

Criteria and constraints are formulas over ``task.metric`` names, parsed by the same safe
expression language as model selection (:mod:`mtlrec.evaluation.selection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from mtlrec.evaluation.selection import parse_metric_formula
from mtlrec.export.fusion import Fusion
from mtlrec.tuning.sweep import Sweep


@dataclass(frozen=True)
class Choice:
    """The chosen setting (``index`` into the sweep), or None with the reason in ``message``."""

    index: int | None
    criterion: str
    message: str


def choose(sweep: Sweep, maximize: str | None = None, constraints: Sequence[str] = ()) -> Choice:
    """The setting with the highest criterion among those meeting every constraint.

    Ties go to a setting on the Pareto front, then to the first in grid order. Settings whose
    criterion is NaN are never chosen.

    Args:
        sweep: the scored settings.
        maximize: a formula over ``task.metric`` names; default: the mean of all the sweep's metrics.
        constraints: conditions such as ``conversion.auc >= 0.8``.

    Raises:
        ExpressionError: (a ValueError) a formula does not parse or names an unknown ``task.metric``.
    """
    available: dict[str, list[str]] = {}
    for name in sweep.metric_names:
        task, _, metric = name.rpartition(".")
        available.setdefault(task, []).append(metric)
    conditions = [parse_metric_formula(text, available) for text in constraints]
    for condition, text in zip(conditions, constraints):
        if not condition.expression.is_boolean:
            raise ValueError(f"constraint {text!r} is not a condition (e.g. 'conversion.auc >= 0.8')")
    formula = parse_metric_formula(maximize, available) if maximize else None
    if formula is not None and formula.expression.is_boolean:
        raise ValueError(f"--maximize {maximize!r} is a condition, not a number")
    criterion_text = maximize or f"mean({', '.join(sweep.metric_names)})"
    nested = [sweep.metrics(index) for index in range(len(sweep.fusions))]
    criterion = np.array(
        [formula.evaluate(m) if formula else float(np.mean(sweep.values[i])) for i, m in enumerate(nested)]
    )
    met = np.array([all(c.evaluate(m) for c in conditions) for m in nested], dtype=bool)
    eligible = met & ~np.isnan(criterion)
    if not eligible.any():
        return Choice(None, criterion_text, _unmet(sweep, constraints, met))
    best = np.where(eligible, criterion, -np.inf)
    ties = best == best.max()
    preferred = ties & sweep.front if (ties & sweep.front).any() else ties
    index = int(np.flatnonzero(preferred)[0])
    text = f"max {criterion_text} = {criterion[index]:.6g}" + (
        f" subject to {' and '.join(constraints)}" if constraints else ""
    )
    return Choice(index, criterion_text, text)


def _unmet(sweep: Sweep, constraints: Sequence[str], met: np.ndarray) -> str:
    if not met.any():
        ranges = ", ".join(
            f"{name} {np.nanmin(sweep.values[:, k]):.4f}..{np.nanmax(sweep.values[:, k]):.4f}"
            for k, name in enumerate(sweep.metric_names)
        )
        return f"no setting meets {' and '.join(constraints)}; the sweep's ranges: {ranges}"
    return "every setting meeting the constraints has a NaN criterion"


def fusion_config(fusion: Fusion) -> dict[str, Any]:
    """``{"serving": {"fusion": {kind: {task: weight}}}}`` as written in a run config."""
    if fusion.kind == "formula":
        return {"serving": {"fusion": {"formula": fusion.formula}}}
    return {"serving": {"fusion": {fusion.kind: {task: round(w, 6) for task, w in fusion.weights.items()}}}}


def fusion_yaml(fusion: Fusion) -> str:
    """The YAML snippet to paste into a config (``serving: {fusion: ...}``)."""
    return yaml.safe_dump(fusion_config(fusion), sort_keys=False, default_flow_style=False)
