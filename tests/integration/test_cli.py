"""The CLI end to end on real files: train, evaluate, predict, summarize, resume, list, schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file
from sklearn.metrics import log_loss, roc_auc_score

from mtlrec.app.cli import main

CENSUS_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "census"


def _set(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def _train(tmp_path: Path, overrides: list[str], name: str = "mmoe", run: str = "run", *extra: str) -> Path:
    output = tmp_path / run
    code = main(
        [
            "train",
            str(CENSUS_CONFIGS / f"{name}.yaml"),
            "--output",
            str(output),
            "--no-progress",
            *_set(overrides),
            *extra,
        ]
    )
    assert code == 0
    return output


CENSUS_ARCHITECTURES = sorted(path.stem for path in CENSUS_CONFIGS.glob("*.yaml") if path.stem != "base")


def test_every_census_config_is_tested():
    assert {"single_task", "shared_bottom", "mmoe", "omoe", "cgc", "ple", "star"} <= set(CENSUS_ARCHITECTURES)


@pytest.mark.parametrize("architecture", CENSUS_ARCHITECTURES)
def test_train_writes_a_complete_run(tmp_path, census_overrides, architecture, capsys):
    run = _train(tmp_path, census_overrides, architecture)
    for name in (
        "config.yaml",
        "features.json",
        "model.safetensors",
        "checkpoint.pt",
        "metrics.json",
        "history.json",
        "train.log",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"valid", "test"}
    for split in metrics.values():
        assert set(split) == {"income", "never_married"}
        assert set(split["income"]) == {"auc", "logloss"}
        # both tasks are learnable from 4000 rows in 2 short epochs (≈0.99 and ≈0.93 over seeds)
        assert split["never_married"]["auc"] > 0.97
        assert split["income"]["auc"] > 0.85
    printed = json.loads(capsys.readouterr().out)
    assert printed == metrics


def test_predict_and_evaluate_agree_with_sklearn(tmp_path, census_overrides, census_slice):
    run = _train(tmp_path, census_overrides)
    scores_path = tmp_path / "scores.parquet"
    assert main(["predict", str(run), "--data", str(census_slice["test"]), "--output", str(scores_path)]) == 0
    scores = pq.read_table(scores_path)
    assert scores.column_names == ["income", "never_married"]
    assert scores.num_rows == 2000

    metrics_path = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(census_slice["test"]), "--output", str(metrics_path)]) == 0
    metrics = json.loads(metrics_path.read_text())

    import gzip

    with gzip.open(census_slice["test"], "rt") as handle:
        rows = [line.split(",") for line in handle]
    income = [1 if row[41].strip() == "50000+." else 0 for row in rows]
    never_married = [1 if row[7].strip() == "Never married" else 0 for row in rows]
    for task, labels in (("income", income), ("never_married", never_married)):
        predicted = scores.column(task).to_numpy()
        assert metrics[task]["auc"] == pytest.approx(roc_auc_score(labels, predicted), abs=1e-6)
        assert metrics[task]["logloss"] == pytest.approx(log_loss(labels, predicted.astype("float64")), abs=1e-5)


def test_predict_writes_csv(tmp_path, census_overrides, census_slice):
    run = _train(tmp_path, census_overrides)
    out = tmp_path / "scores.csv"
    assert main(["predict", str(run), "--data", str(census_slice["test"]), "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == '"income","never_married"'
    assert len(lines) == 2001


def test_resume_equals_uninterrupted_training(tmp_path, census_overrides):
    straight = _train(tmp_path, census_overrides, run="straight")
    one_epoch = [o for o in census_overrides if not o.startswith("train.epochs")] + ["train.epochs=1"]
    resumed = _train(tmp_path, one_epoch, run="resumed")
    _train(tmp_path, census_overrides, "mmoe", "resumed", "--resume")
    first, second = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert first.keys() == second.keys()
    for key in first:
        assert (first[key] == second[key]).all(), key
    assert json.loads((straight / "metrics.json").read_text()) == json.loads((resumed / "metrics.json").read_text())
    assert len(json.loads((resumed / "history.json").read_text())) == 2


def test_training_is_deterministic(tmp_path, census_overrides):
    first = _train(tmp_path, census_overrides, run="a")
    second = _train(tmp_path, census_overrides, run="b")
    assert (first / "metrics.json").read_text() == (second / "metrics.json").read_text()


def test_existing_run_is_not_overwritten_without_flag(tmp_path, census_overrides, capsys):
    run = _train(tmp_path, census_overrides)
    code = main(["train", str(CENSUS_CONFIGS / "mmoe.yaml"), "--output", str(run), *_set(census_overrides)])
    assert code == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_refuses_a_changed_config(tmp_path, census_overrides, capsys):
    run = _train(tmp_path, census_overrides)
    code = main(
        [
            "train",
            str(CENSUS_CONFIGS / "mmoe.yaml"),
            "--output",
            str(run),
            "--resume",
            *_set(census_overrides + ["train.lr=0.5"]),
        ]
    )
    assert code == 2
    assert "train" in capsys.readouterr().err


def test_summarize_prints_and_writes_a_table(tmp_path, census_overrides, capsys):
    runs = [_train(tmp_path, census_overrides, name, name) for name in ("shared_bottom", "mmoe")]
    capsys.readouterr()
    assert main(["summarize", *map(str, runs), "--output", str(tmp_path / "summary")]) == 0
    table = capsys.readouterr().out
    assert "income.auc" in table and "mmoe" in table and "shared_bottom" in table
    csv_lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("run,architecture,income.auc")
    test_auc = json.loads((runs[1] / "metrics.json").read_text())["test"]["income"]["auc"]
    assert float(csv_lines[2].split(",")[2]) == pytest.approx(test_auc)
    assert main(["summarize", *map(str, runs), "--metric", "auc"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "income.auc" in header and "logloss" not in header


def test_list_and_schema(capsys):
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    for name in ("feature kinds:", "multi_valued", "sequence", "cross", "sequence encoders:", "attention"):
        assert name in listed
    for name in ("mmoe", "shared_bottom", "single_task", "equal", "fixed", "bce", "mse", "auc", "rmse"):
        assert name in listed
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"data", "features", "tasks", "model", "weighting", "train"} <= set(schema["properties"])


def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mtlrec", "train", str(tmp_path / "missing.yaml"), "--output", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr
    assert "Traceback" not in result.stderr
