"""Per-task losses, registered in ``LOSSES``; each knows its task kind and its inverse link."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional


class Loss:
    """A task loss: ``__call__(logits, targets, weights=None) -> scalar`` and ``predict(logits) -> scores``.

    The loss is (1/n) Σ_i w_i · ℓ_i over the n rows with a target, w_i = 1 without sample weights.
    With ``masked``, NaN targets (a row outside the task's sample space, or a missing label the task
    masks) are left out: n counts only the rows in the space (the loss is 0 when none remain), as in
    the PLE paper's joint loss (Tang et al., 2020, Eq. 8). Unmasked losses skip that bookkeeping.

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

    def __call__(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits (B,) or (B, C), targets (B,), optional sample weights (B,) → scalar."""
        if not self.masked:
            per_sample = self.elementwise(logits, targets)
            return (per_sample if weights is None else per_sample * weights).mean()
        present = targets == targets  # False where NaN
        per_sample = self.elementwise(logits, torch.where(present, targets, torch.zeros_like(targets)))
        mask = present.to(per_sample.dtype)
        weighted = mask if weights is None else mask * weights
        return (per_sample * weighted).sum() / mask.sum().clamp_min(1.0)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Map logits to the score reported to users (probability, or the regression value)."""
        raise NotImplementedError

    def original(self, targets: torch.Tensor) -> torch.Tensor:
        """Map stored targets to the unit metrics are computed in (the identity unless transformed)."""
        return targets


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits, optionally with label smoothing (Szegedy et al., CVPR 2016).

    Args:
        masked: see ``Loss``.
        label_smoothing: ε; targets become y·(1 − ε) + ε/2.
    """

    kind = "binary"
    default_metrics = ("auc", "logloss")

    def __init__(self, masked: bool = False, label_smoothing: float = 0.0):
        super().__init__(masked)
        self.label_smoothing = _check_smoothing(label_smoothing)

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)


class FocalLoss(BinaryCrossEntropy):
    """Focal loss −α_t (1 − p_t)^γ log p_t (Lin, Goyal, Girshick, He, Dollár; ICCV 2017, Eq. 5).

    p_t is the probability of the true class and α_t = α for positives, 1 − α for negatives (no
    class weighting when ``alpha`` is None). Computed from log-sigmoids, so it is stable for large logits.

    Args:
        masked: see ``Loss``.
        gamma: γ ≥ 0 (0 with alpha None is plain BCE).
        alpha: α in [0, 1], or None.
    """

    def __init__(self, masked: bool = False, gamma: float = 2.0, alpha: float | None = 0.25):
        super().__init__(masked)
        if gamma < 0 or (alpha is not None and not 0.0 <= alpha <= 1.0):
            raise ValueError(f"focal loss needs gamma >= 0 and alpha in [0, 1], got gamma={gamma}, alpha={alpha}")
        self.gamma, self.alpha = gamma, alpha

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cross_entropy = functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # −log p_t
        log_one_minus_p_t = functional.logsigmoid(torch.where(targets > 0.5, -logits, logits))
        loss = torch.exp(self.gamma * log_one_minus_p_t) * cross_entropy
        if self.alpha is not None:
            loss = loss * (self.alpha * targets + (1.0 - self.alpha) * (1.0 - targets))
        return loss


class MeanSquaredError(Loss):
    """Mean squared error of a regression output."""

    kind = "regression"
    default_metrics = ("rmse", "mae")

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.mse_loss(logits, targets, reduction="none")

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class Huber(MeanSquaredError):
    """Huber loss (Huber, 1964): ½r² for |r| ≤ δ, δ(|r| − ½δ) beyond; robust to outlying targets.

    Args:
        masked: see ``Loss``.
        delta: δ > 0.
    """

    def __init__(self, masked: bool = False, delta: float = 1.0):
        super().__init__(masked)
        if delta <= 0:
            raise ValueError(f"delta must be > 0, got {delta}")
        self.delta = delta

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.huber_loss(logits, targets, reduction="none", delta=self.delta)


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy of (B, C) class logits against (B,) class ids (stored as floats).

    Args:
        masked: see ``Loss``.
        label_smoothing: ε, spread uniformly over the C classes (``torch.nn.functional.cross_entropy``).
    """

    kind = "multiclass"
    default_metrics = ("accuracy", "cross_entropy")

    def __init__(self, masked: bool = False, label_smoothing: float = 0.0):
        super().__init__(masked)
        self.label_smoothing = _check_smoothing(label_smoothing)

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(logits, targets.long(), reduction="none", label_smoothing=self.label_smoothing)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)


class TransformedTarget(Loss):
    """A loss learning transformed targets (log1p, standardised, ...) whose scores come back in the
    original unit: ``predict`` and ``original`` apply ``inverse``; training is the wrapped loss's.

    Args:
        loss: the loss on the transformed targets.
        inverse: transformed values → original unit (torch ops).
    """

    def __init__(self, loss: Loss, inverse: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__(loss.masked)
        self.loss, self.inverse = loss, inverse
        self.kind, self.default_metrics = loss.kind, loss.default_metrics

    def __call__(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.loss(logits, targets, weights)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return self.inverse(self.loss.predict(logits))

    def original(self, targets: torch.Tensor) -> torch.Tensor:
        return self.inverse(targets)


LOSSES: dict[str, type[Loss]] = {
    "bce": BinaryCrossEntropy,
    "focal": FocalLoss,
    "mse": MeanSquaredError,
    "huber": Huber,
    "softmax_ce": SoftmaxCrossEntropy,
}


def _check_smoothing(label_smoothing: float) -> float:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return label_smoothing


def task_losses(
    logits: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    losses: dict[str, Loss],
    weights: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Loss vector (T,) in the order of ``losses``' keys; ``weights`` holds the tasks' sample weights."""
    weights = weights or {}
    return torch.stack([loss(logits[task], targets[task], weights.get(task)) for task, loss in losses.items()])
