"""Config values checked against the constructors they feed: architecture, loss and weighting parameters."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from mtlrec.architectures import ARCHITECTURES
from mtlrec.config import Config, TaskConfig
from mtlrec.errors import ConfigError
from mtlrec.losses import LOSSES
from mtlrec.weighting import WEIGHTINGS

_ARCHITECTURE_ARGS = ("input_dim", "task_names", "output_dims")
_WEIGHTING_ARGS = ("num_tasks",)


def architecture_params(config: Config) -> dict[str, Any]:
    """The validated ``model.params``, with per-task tower widths (``tasks[].tower_hidden_units``) merged in."""
    architecture = ARCHITECTURES[config.model.architecture]
    params = validate_params(architecture, config.model.params, supplied_arguments(architecture), "model.params")
    overrides = {task.name: task.tower_hidden_units for task in config.tasks if task.tower_hidden_units is not None}
    if overrides:
        hint = typing.get_type_hints(architecture.__init__).get("tower_hidden_units")
        if dict not in {typing.get_origin(arg) for arg in typing.get_args(hint)}:
            raise ConfigError(
                f"tasks[].tower_hidden_units: architecture '{config.model.architecture}' has no per-task towers to size"
            )
        default = params.get(
            "tower_hidden_units", inspect.signature(architecture.__init__).parameters["tower_hidden_units"].default
        )
        if isinstance(default, dict):
            raise ConfigError("model.params.tower_hidden_units: give per-task widths in one place only")
        params["tower_hidden_units"] = {task.name: overrides.get(task.name, list(default)) for task in config.tasks}
    return params


def supplied_arguments(architecture: type) -> tuple[str, ...]:
    """The constructor arguments build supplies (not config): sizes, tasks, the input's field widths, and the
    range of ids or the width of each group read by role."""
    roles = tuple(f"num_{role}s" if how == "ids" else f"{role}_dim" for role, how in architecture.group_inputs.items())
    return _ARCHITECTURE_ARGS + ("field_dims",) + roles


def loss_params(task: TaskConfig, path: str) -> dict[str, Any]:
    return validate_params(LOSSES[task.loss], task.loss_params, ("masked",), path)


def trained_tasks(config: Config) -> list[TaskConfig]:
    """The tasks that have a loss (all but the architecture's evaluation-only outputs, e.g. ESMM's CVR)."""
    names = [task.name for task in config.tasks]
    untrained = ARCHITECTURES[config.model.architecture].untrained_tasks_of(names)
    return [task for task in config.tasks if task.name not in untrained]


def served_tasks(config: Config) -> list[str]:
    """The main tasks, in order: what is exported, served, predicted and fused (auxiliary tasks are not)."""
    return [task.name for task in config.tasks if task.served]


def weighting_params(config: Config) -> dict[str, Any]:
    strategy_class = lookup(WEIGHTINGS, config.weighting.name, "weighting.name", "weighting")
    params = dict(config.weighting.params)
    accepted = inspect.signature(strategy_class.__init__).parameters
    if "weights" in accepted:
        params["weights"] = _task_weights(trained_tasks(config), params.get("weights"))
    if "kinds" in accepted and "kinds" not in params:
        params["kinds"] = [LOSSES[task.loss].kind for task in trained_tasks(config)]
    if "target_tasks" in accepted:
        params["target_tasks"] = _target_tasks(trained_tasks(config), params.get("target_tasks"))
    return validate_params(strategy_class, params, _WEIGHTING_ARGS, "weighting.params")


def params_for_tasks(params: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
    """Restrict per-task parameters ({task: value}) to the tasks of one (independent) model."""
    return {
        name: {task: value[task] for task in tasks}
        if name == "tower_hidden_units" and isinstance(value, dict)
        else value
        for name, value in params.items()
    }


def task_metric_names(task: TaskConfig) -> list[str]:
    if task.metrics is not None:
        return list(task.metrics)
    loss = LOSSES.get(task.loss)
    return list(loss.default_metrics) if loss else []


def metric_names(config: Config) -> dict[str, list[str]]:
    return {task.name: task_metric_names(task) for task in config.tasks}


def validate_params(target: type, params: dict[str, Any], supplied: tuple[str, ...], path: str) -> dict[str, Any]:
    """Check ``params`` against ``target.__init__``'s signature and type hints (unknown keys are errors).

    Returns only the keys the user gave, converted to the annotated types.
    """
    signature = inspect.signature(target.__init__)
    hints = typing.get_type_hints(target.__init__)
    fields: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if name == "self" or name in supplied or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    model = create_model(f"{target.__name__}Params", __config__=ConfigDict(extra="forbid"), **fields)
    try:
        validated = model.model_validate(params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in err["loc"])
            unknown = err["type"] in ("extra_forbidden", "unexpected_keyword_argument")
            message = "unknown parameter" if unknown else err["msg"]
            problems.append(f"{path}{where}: {message}")
        accepted = ", ".join(fields) or "none"
        raise ConfigError("; ".join(problems) + f" ({target.__name__} accepts: {accepted})") from None
    return {name: getattr(validated, name) for name in params}


def lookup(registry: dict[str, Any], name: str, path: str, what: str) -> Any:
    if name not in registry:
        raise ConfigError(f"{path}: unknown {what} '{name}'; choose one of {', '.join(registry)}")
    return registry[name]


def _target_tasks(tasks: list[TaskConfig], given: Any) -> Any:
    """The target tasks' indices among the trained tasks: named ones; by default the main tasks when some
    are auxiliary, else the first task (as torch-rechub's MetaBalance)."""
    names = [task.name for task in tasks]
    if given is None:
        main = [index for index, task in enumerate(tasks) if task.served]
        return main if len(main) < len(tasks) else [0]
    if isinstance(given, list) and all(isinstance(name, str) for name in given):
        unknown = [name for name in given if name not in names]
        if unknown:
            path = "weighting.params.target_tasks"
            raise ConfigError(f"{path}: unknown or untrained task(s) {unknown}; the tasks are {names}")
        return [names.index(name) for name in given]
    return given


def _task_weights(tasks: list[TaskConfig], given: Any) -> Any:
    """Per-task weights in task order, from a {task: weight} mapping (or the tasks' own weights)."""
    if given is None:
        return [task.weight for task in tasks]
    if isinstance(given, dict):
        unknown = sorted(set(given) - {t.name for t in tasks})
        if unknown:
            raise ConfigError(f"weighting.params.weights: unknown or untrained task(s) {unknown}")
        return [float(given.get(task.name, task.weight)) for task in tasks]
    return given
