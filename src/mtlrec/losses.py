"""Per-task losses, registered in ``LOSSES``; each knows its task kind and its inverse link."""

from __future__ import annotations

import torch
from torch.nn import functional


class Loss:
    """A task loss: ``__call__(logits (B,), targets (B,)) -> scalar`` and ``predict(logits) -> scores``.

    With ``masked``, targets that are NaN (a row outside the task's sample space) are left out: the
    loss is the mean over the remaining rows (0 when none remain), i.e. normalised by the number of
    samples in the task's space, as in the PLE paper's joint loss (Tang et al., 2020, Eq. 8).
    Unmasked losses skip that bookkeeping (their targets are never NaN).

    Args:
        masked: whether targets may be NaN.
    """

    kind = "binary"
    default_metrics: tuple[str, ...] = ()

    def __init__(self, masked: bool = False):
        self.masked = masked

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B,) per-sample losses for finite targets."""
        raise NotImplementedError

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.masked:
            return self.elementwise(logits, targets).mean()
        present = targets == targets  # False where NaN
        per_sample = self.elementwise(logits, torch.where(present, targets, torch.zeros_like(targets)))
        weights = present.to(per_sample.dtype)
        return (per_sample * weights).sum() / weights.sum().clamp_min(1.0)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Map logits to the score reported to users (probability, or the regression value)."""
        raise NotImplementedError


class BinaryCrossEntropy(Loss):
    """Mean binary cross-entropy on logits (numerically stable ``binary_cross_entropy_with_logits``)."""

    kind = "binary"
    default_metrics = ("auc", "logloss")

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)


class MeanSquaredError(Loss):
    """Mean squared error of a regression output."""

    kind = "regression"
    default_metrics = ("rmse", "mae")

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.mse_loss(logits, targets, reduction="none")

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class SoftmaxCrossEntropy(Loss):
    """Mean softmax cross-entropy of (B, C) class logits against (B,) class ids (stored as floats)."""

    kind = "multiclass"
    default_metrics = ("accuracy", "cross_entropy")

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(logits, targets.long(), reduction="none")

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)


LOSSES: dict[str, type[Loss]] = {"bce": BinaryCrossEntropy, "mse": MeanSquaredError, "softmax_ce": SoftmaxCrossEntropy}


def task_losses(
    logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], losses: dict[str, Loss]
) -> torch.Tensor:
    """Loss vector (T,) in the order of ``losses``' keys."""
    return torch.stack([loss(logits[task], targets[task]) for task, loss in losses.items()])
