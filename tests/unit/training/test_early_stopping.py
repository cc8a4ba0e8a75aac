"""EarlyStopping against hand-computed sequences."""

from __future__ import annotations

import math

import pytest

from mtlrec.training import EarlyStopping


def run(stopper: EarlyStopping, values: list[float]) -> list[tuple[bool, int, bool]]:
    """(improved, epochs without improvement, should_stop) after each epoch."""
    trace = []
    for epoch, value in enumerate(values):
        improved = stopper.update(value, epoch)
        trace.append((improved, stopper.evaluations_without_improvement, stopper.should_stop))
    return trace


def test_higher_is_better():
    stopper = EarlyStopping(higher_is_better=True, patience=2)
    trace = run(stopper, [0.50, 0.60, 0.60, 0.55, 0.70, 0.65, 0.69])
    assert trace == [
        (True, 0, False),  # first value is always the best so far
        (True, 0, False),
        (False, 1, False),  # equal is not better
        (False, 2, True),
        (True, 0, False),  # an improvement resets the counter
        (False, 1, False),
        (False, 2, True),
    ]
    assert stopper.best == 0.70 and stopper.best_index == 4


def test_lower_is_better():
    stopper = EarlyStopping(higher_is_better=False, patience=3)
    trace = run(stopper, [1.0, 0.8, 0.9, 0.7, 0.7, 0.75, 0.71])
    assert [t[0] for t in trace] == [True, True, False, True, False, False, False]
    assert [t[1] for t in trace] == [0, 0, 1, 0, 1, 2, 3]
    assert [t[2] for t in trace] == [False] * 6 + [True]
    assert stopper.best == 0.7 and stopper.best_index == 3


def test_patience_one_stops_at_the_first_non_improvement():
    stopper = EarlyStopping(higher_is_better=True, patience=1)
    assert run(stopper, [0.1, 0.2, 0.2]) == [(True, 0, False), (True, 0, False), (False, 1, True)]


def test_min_delta_higher_is_better():
    # binary fractions, so best + min_delta is exact: an improvement must exceed best by more than 0.25
    stopper = EarlyStopping(higher_is_better=True, patience=5, min_delta=0.25)
    trace = run(stopper, [1.0, 1.125, 1.25, 1.375, 1.5, 1.625])
    assert [t[0] for t in trace] == [True, False, False, True, False, False]
    assert stopper.best == 1.375 and stopper.best_index == 3
    assert stopper.evaluations_without_improvement == 2


def test_min_delta_lower_is_better():
    stopper = EarlyStopping(higher_is_better=False, patience=2, min_delta=0.5)
    trace = run(stopper, [4.0, 3.5, 3.25, 3.0, 2.5])
    # 3.5 is not below 4.0 - 0.5; 3.25 is; 3.0 is not below 3.25 - 0.5; 2.5 is
    assert [t[0] for t in trace] == [True, False, True, False, True]
    assert [t[1] for t in trace] == [0, 1, 0, 1, 0]
    assert stopper.best == 2.5 and stopper.best_index == 4


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_nan_never_improves(higher_is_better):
    stopper = EarlyStopping(higher_is_better=higher_is_better, patience=2)
    assert stopper.update(math.nan, 0) is False
    assert stopper.best is None and stopper.best_index == -1
    assert stopper.evaluations_without_improvement == 1
    assert stopper.update(0.5, 1) is True
    assert stopper.best == 0.5 and stopper.best_index == 1
    assert stopper.update(math.nan, 2) is False
    assert stopper.update(math.nan, 3) is False
    assert stopper.best == 0.5 and stopper.should_stop
    # later values are still compared with the best real value
    assert stopper.update(0.9 if higher_is_better else 0.1, 4) is True


def test_fresh_stopper_state():
    stopper = EarlyStopping(higher_is_better=True, patience=2)
    assert stopper.best is None and stopper.best_index == -1 and not stopper.should_stop


def test_state_dict_round_trip_continues_identically():
    values = [0.3, 0.5, 0.4, 0.45, 0.6, 0.58, 0.57, 0.59]
    original = EarlyStopping(higher_is_better=True, patience=3, min_delta=0.01)
    run(original, values[:4])
    state = original.state_dict()
    assert state == {"best": 0.5, "best_index": 1, "best_feasible": True, "evaluations_without_improvement": 2}

    restored = EarlyStopping(higher_is_better=True, patience=3, min_delta=0.01)
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    assert restored.should_stop == original.should_stop
    for epoch, value in enumerate(values[4:], start=4):
        assert restored.update(value, epoch) == original.update(value, epoch)
        assert restored.state_dict() == original.state_dict()
        assert restored.should_stop == original.should_stop
    assert restored.best == 0.6 and restored.best_index == 4 and restored.should_stop
