"""Accuracy of an exported model beside the fp32 eager model's, on held-out labelled rows (for the manifest).

The caller names each task's metric (the application layer: ROC AUC for binary tasks, top-1
accuracy for multi-class ones). Rows whose label is missing (NaN: masked, or outside the task's
sample space) are skipped per task. A figure that cannot be computed (one class only) is ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from mtlrec.export.parity import RunsArrays
from mtlrec.export.scoring import ScoringModel

#: Rows per run of either model.
BATCH_ROWS = 16384

#: (labels, scores) → a figure, higher or lower being better as the metric goes.
MetricFunction = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class LabelledRows:
    """Encoded held-out rows, their labels and the metric of each task to measure.

    Attributes:
        inputs: model inputs by name, N rows each.
        labels: {task: (N,) targets as ``FeaturePipeline.transform_labels`` gives them; NaN = missing}.
        source: where the rows come from (a file, a split), for the manifest.
        metrics: {task: (metric name, function of (labels, scores))}; tasks left out get no figure.
    """

    inputs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    source: str
    metrics: dict[str, tuple[str, MetricFunction]]

    @property
    def rows(self) -> int:
        return len(next(iter(self.inputs.values())))


def measure_accuracy(eager: ScoringModel, exported: RunsArrays, rows: LabelledRows) -> dict[str, object]:
    """{"rows", "source", "tasks": {task: {"metric", "rows", "fp32", "artifact"}}} for the manifest.

    Args:
        eager: the fp32 scoring model.
        exported: the exported model, loaded back.
        rows: the held-out rows, with the metric of each task.
    """
    reference, scored = _scores(eager, exported, rows.inputs)
    tasks: dict[str, dict[str, object]] = {}
    for task in eager.task_names:
        if task not in rows.metrics or task not in rows.labels:
            continue
        name, metric = rows.metrics[task]
        labels = rows.labels[task]
        present = ~np.isnan(labels)
        figures = [_finite(metric(labels[present], scores[task][present])) if present.any() else None
                   for scores in (reference, scored)]
        tasks[task] = {"metric": name, "rows": int(present.sum()), "fp32": figures[0], "artifact": figures[1]}
    return {"rows": rows.rows, "source": rows.source, "tasks": tasks}


def describe(figures: Mapping[str, object]) -> str:
    """One line for the log: ``click auc 0.84899 (fp32 0.84900), ...``."""
    parts = []
    for task, entry in dict(figures["tasks"]).items():
        parts.append(f"{task} {entry['metric']} {_fmt(entry['artifact'])} (fp32 {_fmt(entry['fp32'])})")
    return ", ".join(parts) or "no binary or multi-class task"


def _scores(
    eager: ScoringModel, exported: RunsArrays, inputs: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Both models' outputs by name, run in slices of ``BATCH_ROWS`` rows."""
    total = len(next(iter(inputs.values())))
    reference: list[dict[str, np.ndarray]] = []
    scored: list[dict[str, np.ndarray]] = []
    for start in range(0, total, BATCH_ROWS):
        part = {name: value[start : start + BATCH_ROWS] for name, value in inputs.items()}
        eager_part = eager.score({name: torch.from_numpy(value) for name, value in part.items()})
        reference.append({name: value.numpy() for name, value in eager_part.items()})
        scored.append(dict(zip(eager.output_names, exported.run(part))))
    return _joined(reference), _joined(scored)


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.5f}"
