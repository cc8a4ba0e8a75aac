"""Every metric end to end: `mtlrec train` writes GAUC, calibration, ECE, XAUC... equal to oracles computed from
`mtlrec predict` output, and model selection follows a combined criterion on the validation split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from mtlrec.app.cli import main

ROWS = {"train": 1500, "valid": 500, "test": 600}


def _write_split(path: Path, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Users (the group column, not a model input), items, two numbers; click → conversion funnel, watch time."""
    user = rng.integers(0, 40, size=rows)
    item = rng.integers(0, 30, size=rows)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    click = (rng.random(rows) < 1 / (1 + np.exp(-(1.5 * x1 + 0.05 * (item % 5) - 0.5)))).astype(int)
    conversion = click * (rng.random(rows) < 1 / (1 + np.exp(-(x2 + 0.5)))).astype(int)
    watch = np.round(np.exp(0.8 * x2 + 1.0 + 0.3 * rng.normal(size=rows)), 1)
    columns = {"user_id": user, "item": item, "x1": x1, "x2": x2, "click": click, "buy": conversion, "watch": watch}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values()))
    return columns


def _config(tmp_path: Path, files: dict[str, Path]) -> Path:
    config = {
        "data": {name: str(path) for name, path in files.items()},
        "features": [
            {"name": "item", "kind": "categorical"},
            {"name": "x1", "kind": "numeric"},
            {"name": "x2", "kind": "numeric"},
        ],
        "tasks": [
            {
                "name": "click",
                "label": {"column": "click"},
                "metrics": ["auc", "gauc", "logloss", "calibration", "ece"],
            },
            {
                "name": "conversion",
                "label": {"column": "buy"},
                "sample_space": "click == 1",
                "metrics": ["auc", "gauc", "calibration"],
            },
            {
                "name": "watch",
                "label": {"column": "watch", "transform": {"log1p": True}},
                "loss": "mse",
                "metrics": ["rmse", "mae", "xauc", "calibration"],
            },
        ],
        "model": {"architecture": "shared_bottom", "embedding_dim": 4, "params": {"bottom_hidden_units": [16]}},
        "evaluation": {"group_by": "user_id"},
        "train": {
            "epochs": 3,
            "batch_size": 64,
            "lr": 0.01,
            "early_stopping": {
                "metric": "0.7 * click.auc + 0.3 * conversion.auc",
                "constraints": ["watch.xauc >= 1.5"],  # never met: selection falls back to the criterion
                "patience": 5,
            },
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _gauc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    total = weight = 0.0
    for group in np.unique(groups):
        rows = groups == group
        if len(np.unique(labels[rows])) == 2:
            total += rows.sum() * roc_auc_score(labels[rows], scores[rows])
            weight += rows.sum()
    return total / weight


def _ece(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    total = 0.0
    for b in range(bins):
        rows = (probabilities >= b / bins) & ((probabilities < (b + 1) / bins) | (b == bins - 1))
        if rows.any():
            total += rows.sum() * abs(labels[rows].mean() - probabilities[rows].mean())
    return total / labels.size


def _xauc(labels: np.ndarray, predictions: np.ndarray) -> float:
    i, j = np.triu_indices(labels.size, k=1)
    product = (np.sign(labels[i] - labels[j]) * np.sign(predictions[i] - predictions[j]))[labels[i] != labels[j]]
    return float(np.mean((product > 0) + 0.5 * (product == 0)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("metrics")
    rng = np.random.default_rng(0)
    files = {name: folder / f"{name}.csv" for name in ROWS}
    columns = {name: _write_split(files[name], rows, rng) for name, rows in ROWS.items()}
    run = folder / "run"
    assert main(["train", str(_config(folder, files)), "--output", str(run), "--no-progress"]) == 0
    return run, files["test"], columns["test"]


def test_metrics_json_equals_oracles_on_predict_output(trained, tmp_path):
    run, test_file, test = trained
    scores_path = tmp_path / "scores.parquet"
    assert main(["predict", str(run), "--data", str(test_file), "--output", str(scores_path)]) == 0
    scores = {
        name: pq.read_table(scores_path).column(name).to_numpy().astype(np.float64)
        for name in ("click", "conversion", "watch")
    }
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    users, click, buy, watch = test["user_id"], test["click"], test["buy"], test["watch"]

    p = scores["click"]
    expected = {
        "auc": roc_auc_score(click, p),
        "gauc": _gauc(click, p, users),
        "logloss": log_loss(click, p),
        "calibration": p.sum() / click.sum(),
        "ece": _ece(click, p),
    }
    clicked = click == 1  # the conversion task's sample space
    q = scores["conversion"][clicked]
    expected_conversion = {
        "auc": roc_auc_score(buy[clicked], q),
        "gauc": _gauc(buy[clicked], q, users[clicked]),
        "calibration": q.sum() / buy[clicked].sum(),
    }
    w = scores["watch"]
    expected_watch = {
        "rmse": np.sqrt(mean_squared_error(watch, w)),
        "mae": mean_absolute_error(watch, w),
        "xauc": _xauc(watch, w),
        "calibration": w.sum() / watch.sum(),
    }
    for task, values in (("click", expected), ("conversion", expected_conversion), ("watch", expected_watch)):
        assert set(metrics[task]) == set(values)
        for name, value in values.items():
            assert metrics[task][name] == pytest.approx(value, rel=1e-5, abs=1e-6), f"{task}.{name}"
    assert 0.6 < metrics["click"]["auc"] and 0.6 < metrics["watch"]["xauc"] < 1.0  # learnt something

    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(test_file), "--output", str(evaluated)]) == 0
    again = json.loads(evaluated.read_text())
    for task in metrics:
        for name, value in metrics[task].items():
            assert again[task][name] == pytest.approx(value, rel=1e-6), f"evaluate {task}.{name}"


def test_selection_uses_the_validation_criterion_and_warns_on_unmet_constraints(trained):
    run = trained[0]
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 3
    criteria = []
    for record in history:
        valid = record["valid"]
        expected = 0.7 * valid["click"]["auc"] + 0.3 * valid["conversion"]["auc"]
        assert record["selection"]["criterion"] == pytest.approx(expected, abs=1e-12)
        assert record["selection"]["constraints_met"] is False
        assert record["selection"]["violated"] == ["watch.xauc >= 1.5"]
        criteria.append(expected)
    best = int(np.argmax(criteria))
    # the kept weights are the best epoch's: re-evaluated on the validation split they give its metrics
    final_valid = json.loads((run / "metrics.json").read_text())["valid"]
    for task, values in history[best]["valid"].items():
        for name, value in values.items():
            assert final_valid[task][name] == pytest.approx(value, rel=1e-6, abs=1e-9), f"{task}.{name}"
    log = (run / "train.log").read_text()
    assert "criterion" in log and "no evaluation met the selection constraints" in log
    assert f"selected epoch {best + 1}, step {history[best]['step']} by the criterion alone" in log


def test_list_shows_the_metrics(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    metrics_section = out.split("metrics:")[1]
    for name in ("auc", "gauc", "logloss", "calibration", "ece", "rmse", "mae", "xauc", "accuracy"):
        assert f"  {name} " in metrics_section
    assert "Group AUC" in metrics_section and "XAUC" in metrics_section
