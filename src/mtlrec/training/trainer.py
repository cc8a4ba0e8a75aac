"""The training loop: epochs of short train steps, validation, early stopping, checkpoints, resume."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from mtlrec.data.batch import Batch, EncodedData
from mtlrec.data.sources import InMemorySource, TrainSource
from mtlrec.errors import DataError
from mtlrec.evaluation.selection import SelectionCriterion
from mtlrec.io import atomic_write, strict_json
from mtlrec.losses import Loss, task_losses
from mtlrec.training.checkpoint import load_checkpoint, save_checkpoint, save_weights
from mtlrec.training.diagnostics import DiagnosticsRecorder
from mtlrec.training.distributed import DistributedContext, evaluate_sharded
from mtlrec.training.early_stopping import EarlyStopping
from mtlrec.training.grad_sync import GradientSync
from mtlrec.training.optim import CompositeOptimizer
from mtlrec.training.progress import EpochProgress
from mtlrec.training.schedule import lr_factor
from mtlrec.weighting import WeightingStrategy

log = logging.getLogger("mtlrec.train")


def _classes(task: str, labels: torch.Tensor) -> str:
    """``task 'click': 812 labelled rows, one class only (1)``: what makes a ranking metric undefined."""
    present = labels[~torch.isnan(labels)]
    classes = sorted({float(v) for v in present.unique().tolist()})
    shown = ", ".join(f"{v:g}" for v in classes)
    kind = "one class only" if len(classes) == 1 else "no labelled row" if not classes else "classes"
    return f"task '{task}': {present.numel()} labelled row(s), {kind} ({shown})"


class TrainingFiles(Protocol):
    """Where the trainer writes: the best weights, the resumable checkpoint and the epoch history."""

    @property
    def weights(self) -> Path: ...

    @property
    def checkpoint(self) -> Path: ...

    @property
    def history(self) -> Path: ...


@dataclass
class TrainSettings:
    """Loop settings. ``selection`` is the validation criterion of early stopping/model selection (None: last epoch)."""

    epochs: int
    batch_size: int
    seed: int
    eval_batch_size: int = 16384
    log_every: int = 200
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    selection: SelectionCriterion | None = None
    patience: int | None = None
    min_delta: float = 0.0
    higher_is_better: bool = True
    show_progress_bar: bool | None = None
    precision: str = "fp32"


@dataclass
class TrainResult:
    best_epoch: int
    best_value: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Trains a multi-task model.

    Args:
        model: {input name: tensor} → {task: logit}.
        losses: {task: loss}, in task order; the loss of a task the model does not train (ESMM's CVR)
            only links its logits to scores for evaluation.
        strategy: the weighting strategy (combines the loss vector, or shapes gradients).
        optimizer: steps every parameter group (dense, sparse embeddings, strategy).
        metric_names: {task: metric names} computed on validation each epoch.
        settings: loop settings.
        files: the run directory (checkpoints, best weights, history).
        diagnostics: optional hook sampling gradient cosines, gate and loss weights (``diagnostics.json``).
        context: the data-parallel rank and device (default: one process on the CPU). With several
            ranks, gradients are averaged after the strategy's backward (``GradientSync``), validation
            is scored in shares, and only rank 0 writes files.
    """

    def __init__(
        self,
        model: nn.Module,
        losses: dict[str, Loss],
        strategy: WeightingStrategy,
        optimizer: CompositeOptimizer,
        metric_names: dict[str, list[str]],
        settings: TrainSettings,
        files: TrainingFiles,
        diagnostics: DiagnosticsRecorder | None = None,
        context: DistributedContext | None = None,
    ):
        self.model, self.losses, self.strategy, self.optimizer = model, losses, strategy, optimizer
        self.context = context or DistributedContext()
        self.device = self.context.device
        self.sync = None
        if self.context.enabled:
            parameters = [*model.parameters(), *strategy.parameters()]
            buffers = [*model.buffers(), *strategy.buffers()]
            self.sync = GradientSync(parameters, model.embedding_parameters(), buffers, self.device)
        untrained = model.untrained_tasks()
        self.train_losses = {task: loss for task, loss in losses.items() if task not in untrained}
        self.metric_names, self.settings, self.files = metric_names, settings, files
        self.shared_parameters = list(model.shared_parameters())
        self.bf16 = settings.precision == "bf16"
        if self.bf16 and self.device.type == "cpu" and not torch.cpu._is_avx512_bf16_supported():
            log.warning("train.precision bf16: this CPU has no native bf16 (avx512_bf16); expect it to be slower")
        patience = settings.patience if settings.selection else None
        self.stopper = EarlyStopping(settings.higher_is_better, patience or settings.epochs + 1, settings.min_delta)
        self.history: list[dict[str, Any]] = []
        self.diagnostics = diagnostics

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; returns the detached loss vector (T,) and the loss weights used (T,)."""
        sampled = self.diagnostics is not None and self.diagnostics.start_step()
        batch = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(batch.inputs)
        if self.bf16:
            logits = {task: value.float() for task, value in logits.items()}
        losses = task_losses(logits, batch.labels, self.train_losses, batch.weights)
        if sampled:
            self.diagnostics.observe_losses(losses)
        self.optimizer.zero_grad()
        weights = self.strategy.backward(
            losses, self.shared_parameters, self.model.auxiliary_loss(logits), self.model.shared_representation()
        )
        if sampled:
            self.diagnostics.observe_weights(weights)
        if self.sync is not None:
            self.sync(len(batch))
        self.optimizer.step()
        return losses.detach(), weights.detach()

    def train_epoch(self, data: EncodedData | TrainSource, epoch: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One pass in a seeded random order; returns mean losses (T,), mean loss weights (T,) and samples/s.

        With several ranks the means are over every rank's rows and samples/s is their sum.
        """
        self.model.train()
        source = self._source(data)
        steps = source.steps(epoch)
        progress = EpochProgress(
            epoch, self.settings.epochs, steps, self.settings.log_every, self.settings.show_progress_bar
        )
        total = torch.zeros(len(self.train_losses), device=self.device)
        total_weights = torch.zeros(len(self.train_losses), device=self.device)
        rows = 0
        total_steps = steps * self.settings.epochs
        for step, batch in enumerate(source.epoch(epoch)):
            self.optimizer.scale_lr(
                lr_factor(self.settings.lr_schedule, epoch * steps + step, total_steps, self.settings.warmup_steps)
            )
            losses, weights = self.train_step(batch)
            total += losses * len(batch)
            total_weights += weights.to(total) * len(batch)
            rows += len(batch)
            progress.update(len(batch), losses.sum())
        speed = progress.close()
        sums = torch.cat([total.double().cpu(), total_weights.double().cpu(), torch.tensor([rows, speed])])
        sums = self.context.all_reduce_sum(sums.double())
        count, tasks = max(float(sums[-2]), 1.0), len(self.train_losses)
        return (sums[:tasks] / count).float(), (sums[tasks : 2 * tasks] / count).float(), float(sums[-1])

    def _source(self, data: EncodedData | TrainSource) -> TrainSource:
        if not isinstance(data, EncodedData):
            return data
        context = self.context
        return InMemorySource(data, self.settings.batch_size, self.settings.seed, context.rank, context.world_size)

    def fit(self, train: EncodedData | TrainSource, valid: EncodedData | None, resume: bool = False) -> TrainResult:
        """Train for the configured epochs (stopping early on the validation metric); keep the best weights."""
        start_epoch = self._resume() if resume else 0
        if not resume and valid is not None and self.settings.selection is not None:
            self._check_criterion_defined(valid)
        if self.diagnostics is not None:
            self.diagnostics.begin(train, start_epoch)
        if self.stopper.should_stop:
            start_epoch = self.settings.epochs
        for epoch in range(start_epoch, self.settings.epochs):
            mean_losses, mean_weights, speed = self.train_epoch(train, epoch)
            self.strategy.end_epoch(epoch, mean_losses)
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": dict(zip(self.train_losses, mean_losses.tolist())),
                "loss_weights": dict(zip(self.train_losses, mean_weights.tolist())),
                "samples_per_second": round(speed, 1),
            }
            if valid is not None:
                record["valid"] = evaluate_sharded(
                    self.model, valid, self.losses, self.metric_names, self.settings.eval_batch_size, self.context
                )
            value, constraints_met = self._selection_value(record)
            improved = self.stopper.update(value, epoch, constraints_met)
            undefined = self.stopper.best_epoch < 0  # no epoch had a defined criterion yet: keep the latest
            if (improved or undefined) and self.context.is_main:
                save_weights(self.model, self.files.weights)
            self.history.append(record)
            self._log_epoch(record, improved)
            if self.diagnostics is not None:
                self.diagnostics.end_epoch(record)
            if self.context.is_main:
                self._save_checkpoint(epoch)
            if self.stopper.should_stop:
                log.info("early stopping after epoch %d (best epoch %d)", epoch + 1, self.stopper.best_epoch + 1)
                break
        if not self.stopper.best_feasible:
            log.warning(
                "no epoch met the selection constraints (%s); selected epoch %d by the criterion alone",
                self.settings.selection.describe(),
                self.stopper.best_epoch + 1,
            )
        if self.stopper.best_epoch < 0 and self.history:
            log.warning("the selection criterion was undefined (NaN) at every epoch; the last epoch's weights are kept")
            return TrainResult(self.history[-1]["epoch"] - 1, None, self.history)
        return TrainResult(self.stopper.best_epoch, self.stopper.best, self.history)

    def _check_criterion_defined(self, valid: EncodedData) -> None:
        """Stop before training when the selection criterion cannot be computed on the validation split.

        It is evaluated once with the initial model: a metric that is NaN then (an AUC of a task with one
        class only in the split, a GAUC without a group holding both classes) stays NaN whatever the model
        learns, and no epoch could ever be selected.

        Raises:
            DataError: naming the undefined metrics and, for each task, its labelled rows and classes.
        """
        metrics = evaluate_sharded(
            self.model, valid, self.losses, self.metric_names, self.settings.eval_batch_size, self.context
        )
        if not math.isnan(self.settings.selection.evaluate(metrics)["criterion"]):
            return
        undefined = [f"{task}.{name}" for task, values in metrics.items() for name, v in values.items() if v != v]
        reasons = [_classes(task, valid.labels[task]) for task in dict.fromkeys(n.split(".")[0] for n in undefined)]
        raise DataError(
            f"validation split: the model-selection criterion ({self.settings.selection.describe()}) is undefined: "
            f"{', '.join(undefined)} cannot be computed ({'; '.join(reasons)}). Give a validation split with both "
            "classes, select on another metric (train.early_stopping.metric), or set train.early_stopping: null "
            "to keep the last epoch."
        )

    def _selection_value(self, record: dict[str, Any]) -> tuple[float, bool]:
        """The epoch's criterion value and whether it meets the constraints; records both as ``selection``."""
        if self.settings.selection is None or "valid" not in record:
            return (float(record["epoch"]) if self.settings.higher_is_better else -float(record["epoch"])), True
        record["selection"] = self.settings.selection.evaluate(record["valid"])
        return record["selection"]["criterion"], record["selection"]["constraints_met"]

    def _log_epoch(self, record: dict[str, Any], improved: bool) -> None:
        losses = " ".join(f"{task}={value:.4f}" for task, value in record["train_loss"].items())
        weights = " ".join(f"{task}={value:.3g}" for task, value in record["loss_weights"].items())
        valid = " ".join(
            f"{task}.{name}={value:.4f}"
            for task, values in record.get("valid", {}).items()
            for name, value in values.items()
        )
        if "selection" in record:
            met = "" if record["selection"]["constraints_met"] else " (constraints not met)"
            valid += f" | criterion {record['selection']['criterion']:.4f}{met}"
        log.info(
            "epoch %d: train loss %s | loss weights %s | valid %s | %.0f samples/s%s",
            record["epoch"],
            losses,
            weights,
            valid or "-",
            record["samples_per_second"],
            " | new best" if improved else "",
        )

    def _save_checkpoint(self, epoch: int) -> None:
        state = {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "strategy": self.strategy.state_dict(),
            "early_stopping": self.stopper.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(self.history),
        }
        save_checkpoint(self.files.checkpoint, state)
        text, _ = strict_json(self.history)  # an undefined metric is null (the epoch log shows it as nan)
        atomic_write(self.files.history, lambda tmp: tmp.write_text(text))

    def _resume(self) -> int:
        state = load_checkpoint(self.files.checkpoint)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.stopper.load_state_dict(state["early_stopping"])
        torch.set_rng_state(state["torch_rng"])
        self.history = json.loads(state["history"])
        log.info("resumed from %s after epoch %d", self.files.checkpoint, state["epoch"] + 1)
        return state["epoch"] + 1
