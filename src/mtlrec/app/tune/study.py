"""The Optuna study behind ``mtlrec tune``: its storage in the output directory, sampler, pruner, workers.

The study lives in ``OUTPUT/study.db`` (SQLite), so a search stopped in any way, ``kill -9`` included,
continues when run again: finished trials are kept, and a trial that was running is marked failed and
run again first, resuming its training from its last checkpoint (Ctrl-C does the same). Workers are
processes sharing the study; each takes trials until the search holds the requested number.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml

from mtlrec.app import build
from mtlrec.app.tune.trial import INTERRUPTED, RESUMES, TrialRunner
from mtlrec.config import Config, validate_config
from mtlrec.errors import MtlrecError

log = logging.getLogger("mtlrec.tune")

STUDY_FILE = "study.db"
SEARCH_CONFIG = "search.yaml"
STUDY_NAME = "mtlrec"
COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def storage_url(root: Path) -> str:
    return f"sqlite:///{(root / STUDY_FILE).resolve()}"


def open_study(root: Path, config: Config, worker: int = 0) -> optuna.Study:
    """The search's study: TPE (multivariate, a constant liar for parallel workers) and the median pruner.

    The sampler's seed comes from ``tune.seed``, the trials already held and the ``worker``'s index, so
    that neither a resumed search nor a second worker draws the same random points again.
    """
    storage = optuna.storages.RDBStorage(storage_url(root), engine_kwargs={"connect_args": {"timeout": 60}})
    pruning = config.tune.pruning
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=pruning.startup_trials)  # warm-up: PruningReporter
        if pruning is not None
        else optuna.pruners.NopPruner()
    )
    direction = "maximize" if build.selection_criterion(config).higher_is_better else "minimize"
    study = optuna.create_study(
        storage=storage, study_name=STUDY_NAME, direction=direction, pruner=pruner, load_if_exists=True
    )
    held = len(study.get_trials(deepcopy=False))
    seed = config.tune.seed * 1_000_003 + held * 101 + worker
    study.sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    return study


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards ``--trials``: finished ones, except those failed by an interruption."""
    return sum(1 for trial in study.get_trials(deepcopy=False, states=COUNTED) if not trial.user_attrs.get(INTERRUPTED))


def recover_interrupted(study: optuna.Study) -> int:
    """Mark trials left running by a killed search as failed and queue each again; returns how many.

    Only the process holding the output directory's lock calls this, when no worker runs: a trial still
    marked running was interrupted. (A trial stopped by Ctrl-C queues itself again: ``TrialRunner``.)
    Optuna has no public call to end another process's trial, hence the storage's own methods.
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        continued = trial.user_attrs.get(RESUMES, trial.number)
        study.enqueue_trial(trial.params, user_attrs={RESUMES: continued})
        log.info("trial %d was interrupted; it runs again first, resuming its training", trial.number)
    return len(running)


def run_workers(root: Path, total: int, workers: int, threads: int | None) -> None:
    """Take trials until the study holds ``total``: in this process, or in ``workers`` processes."""
    if workers == 1:
        run_worker(root, total, threads)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_process, args=(str(root), total, threads, index)) for index in range(workers)
    ]
    for process in processes:
        process.start()
    with _terminate_on_exit(processes):
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise MtlrecError(f"{len(failed)} tune worker(s) exited with status {failed}; see the trials' logs")


def run_worker(root: Path, total: int, threads: int | None, worker: int = 0) -> None:
    """Worker number ``worker``: trains trials one after another while the study holds fewer than ``total``."""
    if threads:
        torch.set_num_threads(threads)
    base = yaml.safe_load((root / SEARCH_CONFIG).read_text())
    config = validate_config(base, source=str(root / SEARCH_CONFIG))
    study = open_study(root, config, worker)
    runner = TrialRunner(root, base, config)
    while counted_trials(study) < total:
        study.optimize(runner, n_trials=1, catch=(MtlrecError,), callbacks=[_log_trial])


def _worker_process(root: str, total: int, threads: int | None, worker: int) -> None:
    _die_with_parent()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mtlrec").setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s [worker {os.getpid()}] %(message)s", "%H:%M:%S"))
    handler.addFilter(search_messages_only)
    logging.getLogger("mtlrec").addHandler(handler)
    run_worker(Path(root), total, threads, worker)


def search_messages_only(record: logging.LogRecord) -> bool:
    """A console filter: the search's own lines and every warning; the trials' training logs go to their files."""
    return record.name.startswith("mtlrec.tune") or record.levelno >= logging.WARNING


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the search process dies (so a kill -9 leaves no orphan)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _terminate_on_exit(processes: list[Any]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()


def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.5f}"
    try:
        best = f"best {study.best_value:.5f} (trial {study.best_trial.number})"
    except ValueError:
        best = "no trial finished yet"
    log.info("trial %d %s: %s; %s; %s", trial.number, trial.state.name.lower(), value, trial.params, best)
