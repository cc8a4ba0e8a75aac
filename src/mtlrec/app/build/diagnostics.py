"""Config → the trainer's diagnostics hook (and its optional TensorBoard writer)."""

from __future__ import annotations

import importlib.util

from torch import nn

from mtlrec.app.build.params import trained_tasks
from mtlrec.app.run_files import RunFiles
from mtlrec.config import Config
from mtlrec.errors import ConfigError
from mtlrec.training.diagnostics import DiagnosticsRecorder, DiagnosticsSettings, ScalarWriter


def check_diagnostics(config: Config) -> None:
    """``diagnostics.tensorboard`` needs the ``tensorboard`` package, which mtlrec does not install."""
    if config.diagnostics.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "diagnostics.tensorboard: the tensorboard package is not installed; `pip install tensorboard`, "
            "or set diagnostics.tensorboard: false (diagnostics.json and `mtlrec report` need no extra package)"
        )


def build_diagnostics(config: Config, model: nn.Module, files: RunFiles) -> DiagnosticsRecorder:
    """The recorder writing ``files.diagnostics``, with a TensorBoard writer in ``RUN_DIR/tensorboard`` if asked."""
    check_diagnostics(config)
    section = config.diagnostics
    settings = DiagnosticsSettings(section.every_steps, section.gate_collapse_share, section.dead_expert_share)
    writer: ScalarWriter | None = None
    if section.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(files.tensorboard))
    tasks = [task.name for task in trained_tasks(config)]
    return DiagnosticsRecorder(model, tasks, settings, files.diagnostics, writer)
