"""Calibration ratio and expected calibration error against hand computation and a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtlrec.evaluation.calibration import calibration, ece


def ece_by_loop(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """The textbook form: Σ_b (n_b / N) |positive rate in b - mean probability in b|, bins [b/B, (b+1)/B)."""
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        rows = (probabilities >= low) & ((probabilities < high) if b < bins - 1 else (probabilities <= high))
        if rows.any():
            total += rows.sum() / labels.size * abs(labels[rows].mean() - probabilities[rows].mean())
    return total


def test_calibration_by_hand():
    assert calibration(np.array([1, 0, 0, 1]), np.array([0.5, 0.25, 0.25, 0.5])) == pytest.approx(0.75)
    assert calibration(np.array([0.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert calibration(np.array([1, 0]), np.array([0.9, 0.9])) == pytest.approx(1.8)
    assert math.isnan(calibration(np.zeros(3), np.array([0.1, 0.2, 0.3])))


def test_ece_hand_computed():
    # bin 0 (p < 0.1): p 0.05, 0.05, y 0, 1 → |0.5 - 0.05| = 0.45 with weight 2/5
    # bin 8 ([0.8, 0.9)): p 0.8, y 1 → |1 - 0.8| = 0.2 with weight 1/5
    # bin 9 ([0.9, 1]): p 1.0, 0.9, y 1, 0 → |0.5 - 0.95| = 0.45 with weight 2/5
    labels = np.array([0, 1, 1, 1, 0])
    probabilities = np.array([0.05, 0.05, 0.8, 1.0, 0.9])
    expected = 2 / 5 * 0.45 + 1 / 5 * 0.2 + 2 / 5 * 0.45
    assert ece(labels, probabilities) == pytest.approx(expected, abs=1e-12)
    assert ece(labels, probabilities) == pytest.approx(ece_by_loop(labels, probabilities), abs=1e-12)


def test_ece_edges_belong_to_the_upper_bin():
    # p = 0.3 sits on an edge: it is in [0.3, 0.4) with the 0.35, not in [0.2, 0.3) with the 0.25
    labels = np.array([1, 0, 0])
    probabilities = np.array([0.3, 0.35, 0.25])
    upper = (abs(1 - (0.3 + 0.35)) + abs(0 - 0.25)) / 3  # (1/N) Σ_b |Σ y - Σ p|
    lower = (abs(1 - (0.3 + 0.25)) + abs(0 - 0.35)) / 3  # what putting 0.3 in the lower bin would give
    assert ece(labels, probabilities) == pytest.approx(upper, abs=1e-12)
    assert ece(labels, probabilities) != pytest.approx(lower, abs=1e-6)


@pytest.mark.parametrize(("seed", "bins"), [(0, 10), (1, 10), (2, 15), (3, 4)])
def test_ece_matches_loop(seed, bins):
    rng = np.random.default_rng(seed)
    probabilities = rng.random(5000) ** 2
    probabilities[:50] = np.round(probabilities[:50], 1)  # values on bin edges
    labels = (rng.random(5000) < probabilities * 1.2).astype(np.float64)
    value = ece(labels, probabilities, bins)
    assert value == pytest.approx(ece_by_loop(labels, probabilities, bins), abs=1e-12)


def test_ece_of_calibrated_and_miscalibrated_predictions():
    rng = np.random.default_rng(4)
    probabilities = rng.random(200_000)
    labels = (rng.random(200_000) < probabilities).astype(np.float64)
    assert ece(labels, probabilities) < 0.01
    assert ece(labels, np.clip(probabilities + 0.2, 0, 1)) == pytest.approx(0.18, abs=0.02)
    assert math.isnan(ece(np.zeros(0), np.zeros(0)))
