"""Tests for mtlrec.features.numeric: fill, signed log1p, standardisation, quantile buckets."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from sklearn.preprocessing import StandardScaler

from mtlrec.errors import DataError
from mtlrec.features import NotFittedError, NumericEncoder

INF = math.inf
# finite values: 1, 2, 4, 9 → mean 4, median 3; missing: null, NaN, +inf, -inf
WITH_MISSING = [1.0, None, 2.0, math.nan, 4.0, INF, 9.0, -INF]
MISSING_POSITIONS = [1, 3, 5, 7]


def column(values) -> pa.Array:
    return pa.array(values, pa.float64())


def table(values) -> pa.Table:
    """A one-column table ``x`` (the encoders read tables)."""
    return pa.table({"x": values})


def test_transform_before_fit_raises():
    encoder = NumericEncoder("x")
    with pytest.raises(NotFittedError):
        encoder.transform(table(column([1.0])))["x"]
    with pytest.raises(NotFittedError):
        encoder.to_dict()
    with pytest.raises(NotFittedError):
        _ = NumericEncoder("x", buckets=4).num_ids


@pytest.mark.parametrize(("fill_value", "expected_fill"), [("mean", 4.0), ("median", 3.0), (-7.5, -7.5), (0, 0.0)])
def test_fill_uses_finite_values_only(fill_value, expected_fill):
    encoder = NumericEncoder("x", fill_value=fill_value, standardize=False).fit(table(column(WITH_MISSING)))
    assert encoder.fill_ == pytest.approx(expected_fill)
    out = encoder.transform(table(column(WITH_MISSING)))["x"]
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    expected = [expected_fill if i in MISSING_POSITIONS else v for i, v in enumerate(WITH_MISSING)]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_fill_at_transform_uses_the_train_statistic():
    encoder = NumericEncoder("x", fill_value="median", standardize=False)
    encoder.fit(table(column([10.0, 20.0, 30.0, None])))
    np.testing.assert_allclose(encoder.transform(table(column([None, math.nan, 5.0])))["x"], [20.0, 20.0, 5.0])


def test_all_missing_train_column_fills_with_zero():
    encoder = NumericEncoder("x").fit(table(column([None, math.nan, INF])))
    assert encoder.fill_ == 0.0
    out = encoder.transform(table(column([None, 3.0])))["x"]
    assert np.isfinite(out).all()


def test_missing_note_counts_null_nan_and_infinities():
    encoder = NumericEncoder("x", fill_value=-1.0).fit(table(column([1.0])))
    assert encoder.missing_note(table(column(WITH_MISSING))) == "4 missing/NaN value(s) filled with -1"
    assert encoder.missing_note(table(column([1.0, 2.0]))) is None
    chunked = pa.chunked_array([column([None, 1.0]), column([math.nan, -INF, 0.0])])
    assert encoder.missing_note(table(chunked)).startswith("3 missing")


def test_integer_and_chunked_columns_are_accepted():
    chunked = pa.chunked_array([pa.array([1, 2], pa.int64()), pa.array([3])])
    encoder = NumericEncoder("x", standardize=False).fit(table(chunked))
    assert encoder.fill_ == pytest.approx(2.0)
    np.testing.assert_allclose(encoder.transform(table(pa.array([5, None], pa.int32())))["x"], [5.0, 2.0])


def test_signed_log1p():
    values = [-100.0, -1.0, -0.5, 0.0, 0.5, 3.0, 1e6]
    encoder = NumericEncoder("x", log1p=True, standardize=False).fit(table(column(values)))
    expected = [math.copysign(math.log1p(abs(v)), v) for v in values]
    np.testing.assert_allclose(encoder.transform(table(column(values)))["x"], expected, rtol=1e-6)


def test_log1p_is_applied_to_the_filled_value():
    encoder = NumericEncoder("x", fill_value=9.0, log1p=True, standardize=False).fit(table(column([1.0, 2.0])))
    np.testing.assert_allclose(encoder.transform(table(column([None])))["x"], [math.log1p(9.0)], rtol=1e-6)


def test_standardisation_by_hand():
    # train 1, 2, 3, 4: mean 2.5, population std sqrt(1.25)
    encoder = NumericEncoder("x").fit(table(column([1.0, 2.0, 3.0, 4.0])))
    assert encoder.mean_ == pytest.approx(2.5)
    assert encoder.std_ == pytest.approx(math.sqrt(1.25))
    out = encoder.transform(table(column([2.5, 5.0, 0.0])))["x"]
    np.testing.assert_allclose(out, [0.0, 2.5 / math.sqrt(1.25), -2.5 / math.sqrt(1.25)], rtol=1e-6)


def test_a_value_leaving_float32_after_the_transform_names_column_and_row():
    """1e39 is a float64 but not a float32: the model input would be inf (an error, not a silent ±inf)."""
    encoder = NumericEncoder("x").fit(table(column([1.0, 2.0, 3.0, 4.0])))
    with pytest.raises(DataError, match=r"file\.csv: column 'x', row 3: the value 1e\+39 is out of range") as caught:
        encoder.transform(table(column([1.0, 2.0, 1e39, -1e300])), "file.csv")
    assert (caught.value.column, caught.value.row) == ("x", 2)
    logged = NumericEncoder("x", log1p=True).fit(table(column([1.0, 2.0, 3.0, 4.0])))
    assert np.isfinite(logged.transform(table(column([1e39, 1.7e308])))["x"]).all()  # log1p keeps them finite
    assert np.isfinite(encoder.transform(table(column([1e30])))["x"]).all()


def test_standardisation_matches_sklearn_standard_scaler():
    rng = np.random.default_rng(0)
    train = rng.lognormal(2.0, 1.0, size=2000)
    test = rng.lognormal(2.0, 1.5, size=500)
    encoder = NumericEncoder("x", log1p=True).fit(table(column(train)))
    scaler = StandardScaler().fit(np.log1p(train)[:, None])
    expected = scaler.transform(np.log1p(test)[:, None])[:, 0]
    np.testing.assert_allclose(encoder.transform(table(column(test)))["x"], expected, rtol=1e-5, atol=1e-5)


def test_constant_train_column_gives_zero_without_blowing_up():
    encoder = NumericEncoder("x").fit(table(column([3.0, 3.0, 3.0, None])))
    assert encoder.std_ == 1.0
    out = encoder.transform(table(column([3.0, 4.0, None])))["x"]
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, [0.0, 1.0, 0.0])


def test_buckets_by_hand():
    # 1..8 with linear interpolation: quartiles 2.75, 4.5, 6.25
    encoder = NumericEncoder("x", buckets=4).fit(table(column([float(v) for v in range(1, 9)])))
    assert encoder.boundaries_ == pytest.approx([2.75, 4.5, 6.25])
    assert encoder.produces_ids
    assert encoder.num_ids == 2 + 4
    ids = encoder.transform(table(column([-5.0, 1.0, 2.75, 3.0, 4.5, 6.0, 6.25, 7.0, 100.0])))["x"]
    assert ids.dtype == np.int64
    # searchsorted(side='right'): a value equal to a boundary goes to the bucket above
    assert ids.tolist() == [2, 2, 3, 3, 4, 4, 5, 5, 5]


def test_buckets_are_quantiles_of_the_shaped_train_values():
    rng = np.random.default_rng(1)
    train = rng.exponential(10.0, size=5000)
    test = rng.exponential(10.0, size=1000)
    encoder = NumericEncoder("x", log1p=True, buckets=10).fit(table(column(train)))
    boundaries = np.quantile(np.log1p(train), np.arange(1, 10) / 10)
    np.testing.assert_allclose(encoder.boundaries_, boundaries)
    ids = encoder.transform(table(column(test)))["x"]
    np.testing.assert_array_equal(ids, 2 + np.searchsorted(boundaries, np.log1p(test), side="right"))
    assert ids.min() >= 2 and ids.max() < encoder.num_ids
    # about a tenth of the train rows fall in each bucket
    counts = np.bincount(encoder.transform(table(column(train)))["x"] - 2, minlength=10)
    assert counts.min() > 400 and counts.max() < 600


def test_buckets_with_repeated_values_deduplicate_boundaries():
    encoder = NumericEncoder("x", buckets=4).fit(table(column([0.0] * 90 + [1.0, 2.0, 3.0] * 4)))
    assert encoder.boundaries_ == sorted(set(encoder.boundaries_))
    assert encoder.num_ids == 2 + len(encoder.boundaries_) + 1
    ids = encoder.transform(table(column([0.0, 5.0])))["x"]
    assert ids[0] == 2 + int(np.searchsorted(encoder.boundaries_, 0.0, side="right"))
    assert ids[1] == encoder.num_ids - 1


def test_buckets_missing_values_go_to_the_fill_bucket():
    encoder = NumericEncoder("x", fill_value=100.0, buckets=2).fit(table(column([1.0, 2.0, 3.0])))
    ids = encoder.transform(table(column([None, math.nan, 100.0])))["x"]
    assert ids.tolist() == [ids[2]] * 3


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"fill_value": "median", "log1p": True}, {"fill_value": 2.5, "standardize": False}, {"buckets": 5}],
)
def test_to_dict_from_dict_round_trip_through_json(kwargs):
    rng = np.random.default_rng(2)
    train = column(list(rng.normal(5.0, 2.0, size=300)) + [None, math.nan])
    encoder = NumericEncoder("x", **kwargs).fit(table(train))
    state = encoder.to_dict()
    assert state["kind"] == "numeric"
    restored = NumericEncoder.from_dict(json.loads(json.dumps(state)))
    probe = column([None, -3.0, 0.0, 5.0, 11.0, math.nan])
    np.testing.assert_array_equal(restored.transform(table(probe))["x"], encoder.transform(table(probe))["x"])
    assert restored.to_dict() == state


def test_explicit_boundaries_bucket_raw_values():
    encoder = NumericEncoder("x", boundaries=[0.0, 10.0, 100.0]).fit(table(pa.array([5.0, 50.0, 500.0])))
    ids = encoder.transform(table(pa.array([-1.0, 0.0, 9.99, 10.0, 99.0, 100.0, 1e6, None])))["x"]
    # bucket = number of boundaries <= x; the null is filled with the train mean (185)
    assert ids.tolist() == [2, 3, 3, 4, 4, 5, 5, 5]
    assert encoder.produces_ids and encoder.num_ids == 2 + 4
    restored = NumericEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert restored.transform(table(pa.array([9.0, 11.0])))["x"].tolist() == [3, 4]
