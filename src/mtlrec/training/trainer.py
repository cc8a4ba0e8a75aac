"""The training loop: epochs of short train steps, validation (per epoch or every N steps), early stopping,
checkpoints, resume at a step."""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
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
from mtlrec.training.compilation import CompileReport, compile_for_training, probe_compile
from mtlrec.training.diagnostics import DiagnosticsRecorder
from mtlrec.training.distributed import DistributedContext, evaluate_sharded
from mtlrec.training.early_stopping import EarlyStopping
from mtlrec.training.grad_sync import GradientSync
from mtlrec.training.optim import CompositeOptimizer
from mtlrec.training.position import LossSums, Position
from mtlrec.training.precision import native_bf16, resolve_precision
from mtlrec.training.progress import EpochProgress, StepClock
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
    """Loop settings.

    ``selection`` is the validation criterion of early stopping and model selection (None: the latest
    evaluation); ``patience`` counts evaluations. ``eval_every_steps`` adds evaluations (and checkpoints)
    every N global steps to those at each epoch's end; ``max_steps`` ends training (and the learning-rate
    schedule) after N steps. ``precision``: ``fp32``, ``bf16`` (autocast of the training forward) or ``auto``
    (bf16 where the device has it natively); ``compile``: ``true``, ``false`` or ``auto`` (compile when a
    probe on the first batch shows a gain; see ``training.compilation``).
    """

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
    compile: str = "false"
    eval_every_steps: int | None = None
    max_steps: int | None = None


@dataclass
class TrainResult:
    """The selected evaluation: its 0-based epoch, criterion value and global step; the whole history; the
    precision and compilation the steps ran with (``setup``)."""

    best_epoch: int
    best_value: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    setup: dict[str, Any] = field(default_factory=dict)


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
        self.precision = resolve_precision(settings.precision, self.device)
        self.bf16 = self.precision == "bf16"
        if self.bf16 and not native_bf16(self.device):
            log.warning("train.precision bf16: this device has no native bf16 (avx512_bf16); expect it to be slower")
        if settings.precision == "auto":
            log.info("train.precision auto: %s on %s", self.precision, self.device)
        self.compilation = CompileReport(settings.compile)
        self.compiled: Any = None  # the model's compiled stand-ins (model.compiled.CompiledModel)
        self.compiled_rows: int | None = None  # the batch size the compiled graphs are for; others run eagerly
        if settings.compile == "true":
            self.compiled = compile_for_training(model)
            self.compilation.compiled, self.compilation.modules = True, self.compiled.names()
        patience = settings.patience if settings.selection else None
        self.stopper = EarlyStopping(settings.higher_is_better, patience or settings.epochs + 1, settings.min_delta)
        self.history: list[dict[str, Any]] = []
        self.global_step = 0
        self.rows_seen = 0  # training rows of every rank up to the latest evaluation
        self.diagnostics = diagnostics

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; returns the detached loss vector (T,) and the loss weights used (T,)."""
        batch = batch.to(self.device)
        if self.compilation.requested == "auto" and self.compilation.eager_ms is None:
            self._probe_compile(batch)
        if self.compiled is not None and self.compiled_rows is None:
            self.compiled_rows = len(batch)
        started = time.perf_counter()
        sampled = self.diagnostics is not None and self.diagnostics.start_step()
        compiled = self.compiled if not sampled and len(batch) == self.compiled_rows else None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(batch.inputs) if compiled is None else self.model(batch.inputs, compiled=compiled)
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
        if compiled is not None and self.compilation.compile_seconds is None:
            self._compiled_first(time.perf_counter() - started)
        return losses.detach(), weights.detach()

    def _compiled_first(self, seconds: float) -> None:
        """The first compiled step's time: its compilation dominates (the report's compile time)."""
        self.compilation.compile_seconds = round(seconds, 2)
        log.info("compiled %s: the first compiled step took %.1f s", ", ".join(self.compilation.modules), seconds)

    def _probe_compile(self, batch: Batch) -> None:
        """``compile: auto``: time the model eager and compiled on ``batch``; run compiled if it gains."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            self.compilation, self.compiled = probe_compile(self.model, batch.inputs)
        self.compiled_rows = len(batch)
        report = self.compilation
        log.info(
            "train.compile auto: eager %.2f ms, compiled %.2f ms per forward and backward (compiling took %.1f s): %s",
            report.eager_ms, report.compiled_ms, report.compile_seconds,
            "compiled " + ", ".join(report.modules) if report.compiled else "eager",
        )  # fmt: skip

    def train_epoch(self, data: EncodedData | TrainSource, epoch: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One pass in a seeded random order; returns mean losses (T,), mean loss weights (T,) and samples/s.

        With several ranks the means are over every rank's rows and samples/s is their sum.
        """
        self.model.train()
        source = self._source(data)
        sums = LossSums.zeros(len(self.train_losses), self.device)
        clock = StepClock()
        for _, losses, weights, rows in self._steps(source, epoch, 0, self._total_steps(source)):
            sums.add(losses, weights, rows)
        means, mean_weights, rows = sums.reduce(self.context)
        return means, mean_weights, rows / clock.seconds()

    def _steps(
        self, source: TrainSource, epoch: int, first: int, total_steps: int
    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, int]]:
        """Train on ``epoch``'s batches from its step ``first`` on; yield (step, losses, weights, rows) after each.

        The learning rate follows the schedule over the run's global steps (``self.global_step``), which
        ends at ``total_steps`` (the last epoch's end, or ``max_steps``).
        """
        steps = source.steps(epoch)
        progress = EpochProgress(
            epoch, self.settings.epochs, steps, self.settings.log_every, self.settings.show_progress_bar, first
        )
        try:
            for step, batch in enumerate(itertools.islice(source.epoch(epoch), first, None), start=first):
                if self.global_step >= total_steps:
                    return
                self.optimizer.scale_lr(
                    lr_factor(self.settings.lr_schedule, self.global_step, total_steps, self.settings.warmup_steps)
                )
                losses, weights = self.train_step(batch)
                self.global_step += 1
                progress.update(len(batch), losses.sum())
                yield step, losses, weights, len(batch)
        finally:
            progress.close()

    def _source(self, data: EncodedData | TrainSource) -> TrainSource:
        if not isinstance(data, EncodedData):
            return data
        context = self.context
        return InMemorySource(data, self.settings.batch_size, self.settings.seed, context.rank, context.world_size)

    def _total_steps(self, source: TrainSource) -> int:
        """The run's last global step: every epoch's steps, capped by ``max_steps``."""
        steps = sum(source.steps(epoch) for epoch in range(self.settings.epochs))
        return min(steps, self.settings.max_steps or steps)

    def fit(
        self,
        train: EncodedData | TrainSource,
        valid: EncodedData | None,
        resume: bool = False,
        on_evaluation: Callable[[dict[str, Any]], None] | None = None,
    ) -> TrainResult:
        """Train for the configured epochs or steps, evaluating at every epoch's end and every
        ``eval_every_steps`` steps (stopping early on the validation criterion); keep the best weights.

        Args:
            train: the training split, or a stream of it.
            valid: the validation split (None: no validation; the latest evaluation counts as the best).
            resume: continue from the run's checkpoint, written at every evaluation: from the step after it,
                with the same batches, learning rates and random state as an uninterrupted run.
            on_evaluation: called with each evaluation's history record after it is saved (a tuner's
                pruning hook may raise there to end training).
        """
        source = self._source(train)
        position = self._resume(source) if resume else Position()
        if not resume and valid is not None and self.settings.selection is not None:
            self._check_criterion_defined(valid)
        if self.diagnostics is not None:
            self.diagnostics.begin(train, position.epoch)
        total_steps = self._total_steps(source)
        self.global_step = position.global_step
        stopped = self.stopper.should_stop or self.global_step >= total_steps
        for epoch in range(position.epoch, self.settings.epochs):
            if stopped:
                break
            resumed = position if epoch == position.epoch else Position(epoch=epoch, global_step=self.global_step)
            stopped = self._fit_epoch(source, resumed, valid, total_steps, on_evaluation)
        return self._result()

    def _fit_epoch(
        self,
        source: TrainSource,
        position: Position,
        valid: EncodedData | None,
        total_steps: int,
        on_evaluation: Callable[[dict[str, Any]], None] | None,
    ) -> bool:
        """Train one epoch from ``position``, evaluating on the way; True when training should stop."""
        epoch, steps = position.epoch, source.steps(position.epoch)
        tasks = len(self.train_losses)
        epoch_sums = position.epoch_sums or LossSums.zeros(tasks, self.device)
        window, clock = LossSums.zeros(tasks, self.device), StepClock()
        every = self.settings.eval_every_steps
        self.model.train()
        for step, losses, weights, rows in self._steps(source, epoch, position.step, total_steps):
            epoch_sums.add(losses, weights, rows)
            window.add(losses, weights, rows)
            epoch_end, last = step + 1 == steps, self.global_step >= total_steps
            if not (epoch_end or last or (every and self.global_step % every == 0)):
                continue
            clock.pause()
            if epoch_end:
                self.strategy.end_epoch(epoch, epoch_sums.reduce(self.context)[0])
            record = self._evaluate(window, clock, epoch, (step + 1) / steps, valid)
            if epoch_end and self.diagnostics is not None:
                self.diagnostics.end_epoch(record)
            if self.context.is_main:
                next_step = Position(epoch, step + 1, self.global_step, epoch_sums)
                self._save_checkpoint(Position(epoch + 1, 0, self.global_step) if epoch_end else next_step)
            if on_evaluation is not None:
                on_evaluation(record)
            if self.stopper.should_stop:
                best = self._best_record()
                log.info(
                    "early stopping after epoch %d, step %d (best: epoch %d, step %d)",
                    epoch + 1, self.global_step, best["epoch"], best["step"],
                )  # fmt: skip
                return True
            window, clock = LossSums.zeros(tasks, self.device), StepClock()
            self.model.train()
        return self.global_step >= total_steps

    def _evaluate(
        self, window: LossSums, clock: StepClock, epoch: int, epoch_share: float, valid: EncodedData | None
    ) -> dict[str, Any]:
        """The history record of an evaluation: train losses since the last one, validation metrics, selection."""
        means, mean_weights, rows = window.reduce(self.context)  # rows: every rank's
        speed = rows / clock.seconds()
        self.rows_seen += rows
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": self.global_step,
            "epochs_done": round(epoch + epoch_share, 4),
            "rows_seen": self.rows_seen,
            "train_loss": dict(zip(self.train_losses, means.tolist())),
            "loss_weights": dict(zip(self.train_losses, mean_weights.tolist())),
            "samples_per_second": round(speed, 1),
        }
        if valid is not None:
            record["valid"] = evaluate_sharded(
                self.model, valid, self.losses, self.metric_names, self.settings.eval_batch_size, self.context
            )
        value, constraints_met = self._selection_value(record)
        improved = self.stopper.update(value, len(self.history), constraints_met)
        undefined = self.stopper.best_index < 0  # no evaluation had a defined criterion yet: keep the latest
        if (improved or undefined) and self.context.is_main:
            save_weights(self.model, self.files.weights)
        self.history.append(record)
        self._log_evaluation(record, improved)
        return record

    def _best_record(self) -> dict[str, Any]:
        return self.history[self.stopper.best_index] if self.stopper.best_index >= 0 else self.history[-1]

    def _result(self) -> TrainResult:
        setup = {"precision": self.precision, "compile": self.compilation.as_dict()}
        if not self.history:
            return TrainResult(-1, None, self.history, setup=setup)
        if not self.stopper.best_feasible:
            log.warning(
                "no evaluation met the selection constraints (%s); selected epoch %d, step %d by the criterion alone",
                self.settings.selection.describe(),
                self._best_record()["epoch"],
                self._best_record()["step"],
            )
        best = self._best_record()
        if self.stopper.best_index < 0:
            log.warning("the selection criterion was undefined (NaN) at every evaluation; the latest weights are kept")
            return TrainResult(best["epoch"] - 1, None, self.history, best["step"], setup)
        return TrainResult(best["epoch"] - 1, self.stopper.best, self.history, best["step"], setup)

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
            latest = float(len(self.history))  # without a criterion the latest evaluation is the best
            return (latest if self.settings.higher_is_better else -latest), True
        record["selection"] = self.settings.selection.evaluate(record["valid"])
        return record["selection"]["criterion"], record["selection"]["constraints_met"]

    def _log_evaluation(self, record: dict[str, Any], improved: bool) -> None:
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
            "epoch %d step %d: train loss %s | loss weights %s | valid %s | %.0f samples/s%s",
            record["epoch"],
            record["step"],
            losses,
            weights,
            valid or "-",
            record["samples_per_second"],
            " | new best" if improved else "",
        )

    def _save_checkpoint(self, position: Position) -> None:
        """The resumable state after an evaluation, and the history so far."""
        state = {
            **position.state_dict(),
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

    def _resume(self, source: TrainSource) -> Position:
        state = load_checkpoint(self.files.checkpoint)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.stopper.load_state_dict(state["early_stopping"])
        torch.set_rng_state(state["torch_rng"])
        self.history = json.loads(state["history"])
        self.rows_seen = self.history[-1].get("rows_seen", 0) if self.history else 0
        position = Position.from_state_dict(state, source.steps, self.device)
        where = (position.epoch + 1, position.global_step)
        log.info("resumed from %s at epoch %d, step %d", self.files.checkpoint, *where)
        return position
