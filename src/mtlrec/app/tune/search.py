"""``mtlrec tune``: a hyper-parameter search over the config's ``tune.space`` with Optuna.

TPE proposes each trial's values (Bergstra et al., NeurIPS 2011); the median rule prunes a trial whose
step-level validation falls below the other trials' at the same evaluation; everything is kept in the
output directory, so running the command again continues the search. At the end: ``best.yaml``,
``trials.csv``, ``importance.json``/``importance.png`` and, with ``seeds``, the best config retrained
once per seed with a mean ± 95% interval of every metric (``seeds.json``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import yaml

from mtlrec.app import build, workflows
from mtlrec.app.run_files import RunFiles
from mtlrec.app.run_lock import run_dir_lock
from mtlrec.app.runs import absolute_data_files, absolute_data_paths, comparable_config, write_json
from mtlrec.app.tune.outputs import (
    summary_lines,
    write_best_config,
    write_importance,
    write_trials_table,
)
from mtlrec.app.tune.space import check_space
from mtlrec.app.tune.study import (
    SEARCH_CONFIG,
    STUDY_FILE,
    counted_trials,
    open_study,
    recover_interrupted,
    run_workers,
)
from mtlrec.app.tune.trial import TRIALS_DIR
from mtlrec.config import Config, config_to_dict, load_raw_config, validate_config
from mtlrec.errors import ConfigError, RunDirError
from mtlrec.evaluation.mtl_gain import summarize_seeds
from mtlrec.io import atomic_write

log = logging.getLogger("mtlrec.tune")

SEEDS_DIR = "seeds"
SEEDS_SUMMARY = "seeds.json"


def tune(
    config_path: str | Path,
    output: str | Path,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    workers: int = 1,
    threads: int | None = None,
    seeds: Sequence[int] = (),
    overwrite: bool = False,
) -> dict[str, Any]:
    """Search the config's ``tune.space``; returns {"best": {...}, "trials": n, "seeds": {...}}.

    Args:
        config_path: a config with a ``tune`` section.
        output: the search directory (created; a search already there continues if its config is the same).
        overrides: ``key=value`` overrides of the config.
        trials: trials of the whole search (default ``tune.trials``); a continued search runs the rest.
        workers: processes taking trials in parallel (each with ``threads`` torch threads).
        threads: torch threads per worker (default: the cores shared between the workers).
        seeds: retrain the best config once per seed (``train.seed``) and summarise its metrics.
        overwrite: start afresh in an ``output`` holding another search.

    Raises:
        ConfigError: no ``tune`` section, no validation split or criterion, or a dimension giving an invalid config.
        RunDirError: ``output`` holds a search of another config (without ``overwrite``), or is in use.
    """
    base = _base_config(config_path, overrides)
    config = validate_config(base, source=str(config_path))
    _check_searchable(config, base)
    root = Path(output)
    with run_dir_lock(root):
        _prepare(root, base, overwrite)
        study = open_study(root, config)
        recover_interrupted(study)
        total = trials if trials is not None else config.tune.trials
        missing = total - counted_trials(study)
        if missing > 0:
            log.info("searching: %d trial(s) to run of %d, %d worker(s)", missing, total, workers)
            run_workers(root, total, workers, threads or _threads_per_worker(workers))
        return _write_results(root, study, base, config, seeds)


def _base_config(config_path: str | Path, overrides: Sequence[str]) -> dict[str, Any]:
    """The config as plain data, data paths made absolute (the trials may run from another directory)."""
    base = load_raw_config(config_path, list(overrides))
    if isinstance(base.get("data"), dict):
        base["data"].update(absolute_data_files(base["data"]))
    return base


def _check_searchable(config: Config, base: dict[str, Any]) -> None:
    if config.tune is None:
        raise ConfigError(
            "the config has no tune section: add tune.space, e.g. tune: {space: {train.lr: {low: 0.0001, "
            "high: 0.01, log: true}}}"
        )
    split = config.data.split
    if config.data.valid is None and (split is None or "valid" not in split.fractions):
        raise ConfigError("tune scores trials on the validation split: give data.valid or data.split.fractions.valid")
    if config.train.early_stopping is None:
        raise ConfigError("tune scores trials by train.early_stopping.metric; train.early_stopping is null")
    build.check_config(config)
    check_space(base, config)


def _prepare(root: Path, base: dict[str, Any], overwrite: bool) -> None:
    """Keep a search of the same config (to continue it); replace another only with ``overwrite``."""
    saved_path = root / SEARCH_CONFIG
    if saved_path.is_file():
        saved = yaml.safe_load(saved_path.read_text())
        if saved != base and not overwrite:
            raise RunDirError(
                f"{root} holds a search of another config ({saved_path}); use --overwrite to start afresh, or "
                "another --output directory"
            )
        if saved != base:
            for name in (STUDY_FILE, TRIALS_DIR, SEEDS_DIR):
                path = root / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    text = yaml.safe_dump(base, sort_keys=False)
    atomic_write(saved_path, lambda tmp: tmp.write_text(text))


def _threads_per_worker(workers: int) -> int | None:
    """Torch threads per worker: the cores shared out, so that parallel workers do not oversubscribe them."""
    return max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None


def _write_results(
    root: Path, study: optuna.Study, base: dict[str, Any], config: Config, seeds: Sequence[int]
) -> dict[str, Any]:
    write_trials_table(root, study)
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise RunDirError(f"no trial of the search in {root} finished; see {root / TRIALS_DIR}/*/train.log")
    best_path = write_best_config(root, study, base, config)
    importance = write_importance(root, study)
    for line in summary_lines(study):
        log.info("%s", line)
    best = study.best_trial
    result: dict[str, Any] = {
        "best": {"trial": best.number, "value": best.value, "params": best.params, "config": str(best_path)},
        "trials": len(study.trials),
        "importance": importance,
    }
    if seeds:
        result["seeds"] = retrain_with_seeds(root, best_path, seeds)
    return result


def retrain_with_seeds(root: Path, best_config: Path, seeds: Sequence[int]) -> dict[str, Any]:
    """Train the best config once per seed (``SEEDS_DIR/seed_S``) and summarise; a seed's finished run of
    the same config is kept (a search that found a better config since retrains).

    Returns ``{split: {task: {metric: {n, mean, std, ci_low, ci_high, values}}}}`` (95% Student t
    intervals of the mean), also written to ``seeds.json``.
    """
    metrics: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        files = RunFiles(root / SEEDS_DIR / f"seed_{seed}")
        config = validate_config(load_raw_config(best_config, [f"train.seed={seed}"]), source=str(best_config))
        if _finished_run_of(files, config):
            metrics[seed] = json.loads(files.metrics.read_text())
            continue
        log.info("retraining the best config with train.seed=%d", seed)
        metrics[seed] = workflows.train(config, files.root, overwrite=True, show_progress_bar=False)
    summary = _summarise(metrics)
    write_json(root / SEEDS_SUMMARY, {"seeds": list(seeds), "metrics": summary})
    for split, tasks in summary.items():
        for task, values in tasks.items():
            for name, value in values.items():
                half = (value["ci_high"] - value["ci_low"]) / 2
                log.info("%s %s.%s over %d seeds: %.5f ± %.5f", split, task, name, value["n"], value["mean"], half)
    return summary


def _finished_run_of(files: RunFiles, config: Config) -> bool:
    if not (files.metrics.is_file() and files.config.is_file()):
        return False
    saved = yaml.safe_load(files.config.read_text())
    return comparable_config(saved) == comparable_config(config_to_dict(absolute_data_paths(config)))


def _summarise(metrics: dict[int, dict[str, Any]]) -> dict[str, Any]:
    first = next(iter(metrics.values()))
    return {
        split: {
            task: {
                name: {**asdict(summarize_seeds(_values(metrics, split, task, name))),
                       "values": _values(metrics, split, task, name)}
                for name in values
            }
            for task, values in tasks.items()
        }
        for split, tasks in first.items()
    }  # fmt: skip


def _values(metrics: dict[int, dict[str, Any]], split: str, task: str, name: str) -> list[float]:
    """One metric over the seeds (an undefined one, saved as null, is NaN)."""
    return [math.nan if m[split][task][name] is None else m[split][task][name] for m in metrics.values()]
