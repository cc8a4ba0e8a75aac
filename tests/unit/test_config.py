"""Tests for mtlrec.config: validation errors naming config paths, --set overrides, extends, validators."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mtlrec.config import (
    CategoricalFeature,
    Config,
    LabelConfig,
    NumericFeature,
    SplitOptions,
    apply_override,
    config_to_dict,
    load_config,
    validate_config,
)
from mtlrec.errors import ConfigError


def minimal_raw() -> dict[str, Any]:
    """A small valid config as plain data (three features, two tasks)."""
    return {
        "data": {"train": "train.csv", "valid": "valid.csv"},
        "features": [
            {"name": "user", "kind": "categorical"},
            {"name": "item", "kind": "categorical", "min_count": 2},
            {"name": "price", "kind": "numeric", "log1p": True},
        ],
        "tasks": [
            {"name": "click", "label": {"column": "clicked"}},
            {"name": "buy", "label": {"column": "bought", "threshold": 0.0}},
        ],
        "model": {"architecture": "mmoe", "params": {"num_experts": 4}},
    }


def config_error(raw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return str(info.value)


def error_lines(message: str) -> list[str]:
    """The per-problem lines of a ConfigError message (after the 'invalid config' heading)."""
    return [line.strip() for line in message.splitlines()[1:]]


# --------------------------------------------------------------------------- validation


def test_minimal_config_is_valid_with_defaults():
    config = validate_config(minimal_raw())
    assert isinstance(config, Config)
    assert isinstance(config.features[0], CategoricalFeature)
    assert isinstance(config.features[2], NumericFeature)
    assert config.features[1].min_count == 2
    assert config.features[2].log1p is True
    assert config.train.epochs == 10
    assert config.tasks[0].loss == "bce"
    assert config.data.csv.delimiter == ","
    assert config.weighting.name == "equal"


def test_config_to_dict_round_trips():
    config = validate_config(minimal_raw())
    again = validate_config(config_to_dict(config))
    assert again == config


def test_unknown_nested_key_names_its_path():
    raw = minimal_raw()
    raw["tasks"][1]["label"]["colum"] = "bought"
    message = config_error(raw)
    assert "tasks[1].label" in message
    assert "unknown key" in message
    assert any(line.startswith("tasks[1].label.colum:") and "unknown key" in line for line in error_lines(message))


def test_unknown_top_level_key():
    raw = minimal_raw()
    raw["trian"] = {"epochs": 3}
    lines = error_lines(config_error(raw))
    assert lines == ["trian: unknown key"]


def test_wrong_type_names_its_path():
    raw = minimal_raw()
    raw["train"] = {"epochs": "ten"}
    lines = error_lines(config_error(raw))
    assert len(lines) == 1
    assert lines[0].startswith("train.epochs:")
    assert "integer" in lines[0]


def test_missing_required_key_names_its_path():
    raw = minimal_raw()
    del raw["tasks"][0]["label"]["column"]
    lines = error_lines(config_error(raw))
    assert len(lines) == 1
    assert lines[0].startswith("tasks[0].label.column:")


def test_several_errors_are_all_reported():
    raw = minimal_raw()
    raw["train"] = {"epochs": 0, "batch_size": "big"}
    raw["model"]["embeding_dim"] = 8
    lines = error_lines(config_error(raw))
    paths = sorted(line.split(":")[0] for line in lines)
    assert paths == ["model.embeding_dim", "train.batch_size", "train.epochs"]


def test_discriminated_union_error_names_the_list_item_not_the_tag():
    raw = minimal_raw()
    raw["features"][2]["bukets"] = 8
    message = config_error(raw)
    assert "features[2]" in message
    assert "numeric." not in message
    assert "features[2].bukets: unknown key" in error_lines(message)


def test_discriminated_union_missing_field_and_wrong_type():
    raw = minimal_raw()
    del raw["features"][1]["name"]
    raw["features"][2]["buckets"] = "many"
    lines = error_lines(config_error(raw))
    assert "categorical." not in "\n".join(lines)
    assert "numeric." not in "\n".join(lines)
    assert sorted(line.split(":")[0] for line in lines) == ["features[1].name", "features[2].buckets"]


def test_unknown_union_tag_names_the_item():
    raw = minimal_raw()
    raw["features"][0]["kind"] = "text"
    lines = error_lines(config_error(raw))
    assert len(lines) == 1
    assert lines[0].startswith("features[0]")


def test_union_tag_not_doubled_when_item_has_key_named_like_the_tag():
    raw = minimal_raw()
    raw["features"][2]["numeric"] = True
    lines = error_lines(config_error(raw))
    assert lines == ["features[2].numeric: unknown key"]


def test_empty_feature_list_is_an_error():
    raw = minimal_raw()
    raw["features"] = []
    lines = error_lines(config_error(raw))
    assert len(lines) == 1 and lines[0].startswith("features:")


def test_top_level_not_a_mapping():
    with pytest.raises(ConfigError):
        validate_config(["not", "a", "mapping"])


def test_duplicate_feature_names_are_an_error():
    raw = minimal_raw()
    raw["features"].append({"name": "user", "kind": "numeric"})
    message = config_error(raw)
    assert "duplicate" in message
    assert "user" in message


def test_duplicate_task_names_are_an_error():
    raw = minimal_raw()
    raw["tasks"][1]["name"] = "click"
    message = config_error(raw)
    assert "tasks" in message and "duplicate" in message and "click" in message


def test_categorical_hash_buckets_exclude_min_count():
    with pytest.raises(ValidationError):
        CategoricalFeature(name="x", kind="categorical", hash_buckets=10, min_count=2)
    with pytest.raises(ValidationError):
        CategoricalFeature(name="x", kind="categorical", hash_buckets=10, max_vocab_size=5)
    assert CategoricalFeature(name="x", kind="categorical", hash_buckets=10).hash_buckets == 10


# --------------------------------------------------------------------------- SplitOptions / LabelConfig


@pytest.mark.parametrize(
    "fractions",
    [
        {"valid": 0.5, "test": 0.5},
        {"valid": 0.7, "test": 0.4},
        {"valid": 1.0},
        {"valid": 0.0},
        {"valid": -0.1},
    ],
)
def test_split_fractions_must_be_in_range_and_sum_below_one(fractions):
    with pytest.raises(ValidationError):
        SplitOptions(source="train", fractions=fractions)


def test_split_fractions_valid():
    split = SplitOptions(source="train", fractions={"valid": 0.1, "test": 0.2}, seed=7)
    assert split.fractions == {"valid": 0.1, "test": 0.2}
    assert split.seed == 7


def test_split_source_must_not_be_in_fractions():
    with pytest.raises(ValidationError, match="source"):
        SplitOptions(source="train", fractions={"train": 0.2})


def test_split_errors_through_validate_config_name_data_split():
    raw = minimal_raw()
    raw["data"] = {"train": "t.csv", "split": {"source": "train", "fractions": {"valid": 0.6, "test": 0.5}}}
    lines = error_lines(config_error(raw))
    assert len(lines) == 1
    assert lines[0].startswith("data.split:")
    assert "less than 1" in lines[0]


def test_split_source_must_have_a_file_and_targets_must_not():
    raw = minimal_raw()
    raw["data"] = {"train": "t.csv", "split": {"source": "test", "fractions": {"valid": 0.5}}}
    assert "test" in config_error(raw)
    raw["data"] = {
        "train": "t.csv",
        "valid": "v.csv",
        "split": {"source": "train", "fractions": {"valid": 0.5}},
    }
    assert "valid" in config_error(raw)


def test_label_threshold_and_positive_together_is_an_error():
    with pytest.raises(ValidationError, match="not both"):
        LabelConfig(column="y", threshold=0.5, positive=["yes"])
    with pytest.raises(ValidationError, match="not both"):
        LabelConfig(column="y", threshold=0.5, positive=["yes"], negative=["no"])


def test_label_negative_needs_positive():
    with pytest.raises(ValidationError):
        LabelConfig(column="y", negative=["no"])


def test_label_valid_forms():
    assert LabelConfig(column="y").threshold is None
    assert LabelConfig(column="y", threshold=3).threshold == 3.0
    label = LabelConfig(column="y", positive=["yes", 1], negative=["no"])
    assert label.positive == ["yes", 1] and label.negative == ["no"]


def test_label_error_through_validate_config_names_the_task_label():
    raw = minimal_raw()
    raw["tasks"][1]["label"]["positive"] = ["1"]
    lines = error_lines(config_error(raw))
    assert len(lines) == 1
    assert lines[0].startswith("tasks[1].label:")


def test_label_threshold_with_empty_positive_list_is_an_error():
    with pytest.raises(ValidationError):
        LabelConfig(column="y", threshold=0.5, positive=[])


# --------------------------------------------------------------------------- apply_override


def test_override_creates_nested_dicts_and_parses_yaml_scalars():
    raw: dict[str, Any] = {}
    apply_override(raw, "a.b=3")
    apply_override(raw, "a.c=0.5")
    apply_override(raw, "a.d=true")
    apply_override(raw, "x=hello")
    assert raw == {"a": {"b": 3, "c": 0.5, "d": True}, "x": "hello"}
    assert isinstance(raw["a"]["b"], int)


@pytest.mark.parametrize("override", ["tasks[1].loss=mse", "tasks.1.loss=mse"])
def test_override_list_index_both_syntaxes(override):
    raw = minimal_raw()
    before = copy.deepcopy(raw)
    apply_override(raw, override)
    assert raw["tasks"][1]["loss"] == "mse"
    assert "loss" not in raw["tasks"][0]
    assert isinstance(raw["tasks"], list) and len(raw["tasks"]) == len(before["tasks"])


def test_override_index_zero():
    raw = minimal_raw()
    apply_override(raw, "tasks[0].loss=mse")
    assert raw["tasks"][0]["loss"] == "mse"


def test_override_list_value_and_replacing_a_list_item():
    raw = minimal_raw()
    apply_override(raw, "model.params.hidden_units=[64, 32]")
    assert raw["model"]["params"] == {"num_experts": 4, "hidden_units": [64, 32]}
    apply_override(raw, "model.params.hidden_units[1]=16")
    assert raw["model"]["params"]["hidden_units"] == [64, 16]


def test_override_value_may_contain_equals_sign():
    raw: dict[str, Any] = {}
    apply_override(raw, "a.b=x=y")
    assert raw == {"a": {"b": "x=y"}}


@pytest.mark.parametrize(
    "override",
    [
        "train.epochs",  # no '='
        "=3",  # no key
        " =3",
        "tasks[2].loss=mse",  # index out of range (2 tasks)
        "tasks.5.loss=mse",
        "tasks[-1].loss=mse",
        "tasks.first.loss=mse",  # not an index
        "model.architecture.name=x",  # inside a string
        "train.epochs=[1, 2",  # invalid YAML
    ],
)
def test_bad_overrides_raise_config_error(override):
    raw = minimal_raw()
    before = copy.deepcopy(raw)
    with pytest.raises(ConfigError) as info:
        apply_override(raw, override)
    assert override.strip() in str(info.value) or repr(override) in str(info.value)
    if override.startswith("tasks"):
        assert raw == before


def test_override_index_error_message_names_the_path():
    raw = minimal_raw()
    with pytest.raises(ConfigError, match=re.escape("'tasks.2'")):
        apply_override(raw, "tasks[2].loss=mse")


# --------------------------------------------------------------------------- load_config / extends


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_load_config_reads_yaml(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", minimal_raw())
    config = load_config(path)
    assert config == validate_config(minimal_raw())


def test_load_config_applies_overrides(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", minimal_raw())
    config = load_config(path, ["train.epochs=3", "tasks[1].loss=mse", "model.params.units=[64, 32]"])
    assert config.train.epochs == 3
    assert config.tasks[1].loss == "mse"
    assert config.model.params == {"num_experts": 4, "units": [64, 32]}


def test_load_config_override_producing_bad_type_names_path_and_source(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", minimal_raw())
    with pytest.raises(ConfigError) as info:
        load_config(path, ["train.epochs=ten"])
    assert "train.epochs" in str(info.value)
    assert str(path) in str(info.value)


def test_extends_deep_merges_under_the_child(tmp_path):
    base = minimal_raw()
    base["train"] = {"epochs": 5, "lr": 0.01, "batch_size": 256}
    write_yaml(tmp_path / "base" / "base.yaml", base)
    child = {
        "extends": "base/base.yaml",
        "model": {"architecture": "shared_bottom", "params": {"hidden": [8]}},
        "train": {"epochs": 2},
        "features": [{"name": "only", "kind": "categorical"}],
    }
    path = write_yaml(tmp_path / "child.yaml", child)
    config = load_config(path)
    assert config.model.architecture == "shared_bottom"
    # nested dicts merge key by key
    assert config.model.params == {"num_experts": 4, "hidden": [8]}
    assert (config.train.epochs, config.train.lr, config.train.batch_size) == (2, 0.01, 256)
    # lists are replaced, not merged
    assert [f.name for f in config.features] == ["only"]
    # untouched sections come from the base
    assert [t.name for t in config.tasks] == ["click", "buy"]


def test_extends_is_relative_to_the_extending_file_and_chains(tmp_path):
    write_yaml(tmp_path / "a" / "root.yaml", minimal_raw())
    write_yaml(tmp_path / "a" / "b" / "mid.yaml", {"extends": "../root.yaml", "train": {"epochs": 4, "lr": 0.5}})
    path = write_yaml(tmp_path / "c" / "leaf.yaml", {"extends": "../a/b/mid.yaml", "train": {"lr": 0.25}})
    config = load_config(path)
    assert (config.train.epochs, config.train.lr) == (4, 0.25)


def test_extends_cycle_is_detected(tmp_path):
    write_yaml(tmp_path / "a.yaml", {"extends": "b.yaml", "train": {"epochs": 1}})
    write_yaml(tmp_path / "b.yaml", {"extends": "a.yaml", "train": {"epochs": 2}})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_extends_self_cycle_is_detected(tmp_path):
    write_yaml(tmp_path / "self.yaml", {"extends": "./self.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "self.yaml")


def test_extends_missing_base_is_a_config_error(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"extends": "nope.yaml"})
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(path)


def test_missing_file_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(scalar)
