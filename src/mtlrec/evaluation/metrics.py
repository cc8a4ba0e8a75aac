"""Metrics as pure numpy functions of (labels, scores), registered in ``METRICS``.

Every function is vectorised (sorting and array arithmetic, no per-row or per-group Python loop),
so its cost is O(N log N) time and a few (N,) arrays of memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mtlrec.evaluation.calibration import calibration, ece
from mtlrec.evaluation.ranking import gauc, xauc


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC with ties counted as one half (the Mann–Whitney U statistic).

    Average ranks are given to tied scores, so the result equals scikit-learn's ``roc_auc_score``.
    Returns NaN when only one class is present. O(N log N), vectorised.

    Args:
        labels: (N,) 0/1 targets.
        scores: (N,) scores, higher meaning more likely positive.
    """
    positive = np.asarray(labels) > 0.5
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts_group = np.empty(sorted_scores.size, dtype=bool)
    starts_group[0] = True
    np.not_equal(sorted_scores[1:], sorted_scores[:-1], out=starts_group[1:])
    group = np.cumsum(starts_group) - 1
    group_starts = np.flatnonzero(starts_group)
    group_ends = np.append(group_starts[1:], sorted_scores.size)
    average_rank = (group_starts + 1 + group_ends) / 2.0  # 1-based ranks start+1 .. end
    positive_rank_sum = average_rank[group][positive[order]].sum()
    return float((positive_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities, clipped to [eps, 1 - eps] (float64 eps)."""
    y = np.asarray(labels, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def rmse(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Root mean squared error."""
    diff = np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    return float(np.sqrt(np.mean(diff * diff)))


def mae(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(predictions, np.float64) - np.asarray(labels, np.float64))))


def accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Share of rows whose most probable class is the label: labels (N,) class ids, probabilities (N, C)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(labels).astype(np.int64)))


def cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean −log p(label) of a multi-class prediction (probabilities clipped to [1e-15, 1])."""
    if len(labels) == 0:
        return float("nan")
    picked = np.take_along_axis(np.asarray(probabilities, np.float64), labels.astype(np.int64)[:, None], axis=1)
    return float(-np.mean(np.log(np.clip(picked[:, 0], 1e-15, 1.0))))


@dataclass(frozen=True)
class Metric:
    """A metric function with its direction and the task kinds it applies to.

    Attributes:
        function: ``(labels (N,), scores (N,) or (N, C)) -> float``; with ``needs_groups``,
            ``(labels, scores, groups (N,) int64) -> float``.
        higher_is_better: the direction of the value, or, for a metric with a ``target``, False: the
            distance ``|value - target|`` is what should be small.
        kinds: the task kinds (``binary``, ``regression``, ``multiclass``) it applies to.
        target: the best value of a metric that is best at a point (calibration: 1), else None.
        needs_groups: the function takes each row's group id (``evaluation.group_by``) as a third argument.
    """

    function: Callable[..., float]
    higher_is_better: bool
    kinds: tuple[str, ...]
    target: float | None = None
    needs_groups: bool = False

    @property
    def direction(self) -> Literal["max", "min", "target"]:
        """``max`` or ``min`` for a monotone metric, ``target`` for one best at ``target``."""
        if self.target is not None:
            return "target"
        return "max" if self.higher_is_better else "min"


METRICS: dict[str, Metric] = {
    "auc": Metric(auc, True, ("binary",)),
    "gauc": Metric(gauc, True, ("binary",), needs_groups=True),
    "logloss": Metric(logloss, False, ("binary",)),
    "calibration": Metric(calibration, False, ("binary", "regression"), target=1.0),
    "ece": Metric(ece, False, ("binary",)),
    "rmse": Metric(rmse, False, ("regression",)),
    "mae": Metric(mae, False, ("regression",)),
    "xauc": Metric(xauc, True, ("regression",)),
    "accuracy": Metric(accuracy, True, ("multiclass",)),
    "cross_entropy": Metric(cross_entropy, False, ("multiclass",)),
}
