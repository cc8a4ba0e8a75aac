"""Reliability diagrams (DeGroot & Fienberg, 1983; Niculescu-Mizil & Caruana, ICML 2005): the observed
positive rate against the mean predicted probability, per bin of predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from mtlrec.data.batch import EncodedData
from mtlrec.evaluation.evaluator import ScoreLink, predict_scores


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> dict[str, list[float]]:
    """The points of a reliability diagram over quantile bins of the predictions.

    Quantile bins hold about N / bins rows each, so a rare positive class (CTR, income > 50K) still
    gets several points where its predictions lie. Edges are the predictions' quantiles at i / bins;
    bin b holds edge_b < p ≤ edge_{b+1} (the first bin also holds its lower edge); bins left empty by
    tied quantiles are dropped.

    Args:
        labels: (N,) 0/1 targets.
        probabilities: (N,) predicted probabilities.
        bins: the number of quantile bins.

    Returns:
        ``{"mean_predicted": [...], "observed_rate": [...], "count": [...]}`` per non-empty bin, in
        increasing order of prediction (empty lists without rows).
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size == 0:
        return {"mean_predicted": [], "observed_rate": [], "count": []}
    edges = np.quantile(p, np.linspace(0.0, 1.0, bins + 1))
    index = np.searchsorted(edges[1:-1], p, side="left")  # (N,) in 0 .. bins-1
    count = np.bincount(index, minlength=bins)
    kept = count > 0
    predicted = np.bincount(index, weights=p, minlength=bins)[kept] / count[kept]
    observed = np.bincount(index, weights=y, minlength=bins)[kept] / count[kept]
    return {"mean_predicted": predicted.tolist(), "observed_rate": observed.tolist(), "count": count[kept].tolist()}


def reliability_report(
    model: nn.Module,
    data: EncodedData,
    links: dict[str, ScoreLink],
    tasks: list[str],
    batch_size: int = 16384,
    bins: int = 15,
) -> dict[str, Any]:
    """Reliability bins of the binary ``tasks`` over a labelled split (rows without a task's label left out).

    Returns:
        ``{task: reliability_bins(...)}``.
    """
    if not data.labels:
        raise ValueError("reliability bins need labels")
    scores = predict_scores(model, data, {task: links[task] for task in tasks}, batch_size)
    result = {}
    for task in tasks:
        labels = data.labels[task].numpy()
        present = ~np.isnan(labels)
        result[task] = reliability_bins(labels[present], scores[task][present], bins)
    return result
