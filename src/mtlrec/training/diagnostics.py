"""The trainer's diagnostics hook: label correlation before training; gradient cosines, gate weights and
loss weights sampled every N steps; expert alarms per epoch; all written to ``diagnostics.json``.

The trainer calls, in order: ``begin`` once, then per step ``start_step`` (True on a sampled step, which
switches gate recording on for that forward pass), ``observe_losses`` before the weighting strategy's
backward and ``observe_weights`` after it (both only on sampled steps), and ``end_epoch`` per epoch.
Steps that are not sampled cost one integer test.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from mtlrec.data.batch import EncodedData
from mtlrec.data.sources import TrainSource
from mtlrec.evaluation.diagnostics import (
    GateSummary,
    alarm_message,
    cosine_matrix,
    expert_alarms,
    gate_statistics,
    label_correlation,
)
from mtlrec.io import atomic_write, strict_json
from mtlrec.weighting.base import task_gradients

log = logging.getLogger("mtlrec.train")


@dataclass(frozen=True)
class DiagnosticsSettings:
    """What is sampled and when an alarm is raised.

    Attributes:
        every_steps: sample every N training steps (0: only the label correlation).
        gate_collapse_share: alarm when one expert's mean share of a gate is at least this.
        dead_expert_share: alarm when an expert's largest mean share over all gates is at most this.
        max_step_records: step samples kept in the file; beyond it every other one is dropped and
            later ones are kept at twice the spacing, so the file stays bounded.
    """

    every_steps: int = 200
    gate_collapse_share: float = 0.9
    dead_expert_share: float = 0.01
    max_step_records: int = 1000


class ScalarWriter(Protocol):
    """What is used of ``torch.utils.tensorboard.SummaryWriter``."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> None: ...

    def flush(self) -> None: ...


class DiagnosticsRecorder:
    """Samples diagnostics during training and writes them to ``path`` (JSON) after every epoch.

    Args:
        model: the model trained (``shared_parameters()``, ``architectures()``).
        task_names: the trained tasks, in the order of the loss vector.
        settings: sampling and alarm settings.
        path: the JSON file (``diagnostics.json`` of the run).
        writer: optional TensorBoard writer that also receives every sampled scalar.
    """

    def __init__(
        self,
        model: nn.Module,
        task_names: Sequence[str],
        settings: DiagnosticsSettings,
        path: Path,
        writer: ScalarWriter | None = None,
    ):
        self.model, self.task_names, self.settings = model, list(task_names), settings
        self.path, self.writer = path, writer
        self.shared = [p for p in model.shared_parameters() if p.requires_grad]
        self.gated = [arch for arch in model.architectures() if arch.has_gates]
        self.steps_done, self.stride, self.epoch = 0, 1, 1
        self.data: dict[str, Any] = self._contents(None, {}, 0)
        self._current: dict[str, Any] | None = None
        self._epoch_samples: list[dict[str, Any]] = []

    def begin(self, train: EncodedData | TrainSource, start_epoch: int = 0) -> None:
        """Before the first epoch: the label correlation of ``train``; on resume, keep what earlier epochs wrote.

        Args:
            train: the training split in memory, or a streamed source carrying the label correlation
                its fitting pass measured (a resumed stream keeps the one recorded before).
            start_epoch: epochs already done (a resumed run).
        """
        self.epoch = start_epoch + 1
        previous = json.loads(self.path.read_text()) if start_epoch > 0 and self.path.is_file() else {}
        correlation = self._label_correlation(train)
        if correlation is None:
            correlation = previous.get("label_correlation")
            log.info("label correlation: %s", "kept from the earlier epochs" if correlation else "not measured")
        self.data = self._contents(correlation, previous, start_epoch)
        self.stride = self.data["step_stride"]
        self.steps_done = self.data["epochs"][-1]["steps"] if self.data["epochs"] else 0
        self._write()

    def _contents(self, correlation: dict[str, Any] | None, previous: dict[str, Any], start_epoch: int) -> dict:
        """The file's contents, keeping what ``previous`` recorded up to ``start_epoch`` (a resumed run)."""
        return {
            "settings": asdict(self.settings),
            "tasks": self.task_names,
            "label_correlation": correlation,
            "gate_layout": previous.get("gate_layout", {}) if start_epoch > 0 else {},
            "step_stride": previous.get("step_stride", 1),
            "steps": [r for r in previous.get("steps", []) if r["epoch"] <= start_epoch],
            "epochs": [r for r in previous.get("epochs", []) if r["epoch"] <= start_epoch],
        }

    def start_step(self) -> bool:
        """Count a step; True when it is sampled (gates are then recorded during its forward pass)."""
        every = self.settings.every_steps
        step, self.steps_done = self.steps_done, self.steps_done + 1
        if every <= 0 or step % every:
            return False
        self._current = {"step": step, "epoch": self.epoch}
        for architecture in self.gated:
            architecture.record_gates = True
        return True

    def observe_losses(self, losses: torch.Tensor) -> None:
        """On a sampled step, before the strategy's backward: gradient cosines and the gates' statistics.

        Args:
            losses: (T,) the step's loss vector, its graph intact (per-task gradients keep it).
        """
        record = self._current
        record["loss"] = dict(zip(self.task_names, losses.detach().tolist()))
        if self.shared and len(self.task_names) > 1:
            record["grad_cosine"] = _nan_to_none(cosine_matrix(task_gradients(losses, self.shared)).tolist())
        gates = {}
        for architecture in self.gated:
            for gate, weights in architecture.last_gate_weights.items():
                level, experts = architecture.gate_experts(gate, weights.shape[1])
                self.data["gate_layout"][gate] = {"level": level, "experts": experts}
                mean, entropy = gate_statistics(weights)
                gates[gate] = {"mean": mean, "entropy": entropy}
            architecture.record_gates, architecture.last_gate_weights = False, {}
        if gates:
            record["gates"] = gates

    def observe_weights(self, weights: torch.Tensor) -> None:
        """On a sampled step, after the backward: the (T,) loss weights the strategy used."""
        record, self._current = self._current, None
        record["loss_weights"] = dict(zip(self.task_names, weights.detach().tolist()))
        self._epoch_samples.append(record)
        if record["step"] % (self.settings.every_steps * self.stride) == 0:
            self.data["steps"].append(record)
            self._thin()
        self._to_tensorboard(record)

    def end_epoch(self, record: dict[str, Any]) -> list[str]:
        """After an epoch (``record`` is its history entry): summarise its samples, raise alarms, write the file.

        Returns:
            the alarm messages (also logged as one warning).
        """
        summary = self._summarise(self._epoch_samples)
        summary.update(epoch=record["epoch"], steps=self.steps_done, sampled_steps=len(self._epoch_samples))
        selection = getattr(self.model, "feature_selection", lambda: None)()
        if selection is not None:  # per-task feature gates: static weights, recorded as they end the epoch
            summary["feature_selection"] = selection
        messages = [alarm_message(alarm) for alarm in summary["alarms"]]
        if messages:
            log.warning("epoch %d: gate alarms: %s", record["epoch"], "; ".join(messages))
        if "grad_cosine" in summary:
            pairs = _pairs(self.task_names, summary["grad_cosine"])
            log.info("epoch %d: mean gradient cosine %s", record["epoch"], pairs)
        self.data["epochs"].append(summary)
        self._write()
        self._epoch_to_tensorboard(record)
        self._epoch_samples, self.epoch = [], record["epoch"] + 1
        return messages

    def _label_correlation(self, train: EncodedData | TrainSource) -> dict[str, Any] | None:
        if isinstance(train, EncodedData) and train.labels:
            pearson, rows = label_correlation(torch.stack([train.labels[t] for t in train.task_names], 1).numpy())
        elif getattr(train, "label_correlation", None) is not None:  # measured while fitting a stream
            pearson, rows = train.label_correlation
        else:  # streamed data whose features were loaded (a resumed run), not fitted
            return None
        result = {"tasks": list(train.task_names), "pearson": _nan_to_none(pearson.tolist()), "rows": rows.tolist()}
        pairs = _pairs(train.task_names, result["pearson"], rows.tolist())
        log.info("label correlation (Pearson, rows where both labels exist): %s", pairs or "-")
        return result

    def _summarise(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Means over the epoch's samples, and the alarms on the mean gate weights."""
        summary: dict[str, Any] = {"alarms": []}
        if not samples:
            return summary
        cosines = [s["grad_cosine"] for s in samples if "grad_cosine" in s]
        if cosines:
            matrix = np.array([[[np.nan if v is None else v for v in row] for row in c] for c in cosines])
            summary["grad_cosine"] = _nan_to_none(_nanmean(matrix).tolist())
        weights = np.array([[s["loss_weights"][t] for t in self.task_names] for s in samples])
        summary["loss_weights"] = dict(zip(self.task_names, weights.mean(axis=0).tolist()))
        gates = {}
        for gate in samples[-1].get("gates", {}):
            means = np.mean([s["gates"][gate]["mean"] for s in samples if gate in s.get("gates", {})], axis=0)
            entropy = float(np.mean([s["gates"][gate]["entropy"] for s in samples if gate in s.get("gates", {})]))
            layout = self.data["gate_layout"][gate]
            gates[gate] = GateSummary(layout["level"], layout["experts"], means.tolist(), entropy)
        if gates:
            summary["gates"] = {name: {"mean": g.mean, "entropy": g.entropy} for name, g in gates.items()}
            share = self.settings
            summary["alarms"] = expert_alarms(gates, share.gate_collapse_share, share.dead_expert_share)
        return summary

    def _thin(self) -> None:
        steps = self.data["steps"]
        if len(steps) <= self.settings.max_step_records:
            return
        self.stride *= 2
        spacing = self.settings.every_steps * self.stride
        self.data["steps"] = [record for record in steps if record["step"] % spacing == 0]
        self.data["step_stride"] = self.stride

    def _write(self) -> None:
        text, _ = strict_json(self.data)  # a diverged (NaN) loss is recorded as null
        atomic_write(self.path, lambda tmp: tmp.write_text(text))

    def _to_tensorboard(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = record["step"]
        for task in self.task_names:
            self.writer.add_scalar(f"loss/{task}", record["loss"][task], step)
            self.writer.add_scalar(f"loss_weight/{task}", record["loss_weights"][task], step)
        for (a, b), value in _pair_values(self.task_names, record.get("grad_cosine")):
            self.writer.add_scalar(f"grad_cosine/{a}~{b}", value, step)
        for gate, stats in record.get("gates", {}).items():
            self.writer.add_scalar(f"gate_entropy/{gate}", stats["entropy"], step)
            self.writer.add_scalar(f"gate_max_share/{gate}", max(stats["mean"]), step)

    def _epoch_to_tensorboard(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for task, value in record.get("train_loss", {}).items():
            self.writer.add_scalar(f"epoch/train_loss/{task}", value, self.steps_done)
        for task, values in record.get("valid", {}).items():
            for metric, value in values.items():
                self.writer.add_scalar(f"epoch/valid/{task}/{metric}", value, self.steps_done)
        self.writer.flush()


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN (NaN where every value is NaN), without numpy's warning."""
    present = ~np.isnan(values)
    count = present.sum(axis=0)
    total = np.where(present, values, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nan_to_none(rows: list[list[float]]) -> list[list[float | None]]:
    """JSON has no NaN: an undefined value (a zero gradient, a constant label) is written as null."""
    return [[None if value is None or math.isnan(value) else value for value in row] for row in rows]


def _pair_values(tasks: Sequence[str], matrix: list[list[float | None]] | None) -> list[tuple[tuple[str, str], float]]:
    if matrix is None:
        return []
    return [
        ((tasks[i], tasks[j]), matrix[i][j])
        for i in range(len(tasks))
        for j in range(i + 1, len(tasks))
        if matrix[i][j] is not None
    ]


def _pairs(tasks: Sequence[str], matrix: list[list[float | None]], rows: list[list[int]] | None = None) -> str:
    """``a~b=0.123 (n=…)`` for every pair, ``a~b=undefined`` where the value is null."""
    parts = []
    for i in range(len(tasks)):
        for j in range(i + 1, len(tasks)):
            value = "undefined" if matrix[i][j] is None else f"{matrix[i][j]:.3f}"
            parts.append(f"{tasks[i]}~{tasks[j]}={value}" + (f" (n={rows[i][j]})" if rows else ""))
    return ", ".join(parts)
