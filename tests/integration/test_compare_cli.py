"""`mtlrec compare` and `mtlrec reproduce census` end to end on a tiny census slice (1 epoch, 2 seeds).

Every number in the written tables is recomputed from the runs' own metrics.json with numpy/scipy;
a second call must train nothing (``api.train`` is replaced by a function that fails).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from scipy import stats

from mtlrec.app import workflows
from mtlrec.app.cli import main

REPO = Path(__file__).resolve().parents[2]
CENSUS = REPO / "data" / "census-income"
CONFIGS = REPO / "configs" / "census"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """--set arguments: 400 train and 400 test rows, one epoch."""
    folder = tmp_path_factory.mktemp("tiny_census")
    for name, source in (("train", "census-income.data.gz"), ("test", "census-income.test.gz")):
        with gzip.open(CENSUS / source, "rt") as reader, gzip.open(folder / f"{name}.data.gz", "wt") as writer:
            writer.writelines(line for _, line in zip(range(400), reader))
    overrides = [
        f"data.train={folder / 'train.data.gz'}",
        f"data.test={folder / 'test.data.gz'}",
        "train.epochs=1",
        "train.batch_size=100",
        "train.lr=0.01",
    ]
    return [arg for override in overrides for arg in ("--set", override)]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _test_values(folder: Path, task: str, metric: str, seeds=(0, 1)) -> list[float]:
    return [json.loads((folder / f"seed{s}" / "metrics.json").read_text())["test"][task][metric] for s in seeds]


def _forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(workflows, "train", fail)


def test_compare_writes_the_gain_recomputable_from_the_runs(tmp_path, tiny, capsys, monkeypatch):
    output = tmp_path / "cmp"
    args = ["compare", str(CONFIGS / "mmoe.yaml"), "--seeds", "2", "--output", str(output), "--no-progress", *tiny]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "MTL gain [95% CI]" in printed and "Δm over tasks" in printed

    baseline = yaml.safe_load((output / "mmoe-baseline" / "seed1" / "config.yaml").read_text())
    assert baseline["model"]["architecture"] == "single_task"
    assert baseline["model"]["params"]["hidden_units"] == [128, 64]  # one MMoE expert's widths
    assert baseline["model"]["params"]["tower_hidden_units"] == [32]
    assert baseline["train"]["seed"] == 1 and baseline["data"]["split"]["seed"] == 2018

    runs = _csv(output / "runs.csv")
    assert len(runs) == 2 * 2 * 2 * 2 * 2  # models x seeds x splits x tasks x metrics
    rows = {(r["task"], r["metric"]): r for r in _csv(output / "comparison.csv")}
    assert set(rows) == {(t, m) for t in ("income", "never_married") for m in ("auc", "logloss")}
    means = {}
    for (task, metric), row in rows.items():
        mtl = _test_values(output / "mmoe", task, metric)
        single = _test_values(output / "mmoe-baseline", task, metric)
        sign = 1.0 if metric == "auc" else -1.0
        interval = stats.ttest_ind(mtl, single, equal_var=False).confidence_interval(0.95)
        low, high = sorted((sign * interval.low, sign * interval.high))
        assert float(row["mtl_mean"]) == pytest.approx(np.mean(mtl))
        assert float(row["single_std"]) == pytest.approx(np.std(single, ddof=1))
        assert float(row["gain"]) == pytest.approx(sign * (np.mean(mtl) - np.mean(single)))
        assert (float(row["gain_ci_low"]), float(row["gain_ci_high"])) == pytest.approx((low, high))
        means[task, metric] = (np.mean(mtl), np.mean(single), sign)
    for metric in ("auc", "logloss"):
        terms = [s * (m - b) / b for (t, name), (m, b, s) in means.items() if name == metric]
        assert float(rows["income", metric]["delta_m_pct"]) == pytest.approx(100 * np.mean(terms))

    before = (output / "comparison.csv").read_text()
    _forbid_training(monkeypatch)
    assert main(args) == 0
    assert (output / "comparison.csv").read_text() == before
    assert "reusing the finished run" in capsys.readouterr().err

    changed = [*args, "--set", "train.lr=0.02"]
    assert main(changed) == 2
    assert "holds a finished run of a different config" in capsys.readouterr().err


def test_compare_with_an_explicit_baseline_skips_model_overrides_for_it(tmp_path, tiny, capsys):
    output = tmp_path / "cmp"
    args = ["compare", str(CONFIGS / "omoe.yaml"), "--seeds", "2", "--output", str(output), "--metric", "auc"]
    args += ["--baseline", str(CONFIGS / "single_task.yaml"), "--set", "model.params.num_experts=2", *tiny]
    assert main([*args, "--no-progress"]) == 0
    saved = yaml.safe_load((output / "single_task" / "seed0" / "config.yaml").read_text())
    assert saved["model"]["params"]["hidden_units"] == [256, 128] and saved["train"]["epochs"] == 1
    rows = _csv(output / "comparison.csv")
    assert {r["metric"] for r in rows} == {"auc"} and {r["baseline"] for r in rows} == {"single_task"}


def test_reproduce_census_table_and_figure(tmp_path, tiny, capsys, monkeypatch):
    output = tmp_path / "repro"
    args = ["reproduce", "census", "--group", "1", "--seeds", "2", "--output", str(output)]
    args += ["--architectures", "mmoe", "--configs", str(CONFIGS), "--no-progress", *tiny]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "MTL gain vs single-task" in printed and "0.9359" in printed  # the paper's MMoE mean income AUC

    rows = {(r["architecture"], r["task"]): r for r in _csv(output / "reproduction.csv")}
    assert set(rows) == {(a, t) for a in ("single_task", "mmoe") for t in ("income", "never_married")}
    for architecture in ("single_task", "mmoe"):
        income = _test_values(output / architecture, "income", "auc")
        married = _test_values(output / architecture, "never_married", "auc")
        best = int(np.argmax(income))
        assert float(rows[architecture, "income"]["mean"]) == pytest.approx(np.mean(income))
        assert float(rows[architecture, "income"]["best"]) == pytest.approx(max(income))
        assert float(rows[architecture, "never_married"]["best"]) == pytest.approx(married[best])
        interval = stats.ttest_1samp(married, 0.0).confidence_interval(0.95)
        assert float(rows[architecture, "never_married"]["ci_low"]) == pytest.approx(interval.low)
    assert float(rows["mmoe", "income"]["paper_mean"]) == 0.9359
    assert float(rows["mmoe", "never_married"]["paper_best"]) == 0.9926
    assert float(rows["single_task", "income"]["gain"]) == pytest.approx(0.0)

    png = output / "reproduction.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(png).ndim == 3

    _forbid_training(monkeypatch)
    assert main(args) == 0


def test_reproduce_group_2_with_one_seed(tmp_path, tiny):
    output = tmp_path / "group2"
    args = ["reproduce", "census", "--group", "2", "--seeds", "1", "--output", str(output)]
    args += ["--architectures", "single_task", "--configs", str(CONFIGS / "group2"), "--no-progress", *tiny]
    assert main(args) == 0
    rows = _csv(output / "reproduction.csv")
    assert [r["task"] for r in rows] == ["education", "never_married"]
    assert rows[0]["n"] == "1" and rows[0]["std"] == "nan" and float(rows[0]["paper_mean"]) == 0.8792


def test_reproduce_names_a_missing_config(tmp_path, capsys):
    args = ["reproduce", "census", "--seeds", "1", "--output", str(tmp_path), "--architectures", "mmeo"]
    assert main([*args, "--configs", str(CONFIGS)]) == 2
    assert "mmeo.yaml" in capsys.readouterr().err


def test_compare_rejects_an_unknown_metric_before_training(tmp_path, capsys):
    args = ["compare", str(CONFIGS / "mmoe.yaml"), "--seeds", "2", "--output", str(tmp_path / "c"), "--metric", "aucc"]
    assert main(args) == 2
    assert "unknown metric 'aucc'" in capsys.readouterr().err and not (tmp_path / "c").exists()
