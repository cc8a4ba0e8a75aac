"""MTL gain, seed summaries, Δm and the seesaw flag against scipy and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mtlrec.evaluation.mtl_gain import Gain, delta_m, is_seesaw, mtl_gain, summarize_seeds


def test_seed_summary_matches_scipy_one_sample_interval():
    values = [0.931, 0.9352, 0.9338, 0.9361, 0.9325]
    summary = summarize_seeds(values)
    reference = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert summary.n == 5
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    assert (summary.ci_low, summary.ci_high) == pytest.approx((reference.low, reference.high))


def test_seed_summary_by_hand():
    # values 1, 2, 3: mean 2, std 1, t_{0.975, 2} = 4.302652729..., half width = 4.3027 / sqrt(3)
    summary = summarize_seeds([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (summary.mean, summary.std) == pytest.approx((2.0, 1.0))
    assert (summary.ci_low, summary.ci_high) == pytest.approx((2 - half, 2 + half))


def test_one_seed_has_no_interval():
    summary = summarize_seeds([0.5])
    assert summary.mean == 0.5 and math.isnan(summary.std) and math.isnan(summary.ci_low)
    assert math.isnan(mtl_gain([0.5], [0.4, 0.41], True).ci_low)


def test_gain_interval_is_welch_from_scipy():
    mtl, single = [0.9361, 0.9349, 0.9370], [0.9331, 0.9340, 0.9322, 0.9338]
    gain = mtl_gain(mtl, single, higher_is_better=True)
    reference = stats.ttest_ind(mtl, single, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert gain.gain == pytest.approx(np.mean(mtl) - np.mean(single))
    assert (gain.ci_low, gain.ci_high) == pytest.approx((interval.low, interval.high))
    assert gain.df == pytest.approx(reference.df)
    assert gain.direction == 1


def test_lower_is_better_flips_the_sign_and_the_interval():
    mtl, single = [0.130, 0.131, 0.129], [0.1321, 0.1330, 0.1325]  # MSE: the MTL model is lower, i.e. better
    gain = mtl_gain(mtl, single, higher_is_better=False)
    interval = stats.ttest_ind(single, mtl, equal_var=False).confidence_interval(0.90)
    assert gain.gain == pytest.approx(np.mean(single) - np.mean(mtl)) and gain.gain > 0
    at_90 = mtl_gain(mtl, single, higher_is_better=False, confidence=0.90)
    assert (at_90.ci_low, at_90.ci_high) == pytest.approx((interval.low, interval.high))
    assert gain.ci_high - gain.ci_low > at_90.ci_high - at_90.ci_low


def test_zero_variance_gives_a_point_interval():
    gain = mtl_gain([0.7, 0.7], [0.6, 0.6], True)
    assert (gain.gain, gain.ci_low, gain.ci_high) == pytest.approx((0.1, 0.1, 0.1))


def test_delta_m_by_hand():
    # task a (AUC, higher better): (0.90 - 0.80) / 0.80 = +12.5 %; task b (MSE): -(0.22 - 0.20) / 0.20 = -10 %
    value = delta_m({"a": 0.90, "b": 0.22}, {"a": 0.80, "b": 0.20}, {"a": True, "b": False})
    assert value == pytest.approx((12.5 - 10.0) / 2)
    with pytest.raises(ValueError, match="same non-empty tasks"):
        delta_m({"a": 1.0}, {"b": 1.0}, {"a": True, "b": True})


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([(0.01, 0.02), (-0.03, -0.01)], True),  # one up, one down: seesaw
        ([(0.01, 0.02), (-0.03, 0.01)], False),  # the second straddles 0
        ([(0.01, 0.02), (0.001, 0.01)], False),  # both up
        ([(-0.02, -0.01), (-0.03, -0.01), (0.002, 0.004)], True),
    ],
)
def test_seesaw(intervals, expected):
    gains = {f"t{i}": Gain((low + high) / 2, low, high, 3.0) for i, (low, high) in enumerate(intervals)}
    assert is_seesaw(gains) is expected
