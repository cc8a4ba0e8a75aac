"""One config trained over several seeds into ``DIR/<name>/seed<k>/``, resumable, and the runs.csv rows."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mtlrec.app.run_files import RunFiles
from mtlrec.app.runs import comparable_config
from mtlrec.config import Config, config_to_dict
from mtlrec.errors import ConfigError, RunDirError

log = logging.getLogger("mtlrec")

Metrics = dict[str, dict[str, dict[str, float]]]  # split → task → metric → value


@dataclass(frozen=True)
class SeedRuns:
    """The finished runs of one config, one per seed.

    Attributes:
        name: the folder name under the output directory (``mmoe``, ``single_task``, ...).
        run_dirs: {seed: run directory}.
        metrics: {seed: the run's metrics.json, ``{split: {task: {metric: value}}}``}.
    """

    name: str
    run_dirs: dict[int, Path]
    metrics: dict[int, Metrics]

    def values(self, split: str, task: str, metric: str) -> list[float]:
        """The metric of every seed, in seed order (seeds lacking it are left out)."""
        found = (self.metrics[seed].get(split, {}).get(task, {}).get(metric) for seed in sorted(self.metrics))
        return [float(value) for value in found if value is not None]

    def task_metrics(self, split: str) -> dict[str, list[str]]:
        """{task: metric names} present in the first seed's ``split``."""
        first = self.metrics[min(self.metrics)]
        return {task: list(values) for task, values in first.get(split, {}).items()}


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``N`` → seeds 0..N−1; a sequence is used as given (duplicates are an error)."""
    chosen = list(range(seeds)) if isinstance(seeds, int) else [int(seed) for seed in seeds]
    if not chosen or len(set(chosen)) != len(chosen):
        raise ConfigError(f"--seeds: expected a positive number of distinct seeds, got {seeds!r}")
    return chosen


def with_seed(config: Config, seed: int) -> Config:
    """``config`` with ``train.seed = seed`` (the data split keeps its own ``data.split.seed``)."""
    return config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})}, deep=True)


def run_seeds(
    config: Config, name: str, output_dir: Path, seeds: Sequence[int], show_progress_bar: bool | None = None
) -> SeedRuns:
    """Train ``config`` once per seed into ``output_dir/name/seed<k>``; finished runs are reused.

    A run directory with ``metrics.json`` is reused (after checking that its saved config is this
    config), one with a checkpoint but no metrics is resumed, and a missing one is trained.
    """
    from mtlrec.app.workflows import train  # imports torch; keep this module light for the CLI parser

    run_dirs, metrics = {}, {}
    for index, seed in enumerate(seeds):
        seeded = with_seed(config, seed)
        run_dir = output_dir / name / f"seed{seed}"
        files = RunFiles(run_dir)
        label = f"{name} seed {seed} ({index + 1}/{len(seeds)})"
        if files.metrics.is_file():
            _check_saved_config(files, seeded)
            log.info("%s: reusing the finished run in %s (metrics.json present), not retraining", label, run_dir)
            metrics[seed] = json.loads(files.metrics.read_text())
        else:
            resume = files.checkpoint.is_file()
            log.info("%s: %s %s", label, "resuming the interrupted run in" if resume else "training into", run_dir)
            metrics[seed] = train(seeded, run_dir, resume=resume, show_progress_bar=show_progress_bar)
        run_dirs[seed] = run_dir
    return SeedRuns(name, run_dirs, metrics)


def _check_saved_config(files: RunFiles, config: Config) -> None:
    if not files.config.is_file():
        raise RunDirError(
            f"{files.root} has metrics.json but no {files.config.name}; remove it or use another --output directory"
        )
    saved = comparable_config(yaml.safe_load(files.config.read_text()))
    current = comparable_config(config_to_dict(config))
    if saved != current:
        differing = sorted(key for key in set(saved) | set(current) if saved.get(key) != current.get(key))
        raise ConfigError(
            f"{files.root} holds a finished run of a different config (section(s) {differing} differ); "
            "remove it or use another --output directory"
        )


def run_rows(role: str, runs: SeedRuns) -> list[dict[str, Any]]:
    """One row per run, split, task and metric (the rows of ``runs.csv``)."""
    rows = []
    for seed in sorted(runs.metrics):
        for split, tasks in runs.metrics[seed].items():
            for task, values in tasks.items():
                for metric, value in values.items():
                    rows.append(
                        {
                            "model": runs.name,
                            "role": role,
                            "seed": seed,
                            "split": split,
                            "task": task,
                            "metric": metric,
                            "value": value,
                            "run_dir": str(runs.run_dirs[seed]),
                        }
                    )
    return rows
