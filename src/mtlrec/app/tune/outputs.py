"""What a search writes: the best config, the table of trials, and each parameter's importance."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import optuna
import yaml

from mtlrec.app.tune.space import trial_config, value_of
from mtlrec.config import Config
from mtlrec.evaluation.plots import horizontal_bars
from mtlrec.io import atomic_write

log = logging.getLogger("mtlrec.tune")

BEST_CONFIG = "best.yaml"
TRIALS_TABLE = "trials.csv"
IMPORTANCE_JSON = "importance.json"
IMPORTANCE_PNG = "importance.png"


def best_values(study: optuna.Study, config: Config) -> dict[str, Any]:
    """{space path: config value} of the best finished trial."""
    params = study.best_trial.params
    return {path: value_of(path, dimension, params[path]) for path, dimension in config.tune.space.items()}


def write_best_config(root: Path, study: optuna.Study, base: dict[str, Any], config: Config) -> Path:
    """``best.yaml``: the config with the best trial's values (no ``tune`` section), ready for ``mtlrec train``."""
    best = study.best_trial
    values = best_values(study, config)
    header = (
        f"# The best of {len(study.trials)} trials of `mtlrec tune`: trial {best.number}, validation criterion "
        f"{best.value:.6f}.\n# Its values: {json.dumps(values)}\n"
    )
    text = header + yaml.safe_dump(trial_config(base, values), sort_keys=False)
    path = root / BEST_CONFIG
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def write_trials_table(root: Path, study: optuna.Study) -> Path:
    """``trials.csv``: one row per trial: state, validation criterion, seconds, values, valid and test metrics."""
    trials = study.get_trials(deepcopy=False)
    params = list(dict.fromkeys(name for trial in trials for name in trial.params))
    metrics = list(dict.fromkeys(key for trial in trials for key in _metric_columns(trial)))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "state", "value", "seconds", *params, *metrics])
    for trial in trials:
        seconds = trial.duration.total_seconds() if trial.duration is not None else None
        columns = _metric_columns(trial)
        writer.writerow(
            [trial.number, trial.state.name.lower(), _cell(trial.value), _cell(seconds)]
            + [_cell(trial.params.get(name)) for name in params]
            + [_cell(columns.get(name)) for name in metrics]
        )
    path = root / TRIALS_TABLE
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue()))
    return path


def _metric_columns(trial: optuna.trial.FrozenTrial) -> dict[str, float]:
    """{"test.click.auc": value, ...} from the trial's recorded metrics."""
    return {
        f"{split}.{task}.{name}": value
        for split in ("valid", "test")
        for task, values in (trial.user_attrs.get(split) or {}).items()
        for name, value in values.items()
    }


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return round(value, 6) if isinstance(value, float) else value


def write_importance(root: Path, study: optuna.Study) -> dict[str, float] | None:
    """fANOVA importance of each parameter for the criterion (Hutter et al., ICML 2014), as JSON and a PNG.

    Returns None (and writes nothing) with fewer than two finished trials or a single parameter.
    """
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    varied = {name for trial in complete for name in trial.params}
    if len(complete) < 2 or len(varied) < 2:
        log.info("parameter importance needs two finished trials and two parameters; not written")
        return None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    importance = optuna.importance.get_param_importances(study, evaluator=evaluator)
    text = json.dumps(importance, indent=1)
    atomic_write(root / IMPORTANCE_JSON, lambda tmp: tmp.write_text(text))
    png = horizontal_bars(importance, "hyper-parameter importance (fANOVA)", "share of the criterion's variance")
    atomic_write(root / IMPORTANCE_PNG, lambda tmp: tmp.write_bytes(png))
    return importance


def summary_lines(study: optuna.Study, top: int = 10) -> list[str]:
    """The best ``top`` finished trials, best first, as printable lines."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(complete, key=lambda trial: trial.value, reverse=reverse)[:top]
    states = [trial.state.name.lower() for trial in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(state)} {state}" for state in dict.fromkeys(states))
    lines = [f"{len(states)} trials ({counts}); the best {len(ranked)}:"]
    lines += [f"  trial {trial.number:4d}  {trial.value:.5f}  {json.dumps(trial.params)}" for trial in ranked]
    return lines
