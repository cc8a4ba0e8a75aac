"""Tests for resuming a run directory: the saved config is compared after the current defaults fill in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mtlrec.app.run_files import RunFiles
from mtlrec.app.runs import absolute_data_paths, comparable_config, prepare_run_dir
from mtlrec.config import Config, config_to_dict, validate_config
from mtlrec.errors import ConfigError


def current_config() -> Config:
    return validate_config(
        {
            "data": {"train": "train.csv", "valid": "valid.csv"},
            "features": [{"name": "user", "kind": "categorical"}, {"name": "price", "kind": "numeric"}],
            "tasks": [{"name": "click", "label": {"column": "clicked"}}],
            "model": {"architecture": "mmoe", "params": {"num_experts": 4}},
        }
    )


def older_saved_config(config: Config) -> dict[str, Any]:
    """The resolved config as a version without the newer sections and keys would have saved it."""
    saved = config_to_dict(config)
    for section in ("evaluation", "serving", "diagnostics"):
        del saved[section]
    del saved["train"]["early_stopping"]["constraints"]
    del saved["data"]["streaming"]
    del saved["tasks"][0]["sample_weight"]
    return saved


def run_dir(tmp_path: Path, saved: Any) -> RunFiles:
    files = RunFiles(tmp_path / "run")
    files.root.mkdir()
    files.config.write_text(saved if isinstance(saved, str) else yaml.safe_dump(saved, sort_keys=False))
    return files


def test_a_run_saved_without_newer_defaulted_keys_resumes(tmp_path):
    config = current_config()
    files = run_dir(tmp_path, older_saved_config(config))
    prepare_run_dir(files, config, resume=True, overwrite=False)
    assert yaml.safe_load(files.config.read_text()) == config_to_dict(config)  # saved again, complete


def test_resuming_may_still_change_epochs_device_diagnostics_and_serving(tmp_path):
    files = run_dir(tmp_path, older_saved_config(current_config()))
    raw = config_to_dict(current_config())
    raw["train"].update(epochs=30, device="cpu")
    raw["diagnostics"]["every_steps"] = 0
    raw["serving"]["fusion"] = {"formula": "click"}
    prepare_run_dir(files, validate_config(raw), resume=True, overwrite=False)


def test_a_genuinely_different_saved_config_is_refused_naming_only_that_section(tmp_path):
    config = current_config()
    saved = older_saved_config(config)
    saved["model"]["embedding_dim"] = 8
    files = run_dir(tmp_path, saved)
    with pytest.raises(ConfigError, match=re.escape("section(s) ['model']")):
        prepare_run_dir(files, config, resume=True, overwrite=False)
    assert yaml.safe_load(files.config.read_text()) == saved  # left as it was


def test_a_saved_config_with_a_different_default_valued_key_is_refused(tmp_path):
    config = current_config()
    saved = older_saved_config(config)
    saved["train"]["early_stopping"]["constraints"] = ["click.auc >= 0.7"]
    files = run_dir(tmp_path, saved)
    with pytest.raises(ConfigError, match=re.escape("section(s) ['train']")):
        prepare_run_dir(files, config, resume=True, overwrite=False)


def test_a_saved_config_that_no_longer_validates_names_the_file_and_the_problem(tmp_path):
    config = current_config()
    saved = older_saved_config(config)
    saved["train"]["retired_option"] = 1
    files = run_dir(tmp_path, saved)
    with pytest.raises(ConfigError) as info:
        prepare_run_dir(files, config, resume=True, overwrite=False)
    message = str(info.value)
    assert str(files.config) in message
    assert "train.retired_option: unknown key" in message


@pytest.mark.parametrize("text", ["data: [unclosed\n", "- a list\n- not a mapping\n"])
def test_an_unreadable_saved_config_is_a_config_error_naming_the_file(tmp_path, text):
    files = run_dir(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(str(files.config))):
        prepare_run_dir(files, current_config(), resume=True, overwrite=False)


def test_relative_data_paths_are_saved_absolute_and_compare_equal_to_them(tmp_path, monkeypatch):
    """A run saved with relative paths (before they were stored absolute) resumes, and compare/reproduce
    reuse it: both compare configs with the paths made absolute against the working directory."""
    monkeypatch.chdir(tmp_path)
    config = current_config()
    absolute = absolute_data_paths(config)
    assert (absolute.data.train, absolute.data.valid) == (str(tmp_path / "train.csv"), str(tmp_path / "valid.csv"))
    files = run_dir(tmp_path, config_to_dict(config))
    prepare_run_dir(files, absolute, resume=True, overwrite=False)
    assert yaml.safe_load(files.config.read_text())["data"]["train"] == str(tmp_path / "train.csv")
    assert comparable_config(config_to_dict(config)) == comparable_config(config_to_dict(absolute))
    monkeypatch.chdir(tmp_path / "run")  # relative paths mean other files from another directory
    assert comparable_config(config_to_dict(config)) != comparable_config(config_to_dict(absolute))
