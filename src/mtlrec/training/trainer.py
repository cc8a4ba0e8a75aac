"""The training loop: epochs of short train steps, validation, early stopping, checkpoints, resume."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mtlrec.batch import Batch, EncodedData
from mtlrec.evaluation import evaluate
from mtlrec.io import atomic_write
from mtlrec.losses import Loss, task_losses
from mtlrec.run_files import RunFiles
from mtlrec.training.checkpoint import load_checkpoint, save_checkpoint, save_weights
from mtlrec.training.early_stopping import EarlyStopping
from mtlrec.training.optim import CompositeOptimizer
from mtlrec.training.progress import EpochProgress
from mtlrec.training.schedule import lr_factor
from mtlrec.weighting import WeightingStrategy

log = logging.getLogger("mtlrec.train")


@dataclass
class TrainSettings:
    """Loop settings. ``selection`` is the validation (task, metric) used for early stopping/model selection."""

    epochs: int
    batch_size: int
    seed: int
    eval_batch_size: int = 16384
    log_every: int = 200
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    selection: tuple[str, str] | None = None
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
        model: ids, dense → {task: logit}.
        losses: {task: loss}, in task order; the loss of a task the model does not train (ESMM's CVR)
            only links its logits to scores for evaluation.
        strategy: the weighting strategy (combines the loss vector, or shapes gradients).
        optimizer: steps every parameter group (dense, sparse embeddings, strategy).
        metric_names: {task: metric names} computed on validation each epoch.
        settings: loop settings.
        files: the run directory (checkpoints, best weights, history).
    """

    def __init__(
        self,
        model: nn.Module,
        losses: dict[str, Loss],
        strategy: WeightingStrategy,
        optimizer: CompositeOptimizer,
        metric_names: dict[str, list[str]],
        settings: TrainSettings,
        files: RunFiles,
    ):
        self.model, self.losses, self.strategy, self.optimizer = model, losses, strategy, optimizer
        untrained = model.untrained_tasks()
        self.train_losses = {task: loss for task, loss in losses.items() if task not in untrained}
        self.metric_names, self.settings, self.files = metric_names, settings, files
        self.shared_parameters = list(model.shared_parameters())
        self.bf16 = settings.precision == "bf16"
        if self.bf16 and not torch.cpu._is_avx512_bf16_supported():
            log.warning("train.precision bf16: this CPU has no native bf16 (avx512_bf16); expect it to be slower")
        patience = settings.patience if settings.selection else None
        self.stopper = EarlyStopping(settings.higher_is_better, patience or settings.epochs + 1, settings.min_delta)
        self.history: list[dict[str, Any]] = []

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; returns the detached loss vector (T,) and the loss weights used (T,)."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(batch.ids, batch.dense)
        if self.bf16:
            logits = {task: value.float() for task, value in logits.items()}
        losses = task_losses(logits, batch.labels, self.train_losses, batch.weights)
        self.optimizer.zero_grad()
        weights = self.strategy.backward(
            losses, self.shared_parameters, self.model.auxiliary_loss(logits), self.model.shared_representation()
        )
        self.optimizer.step()
        return losses.detach(), weights.detach()

    def train_epoch(self, data: EncodedData, epoch: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One pass in a seeded random order; returns mean losses (T,), mean loss weights (T,) and samples/s."""
        self.model.train()
        generator = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + epoch)
        steps = math.ceil(len(data) / self.settings.batch_size)
        progress = EpochProgress(
            epoch, self.settings.epochs, steps, self.settings.log_every, self.settings.show_progress_bar
        )
        total = torch.zeros(len(self.train_losses))
        total_weights = torch.zeros(len(self.train_losses))
        total_steps = steps * self.settings.epochs
        for step, batch in enumerate(data.batches(self.settings.batch_size, shuffle=True, generator=generator)):
            self.optimizer.scale_lr(
                lr_factor(self.settings.lr_schedule, epoch * steps + step, total_steps, self.settings.warmup_steps)
            )
            losses, weights = self.train_step(batch)
            total += losses * len(batch)
            total_weights += weights * len(batch)
            progress.update(len(batch), losses.sum())
        return total / len(data), total_weights / len(data), progress.close()

    def fit(self, train: EncodedData, valid: EncodedData | None, resume: bool = False) -> TrainResult:
        """Train for the configured epochs (stopping early on the validation metric); keep the best weights."""
        start_epoch = self._resume() if resume else 0
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
                record["valid"] = evaluate(
                    self.model, valid, self.losses, self.metric_names, self.settings.eval_batch_size
                )
            improved = self.stopper.update(self._selection_value(record), epoch)
            if improved:
                save_weights(self.model, self.files.weights)
            self.history.append(record)
            self._log_epoch(record, improved)
            self._save_checkpoint(epoch)
            if self.stopper.should_stop:
                log.info("early stopping after epoch %d (best epoch %d)", epoch + 1, self.stopper.best_epoch + 1)
                break
        return TrainResult(self.stopper.best_epoch, self.stopper.best, self.history)

    def _selection_value(self, record: dict[str, Any]) -> float:
        if self.settings.selection is None or "valid" not in record:
            return float(record["epoch"]) if self.settings.higher_is_better else -float(record["epoch"])
        task, metric = self.settings.selection
        return record["valid"][task][metric]

    def _log_epoch(self, record: dict[str, Any], improved: bool) -> None:
        losses = " ".join(f"{task}={value:.4f}" for task, value in record["train_loss"].items())
        weights = " ".join(f"{task}={value:.3g}" for task, value in record["loss_weights"].items())
        valid = " ".join(
            f"{task}.{name}={value:.4f}"
            for task, values in record.get("valid", {}).items()
            for name, value in values.items()
        )
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
        text = json.dumps(self.history, indent=1)
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
