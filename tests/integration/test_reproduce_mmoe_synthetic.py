"""`mtlrec reproduce mmoe-synthetic` end to end, tiny (2 runs, 20 steps): files, rows, numbers, ordering lines."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from mtlrec.app.cli import main
from mtlrec.app.experiments.mmoe_synthetic import PAPER_FINAL_LOSS

MODELS = ("shared_bottom", "omoe", "mmoe")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One tiny reproduction with a two-value learning-rate grid; its output folder and stdout."""
    output = tmp_path_factory.mktemp("mmoe_synthetic")
    argv = ["reproduce", "mmoe-synthetic", "--runs", "2", "--steps", "20", "--eval-every", "10", "--lr", "0.001,0.01"]
    argv += ["--correlations", "0.5,0.9", "--test-samples", "256", "--threads", "1", "--output", str(output)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["-q", *argv]) == 0
    return output, stdout.getvalue()


def test_curves_csv_has_a_row_per_model_lr_correlation_run_and_step(tiny_run):
    output, _ = tiny_run
    rows = _rows(output / "curves.csv")
    assert list(rows[0]) == ["model", "correlation", "learning_rate", "run", "step", "loss", "train_loss"]
    keys = {
        (r["model"], float(r["correlation"]), float(r["learning_rate"]), int(r["run"]), int(r["step"])) for r in rows
    }
    expected = {
        (m, p, lr, run, s)
        for m in MODELS
        for p in (0.5, 0.9)
        for lr in (1e-3, 1e-2)
        for run in (0, 1)
        for s in (0, 10, 20)
    }
    assert len(rows) == len(keys) == len(expected) and keys == expected
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert all((r["train_loss"] == "") == (r["step"] == "0") for r in rows)


def test_training_lowers_the_loss(tiny_run):
    output, _ = tiny_run
    rows = _rows(output / "curves.csv")
    for model in MODELS:
        for correlation in ("0.5", "0.9"):
            selected = [
                r for r in rows if (r["model"], r["correlation"], r["learning_rate"]) == (model, correlation, "0.01")
            ]
            start = np.mean([float(r["loss"]) for r in selected if r["step"] == "0"])
            end = np.mean([float(r["loss"]) for r in selected if r["step"] == "20"])
            assert end < start, (model, correlation, start, end)


def test_final_csv_recomputed_from_the_curves(tiny_run):
    """The selected learning rate is the one with the lowest mean final loss; mean/std over runs at it."""
    output, _ = tiny_run
    curves, finals = _rows(output / "curves.csv"), _rows(output / "final.csv")
    assert len(finals) == 6
    for row in finals:
        last = {}
        for r in curves:
            if (r["model"], r["correlation"], r["step"]) == (row["model"], row["correlation"], "20"):
                last.setdefault(float(r["learning_rate"]), []).append(float(r["loss"]))
        best = min(last, key=lambda lr: np.mean(last[lr]))
        assert float(row["learning_rate"]) == best
        assert float(row["final_loss_mean"]) == pytest.approx(np.mean(last[best]))
        assert float(row["final_loss_std"]) == pytest.approx(np.std(last[best], ddof=1))
        assert float(row["paper_final_loss"]) == PAPER_FINAL_LOSS[float(row["correlation"])][row["model"]]
    settings = json.loads((output / "settings.json").read_text())["settings"]
    assert settings["runs"] == 2 and settings["steps"] == 20


def test_figure_is_a_png_with_one_panel_per_correlation(tiny_run):
    output, _ = tiny_run
    path = output / "figure4.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 1.8 * height  # two panels side by side


def test_ordering_verdict_printed_per_correlation(tiny_run):
    output, stdout = tiny_run
    finals = {(r["model"], r["correlation"]): float(r["final_loss_mean"]) for r in _rows(output / "final.csv")}
    for correlation in ("0.5", "0.9"):
        holds = finals[("mmoe", correlation)] <= finals[("omoe", correlation)] <= finals[("shared_bottom", correlation)]
        line = next(x for x in stdout.splitlines() if x.startswith(f"correlation {correlation}:"))
        assert line.endswith(")") and (" holds (" in line) == holds and ("does NOT hold" in line) == (not holds)


@pytest.mark.parametrize(
    "option, message",
    [
        (["--correlations", "0.5,1.5"], "correlations must be in [-1, 1]"),
        (["--lr", "fast"], "--lr: expected numbers"),
        (["--models", "mmoe,ple"], "models: unknown ['ple']"),
        (["--runs", "0"], "runs must be >= 1"),
    ],
)
def test_bad_options_are_reported_without_traceback(option, message, capsys, tmp_path):
    assert main(["reproduce", "mmoe-synthetic", "--output", str(tmp_path), *option]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "curves.csv").exists()
