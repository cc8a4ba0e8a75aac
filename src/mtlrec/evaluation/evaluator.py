"""Predict with a model over a whole split and compute each task's metrics."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from mtlrec.data.batch import EncodedData
from mtlrec.evaluation.metrics import METRICS


class ScoreLink(Protocol):
    """Maps a task's logits to scores, and its stored targets to the unit its metrics use."""

    def predict(self, logits: torch.Tensor) -> torch.Tensor: ...

    def original(self, targets: torch.Tensor) -> torch.Tensor: ...


@torch.inference_mode()
def predict_scores(
    model: nn.Module, data: EncodedData, links: dict[str, ScoreLink], batch_size: int = 16384
) -> dict[str, np.ndarray]:
    """Scores per task over the split: {task: (N,) float32} (probabilities or regression values).

    Batches go to the model's device (a GPU when it lives there); the scores come back to the CPU.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {task: [] for task in links}
    for batch in data.batches(batch_size):
        logits = model(batch.to(device).inputs)
        for task, link in links.items():
            parts[task].append(link.predict(logits[task]).cpu())
    model.train(was_training)
    return {task: torch.cat(chunks).numpy() if chunks else np.zeros(0, np.float32) for task, chunks in parts.items()}


def compute_metrics(
    labels: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    metric_names: dict[str, list[str]],
    groups: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} for the metrics named per task.

    Rows whose label is NaN (missing, or outside the task's sample space) are left out of that
    task's metrics, so e.g. a CVR task with the space ``click == 1`` is scored on clicked rows only
    (its GAUC too: groups are formed from those rows).

    Memory: the caller holds every row's label and score (4–8 bytes per row and task, e.g. 1.6 GB for
    100M rows and 2 tasks in float64); each metric then needs a few (N,) temporary arrays (sorting
    indices, ranks) and O(N log N) time. Nothing is quadratic and nothing loops in Python per row.

    Args:
        labels: {task: (N,) labels in the unit of the scores; NaN where the task has no label}.
        scores: {task: (N,) scores, or (N, C) class probabilities}.
        metric_names: {task: metric names in ``METRICS``}.
        groups: (N,) int64 group id of each row (negative: none), for metrics that need groups (gauc).

    Raises:
        ValueError: When a metric needs groups and none are given.
    """
    results = {}
    for task, names in metric_names.items():
        present = ~np.isnan(labels[task])
        task_labels, task_scores = labels[task][present], scores[task][present]
        results[task] = {}
        for name in names:
            metric = METRICS[name]
            if not metric.needs_groups:
                results[task][name] = metric.function(task_labels, task_scores)
            elif groups is None:
                raise ValueError(f"metric '{name}' of task '{task}' needs each row's group (evaluation.group_by)")
            else:
                results[task][name] = metric.function(task_labels, task_scores, groups[present])
    return results


def evaluate(
    model: nn.Module,
    data: EncodedData,
    links: dict[str, ScoreLink],
    metric_names: dict[str, list[str]],
    batch_size: int = 16384,
) -> dict[str, dict[str, float]]:
    """Predict over a labelled split and compute metrics: {task: {metric: value}}."""
    if not data.labels:
        raise ValueError("evaluation needs labels")
    scores = predict_scores(model, data, links, batch_size)
    labels = {task: links[task].original(data.labels[task]).numpy() for task in data.task_names}
    return compute_metrics(labels, scores, metric_names, data.groups)
