"""One trial of ``mtlrec tune``: a normal training run of the config with the trial's values.

Each trial trains into ``OUTPUT/trials/NNNN`` (a run directory like any other: ``mtlrec report`` and
``export`` read it) and is scored by its model-selection criterion on the validation split. Every
evaluation (``train.eval_every_steps``) is reported to Optuna, whose pruner may stop the trial there.
A trial interrupted by a killed search is run again under a new number, resuming its run directory
from the last evaluation's checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import optuna

from mtlrec.app import build, workflows
from mtlrec.app.run_files import RunFiles
from mtlrec.app.tune.space import suggest, trial_config
from mtlrec.config import Config, validate_config

log = logging.getLogger("mtlrec.tune")

TRIALS_DIR = "trials"
#: user attribute of a trial re-run after an interruption: the number of the trial it continues
RESUMES = "resumes_trial"
#: user attribute of a trial stopped by an interruption (Ctrl-C, kill): it does not count, and runs again
INTERRUPTED = "interrupted"


class PruningReporter:
    """Reports each evaluation's criterion to Optuna at the training rows seen so far (so that trials of
    different batch sizes compare where they have seen the same rows); raises ``optuna.TrialPruned`` when
    the pruner says so, from the trial's ``warmup + 1``-th evaluation on.

    Args:
        trial: the running trial.
        warmup: evaluations before the trial may be pruned.
        done: evaluations the run made before (a resumed run), so that counting continues.
    """

    def __init__(self, trial: optuna.Trial, warmup: int, done: int = 0):
        self.trial, self.warmup, self.evaluations = trial, warmup, done

    def __call__(self, record: dict[str, Any]) -> None:
        self.evaluations += 1
        value = record.get("selection", {}).get("criterion")
        if value is None or math.isnan(value):
            return
        self.trial.report(value, record["rows_seen"])
        if self.evaluations > self.warmup and self.trial.should_prune():
            raise optuna.TrialPruned(f"evaluation {self.evaluations} (step {record['step']}): {value:.5f}")


class TrialRunner:
    """The objective: trains one trial and returns its validation criterion.

    Args:
        root: the search's output directory.
        base: the config as plain data (with its ``tune`` section).
        config: ``base`` validated.
    """

    def __init__(self, root: Path, base: dict[str, Any], config: Config):
        self.root, self.base, self.space = root, base, config.tune.space
        self.warmup = config.tune.pruning.warmup_evaluations if config.tune.pruning is not None else 0

    def __call__(self, trial: optuna.Trial) -> float:
        values = {path: suggest(trial, path, dimension) for path, dimension in self.space.items()}
        config = validate_config(trial_config(self.base, values), source=f"trial {trial.number}")
        continued = trial.user_attrs.get(RESUMES)
        owner = trial.number if continued is None else continued  # the trial whose run directory this is
        files = RunFiles(self.root / TRIALS_DIR / f"{owner:04d}")
        resume = continued is not None and files.checkpoint.is_file()
        trial.set_user_attr("run_dir", str(files.root))
        reporter = PruningReporter(trial, self.warmup, _evaluations_done(files) if resume else 0)
        try:
            metrics = workflows.train(
                config, files.root, resume=resume, overwrite=not resume, show_progress_bar=False, on_evaluation=reporter
            )
        except KeyboardInterrupt:  # Optuna marks the trial failed; queue it again, to resume from its checkpoint
            trial.set_user_attr(INTERRUPTED, True)
            trial.study.enqueue_trial(trial.params, user_attrs={RESUMES: owner})
            raise
        except optuna.TrialPruned:
            files.checkpoint.unlink(missing_ok=True)  # only a trial that may resume needs it
            raise
        files.checkpoint.unlink(missing_ok=True)
        for split, values_of_split in metrics.items():
            trial.set_user_attr(split, values_of_split)
        return build.selection_criterion(config).evaluate(metrics["valid"])["criterion"]


def _evaluations_done(files: RunFiles) -> int:
    return len(json.loads(files.history.read_text())) if files.history.is_file() else 0
