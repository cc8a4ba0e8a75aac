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
from mtlrec.features import (
    BinaryLabel,
    CategoricalEncoder,
    FeaturePipeline,
    FeatureSpec,
    LabelSpec,
    NumericEncoder,
    RegressionLabel,
)
from mtlrec.io import CsvFormat
from mtlrec.losses import LOSSES, Loss
from mtlrec.model import IndependentTaskModels, MultiTaskModel
from mtlrec.nn import InputLayer
from mtlrec.run_files import RunFiles
from mtlrec.training import CompositeOptimizer, Trainer, TrainSettings, make_optimizer
from mtlrec.weighting import WEIGHTINGS, WeightingStrategy

_ARCHITECTURE_ARGS = ("input_dim", "task_names")
_WEIGHTING_ARGS = ("num_tasks",)


def check_config(config: Config) -> None:
    """Check every registry name and parameter in the config; errors name the config path."""
    _lookup(ARCHITECTURES, config.model.architecture, "model.architecture", "architecture")
    validate_params(ARCHITECTURES[config.model.architecture], config.model.params, _ARCHITECTURE_ARGS, "model.params")
    weighting_params(config)
    for index, task in enumerate(config.tasks):
        loss = _lookup(LOSSES, task.loss, f"tasks[{index}].loss", "loss")
        if loss.kind == "regression" and (task.label.positive is not None or task.label.threshold is not None):
            raise ConfigError(
                f"tasks[{index}].label: positive/threshold binarise a label, "
                f"but loss '{task.loss}' is a regression loss"
            )
        for position, name in enumerate(task_metric_names(task)):
            metric = _lookup(METRICS, name, f"tasks[{index}].metrics[{position}]", "metric")
            if loss.kind not in metric.kinds:
                raise ConfigError(f"tasks[{index}].metrics[{position}]: '{name}' does not apply to {loss.kind} tasks")
    selection_metric(config)


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
        rule = (
            RegressionLabel()
            if LOSSES[task.loss].kind == "regression"
            else BinaryLabel(task.label.positive, task.label.negative, task.label.threshold)
        )
        labels.append(LabelSpec(task.name, task.label.column, rule))
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


def build_losses(config: Config) -> dict[str, Loss]:
    return {task.name: LOSSES[task.loss]() for task in config.tasks}


def build_model(config: Config, pipeline: FeaturePipeline) -> nn.Module:
    """Input layer + architecture, initialised from ``train.seed``."""
    torch.manual_seed(config.train.seed)
    architecture_class = ARCHITECTURES[config.model.architecture]
    params = validate_params(architecture_class, config.model.params, _ARCHITECTURE_ARGS, "model.params")
    task_groups = [[t] for t in pipeline.task_names] if architecture_class.independent_tasks else [pipeline.task_names]
    models = {}
    for tasks in task_groups:
        input_layer = InputLayer(pipeline.vocab_sizes(), config.model.embedding_dim, len(pipeline.dense_features))
        architecture = architecture_class(input_dim=input_layer.output_dim(), task_names=tasks, **params)
        models[tasks[0]] = MultiTaskModel(input_layer, architecture)
    if architecture_class.independent_tasks:
        return IndependentTaskModels(models)
    return next(iter(models.values()))


def weighting_params(config: Config) -> dict[str, Any]:
    strategy_class = _lookup(WEIGHTINGS, config.weighting.name, "weighting.name", "weighting")
    params = dict(config.weighting.params)
    if "weights" in inspect.signature(strategy_class.__init__).parameters:
        params["weights"] = _task_weights(config, params.get("weights"))
    return validate_params(strategy_class, params, _WEIGHTING_ARGS, "weighting.params")


def build_weighting(config: Config) -> WeightingStrategy:
    return WEIGHTINGS[config.weighting.name](num_tasks=len(config.tasks), **weighting_params(config))


def build_optimizer(config: Config, model: nn.Module, strategy: WeightingStrategy) -> CompositeOptimizer:
    train = config.train
    dense = list(model.parameters()) + list(strategy.parameters())
    return make_optimizer(
        model.embedding_parameters(), dense, train.optimizer, train.lr, train.embedding_lr, train.weight_decay
    )


def build_trainer(config: Config, model: nn.Module, files: RunFiles, show_progress_bar: bool | None = None) -> Trainer:
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
    )
    return Trainer(
        model,
        build_losses(config),
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
            where = ".".join(str(part) for part in err["loc"])
            message = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{path}.{where}: {message}")
        accepted = ", ".join(fields) or "none"
        raise ConfigError("; ".join(problems) + f" ({target.__name__} accepts: {accepted})") from None
    return {name: getattr(validated, name) for name in params}


def _lookup(registry: dict[str, Any], name: str, path: str, what: str) -> Any:
    if name not in registry:
        raise ConfigError(f"{path}: unknown {what} '{name}'; choose one of {', '.join(registry)}")
    return registry[name]


def _task_weights(config: Config, given: Any) -> Any:
    if given is None:
        return [task.weight for task in config.tasks]
    if isinstance(given, dict):
        unknown = sorted(set(given) - {t.name for t in config.tasks})
        if unknown:
            raise ConfigError(f"weighting.params.weights: unknown task(s) {unknown}")
        return [float(given.get(task.name, task.weight)) for task in config.tasks]
    return given
