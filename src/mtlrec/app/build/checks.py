"""Whole-config checks run before anything is read or built; every error names its config path."""

from __future__ import annotations

from mtlrec.app.build.diagnostics import check_diagnostics
from mtlrec.app.build.groups import check_groups
from mtlrec.app.build.params import (
    architecture_params,
    lookup,
    loss_params,
    task_metric_names,
    weighting_params,
)
from mtlrec.app.build.selection import selection_criterion
from mtlrec.app.build.serving import check_fusion
from mtlrec.architectures import ARCHITECTURES
from mtlrec.config import Config
from mtlrec.errors import ConfigError
from mtlrec.evaluation import METRICS
from mtlrec.expressions import ExpressionError, parse_expression
from mtlrec.losses import LOSSES


def check_config(config: Config) -> None:
    """Check every registry name and parameter in the config; errors name the config path."""
    _check_architecture(config)
    weighting_params(config)
    for index, task in enumerate(config.tasks):
        _check_expression(task.sample_space, f"tasks[{index}].sample_space", condition=True)
        _check_expression(task.sample_weight, f"tasks[{index}].sample_weight", condition=False)
        loss = lookup(LOSSES, task.loss, f"tasks[{index}].loss", "loss")
        loss_params(task, f"tasks[{index}].loss_params")
        if loss.kind != "regression" and task.label.transform.active:
            raise ConfigError(f"tasks[{index}].label.transform: label transforms apply to regression losses only")
        if loss.kind != "binary" and (task.label.positive is not None or task.label.threshold is not None):
            raise ConfigError(
                f"tasks[{index}].label: positive/threshold binarise a label, "
                f"but loss '{task.loss}' is a {loss.kind} loss"
            )
        if (loss.kind == "multiclass") != (task.label.classes is not None):
            raise ConfigError(
                f"tasks[{index}]: a multi-class task needs both loss softmax_ce and label.classes "
                f"(got loss '{task.loss}', classes {task.label.classes})"
            )
        for position, name in enumerate(task_metric_names(task)):
            metric = lookup(METRICS, name, f"tasks[{index}].metrics[{position}]", "metric")
            if loss.kind not in metric.kinds:
                raise ConfigError(f"tasks[{index}].metrics[{position}]: '{name}' does not apply to {loss.kind} tasks")
            if metric.needs_groups and config.evaluation.group_by is None:
                raise ConfigError(
                    f"tasks[{index}].metrics[{position}]: '{name}' needs evaluation.group_by, the data column "
                    "that groups rows (e.g. user_id)"
                )
    selection_criterion(config)
    check_diagnostics(config)
    check_fusion(config)


def _check_expression(text: str | None, path: str, condition: bool) -> None:
    if text is None:
        return
    try:
        expression = parse_expression(text)
    except ExpressionError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if condition and not expression.is_boolean:
        raise ConfigError(f"{path}: {text!r} is not a condition (e.g. click == 1)")


def _check_architecture(config: Config) -> None:
    architecture = lookup(ARCHITECTURES, config.model.architecture, "model.architecture", "architecture")
    architecture_params(config)
    required = architecture.required_num_tasks
    if required is not None and len(config.tasks) != required:
        raise ConfigError(
            f"tasks: architecture '{config.model.architecture}' needs exactly {required} tasks, got {len(config.tasks)}"
            + (f" ({architecture.__doc__.splitlines()[0]})" if architecture.__doc__ else "")
        )
    check_groups(config)
    if config.model.feature_selection is not None and (
        architecture.embeddings_per_task or architecture.independent_tasks
    ):
        raise ConfigError(
            f"model.feature_selection: architecture '{config.model.architecture}' already gives every task its own "
            "input; remove feature_selection"
        )
