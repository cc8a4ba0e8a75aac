"""The pruning hook: what it reports to Optuna, and when it may stop a trial."""

from __future__ import annotations

import math

import optuna
import pytest

from mtlrec.app.tune.trial import PruningReporter


class FakeTrial:
    """Records reports; ``prune`` says what ``should_prune`` answers."""

    def __init__(self, prune: bool):
        self.prune, self.reports, self.asked = prune, [], 0

    def report(self, value, step):
        self.reports.append((value, step))

    def should_prune(self):
        self.asked += 1
        return self.prune


def record(value, step, rows):
    return {"step": step, "rows_seen": rows, "selection": {"criterion": value, "constraints_met": True}}


def test_each_evaluation_is_reported_at_the_rows_seen():
    trial = FakeTrial(prune=False)
    reporter = PruningReporter(trial, warmup=0)
    for index in range(1, 4):
        reporter(record(0.5 + index / 10, index * 100, index * 102_400))
    assert trial.reports == [(0.6, 102_400), (0.7, 204_800), (0.8, 307_200)]


def test_no_trial_is_pruned_during_its_warm_up():
    trial = FakeTrial(prune=True)
    reporter = PruningReporter(trial, warmup=2)
    reporter(record(0.5, 100, 1000))
    reporter(record(0.5, 200, 2000))
    assert trial.asked == 0
    with pytest.raises(optuna.TrialPruned, match="evaluation 3 \\(step 300\\)"):
        reporter(record(0.5, 300, 3000))


def test_a_resumed_trial_counts_its_earlier_evaluations_towards_the_warm_up():
    trial = FakeTrial(prune=True)
    with pytest.raises(optuna.TrialPruned):
        PruningReporter(trial, warmup=2, done=2)(record(0.5, 300, 3000))


def test_an_undefined_criterion_is_not_reported():
    trial = FakeTrial(prune=True)
    PruningReporter(trial, warmup=0)({"step": 1, "rows_seen": 10, "selection": {"criterion": math.nan}})
    PruningReporter(trial, warmup=0)({"step": 1, "rows_seen": 10})  # no validation split
    assert trial.reports == [] and trial.asked == 0
