"""Per-task losses, registered in ``LOSSES``; each knows its task kind and its inverse link."""

from __future__ import annotations

import torch
from torch.nn import functional


class Loss:
    """A task loss: ``__call__(logits (B,), targets (B,)) -> scalar`` and ``predict(logits) -> scores``."""

    kind = "binary"
    default_metrics: tuple[str, ...] = ()

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Map logits to the score reported to users (probability, or the regression value)."""
        raise NotImplementedError


class BinaryCrossEntropy(Loss):
    """Mean binary cross-entropy on logits (numerically stable ``binary_cross_entropy_with_logits``)."""

    kind = "binary"
    default_metrics = ("auc", "logloss")

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.binary_cross_entropy_with_logits(logits, targets)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)


class MeanSquaredError(Loss):
    """Mean squared error of a regression output."""

    kind = "regression"
    default_metrics = ("rmse", "mae")

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.mse_loss(logits, targets)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


LOSSES: dict[str, type[Loss]] = {"bce": BinaryCrossEntropy, "mse": MeanSquaredError}


def task_losses(
    logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], losses: dict[str, Loss]
) -> torch.Tensor:
    """Loss vector (T,) in the order of ``losses``' keys."""
    return torch.stack([loss(logits[task], targets[task]) for task, loss in losses.items()])
