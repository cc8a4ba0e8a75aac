"""Per-task feature selection through the CLI: gates trained, recorded in diagnostics.json, drawn in the report."""

from __future__ import annotations

import json

from tests.small_runs import SMALL_CONFIG, good_rows, run_cli, train_run, write_config, write_csv

GATED = SMALL_CONFIG.replace("train: {{epochs: 1, batch_size: 16}}", "train: {{epochs: 2, batch_size: 16, lr: 0.05}}")
GATED = GATED.replace("  architecture: mmoe\n", "  architecture: mmoe\n  feature_selection: {{sparsity: 0.01}}\n")


def test_feature_gates_are_learned_recorded_and_drawn(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows(80)), GATED)
    code, err = train_run(tmp_path, config, capsys)
    assert code == 0, err
    diagnostics = json.loads((tmp_path / "run" / "diagnostics.json").read_text())
    selection = [epoch["feature_selection"] for epoch in diagnostics["epochs"]]
    assert len(selection) == 2 and sorted(selection[-1]["fields"]) == ["age", "city"]
    last = selection[-1]["weights"]
    assert set(last) == {"click", "buy"} and all(0 < value < 2 for values in last.values() for value in values)
    assert last != selection[0]["weights"], "the gates moved between the epochs"
    report = tmp_path / "report" / "index.html"
    code, err = run_cli(["report", str(tmp_path / "run"), "--output", str(report)], capsys)
    assert code == 0, err
    assert (report.parent / "feature-selection-1-heatmap.png").is_file()
