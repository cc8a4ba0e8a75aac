"""Front end of ``mtlrec tune-fusion``: a run's scores on a labelled file → a fusion weight sweep.

Each task's scores are computed once with the run's best model (the ``mtlrec predict`` path); the
sweep, the Pareto front and the constrained choice are in :mod:`mtlrec.tuning`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlrec.app import build
from mtlrec.app.runs import load_run
from mtlrec.data.reading import encode, read_split
from mtlrec.errors import ConfigError
from mtlrec.evaluation import predict_scores
from mtlrec.tuning import SWEPT_KINDS, Choice, Sweep, TaskLabels, choose, fusion_grid, sweep_fusions, write_sweep

log = logging.getLogger("mtlrec")


@dataclass
class FusionTuning:
    """The sweep, the chosen setting and the files written (``all``, ``pareto``, ``plot``, ``fusion``)."""

    sweep: Sweep
    choice: Choice
    files: dict[str, Path]


def tune_fusion(
    run_dir: str | Path,
    data_path: str | Path,
    output: str | Path,
    tasks: Sequence[str] | None = None,
    steps: int = 10,
    kinds: Sequence[str] | None = None,
    group_by: str | None = None,
    maximize: str | None = None,
    constraints: Sequence[str] = (),
) -> FusionTuning:
    """Sweep fusion weights of a run's tasks on a labelled file and write the results into ``output``.

    Args:
        run_dir: a finished run.
        data_path: a labelled file (e.g. the validation split), read like ``mtlrec evaluate`` reads it.
        output: folder for ``all.csv``, ``pareto.csv``, ``pareto.png`` and ``fusion.yaml``.
        tasks: the tasks to fuse (at least two; default: every binary and regression task).
        steps: weights go in steps of 1/steps over the simplex Σ w = 1.
        kinds: ``weighted_sum`` and/or ``weighted_product``; default both (the product only when
            every fused task's scores are positive).
        group_by: column of the group id for GAUC (default: the run's ``evaluation.group_by``).
        maximize: criterion over ``task.metric`` names; default the mean of all metrics.
        constraints: conditions such as ``conversion.auc >= 0.8``.
    """
    config, pipeline, model = load_run(run_dir)
    losses = build.build_losses(config, pipeline)
    served = build.served_tasks(config)
    single = [task for task, loss in losses.items() if loss.kind != "multiclass" and task in served]
    fused = list(tasks) if tasks else single
    for task in fused:
        if task not in single:
            raise ConfigError(f"--tasks: '{task}' is not a binary or regression task of the run; tasks are {single}")
    group_column = group_by or config.evaluation.group_by
    options = build.read_options(config)
    options.group_column = group_column
    data = encode(read_split(data_path, pipeline, options, with_labels=True), pipeline, group_column)
    scores = predict_scores(model, data, losses, config.train.eval_batch_size)
    labels = {task: losses[task].original(data.labels[task]).numpy() for task in data.task_names}
    targets = [TaskLabels(task, losses[task].kind, labels[task].astype(np.float64)) for task in single]
    try:
        fusions = fusion_grid(fused, steps, _kinds(kinds, fused, scores))
        sweep = sweep_fusions(scores, targets, fusions, data.groups if group_column else None)
        choice = choose(sweep, maximize, constraints)
    except ValueError as exc:  # ExpressionError included: bad --maximize / --constraint
        raise ConfigError(f"tune-fusion: {exc}") from None
    files = write_sweep(sweep, choice, output)
    log.info("%d settings, %d on the Pareto front; %s", len(fusions), int(sweep.front.sum()), choice.message)
    return FusionTuning(sweep, choice, files)


def _kinds(kinds: Sequence[str] | None, tasks: list[str], scores: dict[str, np.ndarray]) -> list[str]:
    if kinds:
        return list(kinds)
    positive = all(np.nanmin(scores[task]) > 0 for task in tasks)
    if not positive:
        log.warning("weighted products left out of the sweep: some fused task has scores <= 0")
    return list(SWEPT_KINDS) if positive else ["weighted_sum"]
