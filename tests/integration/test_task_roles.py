"""Auxiliary and adversarial tasks from the config to the artifact: trained and evaluated, never selected on by
default, exported, served, predicted or fused; an adversarial task's gradient is reversed into the shared part."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch
from tests.small_runs import SMALL_CONFIG, good_rows, run_cli, train_run, write_config, write_csv

from mtlrec.app import build
from mtlrec.config import load_config, validate_config
from mtlrec.data.reading import encode, read_split
from mtlrec.errors import ConfigError
from mtlrec.nn.reversal import ReversedInputs

AUXILIARY_FIRST = SMALL_CONFIG.replace(
    """  - {{name: click, label: {{column: click}}, loss: bce}}
  - {{name: buy, label: {{column: buy, positive: ["yes"], negative: ["no"]}}, loss: bce}}""",
    """  - {{name: buy, label: {{column: buy, positive: ["yes"], negative: ["no"]}}, loss: bce, role: auxiliary}}
  - {{name: click, label: {{column: click}}, loss: bce}}
  - {{name: town, label: {{column: city, classes: [paris, rome, oslo]}}, loss: softmax_ce, role: adversarial,
      reversal: {{strength: 0.5}}}}""",
)


@pytest.fixture
def config_path(tmp_path):
    return write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows(80)), AUXILIARY_FIRST)


def test_auxiliary_tasks_are_trained_and_evaluated_not_exported_predicted_or_selected(tmp_path, config_path, capsys):
    code, err = train_run(tmp_path, config_path, capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"buy", "click", "town"} <= set(metrics["test"])
    assert build.selection_criterion(load_config(config_path)).criterion.text == "click.auc"

    code, err = run_cli(["export", str(tmp_path / "run"), "--output", str(tmp_path / "artifact")], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "artifact" / "manifest.json").read_text())
    assert manifest["outputs"] == ["click", "score"]
    assert manifest["fusion"]["weights"] == {"click": 1.0}

    for source in ("run", "artifact"):
        output = tmp_path / f"scores_{source}.parquet"
        data = str(tmp_path / "train.csv")
        code, err = run_cli(["predict", str(tmp_path / source), "--data", data, "--output", str(output)], capsys)
        assert code == 0, err
        assert "buy" not in pq.read_table(output).column_names and "town" not in pq.read_table(output).column_names


def test_fusing_an_auxiliary_task_is_an_error_naming_it(tmp_path, config_path, capsys):
    assert train_run(tmp_path, config_path, capsys)[0] == 0
    code, err = run_cli(
        ["export", str(tmp_path / "run"), "--output", str(tmp_path / "a"), "--fusion", "click * buy"], capsys
    )
    assert code != 0 and "'buy' is auxiliary" in err


def test_the_adversarial_tower_reads_through_a_reversal_that_negates_its_gradient(config_path):
    """Same seed, same weights: the shared experts' gradient from the task's output flips sign and scales by λ."""
    config = load_config(config_path)
    auxiliary = load_config(config_path, ["tasks[2].role=auxiliary", "tasks[2].reversal=null"])
    pipeline, raw = _fitted(config, config_path.parent / "train.csv")
    batch = encode(raw, pipeline).rows.inputs
    grads = {}
    for name, cfg in (("adversarial", config), ("auxiliary", auxiliary)):
        model = build.build_model(cfg, pipeline).train()
        shared = list(model.shared_parameters())
        grads[name] = torch.autograd.grad(model(batch)["town"].sum(), shared, allow_unused=True)
    adversarial_tower = build.build_model(config, pipeline).architecture.towers["town"]
    assert isinstance(adversarial_tower, ReversedInputs)
    compared = 0
    for reversed_grad, plain in zip(grads["adversarial"], grads["auxiliary"]):
        if plain is not None:
            torch.testing.assert_close(reversed_grad, -0.5 * plain)
            compared += 1
    assert compared > 0


def _fitted(config, path):
    """The config's pipeline fitted on ``path``, and the split read."""
    pipeline = build.build_pipeline(config)
    raw = read_split(str(path), pipeline, build.read_options(config), with_labels=True)
    pipeline.fit(raw.table, raw.labels)
    return pipeline, raw


def _raw(config_path) -> dict:
    return load_config(config_path).model_dump(mode="json", exclude_none=True)


def test_every_task_auxiliary_is_a_config_error(config_path):
    raw = _raw(config_path)
    raw["tasks"] = [dict(task, role="auxiliary") for task in raw["tasks"][:2]]
    with pytest.raises(ConfigError, match="at least one needs role 'main'"):
        validate_config(raw)


def test_a_reversal_on_a_main_task_is_a_config_error(config_path):
    raw = _raw(config_path)
    raw["tasks"][1]["reversal"] = {"strength": 1.0}
    with pytest.raises(ConfigError, match=r"tasks\[1\].*reversal applies to role 'adversarial'"):
        validate_config(raw)


def test_an_architecture_without_task_towers_cannot_hold_an_adversarial_task(tmp_path):
    config = validate_config(
        {
            "data": {"train": str(write_csv(tmp_path / "t.csv", good_rows()))},
            "features": [{"name": "age", "kind": "numeric"}],
            "tasks": [
                {"name": "ctr", "label": {"column": "click"}},
                {"name": "cvr", "label": {"column": "click"}, "role": "adversarial"},
                {"name": "ctcvr", "label": {"column": "click"}},
            ],
            "model": {"architecture": "esmm"},
        }
    )
    pipeline, _ = _fitted(config, tmp_path / "t.csv")
    with pytest.raises(ConfigError, match="ESMM has no tower of its own for task 'cvr'"):
        build.build_model(config, pipeline)
