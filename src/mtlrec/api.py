"""Python API: train a run from a config, evaluate and predict with a run directory, summarise runs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

from mtlrec import build
from mtlrec.config import Config, config_to_dict, validate_config
from mtlrec.datasets import encode, read_split
from mtlrec.errors import ConfigError, RunDirError
from mtlrec.evaluation import evaluate, predict_scores
from mtlrec.evaluation.reliability import reliability_report
from mtlrec.features import FeaturePipeline
from mtlrec.io import atomic_write, write_table
from mtlrec.losses import LOSSES
from mtlrec.run_files import RunFiles
from mtlrec.training import load_weights
from mtlrec.training.distributed import distributed_session, evaluate_sharded, main_rank_logging

log = logging.getLogger("mtlrec")

Metrics = dict[str, dict[str, dict[str, float]]]


def train(
    config: Config,
    output: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> Metrics:
    """Train the configured model into ``output`` and evaluate its best epoch.

    Returns ``{"valid": {task: {metric: value}}, "test": {...}}`` (splits that exist), also written
    to ``metrics.json``. With ``resume``, training continues from the run's last checkpoint (only
    ``train.epochs`` may differ from the saved config).
    """
    build.check_config(config)
    files = RunFiles(Path(output))
    # under torchrun: every rank trains, rank 0 alone writes (see mtlrec.training.distributed)
    with distributed_session(config.train.device) as context, main_rank_logging(context):
        if context.is_main:
            _prepare_run_dir(files, config, resume, overwrite)
        context.barrier()
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        with _log_to(files.log) if context.is_main else contextlib.nullcontext():
            pipeline, data = build.training_data(config, files, resume, context)
            log.info(
                "rows: %s; id features %d (embedding rows %d), dense features %d",
                {name: len(d) for name, d in data.items()},
                len(pipeline.id_features),
                sum(pipeline.vocab_sizes()),
                len(pipeline.dense_features),
            )
            model = build.build_model(config, pipeline).to(context.device)
            trainer = build.build_trainer(config, model, pipeline, files, show_progress_bar, context)
            result = trainer.fit(data["train"], data.get("valid"), resume=resume)
            if context.is_main:
                load_weights(model, files.weights)
            context.broadcast_module(model)
            losses, metric_names = build.build_losses(config, pipeline), build.metric_names(config)
            metrics = {
                split: evaluate_sharded(model, data[split], losses, metric_names, config.train.eval_batch_size, context)
                for split in ("valid", "test")
                if split in data
            }
            if context.is_main:
                _write_json(files.metrics, metrics)
                log.info("best epoch %d; metrics of the best epoch: %s", result.best_epoch + 1, json.dumps(metrics))
                _write_calibration(files, config, pipeline, model, data)
    return metrics


def load_run(run_dir: str | Path) -> tuple[Config, FeaturePipeline, torch.nn.Module]:
    """The config, fitted pipeline and best model of a finished run."""
    files = RunFiles(Path(run_dir))
    if not files.config.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no {files.config.name}); train one with `mtlrec train`")
    config = validate_config(yaml.safe_load(files.config.read_text()), source=str(files.config))
    pipeline = FeaturePipeline.load(files.features)
    model = build.build_model(config, pipeline)
    load_weights(model, files.weights)
    model.eval()
    return config, pipeline, model


def evaluate_run(run_dir: str | Path, data_path: str | Path) -> dict[str, dict[str, float]]:
    """Metrics of a run's best model on a labelled file: {task: {metric: value}}."""
    config, pipeline, model = load_run(run_dir)
    raw = read_split(data_path, pipeline, build.read_options(config), with_labels=True)
    return evaluate(
        model,
        encode(raw, pipeline, config.evaluation.group_by),
        build.build_losses(config, pipeline),
        build.metric_names(config),
        config.train.eval_batch_size,
    )


def predict_run(run_dir: str | Path, data_path: str | Path, output: str | Path, threads: int | None = None) -> int:
    """Write one score column per task for every row of ``data_path``; returns the row count.

    Binary and regression tasks give a float column; a multi-class task gives a fixed-size list of its
    C class probabilities (Parquet), in the order of ``label.classes``. ``run_dir`` may also be an
    artifact directory (``mtlrec export``): the file is then streamed through the exported model, and
    the fused ``score`` column follows the tasks' (``threads``: its runtime's threads).
    """
    from mtlrec.export import is_artifact
    from mtlrec.serving.batch import score_table

    if is_artifact(run_dir):
        return predict_artifact(run_dir, data_path, output, threads)
    config, pipeline, model = load_run(run_dir)
    raw = read_split(data_path, pipeline, build.read_options(config), with_labels=False)
    scores = predict_scores(
        model, encode(raw, pipeline), build.build_losses(config, pipeline), config.train.eval_batch_size
    )
    write_table(score_table(scores), output)
    return raw.table.num_rows


def export_run(
    run_dir: str | Path,
    output: str | Path,
    model_format: str = "onnx",
    fusion: str | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export a run's best model (ONNX or TorchScript) with its encoders, tasks and fusion as an artifact
    directory, after a parity check against the eager model; returns the manifest (see :mod:`mtlrec.deploy`)."""
    from mtlrec.deploy import export_run as export

    return export(run_dir, output, model_format, fusion, data, overwrite)


def predict_artifact(
    artifact_dir: str | Path, data_path: str | Path, output: str | Path, threads: int | None = None
) -> int:
    """Score a file through an exported artifact, streamed in record batches; returns the row count."""
    from mtlrec.deploy import predict_artifact as predict

    return predict(artifact_dir, data_path, output, threads)


def summarize(
    run_dirs: list[str | Path], split: str = "test", metrics: list[str] | None = None
) -> list[dict[str, Any]]:
    """One row per run: its name, architecture and each ``task.metric`` of ``split`` (all, or those in ``metrics``)."""
    rows = []
    for run_dir in run_dirs:
        files = RunFiles(Path(run_dir))
        if not files.metrics.is_file():
            raise RunDirError(f"{run_dir}: no {files.metrics.name}; has the run finished?")
        results = json.loads(files.metrics.read_text())
        if split not in results:
            raise RunDirError(f"{run_dir}: no '{split}' metrics (the run has: {', '.join(results)})")
        config = yaml.safe_load(files.config.read_text())
        row: dict[str, Any] = {"run": Path(run_dir).name, "architecture": config["model"]["architecture"]}
        for task, values in results[split].items():
            row.update({f"{task}.{name}": value for name, value in values.items() if not metrics or name in metrics})
        rows.append(row)
    return rows


def compare(
    config: Config,
    output_dir: str | Path,
    seeds: int | list[int],
    baseline: Config | None = None,
    metric: str | None = None,
    split: str = "test",
    show_progress_bar: bool | None = None,
) -> list[dict[str, Any]]:
    """Train ``config`` and its single-task baseline over N seeds; MTL gain per task with 95% intervals.

    Runs go to ``output_dir/<model>/seed<k>/`` (finished runs are reused); ``runs.csv``,
    ``comparison.csv`` and ``comparison.md`` are written there. See :mod:`mtlrec.experiments.compare`.
    """
    from mtlrec.experiments.compare import compare as run_comparison

    return run_comparison(config, output_dir, seeds, baseline, metric, split, show_progress_bar)


def reproduce_census(
    group: int,
    seeds: int | list[int],
    output_dir: str | Path,
    architectures: list[str] | None = None,
    overrides: list[str] | None = None,
    config_dir: str | Path | None = None,
    show_progress_bar: bool | None = None,
) -> list[dict[str, Any]]:
    """The MMoE paper's census-income table (group 1 or 2) over N seeds, beside the paper's numbers.

    Writes ``reproduction.{csv,md,png}`` and ``runs.csv``; see :mod:`mtlrec.experiments.census`.
    """
    from mtlrec.experiments.census import reproduce_census as run_reproduction

    return run_reproduction(group, seeds, output_dir, architectures, overrides or [], config_dir, show_progress_bar)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table (numbers with 4 decimals)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [
        [f"{row.get(c, ''):.4f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)


def write_summary(rows: list[dict[str, Any]], prefix: str | Path) -> None:
    """Write ``PREFIX.csv`` and ``PREFIX.md``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    prefix = Path(prefix)
    atomic_write(prefix.with_suffix(".csv"), lambda tmp: tmp.write_text(buffer.getvalue()))
    table = format_table(rows) + "\n"
    atomic_write(prefix.with_suffix(".md"), lambda tmp: tmp.write_text(table))


def _prepare_run_dir(files: RunFiles, config: Config, resume: bool, overwrite: bool) -> None:
    resolved = config_to_dict(config)
    if resume:
        if not files.config.is_file():
            raise RunDirError(f"cannot resume: {files.root} has no {files.config.name}")
        _check_same_config(_read_saved_config(files), resolved)
    elif files.checkpoint.exists() and not overwrite:
        raise RunDirError(
            f"{files.root} already holds a run; use --resume to continue it, --overwrite to replace it, "
            "or another --output directory"
        )
    files.root.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(resolved, sort_keys=False)
    atomic_write(files.config, lambda tmp: tmp.write_text(text))


def _read_saved_config(files: RunFiles) -> dict[str, Any]:
    """Read a run's saved config and resolve it with the current schema, so that defaults fill in.

    A run saved by an older version lacks the sections and keys added since; validating it again
    gives them their defaults, so that only real differences count when resuming.

    Args:
        files: the run directory's files; its ``config.yaml`` must exist.

    Returns:
        The saved config as :func:`~mtlrec.config.config_to_dict` resolves it today.

    Raises:
        ConfigError: the saved config is not valid YAML or no longer validates (the message names the file).
    """
    try:
        saved = yaml.safe_load(files.config.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"--resume: the run's saved config {files.config} is not valid YAML: {exc}") from None
    try:
        config = validate_config(saved, source=str(files.config))
    except ConfigError as exc:
        raise ConfigError(f"--resume: the run's saved config no longer validates; {exc}") from None
    return config_to_dict(config)


def _check_same_config(saved: dict[str, Any], current: dict[str, Any]) -> None:
    saved = json.loads(json.dumps(saved))
    current = json.loads(json.dumps(current))
    for side in (saved, current):
        side.get("train", {}).pop("epochs", None)
        side.get("train", {}).pop("device", None)  # a run may resume on another device
        side.pop("diagnostics", None)
        side.pop("serving", None)
    if saved != current:
        differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ConfigError(
            f"--resume: the config differs from the run's saved config in section(s) {differing}; "
            "only train.epochs, train.device and the diagnostics and serving sections may change when resuming"
        )


def _write_calibration(
    files: RunFiles, config: Config, pipeline: FeaturePipeline, model: torch.nn.Module, data: dict[str, Any]
) -> None:
    """Reliability bins of the binary tasks on the test split (else valid), for ``mtlrec report``."""
    split = next((name for name in ("test", "valid") if name in data), None)
    binary = [task.name for task in config.tasks if LOSSES[task.loss].kind == "binary"]
    if split is None or not binary:
        return
    links = build.build_losses(config, pipeline)
    bins = reliability_report(model, data[split], links, binary, config.train.eval_batch_size)
    _write_json(files.calibration, {"split": split, "tasks": bins})


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=1)
    atomic_write(path, lambda tmp: tmp.write_text(text))


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("mtlrec")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
