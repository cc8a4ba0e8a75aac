"""The Python API: a thin facade over the application layer (nothing inside mtlrec imports it).

Train a run from a config, evaluate and predict with a run directory, export and serve it, compare
against single-task baselines over seeds and reproduce the census table, summarise runs, search
hyper-parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlrec.app.deploy import export_run, predict_artifact
from mtlrec.app.experiments.census import reproduce_census
from mtlrec.app.experiments.compare import compare
from mtlrec.app.runs import format_table, load_run, summarize, write_summary
from mtlrec.app.workflows import Metrics, evaluate_run, predict_run, train

__all__ = [
    "Metrics",
    "compare",
    "evaluate_run",
    "export_run",
    "format_table",
    "load_run",
    "predict_artifact",
    "predict_run",
    "reproduce_census",
    "summarize",
    "train",
    "tune",
    "write_summary",
]


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
    """``mtlrec tune``: search the config's ``tune.space`` with Optuna (needs the ``tune`` extra).

    Returns ``{"best": {"trial", "value", "params", "config"}, "trials": n, "importance": {...}}`` and,
    with ``seeds``, ``"seeds"``: the best config's metrics over the seeds (mean and 95% interval). The
    arguments are those of :func:`mtlrec.app.tune.search.tune`.
    """
    from mtlrec.app.tune.search import tune as search

    return search(
        config_path, output, overrides=overrides, trials=trials, workers=workers, threads=threads, seeds=seeds,
        overwrite=overwrite,
    )
