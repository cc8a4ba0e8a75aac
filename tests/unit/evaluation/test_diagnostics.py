"""Label correlation, gradient cosines, gate statistics and expert alarms against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics.pairwise import cosine_similarity

from mtlrec.evaluation.diagnostics import (
    GateSummary,
    LabelMoments,
    alarm_message,
    cosine_matrix,
    expert_alarms,
    gate_statistics,
    label_correlation,
)


def test_label_correlation_on_complete_rows_equals_numpy_corrcoef():
    rng = np.random.default_rng(0)
    base = rng.normal(size=500)
    labels = np.stack([base > 0, base + rng.normal(size=500) > 0.5, rng.random(500) < 0.3], axis=1).astype(float)
    pearson, rows = label_correlation(labels)
    np.testing.assert_allclose(pearson, np.corrcoef(labels, rowvar=False), atol=1e-12)
    assert (rows == 500).all()


def test_label_correlation_uses_the_rows_where_both_labels_exist():
    rng = np.random.default_rng(1)
    labels = (rng.random((400, 3)) < [0.5, 0.3, 0.6]).astype(float)
    labels[rng.random(400) < 0.4, 1] = np.nan  # e.g. a conversion label outside the click space
    labels[rng.random(400) < 0.2, 2] = np.nan
    pearson, rows = label_correlation(labels)
    for i in range(3):
        for j in range(3):
            both = ~np.isnan(labels[:, i]) & ~np.isnan(labels[:, j])
            assert rows[i, j] == both.sum()
            expected = stats.pearsonr(labels[both, i], labels[both, j]).statistic if i != j else 1.0
            assert pearson[i, j] == pytest.approx(expected, abs=1e-12)


def test_label_correlation_is_undefined_for_a_constant_label_or_too_few_rows():
    # CTR is always 1 where CVR exists (CVR's space is click == 1): no correlation to speak of
    labels = np.array([[1, 0], [1, 1], [0, np.nan], [1, 0], [0, np.nan]], dtype=float)
    pearson, rows = label_correlation(labels)
    assert math.isnan(pearson[0, 1]) and rows[0, 1] == 3
    assert pearson[0, 0] == 1.0 and pearson[1, 1] == 1.0
    single = np.array([[1.0, 0.0], [np.nan, 1.0], [0.0, np.nan]])
    assert math.isnan(label_correlation(single)[0][0, 1])


def _streamed(labels: np.ndarray, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    moments = LabelMoments(labels.shape[1])
    for batch in np.split(labels, cuts):
        moments.update(batch)
    return moments.correlation()


def test_label_moments_over_uneven_batches_equal_the_whole_array():
    rng = np.random.default_rng(2)
    watch = rng.lognormal(3.0, 1.0, size=1000)
    labels = np.stack([rng.random(1000) < 0.3, rng.random(1000) < 0.1, np.log1p(watch)], axis=1).astype(float)
    labels[:, 2] += 2.0 * labels[:, 0]
    labels[labels[:, 0] == 0, 1] = np.nan  # conversion only where clicked
    labels[rng.random(1000) < 0.1, 2] = np.nan
    pearson, rows = _streamed(labels, [1, 7, 300, 301, 640])  # one-row and empty-pair batches included
    expected, expected_rows = label_correlation(labels)
    np.testing.assert_allclose(pearson, expected, atol=1e-12)
    np.testing.assert_array_equal(rows, expected_rows)
    both = ~np.isnan(labels[:, 0]) & ~np.isnan(labels[:, 2])
    assert pearson[0, 2] == pytest.approx(stats.pearsonr(labels[both, 0], labels[both, 2]).statistic, abs=1e-12)


def test_label_correlation_of_more_rows_than_one_chunk_equals_numpy():
    rng = np.random.default_rng(5)
    base = rng.normal(size=600_000)  # more than two of label_correlation's chunks
    labels = np.stack([base > 0, base + rng.normal(size=600_000)], axis=1).astype(float)
    np.testing.assert_allclose(label_correlation(labels)[0], np.corrcoef(labels, rowvar=False), atol=1e-12)


def test_label_moments_keep_precision_under_a_large_mean():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    labels = np.stack([1e9 + x, 1e9 - 0.5 * x + rng.normal(size=2000)], axis=1)
    expected = stats.pearsonr(x, labels[:, 1] - 1e9).statistic
    assert _streamed(labels, list(range(100, 2000, 100)))[0][0, 1] == pytest.approx(expected, abs=1e-6)


def test_label_moments_tell_a_constant_label_from_one_that_varies_between_batches():
    rng = np.random.default_rng(4)
    other = rng.random((600, 1))
    constant = np.hstack([np.full((600, 1), 0.1), other])  # 0.1 is not exact in binary
    assert math.isnan(_streamed(constant, [3, 9, 16, 28, 41, 333])[0][0, 1])  # batches whose mean of 0.1 is inexact
    for value, elsewhere in rng.random((20, 2)):  # label 0 is `value` wherever label 1 exists, not elsewhere
        first = np.where(rng.random(600) < 0.5, elsewhere, value)
        first[0] = elsewhere
        second = np.where(first == value, rng.random(600), np.nan)
        assert math.isnan(_streamed(np.stack([first, second], axis=1), [3, 9, 16, 28, 41, 333])[0][0, 1])
    varying = constant.copy()
    varying[300:, 0] = 0.7  # constant within each batch below, not over the stream
    pearson = _streamed(varying, [300])[0][0, 1]
    assert pearson == pytest.approx(np.corrcoef(varying, rowvar=False)[0, 1], abs=1e-12)


def test_cosine_matrix_equals_sklearn_and_is_undefined_for_a_zero_gradient():
    grads = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(cosine_matrix(grads).numpy(), cosine_similarity(grads.numpy()), atol=1e-6)
    grads[1] = 0.0
    cosines = cosine_matrix(grads)
    assert torch.isnan(cosines[1]).all() and torch.isnan(cosines[:, 1]).all()
    assert cosines[0, 2] == pytest.approx(float(cosine_similarity(grads[[0]], grads[[2]])[0, 0]), abs=1e-6)


def test_gate_statistics_are_the_batch_means_of_weights_and_entropy():
    logits = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    weights = torch.softmax(logits, dim=1)
    weights[0] = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])  # 0 · ln 0 counts as 0
    mean, entropy = gate_statistics(weights)
    np.testing.assert_allclose(mean, weights.numpy().mean(axis=0), rtol=1e-6)
    assert entropy == pytest.approx(np.mean(stats.entropy(weights.numpy(), axis=1)), rel=1e-6)
    assert gate_statistics(torch.full((4, 8), 1 / 8))[1] == pytest.approx(math.log(8))


def _gate(mean: list[float], level: str = "", experts: list[str] | None = None) -> GateSummary:
    return GateSummary(level, experts or [f"e{i}" for i in range(len(mean))], mean, 0.0)


def test_evenly_spread_gates_raise_no_alarm():
    gates = {"ctr": _gate([0.25] * 4), "cvr": _gate([0.3, 0.2, 0.25, 0.25])}
    assert expert_alarms(gates, 0.9, 0.01) == []


def test_a_collapsed_gate_and_a_dead_expert_raise_alarms():
    gates = {"ctr": _gate([0.95, 0.03, 0.02, 0.0]), "cvr": _gate([0.5, 0.3, 0.2, 0.005])}
    alarms = expert_alarms(gates, 0.9, 0.01)
    assert {"kind": "collapse", "gate": "ctr", "level": "", "expert": "e0", "share": 0.95} in alarms
    assert {"kind": "dead", "level": "", "expert": "e3", "share": 0.005} in alarms
    assert len(alarms) == 2
    assert "95.0%" in alarm_message(alarms[0]) and "'ctr'" in alarm_message(alarms[0])


def test_experts_are_matched_by_name_within_their_level():
    # PLE-like: each task gate weighs its own expert and the shared one; level2's e0 is another expert
    gates = {
        "level1.ctr": _gate([0.999, 0.001], "level1", ["ctr.0", "shared.0"]),
        "level1.cvr": _gate([0.6, 0.4], "level1", ["cvr.0", "shared.0"]),
        "ctr": _gate([0.5, 0.5], "level2"),
    }
    alarms = expert_alarms(gates, 0.99, 0.01)
    assert [a["kind"] for a in alarms] == ["collapse"], "shared.0 gets 40% of cvr's gate: not dead"
    gates["level1.cvr"] = _gate([0.995, 0.005], "level1", ["cvr.0", "shared.0"])
    dead = [a for a in expert_alarms(gates, 0.999, 0.01) if a["kind"] == "dead"]
    assert dead == [{"kind": "dead", "level": "level1", "expert": "shared.0", "share": 0.005}]


def test_a_gate_over_one_expert_never_collapses():
    assert expert_alarms({"only": _gate([1.0])}, 0.9, 0.01) == []
