"""Predict with a model over a whole split and compute each task's metrics."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from mtlrec.batch import EncodedData
from mtlrec.evaluation.metrics import METRICS


class ScoreLink(Protocol):
    """Maps a task's logits to scores, and its stored targets to the unit its metrics use."""

    def predict(self, logits: torch.Tensor) -> torch.Tensor: ...

    def original(self, targets: torch.Tensor) -> torch.Tensor: ...


@torch.inference_mode()
def predict_scores(
    model: nn.Module, data: EncodedData, links: dict[str, ScoreLink], batch_size: int = 16384
) -> dict[str, np.ndarray]:
    """Scores per task over the split: {task: (N,) float32} (probabilities or regression values)."""
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {task: [] for task in links}
    for batch in data.batches(batch_size):
        logits = model(batch.ids, batch.dense)
        for task, link in links.items():
            parts[task].append(link.predict(logits[task]))
    model.train(was_training)
    return {task: torch.cat(chunks).numpy() if chunks else np.zeros(0, np.float32) for task, chunks in parts.items()}


def compute_metrics(
    labels: dict[str, np.ndarray], scores: dict[str, np.ndarray], metric_names: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} for the metrics named per task.

    Rows whose label is NaN (missing, or outside the task's sample space) are left out of that
    task's metrics, so e.g. a CVR task with the space ``click == 1`` is scored on clicked rows only.
    """
    results = {}
    for task, names in metric_names.items():
        present = ~np.isnan(labels[task])
        task_labels, task_scores = labels[task][present], scores[task][present]
        results[task] = {name: METRICS[name].function(task_labels, task_scores) for name in names}
    return results


def evaluate(
    model: nn.Module,
    data: EncodedData,
    links: dict[str, ScoreLink],
    metric_names: dict[str, list[str]],
    batch_size: int = 16384,
) -> dict[str, dict[str, float]]:
    """Predict over a labelled split and compute metrics: {task: {metric: value}}."""
    if data.labels is None:
        raise ValueError("evaluation needs labels")
    scores = predict_scores(model, data, links, batch_size)
    labels = {task: links[task].original(data.labels[:, index]).numpy() for index, task in enumerate(data.task_names)}
    return compute_metrics(labels, scores, metric_names)
