"""Run directories: their files, loading a finished run, saving and checking its config, summaries."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from mtlrec.app import build
from mtlrec.app.run_files import RunFiles
from mtlrec.config import Config, config_to_dict, validate_config
from mtlrec.errors import ConfigError, RunDirError
from mtlrec.features import FeaturePipeline
from mtlrec.io import atomic_write, strict_json
from mtlrec.training import load_weights

log = logging.getLogger("mtlrec")

#: The data keys that name files (a file, a directory or a glob).
DATA_FILE_KEYS = ("train", "valid", "test")


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


def prepare_run_dir(files: RunFiles, config: Config, resume: bool, overwrite: bool) -> None:
    """Check the directory can take this run (or resume it), remove what a killed writer left half-written,
    and save the resolved config."""
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
    remove_temporaries(files.root)
    text = yaml.safe_dump(resolved, sort_keys=False)
    atomic_write(files.config, lambda tmp: tmp.write_text(text))


def remove_temporaries(root: Path) -> None:
    """Delete the hidden ``.NAME.*.tmp`` files an atomic write leaves when its process is killed mid-write."""
    stale = sorted(root.glob(".*.tmp"))
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d half-written file(s) a killed run left in %s", len(stale), root)


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


def absolute_data_paths(config: Config) -> Config:
    """``config`` with ``data.train``/``valid``/``test`` made absolute (against the working directory), so that
    the run's saved config finds its data from any directory (``mtlrec export`` and ``evaluate`` read it)."""
    files = absolute_data_files(config_to_dict(config)["data"])
    return config.model_copy(update={"data": config.data.model_copy(update=files)})


def absolute_data_files(data: dict[str, Any]) -> dict[str, Any]:
    """The data section's file keys (train, valid, test) made absolute against the working directory."""
    return {key: os.path.abspath(data[key]) for key in DATA_FILE_KEYS if data.get(key) is not None}


def comparable_config(resolved: dict[str, Any]) -> dict[str, Any]:
    """A JSON copy of a resolved config with absolute data paths, for comparing a saved config with the
    current one (a run saved before paths were stored absolute compares equal)."""
    copy = json.loads(json.dumps(resolved))
    copy.get("data", {}).update(absolute_data_files(copy.get("data", {})))
    return copy


def _check_same_config(saved: dict[str, Any], current: dict[str, Any]) -> None:
    saved, current = comparable_config(saved), comparable_config(current)
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


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as strict JSON; an undefined (NaN) metric becomes ``null`` and the log says why."""
    text, undefined = strict_json(value)
    log_undefined(path, undefined)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def log_undefined(where: str | Path, undefined: list[str]) -> None:
    """Say which values were written as ``null`` because they are undefined, and what makes a metric so."""
    if undefined:
        log.warning(
            "%s: %s undefined (NaN), written as null; a ranking metric (AUC, GAUC) is undefined when its split "
            "holds one class only of the task, or no labelled row",
            where,
            ", ".join(undefined),
        )
