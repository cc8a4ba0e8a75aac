"""The sections of the run report, each built from a run's recorded files (``RunData``) into HTML and PNGs."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtlrec.evaluation import plots
from mtlrec.evaluation.diagnostics import alarm_message


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
    section = Section("metrics", "Metrics of the best epoch")
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


def alarms(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("alarms", "Gate alarms")
    if run.diagnostics is None:
        section.text(NO_DIAGNOSTICS, omitted=True)
        return section
    settings = run.diagnostics["settings"]
    found = [(e["epoch"], alarm) for e in run.diagnostics["epochs"] for alarm in e.get("alarms", [])]
    section.text(
        f"An alarm is raised when one expert takes ≥ {settings['gate_collapse_share']:.0%} of a gate's weight, "
        f"or an expert gets ≤ {settings['dead_expert_share']:.0%} of every gate's weight (epoch means)."
    )
    if not found:
        section.text("No alarms.")
    for epoch, alarm in found:
        section.parts.append(f'<p class="alarm">epoch {epoch}: {html.escape(alarm_message(alarm))}</p>')
    return section


def learning_curves(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("learning-curves", "Learning curves")
    if not run.history:
        section.text("The run has no history.json epochs.", omitted=True)
        return section
    epochs = [record["epoch"] for record in run.history]
    for task in run.history[0].get("train_loss", {}):
        loss = [record["train_loss"].get(task, math.nan) for record in run.history]
        names = list(run.history[-1].get("valid", {}).get(task, {}))
        valid = {
            name: [r.get("valid", {}).get(task, {}).get(name, math.nan) for r in run.history]
            for name in names
            if isinstance(run.history[-1]["valid"][task][name], (int, float))
        }
        png = plots.learning_curves(task, epochs, loss, valid)
        section.image(task, png, f"{task}: training loss and validation metrics per epoch")
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
    section.text(f"Metrics of the best epoch on the {split} split; each panel's axis is zoomed on its values.")
    if not baselines:
        section.text("No --baseline runs were given: the chart shows this run alone.")
    section.image("bars", plots.metric_bars([r.name for r in runs], values), f"{split} metrics per run")
    return section


def label_correlation(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("label-correlation", "Label correlation")
    result = (run.diagnostics or {}).get("label_correlation")
    if run.diagnostics is None or result is None or len(result["tasks"]) < 2:
        reason = "Not computed: it needs the training data in memory (not streamed) and at least two tasks."
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


def _sampled(run: RunData, section: Section, what: str) -> list[dict[str, Any]] | None:
    """The step samples, or None after writing the sentence saying why there are none."""
    if run.diagnostics is None:
        section.text(NO_DIAGNOSTICS, omitted=True)
        return None
    steps = [record for record in run.diagnostics["steps"] if what in record]
    if run.diagnostics["settings"]["every_steps"] <= 0:
        section.text("Nothing was sampled during training (diagnostics.every_steps was 0).", omitted=True)
        return None
    return steps


def gates(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("gates", "Gate weights")
    steps = _sampled(run, section, "gates")
    if steps is None:
        return section
    last = next((e for e in reversed(run.diagnostics["epochs"]) if "gates" in e), None)
    if not steps or last is None:
        architecture = run.config["model"]["architecture"]
        section.text(f"Architecture '{architecture}' has no gates (no gate weights were recorded).", omitted=True)
        return section
    layout = run.diagnostics["gate_layout"]
    section.text(f"Mean weight each gate gives each expert over the sampled steps of epoch {last['epoch']}.")
    for level in dict.fromkeys(layout[g]["level"] for g in last["gates"]):
        names = [g for g in last["gates"] if layout[g]["level"] == level]
        experts = _expert_columns([layout[g]["experts"] for g in names])
        matrix = np.full((len(names), len(experts)), np.nan)
        for row, gate in enumerate(names):
            for expert, share in zip(layout[gate]["experts"], last["gates"][gate]["mean"]):
                matrix[row, experts.index(expert)] = share
        title = f"gates × experts, {level}" if level else "gates × experts"
        labels = [g.rpartition(".")[2] if level else g for g in names]
        png = plots.heatmap(matrix, labels, experts, title, (0.0, float(np.nanmax(matrix))), "viridis", "mean weight")
        section.image(level or "gates", png, f"gate heatmap {level}".strip())
    entropy = {
        gate: [r["gates"][gate]["entropy"] / math.log(len(layout[gate]["experts"])) for r in steps]
        for gate in layout
        if len(layout[gate]["experts"]) > 1
    }
    x = [r["step"] for r in steps]
    title = "gate entropy / ln E (1: evenly spread, 0: one expert)"
    section.image("entropy", plots.curves(x, entropy, title, "step", "normalised entropy", (0.0, 1.05)), title)
    return section


def gradient_cosines(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("gradient-cosine", "Gradient cosine between tasks")
    steps = _sampled(run, section, "grad_cosine")
    if steps is None:
        return section
    tasks = run.diagnostics["tasks"]
    if not steps:
        reason = "one trained task" if len(tasks) < 2 else "no parameters shared by the tasks"
        section.text(f"Not recorded: the run has {reason}.", omitted=True)
        return section
    section.text(
        "Cosine similarity of the tasks' gradients on the shared parameters at the sampled steps "
        "(below 0: the tasks pull the shared parameters in conflicting directions)."
    )
    pairs = {
        f"{tasks[i]} ~ {tasks[j]}": [r["grad_cosine"][i][j] for r in steps]
        for i in range(len(tasks))
        for j in range(i + 1, len(tasks))
    }
    x = [r["step"] for r in steps]
    png = plots.curves(x, pairs, "gradient cosine", "step", "cosine", (-1.05, 1.05), reference=0.0)
    section.image("cosine", png, "gradient cosine per task pair over steps")
    return section


def loss_weights(run: RunData, baselines: list[RunData]) -> Section:
    section = Section("loss-weights", "Loss weights")
    steps = [r for r in (run.diagnostics or {}).get("steps", []) if "loss_weights" in r]
    if steps:
        x, tasks = [r["step"] for r in steps], list(steps[0]["loss_weights"])
        series = {task: [r["loss_weights"][task] for r in steps] for task in tasks}
        png = plots.curves(x, series, "loss weights at the sampled steps", "step", "weight")
    elif run.history and "loss_weights" in run.history[0]:
        x, tasks = [r["epoch"] for r in run.history], list(run.history[0]["loss_weights"])
        series = {task: [r["loss_weights"][task] for r in run.history] for task in tasks}
        png = plots.curves(x, series, "mean loss weights per epoch", "epoch", "weight")
    else:
        section.text("No loss weights were recorded.", omitted=True)
        return section
    section.text(f"Weighting: {run.config.get('weighting', {}).get('name', 'equal')}.")
    section.image("weights", png, "loss weight trajectories")
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


SECTIONS: list[Callable[[RunData, list[RunData]], Section]] = [
    overview,
    metrics_table,
    alarms,
    learning_curves,
    baseline_bars,
    label_correlation,
    gates,
    gradient_cosines,
    loss_weights,
    calibration,
]


def _metric_names(results: Sequence[dict[str, dict[str, float]]]) -> list[str]:
    return list(dict.fromkeys(f"{t}.{m}" for r in results for t, ms in r.items() for m in ms))


def _metric(results: dict[str, dict[str, float]], column: str) -> float:
    task, _, metric = column.rpartition(".")
    value = results.get(task, {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else math.nan


def _expert_columns(gate_experts: list[list[str]]) -> list[str]:
    """Every expert of a level once: the widest gate's order first (a shared gate sees them all)."""
    ordered = sorted(gate_experts, key=len, reverse=True)
    return list(dict.fromkeys(name for experts in ordered for name in experts))


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
