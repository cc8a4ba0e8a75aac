"""GAUC against a per-group loop over scikit-learn, XAUC against a brute-force pair count."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mtlrec.evaluation import METRICS, auc, compute_metrics
from mtlrec.evaluation.ranking import gauc, xauc


def gauc_by_loop(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    """DIN's definition written out: impression-weighted mean of sklearn AUCs over groups with both classes."""
    total, weight = 0.0, 0
    for group in np.unique(groups[groups >= 0]):
        rows = groups == group
        if len(np.unique(labels[rows])) < 2:
            continue
        total += rows.sum() * roc_auc_score(labels[rows], scores[rows])
        weight += rows.sum()
    return total / weight


def xauc_by_pairs(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Every pair with different labels: 1 when ordered like the labels, 1/2 when the predictions tie."""
    i, j = np.triu_indices(labels.size, k=1)
    label_order = np.sign(labels[i] - labels[j])
    prediction_order = np.sign(predictions[i] - predictions[j])
    counted = label_order != 0
    agree = (label_order * prediction_order)[counted]
    return float(np.mean(np.where(agree > 0, 1.0, np.where(agree == 0, 0.5, 0.0))))


@pytest.mark.parametrize("seed", range(4))
def test_gauc_matches_per_group_sklearn_loop_with_ties_and_single_class_groups(seed):
    rng = np.random.default_rng(seed)
    rows = 3000
    groups = rng.integers(0, 500, size=rows)  # ~6 rows per group: many single-class groups
    labels = (rng.random(rows) < 0.25).astype(np.float32)
    scores = np.round(rng.random(rows) + 0.4 * labels, 1).astype(np.float32)  # heavy ties
    single_class = [g for g in np.unique(groups) if len(np.unique(labels[groups == g])) < 2]
    assert len(single_class) > 20
    assert gauc(labels, scores, groups) == pytest.approx(gauc_by_loop(labels, scores, groups), abs=1e-12)


def test_gauc_hand_computed():
    # group 7: 3 rows, pos 0.9 vs negs 0.5, 0.9 → (1 + 0.5) / 2 = 0.75; group 2: 2 rows, perfect → 1.0;
    # group 5: all negative → skipped. GAUC = (3 * 0.75 + 2 * 1.0) / 5 = 0.85
    labels = np.array([1, 0, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.5, 0.9, 0.2, 0.1, 0.3, 0.4])
    groups = np.array([7, 7, 7, 2, 2, 5, 5])
    assert gauc(labels, scores, groups) == pytest.approx(0.85, abs=1e-12)


def test_gauc_one_group_is_auc_and_order_does_not_matter():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=400)
    scores = np.round(rng.random(400), 2)
    assert gauc(labels, scores, np.zeros(400, np.int64)) == pytest.approx(auc(labels, scores), abs=1e-12)
    groups = rng.integers(0, 9, size=400)
    perm = rng.permutation(400)
    assert gauc(labels[perm], scores[perm], groups[perm]) == pytest.approx(gauc(labels, scores, groups), abs=1e-12)


def test_gauc_string_groups_missing_groups_and_no_valid_group():
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.8, 0.2, 0.1, 0.7, 0.9, 0.1])
    names = np.array(["a", "a", "b", "b", "c", "c"])
    codes = np.array([0, 0, 1, 1, -1, -1])  # the last group has no id: left out
    assert gauc(labels, scores, names) == pytest.approx(2 / 3, abs=1e-12)
    assert gauc(labels, scores, codes) == pytest.approx(0.5, abs=1e-12)
    assert math.isnan(gauc(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.3]), np.array([0, 0, 1])))


@pytest.mark.parametrize("seed", range(4))
def test_xauc_matches_brute_force_pairs_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = np.round(rng.exponential(3.0, size=400))  # integer labels: many tied pairs
    predictions = np.round(labels + rng.normal(0, 3, size=400))  # tied predictions too
    assert xauc(labels, predictions) == pytest.approx(xauc_by_pairs(labels, predictions), abs=1e-12)


def test_xauc_hand_computed_and_edge_cases():
    # labels 1, 2, 2, 3 → distinct-label pairs: (1,2)x2, (1,3), (2,3)x2 = 5.
    # predictions 0.1, 0.5, 0.2, 0.5: (1,2): 0.1<0.5 ok, 0.1<0.2 ok; (1,3): ok; (2,3): 0.5=0.5 half, 0.2<0.5 ok
    labels, predictions = np.array([1.0, 2.0, 2.0, 3.0]), np.array([0.1, 0.5, 0.2, 0.5])
    assert xauc(labels, predictions) == pytest.approx(4.5 / 5, abs=1e-12)
    assert xauc(labels, -predictions) == pytest.approx(0.5 / 5, abs=1e-12)
    assert xauc(labels, np.full(4, 7.0)) == 0.5
    assert math.isnan(xauc(np.full(3, 2.0), np.array([1.0, 2.0, 3.0])))


def test_xauc_equals_auc_on_binary_labels():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, size=1000).astype(np.float64)
    scores = np.round(rng.random(1000) + 0.3 * labels, 2)
    assert xauc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_compute_metrics_passes_groups_of_the_rows_in_the_sample_space():
    rng = np.random.default_rng(2)
    rows = 600
    groups = rng.integers(0, 40, size=rows)
    labels = (rng.random(rows) < 0.4).astype(np.float32)
    scores = rng.random(rows).astype(np.float32)
    cvr = np.where(rng.random(rows) < 0.5, labels, np.nan).astype(np.float32)  # NaN: outside the sample space
    result = compute_metrics(
        {"ctr": labels, "cvr": cvr}, {"ctr": scores, "cvr": scores}, {"ctr": ["gauc"], "cvr": ["gauc", "auc"]}, groups
    )
    inside = ~np.isnan(cvr)
    assert result["ctr"]["gauc"] == pytest.approx(gauc_by_loop(labels, scores, groups), abs=1e-12)
    assert result["cvr"]["gauc"] == pytest.approx(gauc_by_loop(cvr[inside], scores[inside], groups[inside]), abs=1e-12)
    assert result["cvr"]["auc"] == pytest.approx(roc_auc_score(cvr[inside], scores[inside]), abs=1e-6)
    with pytest.raises(ValueError, match="group"):
        compute_metrics({"ctr": labels}, {"ctr": scores}, {"ctr": ["gauc"]})


def test_registry_declares_groups_directions_and_kinds():
    assert METRICS["gauc"].needs_groups and METRICS["gauc"].direction == "max"
    assert not METRICS["auc"].needs_groups
    assert METRICS["xauc"].kinds == ("regression",) and METRICS["xauc"].direction == "max"
    assert METRICS["calibration"].direction == "target" and METRICS["calibration"].target == 1.0
    assert METRICS["ece"].direction == "min" and METRICS["logloss"].direction == "min"
