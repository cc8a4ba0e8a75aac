"""The composition root: config → objects. The only module that looks names up in registries."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import torch
from pydantic import ConfigDict, ValidationError, create_model
from torch import nn

from mtlrec.architectures import ARCHITECTURES
from mtlrec.config import CategoricalFeature, Config, TaskConfig
from mtlrec.datasets import RandomSplit, ReadOptions
from mtlrec.errors import ConfigError
from mtlrec.evaluation import METRICS
from mtlrec.expressions import ExpressionError, parse_expression
from mtlrec.features import (
    BinaryLabel,
    CategoricalEncoder,
    ClassLabel,
    FeaturePipeline,
    FeatureSpec,
    LabelRule,
    LabelSpec,
    NumericEncoder,
    RegressionLabel,
)
from mtlrec.io import CsvFormat
from mtlrec.losses import LOSSES, Loss, TransformedTarget
from mtlrec.model import IndependentTaskModels, MultiTaskModel
from mtlrec.nn import InputLayer
from mtlrec.run_files import RunFiles
from mtlrec.training import CompositeOptimizer, Trainer, TrainSettings, make_optimizer
from mtlrec.weighting import WEIGHTINGS, WeightingStrategy

_ARCHITECTURE_ARGS = ("input_dim", "task_names", "output_dims", "num_domains")
_WEIGHTING_ARGS = ("num_tasks",)


def check_config(config: Config) -> None:
    """Check every registry name and parameter in the config; errors name the config path."""
    _check_architecture(config)
    weighting_params(config)
    for index, task in enumerate(config.tasks):
        _check_expression(task.sample_space, f"tasks[{index}].sample_space", condition=True)
        _check_expression(task.sample_weight, f"tasks[{index}].sample_weight", condition=False)
        loss = _lookup(LOSSES, task.loss, f"tasks[{index}].loss", "loss")
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
            metric = _lookup(METRICS, name, f"tasks[{index}].metrics[{position}]", "metric")
            if loss.kind not in metric.kinds:
                raise ConfigError(f"tasks[{index}].metrics[{position}]: '{name}' does not apply to {loss.kind} tasks")
    selection_metric(config)


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
    architecture = _lookup(ARCHITECTURES, config.model.architecture, "model.architecture", "architecture")
    architecture_params(config)
    required = architecture.required_num_tasks
    if required is not None and len(config.tasks) != required:
        raise ConfigError(
            f"tasks: architecture '{config.model.architecture}' needs exactly {required} tasks, got {len(config.tasks)}"
            + (f" ({architecture.__doc__.splitlines()[0]})" if architecture.__doc__ else "")
        )
    domain = config.model.domain_feature
    if architecture.needs_domain and domain is None:
        raise ConfigError(
            f"model.domain_feature: architecture '{config.model.architecture}' needs the categorical feature "
            "that gives each row's domain"
        )
    if domain is not None and not architecture.needs_domain:
        raise ConfigError(f"model.domain_feature: architecture '{config.model.architecture}' uses no domain feature")
    if domain is not None:
        by_name = {feature.name: feature for feature in config.features}
        if not isinstance(by_name.get(domain), CategoricalFeature):
            categorical = [f.name for f in config.features if isinstance(f, CategoricalFeature)]
            raise ConfigError(
                f"model.domain_feature: '{domain}' is not a categorical feature; choose one of {categorical}"
            )


def architecture_params(config: Config) -> dict[str, Any]:
    """The validated ``model.params``, with per-task tower widths (``tasks[].tower_hidden_units``) merged in."""
    architecture = ARCHITECTURES[config.model.architecture]
    params = validate_params(architecture, config.model.params, _ARCHITECTURE_ARGS, "model.params")
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


def task_metric_names(task: TaskConfig) -> list[str]:
    if task.metrics is not None:
        return list(task.metrics)
    loss = LOSSES.get(task.loss)
    return list(loss.default_metrics) if loss else []


def metric_names(config: Config) -> dict[str, list[str]]:
    return {task.name: task_metric_names(task) for task in config.tasks}


def selection_metric(config: Config) -> tuple[str, str] | None:
    """(task, metric) that early stopping and model selection watch, or None when disabled."""
    if config.train.early_stopping is None:
        return None
    spec = config.train.early_stopping.metric
    if spec is None:
        first = config.tasks[0]
        return first.name, task_metric_names(first)[0]
    task_name, _, metric = spec.rpartition(".")
    names = metric_names(config)
    if task_name not in names or metric not in names[task_name]:
        choices = ", ".join(f"{t}.{m}" for t, ms in names.items() for m in ms)
        raise ConfigError(f"train.early_stopping.metric: unknown '{spec}'; choose one of {choices}")
    return task_name, metric


def build_pipeline(config: Config) -> FeaturePipeline:
    """Unfitted feature pipeline: one encoder per feature, one label rule per task."""
    features = []
    for feature in config.features:
        if isinstance(feature, CategoricalFeature):
            encoder: CategoricalEncoder | NumericEncoder = CategoricalEncoder(
                feature.min_count, feature.max_vocab_size, feature.hash_buckets
            )
        else:
            encoder = NumericEncoder(
                feature.fill_value, feature.log1p, feature.standardize, feature.buckets, feature.boundaries
            )
        features.append(FeatureSpec(feature.name, feature.column or feature.name, encoder))
    labels = []
    for task in config.tasks:
        kind = LOSSES[task.loss].kind
        if kind == "regression":
            transform = task.label.transform
            rule: LabelRule = RegressionLabel(transform.clip, transform.log1p, transform.standardize)
        elif kind == "multiclass":
            rule = ClassLabel(task.label.classes)
        else:
            rule = BinaryLabel(task.label.positive, task.label.negative, task.label.threshold)
        labels.append(
            LabelSpec(task.name, task.label.column, rule, task.sample_space, task.sample_weight, task.label.missing)
        )
    return FeaturePipeline(features, labels)


def read_options(config: Config) -> ReadOptions:
    csv = config.data.csv
    csv_format = CsvFormat(
        csv.delimiter,
        csv.header,
        tuple(csv.column_names) if csv.column_names else None,
        tuple(csv.null_values),
        csv.strip_whitespace,
        csv.bad_rows,
    )
    return ReadOptions(config.data.format, csv_format, config.data.read_batch_rows)


def data_files(config: Config) -> dict[str, str]:
    return {name: path for name in ("train", "valid", "test") if (path := getattr(config.data, name))}


def random_split(config: Config) -> RandomSplit | None:
    split = config.data.split
    return None if split is None else RandomSplit(split.source, dict(split.fractions), split.seed)


def build_losses(config: Config, pipeline: FeaturePipeline) -> dict[str, Loss]:
    """Each task's loss; a regression task with label transforms gets scores back in its original unit."""
    losses: dict[str, Loss] = {}
    for index, (task, spec) in enumerate(zip(config.tasks, pipeline.labels)):
        loss = LOSSES[task.loss](masked=_is_masked(task), **loss_params(task, f"tasks[{index}].loss_params"))
        if isinstance(spec.rule, RegressionLabel) and spec.rule.transformed:
            loss = TransformedTarget(loss, spec.rule.inverse)
        losses[task.name] = loss
    return losses


def _is_masked(task: TaskConfig) -> bool:
    """Whether a task's targets can be NaN: it has a sample space, or masks missing labels."""
    return task.sample_space is not None or task.label.missing == "mask"


def loss_params(task: TaskConfig, path: str) -> dict[str, Any]:
    return validate_params(LOSSES[task.loss], task.loss_params, ("masked",), path)


def build_model(config: Config, pipeline: FeaturePipeline) -> nn.Module:
    """Input layer + architecture, initialised from ``train.seed``."""
    torch.manual_seed(config.train.seed)
    architecture_class = ARCHITECTURES[config.model.architecture]
    params = architecture_params(config)
    output_dims = {task.name: len(task.label.classes) for task in config.tasks if task.label.classes is not None}
    domain_column, supplied = None, {}
    if config.model.domain_feature is not None:
        id_names = [feature.name for feature in pipeline.id_features]
        domain_column = id_names.index(config.model.domain_feature)
        supplied["num_domains"] = pipeline.vocab_sizes()[domain_column]
    task_groups = [[t] for t in pipeline.task_names] if architecture_class.independent_tasks else [pipeline.task_names]
    models = {}
    for tasks in task_groups:
        input_layer = InputLayer(pipeline.vocab_sizes(), config.model.embedding_dim, len(pipeline.dense_features))
        group_params = _params_for_tasks(params, tasks)
        group_dims = {task: dims for task, dims in output_dims.items() if task in tasks}
        if group_dims:
            group_params["output_dims"] = group_dims
        try:
            architecture = architecture_class(
                input_dim=input_layer.output_dim(), task_names=tasks, **group_params, **supplied
            )
        except ValueError as exc:
            raise ConfigError(f"model ({config.model.architecture}): {exc}") from None
        models[tasks[0]] = MultiTaskModel(input_layer, architecture, domain_column)
    if architecture_class.independent_tasks:
        return IndependentTaskModels(models)
    return next(iter(models.values()))


def _params_for_tasks(params: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
    """Restrict per-task parameters ({task: value}) to the tasks of one (independent) model."""
    return {
        name: {task: value[task] for task in tasks}
        if name == "tower_hidden_units" and isinstance(value, dict)
        else value
        for name, value in params.items()
    }


def trained_tasks(config: Config) -> list[TaskConfig]:
    """The tasks that have a loss (all but the architecture's evaluation-only outputs, e.g. ESMM's CVR)."""
    names = [task.name for task in config.tasks]
    untrained = ARCHITECTURES[config.model.architecture].untrained_tasks_of(names)
    return [task for task in config.tasks if task.name not in untrained]


def weighting_params(config: Config) -> dict[str, Any]:
    strategy_class = _lookup(WEIGHTINGS, config.weighting.name, "weighting.name", "weighting")
    params = dict(config.weighting.params)
    accepted = inspect.signature(strategy_class.__init__).parameters
    if "weights" in accepted:
        params["weights"] = _task_weights(trained_tasks(config), params.get("weights"))
    if "kinds" in accepted and "kinds" not in params:
        params["kinds"] = [LOSSES[task.loss].kind for task in trained_tasks(config)]
    return validate_params(strategy_class, params, _WEIGHTING_ARGS, "weighting.params")


def build_weighting(config: Config) -> WeightingStrategy:
    return WEIGHTINGS[config.weighting.name](num_tasks=len(trained_tasks(config)), **weighting_params(config))


def build_optimizer(config: Config, model: nn.Module, strategy: WeightingStrategy) -> CompositeOptimizer:
    train = config.train
    return make_optimizer(
        model.embedding_parameters(),
        model.parameters(),
        train.optimizer,
        train.lr,
        train.embedding_lr,
        train.weight_decay,
        strategy.parameters(),
    )


def build_trainer(
    config: Config,
    model: nn.Module,
    pipeline: FeaturePipeline,
    files: RunFiles,
    show_progress_bar: bool | None = None,
) -> Trainer:
    strategy = build_weighting(config)
    selection = selection_metric(config)
    stopping = config.train.early_stopping
    settings = TrainSettings(
        epochs=config.train.epochs,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
        eval_batch_size=config.train.eval_batch_size,
        lr_schedule=config.train.lr_schedule,
        warmup_steps=config.train.warmup_steps,
        log_every=config.train.log_every,
        selection=selection,
        patience=stopping.patience if stopping else None,
        min_delta=stopping.min_delta if stopping else 0.0,
        higher_is_better=METRICS[selection[1]].higher_is_better if selection else True,
        show_progress_bar=show_progress_bar,
        precision=config.train.precision,
    )
    return Trainer(
        model,
        build_losses(config, pipeline),
        strategy,
        build_optimizer(config, model, strategy),
        metric_names(config),
        settings,
        files,
    )


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


def _lookup(registry: dict[str, Any], name: str, path: str, what: str) -> Any:
    if name not in registry:
        raise ConfigError(f"{path}: unknown {what} '{name}'; choose one of {', '.join(registry)}")
    return registry[name]


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
