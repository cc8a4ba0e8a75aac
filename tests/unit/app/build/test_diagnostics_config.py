"""The ``diagnostics`` config section: defaults, bounds, and the TensorBoard error when its package is missing."""

from __future__ import annotations

import importlib.util

import pyarrow as pa
import pytest
import torch

from mtlrec.app import build
from mtlrec.app.run_files import RunFiles
from mtlrec.config import validate_config
from mtlrec.errors import ConfigError
from mtlrec.training.diagnostics import DiagnosticsRecorder


def raw_config(**diagnostics) -> dict:
    return {
        "data": {"train": "train.csv"},
        "features": [{"name": "user", "kind": "categorical"}],
        "tasks": [{"name": "click", "label": {"column": "clicked"}}, {"name": "buy", "label": {"column": "bought"}}],
        "model": {"architecture": "mmoe", "params": {"num_experts": 2}},
        "diagnostics": diagnostics,
    }


def test_defaults():
    section = validate_config(raw_config()).diagnostics
    assert (section.every_steps, section.gate_collapse_share, section.dead_expert_share) == (200, 0.9, 0.01)
    assert section.tensorboard is False


@pytest.mark.parametrize(
    ("key", "value"), [("every_steps", -1), ("gate_collapse_share", 1.5), ("dead_expert_share", 1.0), ("spam", 1)]
)
def test_bad_values_name_their_path(key, value):
    with pytest.raises(ConfigError, match=f"diagnostics.{key}"):
        validate_config(raw_config(**{key: value}))


def test_tensorboard_without_its_package_is_a_config_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "tensorboard" else real_find_spec(name, *args)
    )
    config = validate_config(raw_config(tensorboard=True))
    with pytest.raises(ConfigError, match=r"diagnostics.tensorboard: .*pip install tensorboard"):
        build.check_config(config)


def test_build_makes_a_recorder_with_the_configured_settings(tmp_path):
    config = validate_config(raw_config(every_steps=7, gate_collapse_share=0.8))
    torch.manual_seed(0)

    pipeline = build.build_pipeline(config).fit(pa.table({"user": ["a", "b", "c", "a"]}))
    model = build.build_model(config, pipeline)
    recorder = build.build_diagnostics(config, model, RunFiles(tmp_path))
    assert isinstance(recorder, DiagnosticsRecorder)
    assert recorder.settings.every_steps == 7 and recorder.settings.gate_collapse_share == 0.8
    assert recorder.task_names == ["click", "buy"] and recorder.path == tmp_path / "diagnostics.json"
    assert len(recorder.gated) == 1 and recorder.shared, "MMoE: gates and shared experts"
