"""``mtlrec export`` then ``mtlrec predict ARTIFACT`` on tiny census runs, against ``mtlrec predict RUN_DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from mtlrec.app import build
from mtlrec.app.cli import main
from mtlrec.app.runs import load_run
from mtlrec.data.reading import RawSplit, read_splits
from mtlrec.export import PARITY_TOLERANCES

CENSUS_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "census"


def _sets(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def _short(census_slice: dict[str, Path]) -> list[str]:
    return [
        f"data.train={census_slice['train']}",
        f"data.test={census_slice['test']}",
        "train.epochs=1",
        "train.batch_size=256",
        "train.lr=0.01",
        "train.early_stopping=null",
    ]


def _scores(path: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(path)
    return {name: np.asarray(table.column(name).to_pylist(), dtype=np.float64) for name in table.column_names}


def _predict(source: Path, data: Path, output: Path) -> dict[str, np.ndarray]:
    assert main(["-q", "predict", str(source), "--data", str(data), "--output", str(output)]) == 0
    return _scores(output)


@pytest.fixture(scope="module")
def ple_run(tmp_path_factory, census_slice) -> Path:
    """PLE on the census slice; configs/census/ple.yaml declares serving.fusion (income + 0.2 · never_married)."""
    run = tmp_path_factory.mktemp("export") / "ple"
    args = ["-q", "train", str(CENSUS_CONFIGS / "ple.yaml"), "--output", str(run), "--no-progress"]
    code = main([*args, *_sets(_short(census_slice))])
    assert code == 0
    return run


def test_export_then_predict_equals_the_run_and_fuses_as_configured(ple_run, census_slice, tmp_path, capsys):
    artifact = tmp_path / "artifact"
    assert main(["export", str(ple_run), "--output", str(artifact)]) == 0
    printed = capsys.readouterr().out
    assert "parity on 512 rows: max abs diff" in printed
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["fusion"]["weights"] == {"income": 1.0, "never_married": 0.2}
    assert manifest["parity"]["max_scaled_diff"] <= 1e-5

    exported = _predict(artifact, census_slice["test"], tmp_path / "artifact.parquet")
    eager = _predict(ple_run, census_slice["test"], tmp_path / "run.parquet")
    assert list(exported) == ["income", "never_married", "score"]
    assert len(exported["income"]) == 2000
    for task in ("income", "never_married"):
        np.testing.assert_allclose(exported[task], eager[task], rtol=0, atol=1e-5, err_msg=task)
    np.testing.assert_allclose(exported["score"], exported["income"] + 0.2 * exported["never_married"], atol=1e-6)


def test_torchscript_with_a_formula_on_the_command_line(ple_run, census_slice, tmp_path):
    artifact = tmp_path / "artifact"
    args = ["-q", "export", str(ple_run), "--output", str(artifact), "--format", "torchscript"]
    code = main([*args, "--fusion", "income^0.5 * never_married", "--data", str(census_slice["train"])])
    assert code == 0
    assert (artifact / "model.pt").is_file()
    exported = _predict(artifact, census_slice["test"], tmp_path / "artifact.parquet")
    eager = _predict(ple_run, census_slice["test"], tmp_path / "run.parquet")
    for task in ("income", "never_married"):
        np.testing.assert_allclose(exported[task], eager[task], rtol=0, atol=1e-5, err_msg=task)
    np.testing.assert_allclose(exported["score"], np.sqrt(exported["income"]) * exported["never_married"], rtol=1e-5)


def test_export_errors_are_messages(ple_run, census_slice, tmp_path, capsys):
    artifact = tmp_path / "artifact"
    assert main(["-q", "export", str(ple_run), "--output", str(artifact)]) == 0
    assert main(["-q", "export", str(ple_run), "--output", str(artifact)]) == 2
    assert "already exists; use --overwrite" in capsys.readouterr().err
    assert main(["-q", "export", str(ple_run), "--output", str(tmp_path / "x"), "--fusion", "incme * 2"]) == 2
    assert "--fusion: unknown task 'incme'; tasks are income, never_married" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"age": [30.0], "sex": ["Male"]}), missing)
    assert main(["-q", "predict", str(artifact), "--data", str(missing), "--output", str(tmp_path / "s.parquet")]) == 2
    assert "not found; the file has: age, sex" in capsys.readouterr().err


def test_regression_task_is_exported_in_its_original_unit(census_slice, tmp_path):
    """A dividends regression learnt in log1p + standardized space comes back in dollars."""
    config = tmp_path / "config.yaml"
    tasks = [
        {"name": "income", "label": {"column": "income", "positive": ["50000+."]}},
        {
            "name": "dividends",
            "label": {"column": "dividends_from_stocks", "transform": {"log1p": True, "standardize": True}},
            "loss": "mse",
        },
    ]
    fusion = {"formula": "income * log1p(dividends)"}
    body = {"extends": str(CENSUS_CONFIGS / "mmoe.yaml"), "tasks": tasks, "serving": {"fusion": fusion}}
    config.write_text(yaml.safe_dump(body))
    run = tmp_path / "run"
    assert main(["-q", "train", str(config), "--output", str(run), "--no-progress", *_sets(_short(census_slice))]) == 0
    artifact = tmp_path / "artifact"
    assert main(["-q", "export", str(run), "--output", str(artifact)]) == 0
    transform = json.loads((artifact / "manifest.json").read_text())["tasks"][1]["label_transform"]
    assert transform["log1p"] and transform["standardize"] and transform["std"] > 0

    exported = _predict(artifact, census_slice["test"], tmp_path / "artifact.parquet")
    eager = _predict(run, census_slice["test"], tmp_path / "run.parquet")
    np.testing.assert_allclose(exported["income"], eager["income"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(exported["dividends"], eager["dividends"], rtol=1e-5, atol=1e-5)
    assert exported["dividends"].max() > 10  # dollars, not the learnt log/standardized space
    np.testing.assert_allclose(exported["score"], exported["income"] * np.log1p(exported["dividends"]), rtol=1e-5)


def _held_out(run: Path) -> RawSplit:
    """The run's test rows as training split them: configs/census splits its test file 1:1 into valid and test."""
    config, pipeline, _ = load_run(run)
    files, split = build.data_files(config), build.random_split(config)
    return read_splits({split.source: files[split.source]}, pipeline, build.read_options(config), split)["test"]


def test_int8_export_records_its_auc_and_predicts_through_the_cli(ple_run, tmp_path, capsys):
    artifact = tmp_path / "int8"
    assert main(["export", str(ple_run), "--output", str(artifact), "--quantize", "int8"]) == 0
    printed = capsys.readouterr().out
    assert "(onnx, int8)" in printed and "on 1000 held-out rows: income auc" in printed
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["quantization"] == "int8" and manifest["parity"]["tolerance"] == PARITY_TOLERANCES["int8"]
    accuracy, held_out = manifest["accuracy"], _held_out(ple_run)
    assert accuracy["rows"] == held_out.table.num_rows == 1000 and accuracy["source"] == held_out.source

    rows = tmp_path / "held_out.parquet"
    pq.write_table(held_out.table, rows)
    exported = _predict(artifact, rows, tmp_path / "int8.parquet")
    eager = _predict(ple_run, rows, tmp_path / "run.parquet")
    for task in ("income", "never_married"):
        assert np.abs(exported[task] - eager[task]).max() <= PARITY_TOLERANCES["int8"], task
        figures, labels = accuracy["tasks"][task], held_out.labels[task]
        present = ~np.isnan(labels)
        assert figures["metric"] == "auc" and figures["rows"] == int(present.sum())
        assert figures["artifact"] == pytest.approx(roc_auc_score(labels[present], exported[task][present]))
        assert figures["fp32"] == pytest.approx(roc_auc_score(labels[present], eager[task][present]), abs=1e-4)
        assert abs(figures["artifact"] - figures["fp32"]) < 0.002, task


def test_bf16_export_is_torchscript_and_bad_combinations_are_messages(ple_run, census_slice, tmp_path, capsys):
    artifact = tmp_path / "bf16"
    assert main(["-q", "export", str(ple_run), "--output", str(artifact), "--quantize", "bf16"]) == 0
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["quantization"] == "bf16" and manifest["model"]["file"] == "model.pt"
    exported = _predict(artifact, census_slice["test"], tmp_path / "bf16.parquet")
    eager = _predict(ple_run, census_slice["test"], tmp_path / "run.parquet")
    for task in ("income", "never_married"):
        assert np.abs(exported[task] - eager[task]).max() <= PARITY_TOLERANCES["bf16"], task

    refused = tmp_path / "refused"
    base = ["-q", "export", str(ple_run), "--output", str(refused), "--accuracy-rows", "0"]
    assert main([*base, "--format", "onnx", "--quantize", "bf16"]) == 2
    assert "--quantize bf16 needs --format torchscript, not onnx" in capsys.readouterr().err
    assert main([*base, "--format", "torchscript", "--quantize", "int8"]) == 2
    assert "--quantize int8 needs --format onnx, not torchscript" in capsys.readouterr().err
    assert not refused.exists()
    assert main([*base]) == 0
    assert json.loads((refused / "manifest.json").read_text())["accuracy"] is None
