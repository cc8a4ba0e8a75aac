"""The reproduction figure: per task, our mean AUC with its 95% interval beside the paper's mean."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mtlrec.errors import MtlrecError
from mtlrec.io import atomic_write


def plot_reproduction(rows: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """One panel per task: per architecture our mean ± 95% CI (error bar) and the paper's mean (marker).

    Args:
        rows: ``reproduction.csv`` rows (architecture, task, mean, ci_low, ci_high, paper_mean).
        path: the PNG to write (atomically).
        title: the figure's title.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        raise MtlrecError("the reproduction figure needs matplotlib: pip install 'mtlrec[report]'") from None
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    figure, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        task_rows = [row for row in rows if row["task"] == task]
        positions = range(len(task_rows))
        means = [row["mean"] for row in task_rows]
        errors = [
            [_half(row["mean"] - row["ci_low"]) for row in task_rows],
            [_half(row["ci_high"] - row["mean"]) for row in task_rows],
        ]
        axis.errorbar(positions, means, yerr=errors, fmt="o", capsize=4, label="ours: mean, 95% CI")
        paper = [(x + 0.15, r["paper_mean"]) for x, r in zip(positions, task_rows) if not math.isnan(r["paper_mean"])]
        if paper:
            axis.scatter(*zip(*paper), marker="x", color="tab:red", zorder=3, label="paper: mean of 400 runs")
        axis.set_xticks(list(positions), [row["architecture"] for row in task_rows], rotation=35, ha="right")
        axis.set_xlim(-0.5, len(task_rows) - 0.5)
        axis.set_title(task)
        axis.set_ylabel(f"test {task_rows[0]['metric'].upper()}")
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    plt.close(figure)


def _half(value: float) -> float:
    """An error-bar half width; 0 where the interval is undefined (one seed)."""
    return 0.0 if math.isnan(value) else value
