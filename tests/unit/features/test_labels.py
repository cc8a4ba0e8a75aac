"""Tests for mtlrec.features.labels: binary rules, regression targets, errors naming column/value/row."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from mtlrec.errors import DataError
from mtlrec.features import BinaryLabel, RegressionLabel
from mtlrec.features.labels import label_rule_from_dict

SOURCE = "data/train.csv"


def strings(values) -> pa.Array:
    return pa.array(values, pa.string())


def floats(values) -> pa.Array:
    return pa.array(values, pa.float64())


def test_arrow_type_follows_the_rule():
    assert BinaryLabel(positive=["yes"]).arrow_type == pa.string()
    assert BinaryLabel(threshold=0.5).arrow_type == pa.float64()
    assert BinaryLabel().arrow_type == pa.float64()
    assert RegressionLabel().arrow_type == pa.float64()


def test_positive_values_only_everything_else_is_zero():
    rule = BinaryLabel(positive=["yes", "Y"])
    out = rule.transform(strings(["yes", "no", "Y", "y", "maybe", "yes"]), SOURCE, "answer")
    assert out.dtype == np.float32
    assert out.tolist() == [1, 0, 1, 0, 0, 1]


def test_positive_numbers_are_compared_as_text():
    rule = BinaryLabel(positive=[1, 2.0, " 50000+. "])
    assert rule.positive == ["1", "2", "50000+."]
    out = rule.transform(strings(["1", "2", "0", "50000+.", "-50000."]), SOURCE, "income")
    assert out.tolist() == [1, 1, 0, 1, 0]


def test_positive_and_negative_lists():
    rule = BinaryLabel(positive=["click"], negative=["view", "skip"])
    out = rule.transform(pa.chunked_array([strings(["view", "click"]), strings(["skip", "click"])]), SOURCE, "event")
    assert out.tolist() == [0, 1, 0, 1]


def test_value_fitting_no_rule_names_column_value_and_data_row():
    rule = BinaryLabel(positive=["click"], negative=["view"])
    values = ["view", "click", "view", "purchase", "oops", "click"]
    with pytest.raises(DataError) as info:
        rule.transform(strings(values), SOURCE, "event")
    message = str(info.value)
    first_bad = values.index("purchase")
    assert SOURCE in message
    assert "'event'" in message
    assert "'purchase'" in message
    assert f"data row {first_bad + 1}" in message
    assert "2 row(s)" in message


def test_threshold():
    rule = BinaryLabel(threshold=0.5)
    out = rule.transform(floats([0.0, 0.5, 0.51, 7.0, -3.0]), SOURCE, "watch")
    assert out.tolist() == [0, 0, 1, 1, 0]


def test_default_requires_zero_or_one():
    rule = BinaryLabel()
    assert rule.transform(floats([0.0, 1.0, 1.0, 0.0]), SOURCE, "y").tolist() == [0, 1, 1, 0]
    values = [0.0, 1.0, 1.0, 2.0, 0.0]
    with pytest.raises(DataError) as info:
        rule.transform(floats(values), SOURCE, "y")
    message = str(info.value)
    assert "'y'" in message and "2.0" in message and "data row 4" in message and SOURCE in message


@pytest.mark.parametrize(
    ("rule", "column"),
    [
        (BinaryLabel(positive=["yes"]), strings(["yes", "no", None, "yes", None])),
        (BinaryLabel(positive=["yes"], negative=["no"]), strings(["yes", "no", None, "maybe", None])),
        (BinaryLabel(threshold=1.0), floats([1.0, 2.0, None, 3.0, None])),
        (BinaryLabel(), floats([1.0, 0.0, math.nan, 1.0, None])),
        (RegressionLabel(), floats([1.0, 2.5, None, 3.0, math.nan])),
    ],
)
def test_missing_label_names_the_first_data_row(rule, column):
    with pytest.raises(DataError) as info:
        rule.transform(column, SOURCE, "target")
    message = str(info.value)
    assert "'target'" in message and SOURCE in message
    assert "data row 3" in message
    assert "2 missing" in message


def test_missing_label_in_a_later_chunk():
    column = pa.chunked_array([floats([0.0, 1.0, 1.0]), floats([0.0, None])])
    with pytest.raises(DataError, match="data row 5"):
        BinaryLabel().transform(column, SOURCE, "y")


def test_regression_label_passes_values_through():
    values = [0.0, -2.5, 1e6, 3.25]
    out = RegressionLabel().transform(floats(values), SOURCE, "minutes")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, values)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_regression_label_rejects_nan_and_inf(bad):
    values = [1.0, 2.0, bad, 4.0]
    with pytest.raises(DataError) as info:
        RegressionLabel().transform(floats(values), SOURCE, "minutes")
    message = str(info.value)
    assert "'minutes'" in message and "data row 3" in message and SOURCE in message


@pytest.mark.parametrize(
    "rule",
    [
        BinaryLabel(positive=["a", 1.0], negative=["b"]),
        BinaryLabel(threshold=2.0),
        BinaryLabel(),
        RegressionLabel(),
    ],
)
def test_to_dict_round_trip(rule):
    restored = label_rule_from_dict(rule.to_dict())
    assert type(restored) is type(rule)
    assert restored.to_dict() == rule.to_dict()
    assert restored.arrow_type == rule.arrow_type
