"""Report sections on how training went, from ``history.json`` and ``diagnostics.json``: gate alarms,
learning curves, gate weights, gradient cosines between tasks and loss weights."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from mtlrec.evaluation import plots
from mtlrec.evaluation.diagnostics import alarm_message
from mtlrec.evaluation.report_sections import NO_DIAGNOSTICS, RunData, Section


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
    epochs = _epochs_done(run.history)
    for task in run.history[0].get("train_loss", {}):
        loss = [record["train_loss"].get(task, math.nan) for record in run.history]
        names = list(run.history[-1].get("valid", {}).get(task, {}))
        valid = {
            name: [r.get("valid", {}).get(task, {}).get(name, math.nan) for r in run.history]
            for name in names
            if isinstance(run.history[-1]["valid"][task][name], (int, float))
        }
        png = plots.learning_curves(task, epochs, loss, valid)
        section.image(task, png, f"{task}: training loss and validation metrics per evaluation")
    return section


def _epochs_done(history: list[dict[str, Any]]) -> list[float]:
    """The x of each evaluation: epochs done (fractional with train.eval_every_steps; older runs: the epoch)."""
    return [record.get("epochs_done", record["epoch"]) for record in history]


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


def feature_selection(run: RunData, baselines: list[RunData]) -> Section:
    """Which task reads which features: the per-task feature gates at the end of the last epoch."""
    section = Section("feature-selection", "Feature selection")
    epochs = (run.diagnostics or {}).get("epochs", [])
    last = next((e for e in reversed(epochs) if "feature_selection" in e), None)
    if last is None:
        section.text("No per-task feature gates (model.feature_selection was not set).", omitted=True)
        return section
    fields, weights = last["feature_selection"]["fields"], last["feature_selection"]["weights"]
    matrix = np.array([weights[task] for task in weights])
    section.text(
        f"Each task's gate on each input field at the end of epoch {last['epoch']}: 1 reads the field as is, "
        "0 ignores it, up to 2 amplifies it."
    )
    png = plots.heatmap(matrix.T, fields, list(weights), "feature gates (field × task)", (0.0, 2.0), "viridis", "gate")
    section.image("heatmap", png, "feature gate heatmap")
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
        x, tasks = _epochs_done(run.history), list(run.history[0]["loss_weights"])
        series = {task: [r["loss_weights"][task] for r in run.history] for task in tasks}
        png = plots.curves(x, series, "mean loss weights between evaluations", "epoch", "weight")
    else:
        section.text("No loss weights were recorded.", omitted=True)
        return section
    section.text(f"Weighting: {run.config.get('weighting', {}).get('name', 'equal')}.")
    section.image("weights", png, "loss weight trajectories")
    return section


def _expert_columns(gate_experts: list[list[str]]) -> list[str]:
    """Every expert of a level once: the widest gate's order first (a shared gate sees them all)."""
    ordered = sorted(gate_experts, key=len, reverse=True)
    return list(dict.fromkeys(name for experts in ordered for name in experts))
