"""Training, evaluation and prediction with run directories (what ``mtlrec train|evaluate|predict`` do)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from mtlrec.app import build
from mtlrec.app.outputs import check_output_file
from mtlrec.app.run_files import RunFiles
from mtlrec.app.run_lock import run_dir_lock
from mtlrec.app.runs import absolute_data_paths, load_run, prepare_run_dir, write_json
from mtlrec.config import Config
from mtlrec.data import encode, read_split
from mtlrec.evaluation import evaluate, predict_scores
from mtlrec.evaluation.reliability import reliability_report
from mtlrec.features import FeaturePipeline
from mtlrec.io import write_table
from mtlrec.losses import LOSSES
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
    on_evaluation: Callable[[dict[str, Any]], None] | None = None,
) -> Metrics:
    """Train the configured model into ``output`` and evaluate its best evaluation's weights.

    Returns ``{"valid": {task: {metric: value}}, "test": {...}}`` (splits that exist), also written
    to ``metrics.json``. With ``resume``, training continues from the run's last checkpoint (only
    ``train.epochs`` may differ from the saved config). ``on_evaluation`` receives every evaluation's
    history record (``Trainer.fit``).
    """
    build.check_config(config)
    config = absolute_data_paths(config)
    files = RunFiles(Path(output))
    # under torchrun: every rank trains, rank 0 alone writes (see mtlrec.training.distributed)
    with (
        distributed_session(config.train.device) as context,
        main_rank_logging(context),
        run_dir_lock(files.root) if context.is_main else contextlib.nullcontext(),
    ):
        if context.is_main:
            prepare_run_dir(files, config, resume, overwrite)
        context.barrier()
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        with _log_to(files.log) if context.is_main else contextlib.nullcontext():
            pipeline, data = build.training_data(config, files, resume, context)
            log.info(
                "rows: %s; %d features, %d model inputs, %d embedding rows",
                {name: len(d) for name, d in data.items()},
                len(pipeline.encoders),
                len(pipeline.inputs()),
                sum(pipeline.tables().values()),
            )
            model = build.build_model(config, pipeline).to(context.device)
            trainer = build.build_trainer(config, model, pipeline, files, show_progress_bar, context)
            result = trainer.fit(data["train"], data.get("valid"), resume=resume, on_evaluation=on_evaluation)
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
                write_json(files.metrics, metrics)
                best = (result.best_epoch + 1, result.best_step)
                log.info("best: epoch %d, step %d; its metrics: %s", *best, json.dumps(metrics))
                _write_calibration(files, config, pipeline, model, data)
    return metrics


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


def predict_run(
    run_dir: str | Path, data_path: str | Path, output: str | Path, threads: int | None = None, overwrite: bool = False
) -> int:
    """Write one score column per main task (not the auxiliary ones) for every row of ``data_path``; returns
    the row count.

    Binary and regression tasks give a float column; a multi-class task gives a fixed-size list of its
    C class probabilities (Parquet), in the order of ``label.classes``. ``run_dir`` may also be an
    artifact directory (``mtlrec export``): the file is then streamed through the exported model, and
    the fused ``score`` column follows the tasks'. ``threads``: the model's threads (the artifact's
    runtime, or torch's). The output is written to a temporary file renamed into place; it may not be
    the input, and an existing one is replaced only with ``overwrite``.

    Raises:
        RunDirError: the output is the input, a directory, or exists without ``overwrite``.
    """
    from mtlrec.app.deploy import predict_artifact
    from mtlrec.export import is_artifact
    from mtlrec.serving.batch import score_table

    check_output_file(output, data_path, overwrite)
    if is_artifact(run_dir):
        return predict_artifact(run_dir, data_path, output, threads)
    if threads:
        torch.set_num_threads(threads)
    config, pipeline, model = load_run(run_dir)
    raw = read_split(data_path, pipeline, build.read_options(config), with_labels=False)
    scores = predict_scores(
        model, encode(raw, pipeline), build.build_losses(config, pipeline), config.train.eval_batch_size
    )
    served = build.served_tasks(config)
    write_table(score_table({task: scores[task] for task in served}), output)
    return raw.table.num_rows


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
    write_json(files.calibration, {"split": split, "tasks": bins})


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

