"""Config → objects: the feature pipeline, read options, losses, model, weighting, optimizer, trainer."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from mtlrec.app.build.diagnostics import build_diagnostics
from mtlrec.app.build.features import build_inputs
from mtlrec.app.build.features import build_pipeline as build_feature_pipeline
from mtlrec.app.build.groups import model_input_groups, role_id_inputs, role_id_rows
from mtlrec.app.build.params import (
    architecture_params,
    loss_params,
    metric_names,
    params_for_tasks,
    trained_tasks,
    weighting_params,
)
from mtlrec.app.build.selection import selection_criterion
from mtlrec.app.run_files import RunFiles
from mtlrec.architectures import ARCHITECTURES, Architecture
from mtlrec.config import Config, GradientReversalConfig
from mtlrec.data.reading import RandomSplit, ReadOptions
from mtlrec.errors import ConfigError
from mtlrec.features import BinaryLabel, ClassLabel, FeaturePipeline, LabelRule, LabelSpec, RegressionLabel
from mtlrec.io import CsvFormat
from mtlrec.losses import LOSSES, Loss, TransformedTarget
from mtlrec.model import IndependentTaskModels, ModelInputs, MultiTaskModel
from mtlrec.model.selection import TaskFeatureGates
from mtlrec.nn.reversal import GradientReversal
from mtlrec.training import CompositeOptimizer, Trainer, TrainSettings, make_optimizer
from mtlrec.training.distributed import DistributedContext
from mtlrec.weighting import WEIGHTINGS, WeightingStrategy


def build_pipeline(config: Config) -> FeaturePipeline:
    """Unfitted feature pipeline: one encoder per feature, one label rule per task."""
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
    return build_feature_pipeline(config, labels)


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
    return ReadOptions(
        config.data.format, csv_format, config.data.read_batch_rows, group_column=config.evaluation.group_by
    )


def data_files(config: Config) -> dict[str, str]:
    return {name: path for name in ("train", "valid", "test") if (path := getattr(config.data, name))}


def random_split(config: Config) -> RandomSplit | None:
    split = config.data.split
    return None if split is None else RandomSplit(split.source, dict(split.fractions), split.seed, split.ordered)


def build_losses(config: Config, pipeline: FeaturePipeline) -> dict[str, Loss]:
    """Each task's loss; a regression task with label transforms gets scores back in its original unit."""
    losses: dict[str, Loss] = {}
    for index, (task, spec) in enumerate(zip(config.tasks, pipeline.labels)):
        loss = LOSSES[task.loss](masked=spec.masked, **loss_params(task, f"tasks[{index}].loss_params"))
        if isinstance(spec.rule, RegressionLabel) and spec.rule.transformed:
            loss = TransformedTarget(loss, spec.rule.inverse)
        losses[task.name] = loss
    return losses


def build_model(config: Config, pipeline: FeaturePipeline) -> nn.Module:
    """Input layer + architecture, initialised from ``train.seed``."""
    torch.manual_seed(config.train.seed)
    architecture_class = ARCHITECTURES[config.model.architecture]
    params = architecture_params(config)
    output_dims = {task.name: len(task.label.classes) for task in config.tasks if task.label.classes is not None}
    id_groups = role_id_inputs(config, pipeline)
    id_rows = {f"num_{role}s": rows for role, rows in role_id_rows(config, pipeline).items()}
    input_groups = model_input_groups(config)
    task_groups = [[t] for t in pipeline.task_names] if architecture_class.independent_tasks else [pipeline.task_names]
    models = {}
    for tasks in task_groups:
        inputs = build_inputs(config, pipeline, id_groups)
        group_params = params_for_tasks(params, tasks)
        group_dims = {task: dims for task, dims in output_dims.items() if task in tasks}
        if group_dims:
            group_params["output_dims"] = group_dims
        supplied = {**id_rows, **_input_widths(architecture_class, inputs, input_groups)}
        input_dim = sum(inputs.output_dim(group) for group in input_groups)
        try:
            architecture = architecture_class(input_dim=input_dim, task_names=tasks, **group_params, **supplied)
            _reverse_adversarial_gradients(config, architecture)
        except ValueError as exc:
            raise ConfigError(f"model ({config.model.architecture}): {exc}") from None
        task_inputs = (
            {task: build_inputs(config, pipeline, id_groups) for task in tasks}
            if architecture_class.embeddings_per_task
            else None
        )
        gates = _feature_gates(config, inputs, input_groups, tasks)
        models[tasks[0]] = MultiTaskModel(inputs, architecture, input_groups, None, task_inputs, gates)
    if architecture_class.independent_tasks:
        return IndependentTaskModels(models)
    return next(iter(models.values()))


def _reverse_adversarial_gradients(config: Config, architecture: Architecture) -> None:
    """A gradient reversal in front of the tower of every adversarial task of ``architecture``."""
    for task in config.tasks:
        if task.role == "adversarial" and task.name in architecture.task_names:
            reversal = task.reversal or GradientReversalConfig()
            architecture.reverse_gradients(task.name, GradientReversal(reversal.strength, reversal.ramp_steps))


def _feature_gates(
    config: Config, inputs: ModelInputs, input_groups: list[str], tasks: list[str]
) -> TaskFeatureGates | None:
    """``model.feature_selection``: per-task gates over the input's fields or groups, or None."""
    selection = config.model.feature_selection
    if selection is None:
        return None
    if selection.over == "groups":
        names, dims = input_groups, [inputs.output_dim(group) for group in input_groups]
    else:
        names, dims = inputs.field_names(input_groups), inputs.field_dims(input_groups)
    return TaskFeatureGates(tasks, dims, names, selection.sparsity)


def _input_widths(architecture_class: type, inputs: ModelInputs, input_groups: list[str]) -> dict[str, object]:
    """The widths an architecture declares it reads: its input's fields, and each group read as a tensor."""
    roles = [role for role, how in architecture_class.group_inputs.items() if how == "tensor"]
    widths: dict[str, object] = {f"{role}_dim": inputs.output_dim(role) for role in roles}
    if "field_dims" in inspect.signature(architecture_class.__init__).parameters:
        widths["field_dims"] = inputs.field_dims(input_groups)
    return widths


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
        train.embedding_weight_decay,
    )


def build_trainer(
    config: Config,
    model: nn.Module,
    pipeline: FeaturePipeline,
    files: RunFiles,
    show_progress_bar: bool | None = None,
    context: DistributedContext | None = None,
) -> Trainer:
    """The trainer of ``model``; under data parallelism (``context``) rank 0 alone shows progress and diagnostics."""
    context = context or DistributedContext()
    if not context.is_main:
        show_progress_bar = False
    strategy = build_weighting(config).to(context.device)
    selection = selection_criterion(config)
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
        higher_is_better=selection.higher_is_better if selection else True,
        show_progress_bar=show_progress_bar,
        precision=config.train.precision,
        compile=str(config.train.compile).lower(),
        eval_every_steps=config.train.eval_every_steps,
        max_steps=config.train.max_steps,
    )
    return Trainer(
        model,
        build_losses(config, pipeline),
        strategy,
        build_optimizer(config, model, strategy),
        metric_names(config),
        settings,
        files,
        build_diagnostics(config, model, files) if context.is_main else None,
        context,
    )
