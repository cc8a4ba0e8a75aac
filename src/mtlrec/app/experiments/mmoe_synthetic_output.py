"""Files of ``mtlrec reproduce mmoe-synthetic``: curves.csv, final.csv, figure4.png, settings.json.

* ``curves.csv``: model, correlation, learning_rate, run, step, loss (held-out MSE, both tasks'
  mean), train_loss (mean mini-batch MSE since the previous row; empty at step 0); every learning rate.
* ``final.csv``: per model × correlation, at the selected learning rate (the lowest mean final loss):
  mean, std and standard error of the final held-out loss over runs, and the paper's Figure 4 value.
* ``figure4.png``: one panel per correlation, mean held-out loss vs steps per model (Figure 4's layout),
  with a band of ± one standard error.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mtlrec.app.experiments.mmoe_synthetic import PAPER_FINAL_LOSS, Curves, SyntheticExperiment
from mtlrec.errors import MtlrecError
from mtlrec.io import atomic_write

LABELS = {"shared_bottom": "Shared-Bottom", "omoe": "OMoE", "mmoe": "MMoE"}
ORDER = ("mmoe", "omoe", "shared_bottom")  # the paper's claim: MMoE ≤ OMoE ≤ Shared-Bottom


def final_rows(curves: Curves, settings: SyntheticExperiment) -> list[dict[str, Any]]:
    """One row per (model, correlation): the final held-out loss over runs at the selected learning rate."""
    rows = []
    for correlation in settings.correlations:
        for model in settings.models:
            lr = curves.best_learning_rate(model, correlation)
            finals = curves.loss[(model, lr, correlation)][:, -1]
            std = float(finals.std(ddof=1)) if len(finals) > 1 else math.nan
            rows.append(
                {
                    "model": model,
                    "correlation": correlation,
                    "learning_rate": lr,
                    "runs": len(finals),
                    "steps": curves.steps[-1],
                    "final_loss_mean": float(finals.mean()),
                    "final_loss_std": std,
                    "final_loss_sem": std / math.sqrt(len(finals)),
                    "paper_final_loss": PAPER_FINAL_LOSS.get(correlation, {}).get(model, math.nan),
                }
            )
    return rows


def ordering_checks(curves: Curves, settings: SyntheticExperiment) -> list[dict[str, Any]]:
    """Per correlation: whether mean final losses satisfy MMoE ≤ OMoE ≤ Shared-Bottom (None if a model is
    missing), and in how many runs each pair is ordered (the runs share their data, so pairs are paired)."""
    checks = []
    for correlation in settings.correlations:
        finals = {
            m: curves.loss[(m, curves.best_learning_rate(m, correlation), correlation)][:, -1]
            for m in ORDER
            if m in settings.models
        }
        check: dict[str, Any] = {"correlation": correlation, "means": {m: float(v.mean()) for m, v in finals.items()}}
        if len(finals) == len(ORDER):
            means = [finals[m].mean() for m in ORDER]
            check["holds"] = bool(means[0] <= means[1] <= means[2])
            check["runs_ordered"] = {
                f"{low}<={high}": int((finals[low] <= finals[high]).sum()) for low, high in zip(ORDER, ORDER[1:])
            }
        else:
            check["holds"] = None
        checks.append(check)
    return checks


def format_checks(checks: list[dict[str, Any]], runs: int) -> str:
    """Lines like ``correlation 0.5: MMoE 0.10 <= OMoE 0.20 <= Shared-Bottom 0.30: holds``."""
    lines = []
    for check in checks:
        means = " | ".join(f"{LABELS[m]} {v:.4f}" for m, v in check["means"].items())
        if check["holds"] is None:
            lines.append(f"correlation {check['correlation']:g}: {means} (ordering needs all three models)")
            continue
        pairs = ", ".join(f"{k.replace('<=', ' <= ')} in {n}/{runs} runs" for k, n in check["runs_ordered"].items())
        verdict = "holds" if check["holds"] else "does NOT hold"
        lines.append(
            f"correlation {check['correlation']:g}: {means}: MMoE <= OMoE <= Shared-Bottom {verdict} ({pairs})"
        )
    return "\n".join(lines)


def write_outputs(curves: Curves, settings: SyntheticExperiment, output: str | Path) -> list[dict[str, Any]]:
    """Write every file of the module docstring into ``output``; return the final rows."""
    output = Path(output)
    _write_csv(output / "curves.csv", curve_rows(curves))
    rows = final_rows(curves, settings)
    _write_csv(output / "final.csv", rows)
    plot_figure4(curves, settings, output / "figure4.png")
    info = {
        "settings": dataclasses.asdict(settings),
        "seconds": curves.seconds,
        "cpu_seconds": curves.cpu_seconds,
    }
    atomic_write(output / "settings.json", lambda tmp: tmp.write_text(json.dumps(info, indent=1, default=str)))
    return rows


def curve_rows(curves: Curves) -> list[dict[str, Any]]:
    """The rows of curves.csv, in (model, learning rate, correlation, run, step) order."""
    rows = []
    for (model, lr, correlation), loss in curves.loss.items():
        train = curves.train_loss[(model, lr, correlation)]
        for run in range(loss.shape[0]):
            for column, step in enumerate(curves.steps):
                value = train[run, column]
                rows.append(
                    {
                        "model": model,
                        "correlation": correlation,
                        "learning_rate": lr,
                        "run": run,
                        "step": step,
                        "loss": float(loss[run, column]),
                        "train_loss": "" if np.isnan(value) else float(value),
                    }
                )
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def plot_figure4(curves: Curves, settings: SyntheticExperiment, path: str | Path) -> None:
    """Figure 4's layout: a panel per correlation, mean held-out loss (± s.e.) vs steps for each model."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MtlrecError("the figure needs matplotlib: pip install 'mtlrec[report]'") from None
    figure = Figure(figsize=(4.2 * len(settings.correlations), 3.6))
    axes = figure.subplots(1, len(settings.correlations), squeeze=False, sharey=True)[0]
    steps = np.asarray(curves.steps)
    for axis, correlation in zip(axes, settings.correlations):
        for model in settings.models:
            lr = curves.best_learning_rate(model, correlation)
            loss = curves.loss[(model, lr, correlation)]
            mean = loss.mean(axis=0)
            sem = loss.std(axis=0, ddof=1) / math.sqrt(loss.shape[0]) if loss.shape[0] > 1 else np.zeros_like(mean)
            axis.plot(steps, mean, label=f"{LABELS[model]} (lr {lr:g})")
            axis.fill_between(steps, mean - sem, mean + sem, alpha=0.2)
        axis.set(title=f"correlation = {correlation:g}", xlabel="steps", yscale="log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    axes[0].set_ylabel(f"held-out MSE, mean of {settings.runs} runs")
    figure.suptitle("MMoE paper Figure 4 (synthetic data): loss vs training steps")
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
