"""The sections of the run report, each built from a run's recorded files (``RunData``) into HTML and PNGs.

Here: the page's building blocks and the sections on what the run is and what it achieved (overview,
metrics, baselines, label correlation, calibration); how training went is in ``report_training``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtlrec.evaluation import plots


@dataclass
class RunData:
    """What a run directory recorded; files that are absent are None.

    Attributes:
        name: the run's name (its directory's name).
        config: the resolved config (``config.yaml``).
        history: per-epoch records (``history.json``).
        metrics: ``{split: {task: {metric: value}}}`` of the best model (``metrics.json``).
        diagnostics: ``diagnostics.json``.
        calibration: ``calibration.json``.
    """

    name: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: dict[str, dict[str, dict[str, float]]]
    diagnostics: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None


@dataclass
class Section:
    """One section of the page: HTML parts and the images they link to."""

    anchor: str
    title: str
    parts: list[str] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)

    def image(self, name: str, png: bytes, caption: str) -> None:
        file_name = f"{self.anchor}-{len(self.images) + 1}-{_slug(name)}.png"
        self.images[file_name] = png
        self.parts.append(f'<img src="{html.escape(file_name)}" alt="{html.escape(caption)}">')

    def text(self, sentence: str, omitted: bool = False) -> None:
        css = ' class="omitted"' if omitted else ""
        self.parts.append(f"<p{css}>{html.escape(sentence)}</p>")


NO_DIAGNOSTICS = "The run has no diagnostics.json (it was trained before diagnostics existed)."


def overview(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("overview", "Overview")
    config = run.config
    items = {
        "architecture": config["model"]["architecture"],
        "weighting": config.get("weighting", {}).get("name", "equal"),
        "tasks": ", ".join(task["name"] for task in config["tasks"]),
        "epochs trained": str(len(run.history)),
        "training data": config["data"]["train"],
        "baselines": ", ".join(b.name for b in baselines) or "none (add some with --baseline RUN_DIR)",
    }
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items())
    section.parts.append(f"<dl>{rows}</dl>")
    return section


def metrics_table(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("metrics", "Metrics of the selected model")
    runs = [run, *baselines]
    for split in ("test", "valid"):
        columns = _metric_names([r.metrics.get(split, {}) for r in runs])
        if not columns:
            continue
        rows = [[r.name, *(_metric(r.metrics.get(split, {}), c) for c in columns)] for r in runs]
        section.parts.append(f"<h3>{split}</h3>" + _table(["run", *columns], rows))
    if not section.parts:
        section.text("The run has no metrics.json (it did not finish).", omitted=True)
    return section


def baseline_bars(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("baselines", "Metrics against baselines")
    split = "test" if "test" in run.metrics else "valid"
    runs = [run, *baselines]
    columns = _metric_names([run.metrics.get(split, {})])
    if not columns:
        section.text("The run has no test or validation metrics to compare.", omitted=True)
        return section
    values = {c: [_metric(r.metrics.get(split, {}), c) for r in runs] for c in columns}
    section.text(f"Metrics of the selected model on the {split} split; each panel's axis is zoomed on its values.")
    if not baselines:
        section.text("No --baseline runs were given: the chart shows this run alone.")
    section.image("bars", plots.metric_bars([r.name for r in runs], values), f"{split} metrics per run")
    return section


def label_correlation(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("label-correlation", "Label correlation")
    result = (run.diagnostics or {}).get("label_correlation")
    if run.diagnostics is None or result is None or len(result["tasks"]) < 2:
        reason = "Not computed: it needs at least two tasks (a streamed run measures it while fitting the features)."
        section.text(NO_DIAGNOSTICS if run.diagnostics is None else reason, omitted=True)
        return section
    tasks = result["tasks"]
    section.text(
        "Pearson correlation of the tasks' training labels, over the rows where both labels exist "
        "(blank: undefined, e.g. a label constant on those rows)."
    )
    matrix = _matrix(result["pearson"])
    png = plots.heatmap(matrix, tasks, tasks, "label correlation (Pearson)", (-1.0, 1.0), "coolwarm", "r")
    section.image("pearson", png, "label correlation heatmap")
    return section


def calibration(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("calibration", "Calibration")
    if run.calibration is None or not run.calibration.get("tasks"):
        section.text("The run has no calibration.json (no binary task, or trained before it was written).", True)
        return section
    split = run.calibration["split"]
    section.text(f"Reliability diagrams of the best model on the {split} split (quantile bins of the predictions).")
    for task, bins in run.calibration["tasks"].items():
        if not bins["count"]:
            section.text(f"{task}: no labelled rows.", omitted=True)
            continue
        png = plots.reliability_diagram(task, bins["mean_predicted"], bins["observed_rate"], bins["count"], split)
        section.image(task, png, f"{task} reliability diagram")
    return section


def _metric_names(results: Sequence[dict[str, dict[str, float]]]) -> list[str]:
    return list(dict.fromkeys(f"{t}.{m}" for r in results for t, ms in r.items() for m in ms))


def _metric(results: dict[str, dict[str, float]], column: str) -> float:
    task, _, metric = column.rpartition(".")
    value = results.get(task, {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else math.nan


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "plot"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; floats with 4 decimals, NaN as an empty cell."""
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    lines = [f"<table><tr>{head}</tr>"]
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, float):
                cells.append(f'<td class="number">{"" if math.isnan(cell) else f"{cell:.4f}"}</td>')
            else:
                cells.append(f"<td>{html.escape(str(cell))}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    return "".join(lines) + "</table>"


def _matrix(rows: list[list[float | None]]) -> np.ndarray:
    """JSON matrix (null for undefined) → float array with NaN."""
    return np.array([[np.nan if value is None else value for value in row] for row in rows], dtype=np.float64)
