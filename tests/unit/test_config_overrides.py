"""Tests for ``--set`` overrides of sections that may be given as a flag (``data.streaming: true``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mtlrec.config import StreamingOptions, apply_override, load_config, validate_config
from mtlrec.errors import ConfigError


def minimal_raw() -> dict[str, Any]:
    """A small valid config as plain data (streamable: train and valid files, no split)."""
    return {
        "data": {"train": "train.csv", "valid": "valid.csv"},
        "features": [{"name": "user", "kind": "categorical"}],
        "tasks": [{"name": "click", "label": {"column": "clicked"}}],
        "model": {"architecture": "mmoe", "params": {"num_experts": 4}},
    }


def overridden(*overrides: str) -> dict[str, Any]:
    raw = minimal_raw()
    for override in overrides:
        apply_override(raw, override)
    return raw


@pytest.mark.parametrize(
    "overrides",
    [
        ("data.streaming=true", "data.streaming.shuffle_buffer_rows=1000"),
        ("data.streaming.shuffle_buffer_rows=1000", "data.streaming=true"),
        ("data.streaming=null", "data.streaming.shuffle_buffer_rows=1000"),
        ("data.streaming=true", "data.streaming.shuffle_buffer_rows=1000", "data.streaming=true"),
    ],
)
def test_streaming_flag_and_its_options_combine_in_any_order(overrides):
    raw = overridden(*overrides)
    assert raw["data"]["streaming"] == {"shuffle_buffer_rows": 1000}
    streaming = validate_config(raw).data.streaming
    assert streaming == StreamingOptions(shuffle_buffer_rows=1000)
    assert streaming.prefetch_batches == StreamingOptions().prefetch_batches  # the others keep their defaults


def test_streaming_flag_alone_still_means_streaming_with_defaults():
    raw = overridden("data.streaming=true")
    assert raw["data"]["streaming"] is True
    assert validate_config(raw).data.streaming == StreamingOptions()


def test_streaming_false_after_options_turns_streaming_off():
    raw = overridden("data.streaming.shuffle_buffer_rows=1000", "data.streaming=false")
    assert validate_config(raw).data.streaming is None


def test_options_override_a_streaming_flag_given_in_the_file(tmp_path: Path):
    raw = minimal_raw()
    raw["data"]["streaming"] = True
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_config(path, ["data.streaming.prefetch_batches=2"])
    assert config.data.streaming == StreamingOptions(prefetch_batches=2)


def test_true_keeps_streaming_options_given_in_the_file(tmp_path: Path):
    raw = minimal_raw()
    raw["data"]["streaming"] = {"prefetch_batches": 2}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_config(path, ["data.streaming=true"]).data.streaming == StreamingOptions(prefetch_batches=2)


def test_a_section_given_as_null_is_filled_in():
    raw = overridden("train.early_stopping=null", "train.early_stopping.patience=5")
    assert raw["train"]["early_stopping"] == {"patience": 5}
    assert validate_config(raw).train.early_stopping.patience == 5


def test_true_replaces_a_mapping_where_the_schema_expects_no_section():
    raw = overridden("model.params.gate={hidden: 8}", "model.params.gate=true")
    assert raw["model"]["params"]["gate"] is True


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        (("data.csv.header=true", "data.csv.header.x=1"), "data.csv.header"),  # a boolean, not a section
        (("model.params.gate=true", "model.params.gate.units=8"), "model.params.gate"),  # free-form, not a section
        (("model.architecture.name=x",), "model.architecture"),  # a string
    ],
)
def test_descending_into_a_value_that_is_no_section_names_the_path(overrides, path):
    raw = minimal_raw()
    for override in overrides[:-1]:
        apply_override(raw, override)
    with pytest.raises(ConfigError, match=re.escape(f"'{path}'")) as info:
        apply_override(raw, overrides[-1])
    assert repr(overrides[-1]) in str(info.value)


def test_unknown_streaming_option_is_a_config_error_naming_its_path():
    raw = overridden("data.streaming=true", "data.streaming.shuffle_rows=1000")
    with pytest.raises(ConfigError, match=re.escape("data.streaming.shuffle_rows: unknown key")):
        validate_config(raw)
