"""Sweep score-fusion weights and score each setting's fused ranking against every task's label.

A weighted sum Σ w_t·s_t and a weighted product Π s_t^a_t rank candidates the same way when all
weights are multiplied by one positive number, so the grid only needs weight *directions*: the
points of the simplex Σ w_t = 1 with steps of 1/``steps`` (``C(steps + T − 1, T − 1)`` settings per
kind for T fused tasks; corners rank by one task alone).

Each setting's fused score is scored on every labelled task: AUC (and GAUC, Zhou et al., KDD 2018,
with a group column) of the fused order against a binary task's label, XAUC (Zhan et al., KDD 2022)
against a regression task's label; rows outside a task's sample space (NaN label) are left out.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mtlrec.evaluation.metrics import auc
from mtlrec.evaluation.ranking import gauc, xauc
from mtlrec.export.fusion import Fusion
from mtlrec.tuning.pareto import pareto_front

SWEPT_KINDS = ("weighted_sum", "weighted_product")


@dataclass(frozen=True)
class TaskLabels:
    """A task's targets in their original unit: (N,) float, NaN outside its sample space or missing."""

    task: str
    kind: str  # binary | regression (multi-class tasks are not scored)
    labels: np.ndarray


@dataclass
class Sweep:
    """Every setting, its metrics and the Pareto front.

    Attributes:
        fusions: the S settings, in grid order (weighted sums first).
        metric_names: the K objectives, ``task.metric``.
        values: (S, K) metric values (higher is better).
        front: (S,) bool, True for settings no other setting dominates.
    """

    fusions: list[Fusion]
    metric_names: list[str]
    values: np.ndarray
    front: np.ndarray

    def metrics(self, index: int) -> dict[str, dict[str, float]]:
        """Setting ``index``'s metrics as ``{task: {metric: value}}``."""
        nested: dict[str, dict[str, float]] = {}
        for name, value in zip(self.metric_names, self.values[index]):
            task, _, metric = name.rpartition(".")
            nested.setdefault(task, {})[metric] = float(value)
        return nested


def simplex_grid(dims: int, steps: int) -> np.ndarray:
    """All weight vectors with entries k/``steps`` (k = 0..steps) summing to 1, by stars and bars.

    Returns:
        (S, dims) float64, S = C(steps + dims − 1, dims − 1).
    """
    if dims < 1 or steps < 1:
        raise ValueError(f"a simplex grid needs dims >= 1 and steps >= 1, got {dims} and {steps}")
    slots = steps + dims - 1
    bars = np.array(list(itertools.combinations(range(slots), dims - 1)), dtype=np.int64).reshape(-1, dims - 1)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), slots)], axis=1)
    return (np.diff(edges, axis=1) - 1) / steps


def fusion_grid(tasks: Sequence[str], steps: int, kinds: Sequence[str] = SWEPT_KINDS) -> list[Fusion]:
    """Weighted sums and/or products of ``tasks`` (at least two) over :func:`simplex_grid`."""
    if len(tasks) < 2:
        raise ValueError(f"a fusion sweep needs at least two tasks, got {list(tasks)}")
    unknown = [kind for kind in kinds if kind not in SWEPT_KINDS]
    if unknown:
        raise ValueError(f"cannot sweep {unknown}; choose from {', '.join(SWEPT_KINDS)}")
    grid = simplex_grid(len(tasks), steps)
    return [Fusion(kind, {t: round(float(w), 10) for t, w in zip(tasks, row)}) for kind in kinds for row in grid]


def metric_plan(targets: Sequence[TaskLabels], grouped: bool) -> list[tuple[TaskLabels, str]]:
    """The (task, metric) objectives: auc (+ gauc when ``grouped``) per binary task, xauc per regression task."""
    plan = []
    for target in targets:
        if target.kind == "binary":
            plan += [(target, "auc")] + ([(target, "gauc")] if grouped else [])
        elif target.kind == "regression":
            plan.append((target, "xauc"))
    return plan


def sweep_fusions(
    scores: Mapping[str, np.ndarray],
    targets: Sequence[TaskLabels],
    fusions: Sequence[Fusion],
    groups: np.ndarray | None = None,
) -> Sweep:
    """Score every fusion's ranking on every task.

    Args:
        scores: {task: (N,) score in its original unit}, each task's model output, computed once.
        targets: the labelled tasks to score against.
        fusions: the settings (:func:`fusion_grid`).
        groups: (N,) int64 group ids for GAUC (-1: no group), or None.

    Raises:
        ValueError: no task can be scored, or a weighted product over a task with scores <= 0.
    """
    plan = metric_plan(targets, groups is not None)
    if not plan:
        raise ValueError("no binary or regression task with labels to score the fused ranking against")
    for fusion in fusions:
        if fusion.kind == "weighted_product":
            bad = [t for t in fusion.names if np.nanmin(scores[t]) <= 0]
            if bad:
                raise ValueError(f"a weighted product needs positive scores; task(s) {bad} have scores <= 0")
    present = {target.task: ~np.isnan(target.labels) for target in targets}
    values = np.empty((len(fusions), len(plan)))
    for row, fusion in enumerate(fusions):
        fused = fusion.evaluate_numpy(scores)
        for column, (target, metric) in enumerate(plan):
            keep = present[target.task]
            values[row, column] = _score(
                metric, target.labels[keep], fused[keep], None if groups is None else groups[keep]
            )
    names = [f"{target.task}.{metric}" for target, metric in plan]
    return Sweep(list(fusions), names, values, pareto_front(values))


def _score(metric: str, labels: np.ndarray, fused: np.ndarray, groups: np.ndarray | None) -> float:
    if metric == "auc":
        return auc(labels, fused)
    if metric == "gauc":
        return gauc(labels, fused, groups)
    return xauc(labels, fused)
