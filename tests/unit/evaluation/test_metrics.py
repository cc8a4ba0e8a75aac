"""Tests for mtlrec.evaluation.metrics against scikit-learn and hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from mtlrec.evaluation import METRICS, auc, compute_metrics, logloss, mae, rmse


def test_auc_hand_computed_four_samples():
    # positives score 0.8 and 0.4, negatives 0.4 and 0.1: pairs (0.8>0.4)=1, (0.8>0.1)=1, (0.4=0.4)=0.5,
    # (0.4>0.1)=1 → 3.5 / 4
    assert auc(np.array([1, 0, 1, 0]), np.array([0.8, 0.4, 0.4, 0.1])) == pytest.approx(0.875, abs=1e-12)
    assert auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0, abs=1e-12)
    assert auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(0.0, abs=1e-12)
    assert auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5, abs=1e-12)


def pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    positive, negative = scores[labels == 1], scores[labels == 0]
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (positive.size * negative.size))


@pytest.mark.parametrize("seed", range(5))
def test_auc_with_many_ties_matches_sklearn_and_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=800)
    scores = np.round(np.clip(rng.normal(0.4 + 0.2 * labels, 0.25), 0, 1), 1)  # only 11 distinct scores
    assert len(np.unique(scores)) <= 11
    value = auc(labels, scores)
    assert value == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert value == pytest.approx(pairwise_auc(labels, scores), abs=1e-9)


def test_auc_100k_rows_matches_sklearn():
    rng = np.random.default_rng(42)
    labels = (rng.random(100_000) < 0.1).astype(np.float32)
    scores = (rng.normal(size=100_000) + labels).astype(np.float32)
    scores[:5000] = np.round(scores[:5000], 1)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)


def test_auc_is_unchanged_by_row_order_and_monotone_transforms():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=500)
    scores = np.round(rng.random(500), 2)
    perm = rng.permutation(500)
    assert auc(labels[perm], scores[perm]) == pytest.approx(auc(labels, scores), abs=1e-12)
    assert auc(labels, np.exp(3 * scores)) == pytest.approx(auc(labels, scores), abs=1e-12)


def test_auc_single_class_is_nan():
    assert math.isnan(auc(np.ones(5), np.linspace(0, 1, 5)))
    assert math.isnan(auc(np.zeros(5), np.linspace(0, 1, 5)))


@pytest.mark.parametrize("seed", range(3))
def test_logloss_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=2000)
    probabilities = rng.uniform(0.01, 0.99, size=2000)
    expected = log_loss(labels, probabilities, labels=[0, 1])
    assert logloss(labels, probabilities) == pytest.approx(expected, abs=1e-9)


def test_logloss_hand_computed_and_single_class():
    assert logloss(np.array([1.0]), np.array([0.25])) == pytest.approx(math.log(4), abs=1e-12)
    value = logloss(np.array([0, 0]), np.array([0.2, 0.6]))
    assert value == pytest.approx(-(math.log(0.8) + math.log(0.4)) / 2, abs=1e-12)


def test_logloss_clips_extreme_probabilities():
    value = logloss(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert math.isfinite(value) and value > 30


@pytest.mark.parametrize("seed", range(3))
def test_rmse_and_mae_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=1000) * 10
    predictions = labels + rng.normal(size=1000)
    assert rmse(labels, predictions) == pytest.approx(math.sqrt(mean_squared_error(labels, predictions)), rel=1e-12)
    assert mae(labels, predictions) == pytest.approx(mean_absolute_error(labels, predictions), rel=1e-12)


def test_rmse_and_mae_by_hand():
    labels, predictions = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 6.0])
    assert rmse(labels, predictions) == pytest.approx(math.sqrt(10 / 3))
    assert mae(labels, predictions) == pytest.approx(4 / 3)


def test_metric_registry_directions_and_kinds():
    assert METRICS["auc"].higher_is_better and METRICS["auc"].kinds == ("binary",)
    assert not METRICS["logloss"].higher_is_better
    assert not METRICS["rmse"].higher_is_better and METRICS["rmse"].kinds == ("regression",)
    assert not METRICS["mae"].higher_is_better


def test_compute_metrics_nested_dict():
    rng = np.random.default_rng(0)
    click_labels = rng.integers(0, 2, size=200).astype(np.float32)
    click_scores = rng.uniform(0.05, 0.95, size=200).astype(np.float32)
    minutes = rng.normal(size=200)
    predicted = minutes + rng.normal(scale=0.5, size=200)
    result = compute_metrics(
        {"click": click_labels, "minutes": minutes},
        {"click": click_scores, "minutes": predicted},
        {"click": ["auc", "logloss"], "minutes": ["rmse"]},
    )
    assert set(result) == {"click", "minutes"}
    assert list(result["click"]) == ["auc", "logloss"]
    assert list(result["minutes"]) == ["rmse"]
    assert result["click"]["auc"] == pytest.approx(roc_auc_score(click_labels, click_scores), abs=1e-6)
    assert result["click"]["logloss"] == pytest.approx(log_loss(click_labels, click_scores, labels=[0, 1]), abs=1e-6)
    assert result["minutes"]["rmse"] == pytest.approx(math.sqrt(mean_squared_error(minutes, predicted)))
    assert all(isinstance(v, float) for metrics in result.values() for v in metrics.values())
