"""Regression label transforms: clip → log1p → standardise, fitted on train, inverted exactly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from mtlrec.errors import DataError
from mtlrec.features.labels import RegressionLabel, label_rule_from_dict


def _column(values) -> pa.Array:
    return pa.array(values, pa.float64())


def test_log1p_and_standardize_round_trip_through_the_inverse():
    values = np.random.default_rng(0).lognormal(3, 1.5, 500)
    rule = RegressionLabel(log1p=True, standardize=True)
    targets = rule.transform(_column(values), "f.csv", "y")
    np.testing.assert_allclose(targets, np.log1p(values), rtol=1e-6)
    rule.fit(targets)
    assert rule.mean_ == pytest.approx(np.log1p(values).mean(), rel=1e-5)
    assert rule.std_ == pytest.approx(np.log1p(values).std(), rel=1e-5)
    scaled = rule.scale(targets)
    assert abs(scaled.mean()) < 1e-5 and scaled.std() == pytest.approx(1.0, rel=1e-4)
    restored = rule.inverse(torch.from_numpy(scaled).double()).numpy()
    np.testing.assert_allclose(restored, values, rtol=1e-5)


def test_clip_happens_first_and_is_not_undone():
    rule = RegressionLabel(clip=(0.0, 10.0), log1p=True)
    targets = rule.transform(_column([-5.0, 3.0, 50.0]), "f.csv", "y")
    np.testing.assert_allclose(targets, np.log1p([0.0, 3.0, 10.0]), rtol=1e-6)
    np.testing.assert_allclose(rule.inverse(torch.from_numpy(targets)).numpy(), [0.0, 3.0, 10.0], atol=1e-5)


def test_log1p_outside_its_domain_names_the_row():
    with pytest.raises(DataError, match=r"value -2.0 at data row 2 is <= -1"):
        RegressionLabel(log1p=True).transform(_column([1.0, -2.0]), "f.csv", "y")


def test_state_round_trips_through_the_artifact_dict():
    rule = RegressionLabel(clip=(0, 100), log1p=True, standardize=True).fit(np.array([1.0, 2.0, 4.0], np.float32))
    restored = label_rule_from_dict(rule.to_dict())
    assert isinstance(restored, RegressionLabel)
    assert (restored.clip, restored.log1p, restored.standardize) == ((0.0, 100.0), True, True)
    assert (restored.mean_, restored.std_) == (rule.mean_, rule.std_)


def test_untransformed_rule_is_the_identity():
    rule = RegressionLabel()
    assert not rule.transformed
    values = np.array([1.5, -3.0], np.float32)
    np.testing.assert_array_equal(rule.scale(rule.fit(values) and values), values)
    torch.testing.assert_close(rule.inverse(torch.tensor([1.5, -3.0])), torch.tensor([1.5, -3.0]))
