"""The files of a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFiles:
    """Paths inside a run directory.

    Attributes:
        root: the run directory.
    """

    root: Path

    @property
    def config(self) -> Path:
        """The resolved config (YAML), everything needed to rebuild the model."""
        return self.root / "config.yaml"

    @property
    def features(self) -> Path:
        """Fitted feature encoders (JSON)."""
        return self.root / "features.json"

    @property
    def weights(self) -> Path:
        """Best model weights (safetensors)."""
        return self.root / "model.safetensors"

    @property
    def checkpoint(self) -> Path:
        """The latest evaluation's resumable state (torch, loaded with weights_only=True)."""
        return self.root / "checkpoint.pt"

    @property
    def metrics(self) -> Path:
        """``{"valid": {task: {metric: value}}, "test": {...}}`` of the best model."""
        return self.root / "metrics.json"

    @property
    def history(self) -> Path:
        """Per-epoch training losses, validation metrics and speed (JSON list)."""
        return self.root / "history.json"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def diagnostics(self) -> Path:
        """Label correlation, sampled gradient cosines / gate weights / loss weights, alarms (JSON)."""
        return self.root / "diagnostics.json"

    @property
    def calibration(self) -> Path:
        """Reliability bins of the best model's binary tasks on the test (else valid) split (JSON)."""
        return self.root / "calibration.json"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files (with ``diagnostics.tensorboard``)."""
        return self.root / "tensorboard"

    @property
    def report(self) -> Path:
        """The default place of ``mtlrec report``'s page: ``report/index.html`` and its PNGs."""
        return self.root / "report" / "index.html"
