"""Tests for mtlrec.features.pipeline: column types, inputs keyed by name, shared tables, save/load, logs."""

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
    LabelSpec,
    MultiValuedEncoder,
    NumericEncoder,
    RegressionLabel,
    SequenceEncoder,
    SequenceField,
    Vocabulary,
)


def make_pipeline() -> FeaturePipeline:
    features = [
        CategoricalEncoder("user"),
        NumericEncoder("price", log1p=True),
        CategoricalEncoder("city", hash_buckets=11),
        NumericEncoder("price_bucket", "price", buckets=3),
        NumericEncoder("age", fill_value="median", standardize=False),
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


def test_inputs_and_column_types():
    pipeline = make_pipeline().fit(make_table())
    specs = {spec.name: spec for spec in pipeline.inputs()}
    assert list(specs) == ["user", "price", "city", "price_bucket", "age"]
    assert [name for name, spec in specs.items() if spec.role == "ids"] == ["user", "city", "price_bucket"]
    assert [name for name, spec in specs.items() if spec.role == "dense"] == ["price", "age"]
    assert pipeline.tables() == {"user": 2 + 3, "city": 2 + 11, "price_bucket": specs["price_bucket"].rows}
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
    features = [CategoricalEncoder("a", "x"), NumericEncoder("b", "x")]
    with pytest.raises(ConfigError) as info:
        FeaturePipeline(features, [])
    message = str(info.value)
    assert "'x'" in message and "'a'" in message and "'b'" in message


def test_label_column_type_conflict_is_a_config_error():
    features = [NumericEncoder("y_value", "y")]
    labels = [LabelSpec("t", "y", BinaryLabel(positive=["1"]))]
    with pytest.raises(ConfigError, match="label of task 't'"):
        FeaturePipeline(features, labels)
    # the same column read the same way by a feature and a label is fine
    FeaturePipeline(features, [LabelSpec("t", "y", BinaryLabel(threshold=0.0))])


def test_fit_transform_shapes_dtypes_and_values():
    pipeline = make_pipeline()
    table = make_table()
    pipeline.fit(table)
    encoded = pipeline.transform_features(table, "train")
    assert list(encoded) == ["user", "price", "city", "price_bucket", "age"]
    for name in ("user", "city", "price_bucket"):
        assert encoded[name].shape == (6,) and encoded[name].dtype == np.int64
    for name in ("price", "age"):
        assert encoded[name].shape == (6,) and encoded[name].dtype == np.float32
    # each input equals its encoder applied alone
    for encoder in pipeline.encoders:
        np.testing.assert_array_equal(encoded[encoder.name], encoder.transform(table)[encoder.name])
    # user: u1 (3×) → 2, u2/u3 (1× each, tie by value) → 3/4, null → OOV
    assert encoded["user"].tolist() == [2, 3, 2, 1, 4, 2]
    # age: median of 20..60 fills the null, not standardised
    np.testing.assert_allclose(encoded["age"], [30, 40, 20, 40, 50, 60])
    assert np.isfinite(encoded["price"]).all()


def test_transform_labels():
    pipeline = make_pipeline()
    labels = pipeline.transform_labels(make_table(), "train")
    assert list(labels) == ["click", "minutes"] and labels["click"].dtype == np.float32
    assert labels["click"].tolist() == [1, 0, 0, 1, 0, 1]
    np.testing.assert_allclose(labels["minutes"], [1.5, 0.0, 2.0, 3.0, 0.25, 9.0])


def test_shared_tables_share_one_vocabulary_fitted_on_every_users_values():
    table = pa.table(
        {
            "item": ["a", "b", "a", "c"],
            "hist": [["b", "d", "d"], [], ["d"], None],
            "tags": ["x|y", "", "y", "z|y|y"],
        }
    )
    item = Vocabulary()
    pipeline = FeaturePipeline(
        [
            CategoricalEncoder("item_id", "item", table="item", vocabulary=item),
            SequenceEncoder("hist", [SequenceField("item", "hist", "item", item)], max_length=2),
            MultiValuedEncoder("tags"),
        ],
        [],
    )
    pipeline.fit(table)
    # one vocabulary over item and hist: d×4, a×2, b×2, c×1 (ties by value)
    assert item.vocabulary_ == ["d", "a", "b", "c"]
    assert pipeline.tables() == {"item": 2 + 4, "tags": 2 + 3}
    encoded = pipeline.transform_features(table, "t")
    assert encoded["item_id"].tolist() == [3, 4, 3, 5]
    assert encoded["hist.item"].tolist() == [[4, 2], [0, 0], [2, 0], [0, 0]]  # most recent first, 0 = padding
    assert encoded["hist.length"].tolist() == [2, 0, 1, 0]
    assert encoded["tags.length"].tolist() == [2, 0, 1, 3]  # the longest training list sets L = 3
    assert pipeline.separators() == {"hist": "|", "tags": "|"}
    restored = FeaturePipeline.from_dict(json.loads(json.dumps(pipeline.to_dict())))
    again = restored.transform_features(table, "t")
    assert restored.encoder("item_id").vocabulary is restored.encoder("hist").fields[0].vocabulary
    for name, value in encoded.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)


def test_a_shared_table_name_with_two_vocabularies_or_a_bucket_table_is_refused():
    with pytest.raises(ConfigError, match="two vocabularies"):
        FeaturePipeline([CategoricalEncoder("a", table="t"), CategoricalEncoder("b", table="t")], [])
    with pytest.raises(ConfigError, match="buckets of a numeric feature"):
        FeaturePipeline([NumericEncoder("age", buckets=3), CategoricalEncoder("b", table="age")], [])
    duplicate = FeaturePipeline([MultiValuedEncoder("t"), CategoricalEncoder("t.length")], [])
    duplicate.fit(pa.table({"t": [["a"]], "t.length": ["x"]}))
    with pytest.raises(ConfigError, match=r"same input name\(s\) \['t.length'\]"):
        duplicate.inputs()


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
        expected = pipeline.transform_features(table, "t")
        actual = loaded.transform_features(table, "t")
        assert list(actual) == list(expected)
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name])
        labels, expected_labels = loaded.transform_labels(table, "t"), pipeline.transform_labels(table, "t")
        for task in expected_labels:
            np.testing.assert_array_equal(labels[task], expected_labels[task])
    assert loaded.tables() == pipeline.tables()


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
    pipeline = FeaturePipeline([NumericEncoder("x")], []).fit(table)
    with caplog.at_level(logging.DEBUG, logger="mtlrec.features.pipeline"):
        pipeline.transform_features(table, "t")
    assert caplog.records == []
