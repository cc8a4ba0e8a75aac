"""Calibration metrics: how well predicted values match observed ones on average and per probability bin."""

from __future__ import annotations

import numpy as np


def calibration(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean prediction / mean label (Σ prediction / Σ label): 1 is calibrated, > 1 over-predicts.

    For a CTR model, the predicted click count over the observed click count. Returns NaN when the
    labels sum to 0 (or there are no rows).

    Args:
        labels: (N,) targets (0/1, or non-negative regression values).
        predictions: (N,) probabilities or predicted values.
    """
    label_sum = float(np.sum(np.asarray(labels, dtype=np.float64)))
    if label_sum == 0.0:
        return float("nan")
    return float(np.sum(np.asarray(predictions, dtype=np.float64)) / label_sum)


def ece(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of binary probabilities over equal-width bins.

    Naeini et al., AAAI 2015, "Obtaining Well Calibrated Probabilities Using Bayesian Binning";
    Guo et al., ICML 2017, "On Calibration of Modern Neural Networks":
    ``ECE = Σ_b (n_b / N) · |mean(y in b) - mean(p in b)| = (1/N) Σ_b |Σ_{i∈b} y_i - Σ_{i∈b} p_i|``.
    This is the binary form (Naeini's): the predicted probability of the positive class against the
    observed positive rate, not Guo's top-label confidence against accuracy. Bin b holds
    ``b/B <= p < (b+1)/B`` (edges ``b/B`` exactly; the last bin also holds p = 1). Empty bins add
    nothing. Returns NaN without rows.

    Args:
        labels: (N,) 0/1 targets.
        probabilities: (N,) predicted probabilities in [0, 1].
        bins: B, the number of equal-width bins.
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.size == 0:
        return float("nan")
    edges = np.arange(bins + 1) / bins
    index = np.searchsorted(edges[1:-1], p, side="right")  # (N,) in 0 .. B-1
    gap = np.bincount(index, weights=y, minlength=bins) - np.bincount(index, weights=p, minlength=bins)
    return float(np.sum(np.abs(gap)) / y.size)
