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

import numpy as np
import pyarrow as pa
import torch
import yaml

from mtlrec import build
from mtlrec.config import Config, config_to_dict, validate_config
from mtlrec.datasets import encode, read_split, read_splits
from mtlrec.errors import ConfigError, RunDirError
from mtlrec.evaluation import evaluate, predict_scores
from mtlrec.features import FeaturePipeline
from mtlrec.io import atomic_write, write_table
from mtlrec.run_files import RunFiles
from mtlrec.training import load_weights

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
    _prepare_run_dir(files, config, resume, overwrite)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    with _log_to(files.log):
        pipeline = FeaturePipeline.load(files.features) if resume else build.build_pipeline(config)
        raw = read_splits(build.data_files(config), pipeline, build.read_options(config), build.random_split(config))
        if not resume:
            pipeline.fit(raw["train"].table, raw["train"].labels)
            pipeline.save(files.features)
        data = {name: encode(split, pipeline) for name, split in raw.items()}
        log.info(
            "rows: %s; id features %d (embedding rows %d), dense features %d",
            {name: len(d) for name, d in data.items()},
            len(pipeline.id_features),
            sum(pipeline.vocab_sizes()),
            len(pipeline.dense_features),
        )
        model = build.build_model(config, pipeline)
        trainer = build.build_trainer(config, model, pipeline, files, show_progress_bar)
        result = trainer.fit(data["train"], data.get("valid"), resume=resume)
        load_weights(model, files.weights)
        metrics = {
            split: evaluate(
                model,
                data[split],
                build.build_losses(config, pipeline),
                build.metric_names(config),
                config.train.eval_batch_size,
            )
            for split in ("valid", "test")
            if split in data
        }
        _write_json(files.metrics, metrics)
        log.info("best epoch %d; metrics of the best epoch: %s", result.best_epoch + 1, json.dumps(metrics))
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
        encode(raw, pipeline),
        build.build_losses(config, pipeline),
        build.metric_names(config),
        config.train.eval_batch_size,
    )


def predict_run(run_dir: str | Path, data_path: str | Path, output: str | Path) -> int:
    """Write one score column per task for every row of ``data_path``; returns the row count.

    Binary and regression tasks give a float column; a multi-class task gives a fixed-size list of its
    C class probabilities (Parquet), in the order of ``label.classes``.
    """
    config, pipeline, model = load_run(run_dir)
    raw = read_split(data_path, pipeline, build.read_options(config), with_labels=False)
    scores = predict_scores(
        model, encode(raw, pipeline), build.build_losses(config, pipeline), config.train.eval_batch_size
    )
    write_table(pa.table({task: _score_column(values) for task, values in scores.items()}), output)
    return raw.table.num_rows


def _score_column(values: np.ndarray) -> pa.Array:
    if values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


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
        saved = yaml.safe_load(files.config.read_text())
        _check_same_config(saved, resolved)
    elif files.checkpoint.exists() and not overwrite:
        raise RunDirError(
            f"{files.root} already holds a run; use --resume to continue it, --overwrite to replace it, "
            "or another --output directory"
        )
    files.root.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(resolved, sort_keys=False)
    atomic_write(files.config, lambda tmp: tmp.write_text(text))


def _check_same_config(saved: dict[str, Any], current: dict[str, Any]) -> None:
    saved = json.loads(json.dumps(saved))
    current = json.loads(json.dumps(current))
    for side in (saved, current):
        side.get("train", {}).pop("epochs", None)
    if saved != current:
        differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ConfigError(
            f"--resume: the config differs from the run's saved config in section(s) {differing}; "
            "only train.epochs may change when resuming"
        )


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
