"""Task kinds and task definitions end to end through the CLI: multi-class heads, sample spaces,
EasyRec's task_towers spelling, per-task towers, and the config errors around them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

from mtlrec.app.cli import main

CENSUS_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "census"
MARITAL = [
    "Never married",
    "Married-civilian spouse present",
    "Divorced",
    "Widowed",
    "Separated",
    "Married-spouse absent",
    "Married-A F spouse present",
]


def _config(tmp_path: Path, body: dict, base: str = "mmoe.yaml") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"extends": str(CENSUS_CONFIGS / base), **body}))
    return path


def _train(config: Path, output: Path, overrides: list[str]) -> int:
    sets = [arg for override in overrides for arg in ("--set", override)]
    return main(["train", str(config), "--output", str(output), "--no-progress", *sets])


def _column(path: Path, index: int) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [line.split(",")[index].strip() for line in handle]


def test_multi_class_task_trains_and_matches_sklearn(tmp_path, census_overrides, census_slice):
    tasks = [
        {"name": "income", "label": {"column": "income", "positive": ["50000+."]}},
        {"name": "marital", "label": {"column": "marital_stat", "classes": MARITAL}, "loss": "softmax_ce"},
    ]
    config = _config(tmp_path, {"tasks": tasks, "train": {"early_stopping": None}})
    run = tmp_path / "run"
    assert _train(config, run, census_overrides) == 0
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    assert set(metrics["marital"]) == {"accuracy", "cross_entropy"}

    scores_path = tmp_path / "scores.parquet"
    assert main(["predict", str(run), "--data", str(census_slice["test"]), "--output", str(scores_path)]) == 0
    probabilities = np.array(pq.read_table(scores_path).column("marital").to_pylist())
    assert probabilities.shape == (2000, len(MARITAL))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)

    labels = np.array([MARITAL.index(value) for value in _column(census_slice["test"], 7)])
    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(census_slice["test"]), "--output", str(evaluated)]) == 0
    marital = json.loads(evaluated.read_text())["marital"]
    assert marital["accuracy"] == pytest.approx(accuracy_score(labels, probabilities.argmax(1)), abs=1e-9)
    normalised = probabilities.astype(np.float64) / probabilities.sum(1, keepdims=True)
    expected_ce = log_loss(labels, normalised, labels=list(range(len(MARITAL))))
    assert marital["cross_entropy"] == pytest.approx(expected_ce, rel=1e-4)
    majority = np.bincount(labels).max() / len(labels)
    assert marital["accuracy"] > majority + 0.1  # learnt beyond predicting the most frequent class


def test_sample_space_restricts_metrics_to_rows_where_it_holds(tmp_path, census_overrides, census_slice):
    tasks = [
        {"name": "never_married", "label": {"column": "marital_stat", "positive": ["Never married"]}},
        {
            "name": "income_of_men",
            "label": {"column": "income", "positive": ["50000+."]},
            "sample_space": 'sex == "Male"',
        },
    ]
    config = _config(tmp_path, {"tasks": tasks, "train": {"early_stopping": None}})
    run = tmp_path / "run"
    assert _train(config, run, census_overrides) == 0
    scores_path = tmp_path / "scores.parquet"
    assert main(["predict", str(run), "--data", str(census_slice["test"]), "--output", str(scores_path)]) == 0
    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(census_slice["test"]), "--output", str(evaluated)]) == 0

    men = np.array(_column(census_slice["test"], 12)) == "Male"
    income = np.array(_column(census_slice["test"], 41)) == "50000+."
    scores = pq.read_table(scores_path).column("income_of_men").to_numpy()
    metrics = json.loads(evaluated.read_text())["income_of_men"]
    assert 0 < men.sum() < len(men)
    assert metrics["auc"] == pytest.approx(roc_auc_score(income[men], scores[men]), abs=1e-6)
    assert metrics["auc"] != pytest.approx(roc_auc_score(income, scores), abs=1e-6)


def test_easyrec_task_towers_with_per_task_tower_widths(tmp_path, census_overrides):
    towers = [
        {
            "tower_name": "income",
            "label_name": "income",
            "label": {"positive": ["50000+."]},
            "mlp": {"hidden_units": [16]},
        },
        {
            "tower_name": "never_married",
            "label_name": "marital_stat",
            "label": {"positive": ["Never married"]},
            "mlp": {"hidden_units": [24, 8]},
            "losses": ["bce"],
            "metrics": ["auc"],
        },
    ]
    body = {"tasks": None, "task_towers": towers}
    config = tmp_path / "ple.yaml"
    config.write_text(yaml.safe_dump({"extends": str(CENSUS_CONFIGS / "ple.yaml"), **body}))
    run = tmp_path / "run"
    assert _train(config, run, census_overrides) == 0
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    assert set(metrics) == {"income", "never_married"}
    assert set(metrics["never_married"]) == {"auc"}
    state = load_file(run / "model.safetensors")
    assert state["architecture.towers.income.mlp.layers.0.weight"].shape[0] == 16
    assert state["architecture.towers.never_married.mlp.layers.0.weight"].shape[0] == 24
    assert state["architecture.towers.never_married.mlp.layers.2.weight"].shape[0] == 8


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": {"architecture": "star"}}, "reads the group 'domain' (one categorical feature)"),
        ({"model": {"architecture": "mmoe", "domain_feature": "sex"}}, "domain_feature is now a feature group"),
        (
            {"model": {"architecture": "star"}, "feature_groups": {"all": ["*"], "domain": ["age"]}},
            "feature_groups.domain: architecture 'star' reads it as the ids of one categorical feature",
        ),
        ({"feature_groups": {"all": ["age", "sexx"]}}, "feature_groups.all: unknown feature(s) ['sexx']"),
        ({"feature_groups": {"all": ["age"]}}, "are in no feature group"),
        ({"model": {"architecture": "mmoe", "input_groups": ["users"]}}, "model.input_groups: unknown group(s)"),
        ({"model": {"architecture": "esmm"}}, "needs exactly 3 tasks"),
        ({"tasks": [{"name": "t", "label": {"column": "income", "classes": ["a", "b"]}}]}, "softmax_ce"),
        ({"tasks": [{"name": "t", "label": {"column": "income"}, "sample_space": "sex =="}]}, "tasks[0].sample_space"),
        ({"tasks": [{"name": "t", "label": {"column": "income"}, "sample_space": "age + 1"}]}, "not a condition"),
        ({"model": {"architecture": "ple", "params": {"extraction_networks": []}}}, "model (ple)"),
        ({"model": {"architecture": "cgc", "tasks": None}}, "model.tasks: unknown key"),
    ],
)
def test_config_errors_name_the_path(tmp_path, census_overrides, capsys, body, message):
    config = _config(tmp_path, {"model": {"architecture": "mmoe"}, **body}, base="base.yaml")
    assert _train(config, tmp_path / "run", census_overrides) != 0
    assert message in capsys.readouterr().err


def test_bf16_training_learns_like_fp32_and_keeps_fp32_weights(tmp_path, census_overrides):
    config = CENSUS_CONFIGS / "mmoe.yaml"
    fp32 = tmp_path / "fp32"
    bf16 = tmp_path / "bf16"
    assert _train(config, fp32, census_overrides + ["train.precision=fp32"]) == 0
    assert _train(config, bf16, census_overrides + ["train.precision=bf16"]) == 0
    results = {run.name: json.loads((run / "metrics.json").read_text())["test"] for run in (fp32, bf16)}
    for task in ("income", "never_married"):
        assert results["bf16"][task]["auc"] == pytest.approx(results["fp32"][task]["auc"], abs=0.01)
        assert results["bf16"][task]["auc"] != results["fp32"][task]["auc"]  # bf16 matmuls really ran
    state = load_file(bf16 / "model.safetensors")
    assert {tensor.dtype for tensor in state.values()} == {torch.float32}


def _with_missing_income(source: Path, target: Path, every: int = 10) -> Path:
    with gzip.open(source, "rt") as reader, gzip.open(target, "wt") as writer:
        for index, line in enumerate(reader):
            fields = line.rstrip("\n").split(",")
            if index % every == 3:
                fields[41] = " ?"
            writer.write(",".join(fields) + "\n")
    return target


def test_missing_labels_are_an_error_naming_the_row_unless_masked(tmp_path, census_overrides, census_slice, capsys):
    train = _with_missing_income(census_slice["train"], tmp_path / "train.csv.gz")
    overrides = [o for o in census_overrides if not o.startswith("data.train")] + [f"data.train={train}"]
    config = CENSUS_CONFIGS / "mmoe.yaml"
    assert _train(config, tmp_path / "strict", overrides) != 0
    assert "label column 'income' has 400 missing value(s), the first at data row 4" in capsys.readouterr().err

    assert _train(config, tmp_path / "masked", overrides + ["tasks[0].label.missing=mask"]) == 0
    metrics = json.loads((tmp_path / "masked" / "metrics.json").read_text())["test"]
    assert metrics["income"]["auc"] > 0.85


def test_sample_weight_formula_gives_each_row_its_weight(tmp_path, census_overrides, census_slice):
    from mtlrec.app import build
    from mtlrec.config import load_config
    from mtlrec.data.reading import read_split

    formula = "1 + 4*(capital_gains > 0) + log1p(dividends_from_stocks)"
    overrides = [*census_overrides, f"tasks[0].sample_weight={formula}"]
    config = load_config(CENSUS_CONFIGS / "mmoe.yaml", overrides)
    build.check_config(config)
    pipeline = build.build_pipeline(config)
    raw = read_split(census_slice["train"], pipeline, build.read_options(config), with_labels=True)
    gains = np.array(_column(census_slice["train"], 16), dtype=float)
    dividends = np.array(_column(census_slice["train"], 18), dtype=float)
    np.testing.assert_allclose(raw.weights["income"], 1 + 4 * (gains > 0) + np.log1p(dividends), rtol=1e-6)
    np.testing.assert_array_equal(raw.weights["never_married"], 1.0)
    assert _train(CENSUS_CONFIGS / "mmoe.yaml", tmp_path / "run", overrides) == 0


def test_negative_sample_weight_is_an_error_naming_the_row(tmp_path, census_overrides, capsys):
    overrides = [*census_overrides, "tasks[0].sample_weight=age - 30"]
    assert _train(CENSUS_CONFIGS / "mmoe.yaml", tmp_path / "run", overrides) != 0
    err = capsys.readouterr().err
    assert "sample weight of task 'income' (age - 30)" in err and "at data row" in err


@pytest.mark.parametrize(("loss", "params"), [("focal", "{gamma: 2, alpha: 0.5}"), ("bce", "{label_smoothing: 0.05}")])
def test_binary_losses_with_parameters_train(tmp_path, census_overrides, loss, params):
    overrides = [*census_overrides, f"tasks[1].loss={loss}", f"tasks[1].loss_params={params}"]
    assert _train(CENSUS_CONFIGS / "mmoe.yaml", tmp_path / "run", overrides) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert metrics["never_married"]["auc"] > 0.97


def test_unknown_loss_parameter_names_the_path(tmp_path, census_overrides, capsys):
    overrides = [*census_overrides, "tasks[1].loss=focal", "tasks[1].loss_params={gama: 2}"]
    assert _train(CENSUS_CONFIGS / "mmoe.yaml", tmp_path / "run", overrides) != 0
    assert "tasks[1].loss_params.gama: unknown parameter" in capsys.readouterr().err


def test_label_transforms_learn_in_log_space_and_report_in_the_original_unit(tmp_path, census_overrides, census_slice):
    tasks = [
        {"name": "never_married", "label": {"column": "marital_stat", "positive": ["Never married"]}},
        {
            "name": "weight",
            "label": {"column": "instance_weight", "transform": {"log1p": True, "standardize": True}},
            "loss": "mse",
        },
    ]
    config = _config(tmp_path, {"tasks": tasks, "train": {"early_stopping": None}})
    run = tmp_path / "run"
    assert _train(config, run, census_overrides) == 0

    train_weights = np.array(_column(census_slice["train"], 24), dtype=float)
    rule = json.loads((run / "features.json").read_text())["labels"][1]["rule"]
    assert rule["log1p"] and rule["standardize"]
    assert rule["mean"] == pytest.approx(np.log1p(train_weights).mean(), rel=1e-5)
    assert rule["std"] == pytest.approx(np.log1p(train_weights).std(), rel=1e-4)

    scores_path = tmp_path / "scores.parquet"
    assert main(["predict", str(run), "--data", str(census_slice["test"]), "--output", str(scores_path)]) == 0
    predicted = pq.read_table(scores_path).column("weight").to_numpy()
    truth = np.array(_column(census_slice["test"], 24), dtype=float)
    assert 0.3 < np.median(predicted) / np.median(truth) < 3  # original unit, not standardised log space

    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(census_slice["test"]), "--output", str(evaluated)]) == 0
    rmse = json.loads(evaluated.read_text())["weight"]["rmse"]
    assert rmse == pytest.approx(np.sqrt(mean_squared_error(truth, predicted)), rel=1e-4)


def test_label_transform_on_a_binary_task_is_a_config_error(tmp_path, census_overrides, capsys):
    overrides = [*census_overrides, "tasks[0].label.transform={log1p: true}"]
    assert _train(CENSUS_CONFIGS / "mmoe.yaml", tmp_path / "run", overrides) != 0
    assert "tasks[0].label.transform: label transforms apply to regression losses only" in capsys.readouterr().err
