"""The composition root: config → objects. The only package that looks names up in registries.

``checks`` validates a whole config up front (paths named in every error), ``params`` checks the
parameters handed to architectures, losses and weighting strategies against their constructors,
and ``objects`` builds the pipeline, model, losses, weighting, optimizer and trainer.
"""

from mtlrec.app.build.checks import check_config
from mtlrec.app.build.data import training_data
from mtlrec.app.build.diagnostics import build_diagnostics, check_diagnostics
from mtlrec.app.build.objects import (
    build_losses,
    build_model,
    build_optimizer,
    build_pipeline,
    build_trainer,
    build_weighting,
    data_files,
    random_split,
    read_options,
)
from mtlrec.app.build.params import (
    architecture_params,
    loss_params,
    metric_names,
    served_tasks,
    task_metric_names,
    trained_tasks,
    validate_params,
    weighting_params,
)
from mtlrec.app.build.selection import selection_criterion
from mtlrec.app.build.serving import build_fusion

__all__ = [
    "architecture_params",
    "build_fusion",
    "build_diagnostics",
    "build_losses",
    "build_model",
    "build_optimizer",
    "build_pipeline",
    "build_trainer",
    "build_weighting",
    "check_config",
    "check_diagnostics",
    "data_files",
    "loss_params",
    "metric_names",
    "random_split",
    "read_options",
    "selection_criterion",
    "served_tasks",
    "task_metric_names",
    "trained_tasks",
    "training_data",
    "validate_params",
    "weighting_params",
]
