"""Tests for mtlrec.features.pipeline: column types, fit/transform shapes, save/load, missing-value logs."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pyarrow as pa
import pytest

from mtlrec.errors import ConfigError, RunDirError
from mtlrec.features import (
    BinaryLabel,
    CategoricalEncoder,
    FeaturePipeline,
    FeatureSpec,
    LabelSpec,
    NumericEncoder,
    RegressionLabel,
)


def make_pipeline() -> FeaturePipeline:
    features = [
        FeatureSpec("user", "user", CategoricalEncoder()),
        FeatureSpec("price", "price", NumericEncoder(log1p=True)),
        FeatureSpec("city", "city", CategoricalEncoder(hash_buckets=11)),
        FeatureSpec("price_bucket", "price", NumericEncoder(buckets=3)),
        FeatureSpec("age", "age", NumericEncoder(fill_value="median", standardize=False)),
    ]
    labels = [
        LabelSpec("click", "clicked", BinaryLabel(positive=["yes"])),
        LabelSpec("minutes", "watch", RegressionLabel()),
    ]
    return FeaturePipeline(features, labels)


def make_table() -> pa.Table:
    return pa.table(
        {
            "user": pa.array(["u1", "u2", "u1", None, "u3", "u1"], pa.string()),
            "price": pa.array([1.0, 10.0, None, 100.0, math.nan, 5.0], pa.float64()),
            "city": pa.array(["paris", "oslo", "paris", "rome", None, "oslo"], pa.string()),
            "age": pa.array([30.0, 40.0, 20.0, None, 50.0, 60.0], pa.float64()),
            "clicked": pa.array(["yes", "no", "no", "yes", "no", "yes"], pa.string()),
            "watch": pa.array([1.5, 0.0, 2.0, 3.0, 0.25, 9.0], pa.float64()),
        }
    )


def test_feature_groups_and_column_types():
    pipeline = make_pipeline()
    assert [f.name for f in pipeline.id_features] == ["user", "city", "price_bucket"]
    assert [f.name for f in pipeline.dense_features] == ["price", "age"]
    assert pipeline.task_names == ["click", "minutes"]
    assert pipeline.column_types(include_labels=False) == {
        "user": pa.string(),
        "price": pa.float64(),
        "city": pa.string(),
        "age": pa.float64(),
    }
    with_labels = pipeline.column_types(include_labels=True)
    assert with_labels["clicked"] == pa.string() and with_labels["watch"] == pa.float64()
    assert list(with_labels) == ["user", "price", "city", "age", "clicked", "watch"]


def test_column_used_as_categorical_and_numeric_is_a_config_error():
    features = [FeatureSpec("a", "x", CategoricalEncoder()), FeatureSpec("b", "x", NumericEncoder())]
    with pytest.raises(ConfigError) as info:
        FeaturePipeline(features, [])
    message = str(info.value)
    assert "'x'" in message and "'a'" in message and "'b'" in message


def test_label_column_type_conflict_is_a_config_error():
    features = [FeatureSpec("y_value", "y", NumericEncoder())]
    labels = [LabelSpec("t", "y", BinaryLabel(positive=["1"]))]
    with pytest.raises(ConfigError, match="label of task 't'"):
        FeaturePipeline(features, labels)
    # the same column read the same way by a feature and a label is fine
    FeaturePipeline(features, [LabelSpec("t", "y", BinaryLabel(threshold=0.0))])


def test_fit_transform_shapes_dtypes_and_values():
    pipeline = make_pipeline()
    table = make_table()
    pipeline.fit(table)
    ids, dense = pipeline.transform_features(table, "train")
    assert ids.shape == (6, 3) and ids.dtype == np.int64
    assert dense.shape == (6, 2) and dense.dtype == np.float32
    # each column equals its encoder applied alone
    for index, feature in enumerate(pipeline.id_features):
        np.testing.assert_array_equal(ids[:, index], feature.encoder.transform(table.column(feature.column)))
    for index, feature in enumerate(pipeline.dense_features):
        np.testing.assert_array_equal(dense[:, index], feature.encoder.transform(table.column(feature.column)))
    # user: u1 (3×) → 2, u2/u3 (1× each, tie by value) → 3/4, null → OOV
    assert ids[:, 0].tolist() == [2, 3, 2, 1, 4, 2]
    # age: median of 20..60 fills the null, not standardised
    np.testing.assert_allclose(dense[:, 1], [30, 40, 20, 40, 50, 60])
    assert np.isfinite(dense).all()
    assert pipeline.vocab_sizes() == [2 + 3, 2 + 11, pipeline.id_features[2].encoder.num_ids]


def test_transform_labels():
    pipeline = make_pipeline()
    labels = pipeline.transform_labels(make_table(), "train")
    assert labels.shape == (6, 2) and labels.dtype == np.float32
    assert labels[:, 0].tolist() == [1, 0, 0, 1, 0, 1]
    np.testing.assert_allclose(labels[:, 1], [1.5, 0.0, 2.0, 3.0, 0.25, 9.0])


def test_no_dense_or_no_id_features():
    table = make_table()
    only_ids = FeaturePipeline([FeatureSpec("user", "user", CategoricalEncoder())], []).fit(table)
    ids, dense = only_ids.transform_features(table, "x")
    assert ids.shape == (6, 1) and dense.shape == (6, 0) and dense.dtype == np.float32
    only_dense = FeaturePipeline([FeatureSpec("age", "age", NumericEncoder())], []).fit(table)
    ids, dense = only_dense.transform_features(table, "x")
    assert ids.shape == (6, 0) and ids.dtype == np.int64 and dense.shape == (6, 1)


def test_save_load_round_trip(tmp_path):
    pipeline = make_pipeline()
    train = make_table()
    pipeline.fit(train)
    path = tmp_path / "run" / "features.json"
    pipeline.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["features.json"]
    assert json.loads(path.read_text()) == pipeline.to_dict()
    loaded = FeaturePipeline.load(path)
    assert loaded.to_dict() == pipeline.to_dict()
    other = pa.table(
        {
            "user": ["u3", "new", None],
            "price": [2.0, None, 1e4],
            "city": ["oslo", "lima", None],
            "age": [None, 1.0, 99.0],
            "clicked": ["no", "yes", "yes"],
            "watch": [0.5, 1.0, 2.0],
        }
    )
    for table in (train, other):
        expected_ids, expected_dense = pipeline.transform_features(table, "t")
        ids, dense = loaded.transform_features(table, "t")
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(dense, expected_dense)
        np.testing.assert_array_equal(loaded.transform_labels(table, "t"), pipeline.transform_labels(table, "t"))
    assert loaded.vocab_sizes() == pipeline.vocab_sizes()


def test_load_errors_are_run_dir_errors(tmp_path):
    with pytest.raises(RunDirError):
        FeaturePipeline.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(RunDirError):
        FeaturePipeline.load(broken)
    pipeline = make_pipeline().fit(make_table())
    state = pipeline.to_dict()
    state["format_version"] = 999
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(state))
    with pytest.raises(RunDirError, match="999"):
        FeaturePipeline.load(wrong)


def test_missing_numeric_values_are_logged_with_counts(caplog):
    pipeline = make_pipeline().fit(make_table())
    with caplog.at_level(logging.WARNING, logger="mtlrec.features.pipeline"):
        pipeline.transform_features(make_table(), "data/train.csv")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # price is used by two features (2 missing: null and NaN); age has one null; categoricals are not logged
    price = [m for m in messages if "'price'" in m and "column 'price'" in m]
    age = [m for m in messages if "feature 'age'" in m]
    assert len(price) == 2 and all("data/train.csv" in m and " 2 missing" in m for m in price)
    assert len(age) == 1 and " 1 missing" in age[0] and "40" in age[0]
    assert not any("'user'" in m or "'city'" in m for m in messages)
    assert len(messages) == 3


def test_no_log_without_missing_values(caplog):
    table = pa.table({"x": [1.0, 2.0, 3.0]})
    pipeline = FeaturePipeline([FeatureSpec("x", "x", NumericEncoder())], []).fit(table)
    with caplog.at_level(logging.DEBUG, logger="mtlrec.features.pipeline"):
        pipeline.transform_features(table, "t")
    assert caplog.records == []
