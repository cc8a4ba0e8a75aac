"""The model-selection criterion from ``train.early_stopping``: a metric or formula, its mode, its constraints."""

from __future__ import annotations

from mtlrec.app.build.params import metric_names, task_metric_names
from mtlrec.config import Config
from mtlrec.errors import ConfigError
from mtlrec.evaluation import METRICS
from mtlrec.evaluation.selection import (
    MetricFormula,
    SelectionCriterion,
    infer_higher_is_better,
    lone_metric,
    parse_metric_formula,
    split_lone_metric,
)
from mtlrec.expressions import ExpressionError

_PATH = "train.early_stopping"


def selection_criterion(config: Config) -> SelectionCriterion | None:
    """What early stopping and model selection optimise on the validation split, or None when disabled.

    ``metric`` is one ``task.metric`` (default: the first main task's first metric; auxiliary tasks count only
    when named) or a formula over them;
    ``mode`` is inferred from the metrics' directions unless given; ``constraints`` are conditions.
    """
    stopping = config.train.early_stopping
    if stopping is None:
        return None
    available = metric_names(config)
    lone = _lone(config, available)
    if lone is not None:
        criterion = lone_metric(*lone)
        higher_is_better = METRICS[lone[1]].direction == "max"
        if stopping.mode is not None and (stopping.mode == "max") != higher_is_better:
            raise ConfigError(
                f"{_PATH}.mode: '{criterion.text}' is best when {'high' if higher_is_better else 'low'}, "
                f"so mode {stopping.mode} would select the worst epoch; leave mode out"
            )
    else:
        criterion = _parse(stopping.metric or "", available, f"{_PATH}.metric", condition=False)
        try:
            higher_is_better = infer_higher_is_better(criterion, stopping.mode)
        except ValueError as exc:
            raise ConfigError(f"{_PATH}.mode: {exc}") from None
    constraints = tuple(
        _parse(text, available, f"{_PATH}.constraints[{index}]", condition=True)
        for index, text in enumerate(stopping.constraints)
    )
    return SelectionCriterion(criterion, higher_is_better, constraints)


def _lone(config: Config, available: dict[str, list[str]]) -> tuple[str, str] | None:
    """(task, metric) when the criterion is a single metric (the default, or one ``task.metric``)."""
    text = config.train.early_stopping.metric
    if text is not None:
        return split_lone_metric(text, available)
    first = next(task for task in config.tasks if task.served)
    names = task_metric_names(first)
    if not names:
        raise ConfigError(
            f"{_PATH}.metric: the first main task '{first.name}' has no metrics; name the task.metric to use"
        )
    return first.name, names[0]


def _parse(text: str, available: dict[str, list[str]], path: str, condition: bool) -> MetricFormula:
    try:
        formula = parse_metric_formula(text, available)
    except ExpressionError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if condition and not formula.expression.is_boolean:
        raise ConfigError(f"{path}: '{text}' is not a condition (e.g. conversion.auc >= 0.8)")
    if not condition and formula.expression.is_boolean:
        raise ConfigError(f"{path}: '{text}' is a condition, not a number to optimise; put it in {_PATH}.constraints")
    return formula
