"""Config → encoders and the input layer: tables shared by name (options and widths merged, conflicts
named), feature groups, sequence encoders, and config errors that name the path."""

from __future__ import annotations

import pytest

from mtlrec.app.build.features import build_inputs, plan_tables
from mtlrec.app.build.objects import build_pipeline
from mtlrec.config import validate_config
from mtlrec.errors import ConfigError


def _config(features: list[dict], **extra) -> dict:
    return {
        "data": {"train": "train.parquet"},
        "features": features,
        "tasks": [{"name": "click", "label": {"column": "click"}}],
        "model": {"architecture": "mmoe", "embedding_dim": 8},
        **extra,
    }


HIST = {
    "name": "hist",
    "kind": "sequence",
    "max_length": 5,
    "fields": [{"name": "item", "column": "items", "embedding": "item"}, {"column": "cates"}],
    "encoder": {"kind": "attention", "query": ["item_id", "cate_id"]},
}


def test_a_table_shared_by_name_merges_options_and_width_and_names_conflicts():
    features = [
        {"name": "item_id", "kind": "categorical", "embedding": "item", "min_count": 2},
        {"name": "cate_id", "kind": "categorical", "embedding_dim": 4},
        {**HIST, "fields": [{"name": "item", "column": "items", "embedding": "item", "embedding_dim": 16},
                            {"column": "cates", "embedding": "cate_id"}]},
    ]
    plans = plan_tables(validate_config(_config(features)))
    assert list(plans) == ["item", "cate_id"]
    assert plans["item"].users == ["item_id", "hist.item"] and plans["item"].options == {"min_count": 2}
    assert plans["item"].dim == 16 and plans["cate_id"].dim == 4
    pipeline = build_pipeline(validate_config(_config(features)))
    assert pipeline.encoder("item_id").vocabulary is pipeline.encoder("hist").fields[0].vocabulary
    conflict = [dict(features[0]), {**features[2], "fields": [{"column": "items", "embedding": "item", "min_count": 3},
                                                             {"column": "cates"}]}]
    with pytest.raises(ConfigError, match="features 'item_id' and 'hist.items' share the embedding table 'item' but "
                                          "set min_count to 2 and 3"):
        plan_tables(validate_config(_config(conflict, feature_groups={"all": ["item_id", "hist"]})))


def test_groups_sequences_and_their_errors(tmp_path):
    import pyarrow as pa

    features = [
        {"name": "item_id", "kind": "categorical", "embedding": "item"},
        {"name": "cate_id", "kind": "categorical"},
        {"name": "price", "kind": "numeric"},
        HIST,
    ]
    config = validate_config(_config(features, feature_groups={"item": ["item_id", "price"], "behaviour": ["hist"]}))
    pipeline = build_pipeline(config)
    table = pa.table({"item_id": ["a", "b"], "cate_id": ["x", "y"], "price": [1.0, 2.0],
                      "items": [["a"], ["b", "a"]], "cates": [["x"], ["y", "x"]]})
    pipeline.fit(table)
    inputs = build_inputs(config, pipeline)
    assert inputs.output_dim("item") == 8 + 1 and inputs.output_dim("behaviour") == 16  # the query's width
    bad = [*features[:3], {**HIST, "encoder": {"kind": "attention", "query": ["price", "cate_id"]}}]
    with pytest.raises(ConfigError, match=r"features\[3\].encoder.query\[0\]: 'price' is not a single-valued id"):
        build_inputs(validate_config(_config(bad)), pipeline)
    unknown = [*features[:3], {**HIST, "encoder": {"kind": "transformer"}}]
    with pytest.raises(ConfigError, match=r"features\[3\].encoder.kind: unknown sequence encoder 'transformer'"):
        build_inputs(validate_config(_config(unknown)), pipeline)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feature_groups": {"all": ["item_id"]}}, r"feature\(s\) \['cate_id'\] are in no feature group"),
        ({"feature_groups": {"all": ["*", "nope"]}}, r"feature_groups.all: unknown feature\(s\) \['nope'\]"),
        ({"model": {"architecture": "star", "domain_feature": "cate_id"}}, "domain_feature is now a feature group"),
    ],
)
def test_config_errors_name_the_path(change, message):
    features = [{"name": "item_id", "kind": "categorical"}, {"name": "cate_id", "kind": "categorical"}]
    with pytest.raises(ConfigError, match=message):
        validate_config(_config(features, **change))


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"name": "t", "kind": "multi_valued", "kv_separator": ":", "pooling": "max"}, "max pooling takes no weights"),
        ({"name": "t", "kind": "multi_valued", "kv_separator": "|"}, "kv_separator must differ from separator"),
        ({"name": "c", "kind": "cross", "columns": ["a"]}, "at least 2 items"),
        ({"name": "n", "kind": "numeric", "embedding_dim": 4}, "embedding_dim needs buckets or boundaries"),
        ({**HIST, "fields": [{"column": "a", "name": "length"}]}, "not 'length'"),
        ({"name": "c", "kind": "categorical", "hash_buckets": 8, "min_count": 3}, "cannot be combined"),
    ],
)
def test_feature_kinds_check_their_options(feature, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_config([feature]))
