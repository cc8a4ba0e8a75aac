"""Every weighting strategy trains a real model from config, logs its per-epoch loss weights and
resumes from a checkpoint to the same weights as an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from mtlrec.app.cli import main
from mtlrec.weighting import WEIGHTINGS

CENSUS_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "census"


def _train(output: Path, overrides: list[str], *extra: str) -> int:
    sets = [arg for override in overrides for arg in ("--set", override)]
    return main(["train", str(CENSUS_CONFIGS / "mmoe.yaml"), "--output", str(output), "--no-progress", *sets, *extra])


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_strategy_trains_and_logs_its_weights(tmp_path, census_overrides, name):
    overrides = [*census_overrides, f"weighting.name={name}", "train.early_stopping=null"]
    assert _train(tmp_path / "run", overrides) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    for record in history:
        assert set(record["loss_weights"]) == {"income", "never_married"}
        assert all(weight >= 0 for weight in record["loss_weights"].values())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert metrics["never_married"]["auc"] > 0.95 and metrics["income"]["auc"] > 0.8


def test_fixed_weights_are_logged_as_given(tmp_path, census_overrides):
    overrides = [
        *census_overrides,
        "weighting.name=fixed",
        "weighting.params.weights={income: 2.0, never_married: 0.5}",
    ]
    assert _train(tmp_path / "run", overrides) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[0]["loss_weights"] == {"income": 2.0, "never_married": 0.5}


@pytest.mark.parametrize("name", ["uncertainty", "gradnorm", "dwa"])
def test_resume_restores_the_strategy_state(tmp_path, census_overrides, name):
    overrides = [*census_overrides, f"weighting.name={name}", "train.early_stopping=null"]
    assert _train(tmp_path / "straight", overrides) == 0
    one_epoch = [o for o in overrides if not o.startswith("train.epochs")] + ["train.epochs=1"]
    assert _train(tmp_path / "resumed", one_epoch) == 0
    assert _train(tmp_path / "resumed", overrides, "--resume") == 0
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert (straight[key] == resumed[key]).all(), key


@pytest.mark.parametrize("name", ["mgda", "pcgrad", "cagrad", "imtl"])
def test_gradient_methods_on_the_shared_representation_train(tmp_path, census_overrides, name):
    overrides = [*census_overrides, f"weighting.name={name}", "weighting.params.on=representation"]
    assert _train(tmp_path / "run", overrides) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert metrics["never_married"]["auc"] > 0.95 and metrics["income"]["auc"] > 0.8
