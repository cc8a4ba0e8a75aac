"""The MMoE paper's synthetic data (Eqs. 2–4): cosine of the task weights, label correlation, labels, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mtlrec.errors import ConfigError
from mtlrec.synth.mmoe_synthetic import (
    NOISE_STD,
    draw_task_family,
    draw_tasks,
    generate,
    orthogonal_unit_pair,
    sample_family,
)


@pytest.mark.parametrize("correlation", [-0.7, 0.0, 0.5, 0.9, 1.0])
def test_cosine_of_the_task_weights_is_the_correlation(correlation):
    tasks = draw_tasks(correlation, np.random.default_rng(3), input_dim=64, scale=2.5)
    w1, w2 = tasks.weights
    assert np.linalg.norm(w1) == pytest.approx(2.5, rel=1e-12)
    assert np.linalg.norm(w2) == pytest.approx(2.5, rel=1e-12)
    assert w1 @ w2 / (np.linalg.norm(w1) * np.linalg.norm(w2)) == pytest.approx(correlation, abs=1e-12)


def test_gram_schmidt_pair_is_orthonormal():
    u1, u2 = orthogonal_unit_pair(512, np.random.default_rng(0))
    np.testing.assert_allclose(np.stack([u1, u2]) @ np.stack([u1, u2]).T, np.eye(2), atol=1e-12)


@pytest.mark.parametrize("correlation", [0.2, 0.5, 0.9])
def test_linear_tasks_have_label_correlation_p(correlation):
    """m = 0: y_k = w_kᵀx + ε_k, so corr(y1, y2) = p·c² / (c² + σ²) (= p without noise)."""
    n = 40_000
    _, clean, _ = generate(correlation, n, seed=1, input_dim=32, num_sines=0, noise_std=0.0)
    _, noisy, _ = generate(correlation, n, seed=2, input_dim=32, num_sines=0, noise_std=0.5)
    tolerance = 5 * (1 - correlation**2) / np.sqrt(n) + 1e-3  # 5 standard errors of Pearson's r
    assert stats.pearsonr(clean[:, 0], clean[:, 1]).statistic == pytest.approx(correlation, abs=tolerance)
    assert stats.pearsonr(noisy[:, 0], noisy[:, 1]).statistic == pytest.approx(correlation / 1.25, abs=tolerance)


def test_labels_follow_equations_3_and_4_with_shared_alpha_beta():
    """Brute force: the labels recomputed row by row and sine by sine from the drawn ground truth."""
    x, y, tasks = generate(0.6, 50, seed=4, input_dim=16, num_sines=10, noise_std=0.0)
    for row in range(50):
        for k in range(2):
            z = float(np.dot(tasks.weights[k], x[row].astype(np.float64)))
            expected = z + sum(np.sin(a * z + b) for a, b in zip(tasks.alpha, tasks.beta))
            assert y[row, k] == pytest.approx(expected, abs=1e-4)


def test_identical_tasks_differ_only_by_noise():
    _, y, _ = generate(1.0, 5000, seed=5, input_dim=32)
    difference = y[:, 0] - y[:, 1]  # ε1 − ε2 ~ N(0, 2σ²)
    assert difference.std() == pytest.approx(np.sqrt(2) * NOISE_STD, rel=0.05)


def test_same_seed_same_data_other_seed_other_data():
    first = generate(0.5, 100, seed=7, input_dim=32)
    again = generate(0.5, 100, seed=7, input_dim=32)
    other = generate(0.5, 100, seed=8, input_dim=32)
    for left, right in zip(first[:2], again[:2]):
        np.testing.assert_array_equal(left, right)
    assert first[0].dtype == np.float32 and first[1].shape == (100, 2)
    assert not np.allclose(first[1], other[1])
    assert not np.allclose(first[2].alpha, other[2].alpha)


@pytest.mark.parametrize("options", [{"correlation": 1.2}, {"correlation": 0.5, "num_sines": -1}])
def test_bad_settings_raise_config_errors(options):
    with pytest.raises(ConfigError):
        draw_tasks(rng=np.random.default_rng(0), **options)


def test_a_family_shares_everything_but_w2():
    """Members of one family differ only in w2: same w1, α, β, x and ε, so task 1's labels coincide."""
    family = draw_task_family([0.5, 0.9, 1.0], np.random.default_rng(6), input_dim=32)
    x, labels = sample_family(family, 1000, np.random.default_rng(7))
    noise = [y - tasks.clean_labels(x) for tasks, y in zip(family, labels)]
    for tasks, correlation, y, eps in zip(family, [0.5, 0.9, 1.0], labels, noise):
        np.testing.assert_array_equal(tasks.weights[0], family[0].weights[0])
        np.testing.assert_array_equal(tasks.alpha, family[0].alpha)
        np.testing.assert_array_equal(tasks.beta, family[0].beta)
        cosine = tasks.weights[0] @ tasks.weights[1] / np.prod(np.linalg.norm(tasks.weights, axis=1))
        assert cosine == pytest.approx(correlation, abs=1e-12)
        np.testing.assert_array_equal(y[:, 0], labels[0][:, 0])
        np.testing.assert_allclose(eps, noise[0], atol=1e-5)  # the same ε for every member
    assert noise[0].std() == pytest.approx(NOISE_STD, rel=0.1)
    assert not np.allclose(labels[0][:, 1], labels[2][:, 1])
    single = draw_tasks(0.9, np.random.default_rng(6), input_dim=32)
    np.testing.assert_array_equal(single.weights, family[1].weights)  # draw_tasks(p) = draw_task_family([p])[0]
