"""Config values reach the objects built from them: the optimizer, its learning rates and weight decay, the
warm-up, early stopping, and the losses' parameters. (The functions that use them are tested on their own;
these tests fail when the composition root passes a default instead of the configured value.)"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as functional
from tests.small_runs import built_trainer, small_config

from mtlrec.app import build
from mtlrec.config import validate_config
from mtlrec.losses import TransformedTarget


def test_optimizer_learning_rates_and_weight_decay_reach_the_optimizers(tmp_path):
    trainer, _ = built_trainer(
        tmp_path, optimizer="adamw", lr=0.02, embedding_lr=0.3, weight_decay=0.125, embedding_weight_decay=0.01
    )
    dense, embedding = trainer.optimizer.optimizers["dense"], trainer.optimizer.optimizers["embedding"]
    assert type(dense) is torch.optim.AdamW
    assert dense.param_groups[0]["lr"] == 0.02 and dense.param_groups[0]["weight_decay"] == 0.125
    assert embedding.param_groups[0]["lr"] == 0.3 and embedding.param_groups[0]["weight_decay"] == 0.01


def test_the_default_optimizer_is_adam_without_decay_and_one_learning_rate(tmp_path):
    trainer, _ = built_trainer(tmp_path, lr=0.02)
    dense, embedding = trainer.optimizer.optimizers["dense"], trainer.optimizer.optimizers["embedding"]
    assert type(dense) is torch.optim.Adam and dense.param_groups[0]["weight_decay"] == 0.0
    assert embedding.param_groups[0]["lr"] == 0.02 and embedding.param_groups[0]["weight_decay"] == 0.0


def test_warmup_steps_scale_the_learning_rate_of_the_first_steps(tmp_path):
    """3 steps of a 7-step linear warm-up: the last step ran at 3/7 of each configured rate."""
    trainer, data = built_trainer(tmp_path, lr=0.02, embedding_lr=0.3, warmup_steps=7, lr_schedule="constant")
    assert trainer.settings.warmup_steps == 7
    trainer.train_epoch(data["train"], epoch=0)
    assert trainer.optimizer.optimizers["dense"].param_groups[0]["lr"] == pytest.approx(0.02 * 3 / 7)
    assert trainer.optimizer.optimizers["embedding"].param_groups[0]["lr"] == pytest.approx(0.3 * 3 / 7)


def test_early_stopping_patience_and_min_delta_reach_the_stopper(tmp_path):
    trainer, _ = built_trainer(tmp_path, early_stopping={"metric": "click.auc", "patience": 5, "min_delta": 0.0625})
    assert (trainer.stopper.patience, trainer.stopper.min_delta) == (5, 0.0625)
    assert trainer.settings.selection.describe() == "max click.auc"


def _losses(loss_name: str, loss_params: dict, tmp_path: Path, **label) -> dict:
    config = small_config(tmp_path / "train.csv")
    raw = config.model_dump()
    raw["tasks"][0] |= {"loss": loss_name, "loss_params": loss_params, "label": {"column": "click", **label}}
    config = validate_config(raw)
    return build.build_losses(config, build.build_pipeline(config))


LOGITS = torch.tensor([-2.0, -0.5, 0.3, 1.7])
TARGETS = torch.tensor([0.0, 1.0, 0.0, 1.0])


def test_focal_gamma_and_alpha_reach_the_loss(tmp_path):
    loss = _losses("focal", {"gamma": 3.0, "alpha": 0.4}, tmp_path)["click"]
    p = torch.sigmoid(LOGITS)
    p_true = torch.where(TARGETS == 1, p, 1 - p)
    alpha = torch.where(TARGETS == 1, 0.4, 0.6)
    expected = (-alpha * (1 - p_true) ** 3 * torch.log(p_true)).mean()  # Lin et al. 2017, Eq. 5
    torch.testing.assert_close(loss(LOGITS, TARGETS), expected)


def test_label_smoothing_reaches_the_loss(tmp_path):
    loss = _losses("bce", {"label_smoothing": 0.2}, tmp_path)["click"]
    smoothed = TARGETS * 0.8 + 0.1
    torch.testing.assert_close(loss(LOGITS, TARGETS), functional.binary_cross_entropy_with_logits(LOGITS, smoothed))


def test_huber_delta_reaches_the_loss(tmp_path):
    loss = _losses("huber", {"delta": 0.5}, tmp_path)["click"]
    assert not isinstance(loss, TransformedTarget)
    error = (LOGITS - TARGETS).abs()
    expected = torch.where(error < 0.5, 0.5 * error**2, 0.5 * (error - 0.25)).mean()
    torch.testing.assert_close(loss(LOGITS, TARGETS), expected)
    assert not math.isclose(float(expected), float(functional.huber_loss(LOGITS, TARGETS, delta=1.0)))
