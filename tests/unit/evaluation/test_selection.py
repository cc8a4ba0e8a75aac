"""Selection criteria: formulas over task.metric names, inferred modes, constraints, and their config errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mtlrec.app.build import check_config, selection_criterion
from mtlrec.config import validate_config
from mtlrec.errors import ConfigError
from mtlrec.evaluation.selection import (
    SelectionCriterion,
    infer_higher_is_better,
    lone_metric,
    parse_metric_formula,
)
from mtlrec.expressions import ExpressionError
from mtlrec.training import EarlyStopping

AVAILABLE = {"click": ["auc", "logloss", "calibration"], "conversion": ["auc", "gauc"], "watch": ["rmse", "mae"]}
METRICS = {
    "click": {"auc": 0.75, "logloss": 0.4, "calibration": 1.1},
    "conversion": {"auc": 0.8, "gauc": 0.6},
    "watch": {"rmse": 3.0, "mae": 2.0},
}


def test_formula_over_dotted_names_evaluates_like_arithmetic():
    formula = parse_metric_formula("0.7 * click.auc + 0.3 * conversion.auc", AVAILABLE)
    assert formula.evaluate(METRICS) == pytest.approx(0.7 * 0.75 + 0.3 * 0.8, abs=1e-15)
    assert dict(formula.names) == {"click_auc": ("click", "auc"), "conversion_auc": ("conversion", "auc")}
    mixed = parse_metric_formula("min(click.auc, conversion.gauc) - abs(click.calibration - 1)", AVAILABLE)
    assert mixed.evaluate(METRICS) == pytest.approx(min(0.75, 0.6) - 0.1, abs=1e-12)


def test_formula_errors_point_into_the_text_as_written():
    with pytest.raises(ExpressionError, match="unknown 'click.gauc'.*choose from click.auc") as info:
        parse_metric_formula("click.auc + click.gauc", AVAILABLE)
    assert 'in "click.auc + click.gauc"' in str(info.value)
    with pytest.raises(ExpressionError, match="unknown name 'auc'.*task.metric"):
        parse_metric_formula("auc * 2", AVAILABLE)
    with pytest.raises(ExpressionError) as info:
        parse_metric_formula("click.auc + * 2", AVAILABLE)
    assert info.value.position == 12 and info.value.text == "click.auc + * 2"


def test_mode_is_inferred_only_when_directions_agree():
    assert infer_higher_is_better(parse_metric_formula("click.auc + conversion.gauc", AVAILABLE), None) is True
    assert infer_higher_is_better(parse_metric_formula("watch.rmse + 2 * watch.mae", AVAILABLE), None) is False
    assert infer_higher_is_better(parse_metric_formula("click.auc - click.logloss", AVAILABLE), "max") is True
    with pytest.raises(ValueError, match="auc \\(max\\), logloss \\(min\\)"):
        infer_higher_is_better(parse_metric_formula("click.auc - click.logloss", AVAILABLE), None)
    with pytest.raises(ValueError, match="calibration \\(target at 1\\)"):
        infer_higher_is_better(parse_metric_formula("abs(click.calibration - 1)", AVAILABLE), None)


def test_lone_target_metric_is_its_distance_to_the_target():
    formula = lone_metric("click", "calibration")
    assert formula.text == "abs(click.calibration - 1)"
    assert formula.evaluate(METRICS) == pytest.approx(0.1, abs=1e-12)
    assert formula.evaluate({"click": {"calibration": 0.8}}) == pytest.approx(0.2, abs=1e-12)
    assert lone_metric("click", "auc").evaluate(METRICS) == 0.75


def test_constraints_are_reported_per_epoch():
    criterion = SelectionCriterion(
        parse_metric_formula("click.auc", AVAILABLE),
        True,
        (parse_metric_formula("conversion.auc >= 0.8", AVAILABLE), parse_metric_formula("watch.mae < 1", AVAILABLE)),
    )
    assert criterion.evaluate(METRICS) == {"criterion": 0.75, "constraints_met": False, "violated": ["watch.mae < 1"]}
    better = {**METRICS, "watch": {"rmse": 1.0, "mae": 0.5}}
    assert criterion.evaluate(better) == {"criterion": 0.75, "constraints_met": True}
    nan = {**better, "conversion": {"auc": math.nan, "gauc": 0.5}}
    assert criterion.evaluate(nan)["constraints_met"] is False  # a NaN metric meets no constraint
    assert criterion.describe() == "max click.auc subject to conversion.auc >= 0.8 and watch.mae < 1"


def test_early_stopping_prefers_epochs_meeting_the_constraints():
    stopper = EarlyStopping(higher_is_better=True, patience=3)
    # (criterion, constraints met): infeasible 0.9 first; a feasible 0.7 beats it; a later infeasible 0.95 does not
    steps = [(0.9, False), (0.7, True), (0.95, False), (0.72, True), (0.71, True)]
    improved = [stopper.update(value, epoch, feasible) for epoch, (value, feasible) in enumerate(steps)]
    assert improved == [True, True, False, True, False]
    assert stopper.best == 0.72 and stopper.best_index == 3 and stopper.best_feasible


def test_early_stopping_without_a_feasible_epoch_picks_by_the_criterion():
    stopper = EarlyStopping(higher_is_better=False, patience=5)
    for epoch, value in enumerate([3.0, 2.0, 2.5]):
        stopper.update(value, epoch, feasible=False)
    assert stopper.best == 2.0 and stopper.best_index == 1 and not stopper.best_feasible
    restored = EarlyStopping(higher_is_better=False, patience=5)
    restored.load_state_dict(stopper.state_dict())
    assert restored.update(9.0, 3, feasible=True)  # the first feasible epoch wins whatever its value


# --------------------------------------------------------------------------- config


def raw_config(**early_stopping: Any) -> dict[str, Any]:
    return {
        "data": {"train": "train.csv", "valid": "valid.csv"},
        "features": [{"name": "user", "kind": "categorical"}],
        "tasks": [
            {"name": "click", "label": {"column": "clicked"}, "metrics": ["auc", "calibration"]},
            {"name": "conversion", "label": {"column": "bought"}, "metrics": ["auc", "logloss"]},
        ],
        "model": {"architecture": "mmoe"},
        "train": {"early_stopping": early_stopping},
    }


def criterion_of(**early_stopping: Any) -> SelectionCriterion:
    config = validate_config(raw_config(**early_stopping))
    check_config(config)
    result = selection_criterion(config)
    assert result is not None
    return result


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        check_config(validate_config(raw))
    return str(info.value)


def test_config_criteria():
    default = criterion_of()
    assert default.criterion.text == "click.auc" and default.higher_is_better
    formula = criterion_of(metric="0.7 * click.auc + 0.3 * conversion.auc", constraints=["conversion.auc >= 0.6"])
    assert formula.higher_is_better and len(formula.constraints) == 1
    assert formula.criterion.evaluate({"click": {"auc": 1.0}, "conversion": {"auc": 0.5}}) == pytest.approx(0.85)
    assert not criterion_of(metric="conversion.logloss").higher_is_better
    calibration = criterion_of(metric="click.calibration")
    assert calibration.criterion.text == "abs(click.calibration - 1)" and not calibration.higher_is_better
    assert criterion_of(metric="click.auc - conversion.logloss", mode="max").higher_is_better
    assert selection_criterion(validate_config({**raw_config(), "train": {"early_stopping": None}})) is None


@pytest.mark.parametrize(
    ("early_stopping", "message"),
    [
        ({"metric": "click.gauc"}, "train.early_stopping.metric: unknown 'click.gauc'"),
        ({"metric": "click.auc +"}, "train.early_stopping.metric: unexpected end"),
        ({"metric": "click.auc > 0.5"}, "train.early_stopping.metric: 'click.auc > 0.5' is a condition"),
        ({"metric": "click.auc - conversion.logloss"}, "train.early_stopping.mode: cannot infer"),
        ({"metric": "conversion.logloss", "mode": "max"}, "train.early_stopping.mode: 'conversion.logloss' is best"),
        (
            {"constraints": ["click.auc", "conversion.auc > 0.5"]},
            "train.early_stopping.constraints[0]: 'click.auc' is not",
        ),
        ({"constraints": ["conversion.auc > 0.5", "watch.auc > 1"]}, "train.early_stopping.constraints[1]: unknown"),
    ],
)
def test_config_errors_name_the_path(early_stopping, message):
    assert message in error_of(raw_config(**early_stopping))


def test_gauc_needs_a_group_column():
    raw = raw_config()
    raw["tasks"][1]["metrics"] = ["auc", "gauc"]
    assert "tasks[1].metrics[1]: 'gauc' needs evaluation.group_by" in error_of(raw)
    raw["evaluation"] = {"group_by": "user"}
    check_config(validate_config(raw))
    raw["tasks"][1]["loss"] = "mse"
    raw["tasks"][1]["metrics"] = ["rmse", "xauc", "calibration"]
    check_config(validate_config(raw))
