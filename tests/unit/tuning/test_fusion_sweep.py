"""Fusion sweeps: the simplex grid, the Pareto front, metrics of fused rankings, constrained choice."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from mtlrec.config.models import FusionConfig
from mtlrec.export.fusion import Fusion
from mtlrec.tuning import (
    Sweep,
    TaskLabels,
    choose,
    fusion_grid,
    fusion_yaml,
    pareto_front,
    simplex_grid,
    sweep_fusions,
    sweep_rows,
)


def _brute_force_front(points: np.ndarray) -> np.ndarray:
    values = np.where(np.isnan(points), -np.inf, points)
    front = []
    for i, p in enumerate(values):
        dominated = any(all(q >= p) and any(q > p) for j, q in enumerate(values) if j != i)
        front.append(not dominated)
    return np.array(front)


@pytest.mark.parametrize("seed", range(6))
def test_pareto_front_equals_a_brute_force_check(seed):
    rng = np.random.default_rng(seed)
    dims = 2 + seed % 3
    points = rng.integers(0, 6, size=(80, dims)).astype(float)  # coarse values: ties and duplicates
    points[rng.random(points.shape) < 0.03] = np.nan
    np.testing.assert_array_equal(pareto_front(points), _brute_force_front(points))


def test_pareto_front_in_blocks_equals_one_block(monkeypatch):
    points = np.random.default_rng(1).random((300, 3))
    whole = pareto_front(points)
    monkeypatch.setattr("mtlrec.tuning.pareto._BLOCK", 7)
    np.testing.assert_array_equal(pareto_front(points), whole)


@pytest.mark.parametrize(("dims", "steps"), [(2, 1), (2, 10), (3, 4), (4, 3)])
def test_simplex_grid_is_every_composition_once(dims, steps):
    grid = simplex_grid(dims, steps)
    expected = {c for c in itertools.product(range(steps + 1), repeat=dims) if sum(c) == steps}
    assert len(grid) == math.comb(steps + dims - 1, dims - 1) == len(expected)
    assert {tuple(int(round(v * steps)) for v in row) for row in grid} == expected
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)


def test_fusion_grid_needs_two_tasks_and_known_kinds():
    assert len(fusion_grid(["a", "b"], 4)) == 10
    with pytest.raises(ValueError, match="at least two"):
        fusion_grid(["a"], 4)
    with pytest.raises(ValueError, match="formula"):
        fusion_grid(["a", "b"], 4, ["formula"])


def _gauc_by_loop(labels, scores, groups):
    total, weight = 0.0, 0
    for group in np.unique(groups):
        rows = groups == group
        if len(np.unique(labels[rows])) == 2:
            total += rows.sum() * roc_auc_score(labels[rows], scores[rows])
            weight += rows.sum()
    return total / weight


def test_each_setting_is_scored_on_every_task_label_within_its_sample_space():
    rng = np.random.default_rng(0)
    n = 400
    click, buy = rng.random(n), rng.random(n)
    click_label = (rng.random(n) < click).astype(float)
    buy_label = np.where(click_label == 1, (rng.random(n) < buy).astype(float), np.nan)  # only clicked rows
    groups = rng.integers(0, 12, n)
    scores = {"click": click.astype(np.float32), "buy": buy.astype(np.float32)}
    targets = [TaskLabels("click", "binary", click_label), TaskLabels("buy", "binary", buy_label)]
    fusions = fusion_grid(["click", "buy"], 4)
    sweep = sweep_fusions(scores, targets, fusions, groups)
    assert sweep.metric_names == ["click.auc", "click.gauc", "buy.auc", "buy.gauc"]
    for row, fusion in enumerate(fusions):
        w = fusion.weights
        if fusion.kind == "weighted_sum":
            fused = w["click"] * click + w["buy"] * buy
        else:
            fused = click ** w["click"] * buy ** w["buy"]
        clicked = click_label == 1
        expected = [
            roc_auc_score(click_label, fused),
            _gauc_by_loop(click_label, fused, groups),
            roc_auc_score(buy_label[clicked], fused[clicked]),
            _gauc_by_loop(buy_label[clicked], fused[clicked], groups[clicked]),
        ]
        np.testing.assert_allclose(sweep.values[row], expected, atol=1e-6)
    np.testing.assert_array_equal(sweep.front, _brute_force_front(sweep.values))


def test_a_regression_task_is_scored_by_xauc_and_products_need_positive_scores():
    rng = np.random.default_rng(3)
    watch, click = rng.normal(size=50), rng.random(50)
    targets = [
        TaskLabels("click", "binary", (rng.random(50) < 0.5).astype(float)),
        TaskLabels("watch", "regression", watch),
    ]
    scores = {"click": click, "watch": watch}
    sweep = sweep_fusions(scores, targets, fusion_grid(["click", "watch"], 2, ["weighted_sum"]))
    assert sweep.metric_names == ["click.auc", "watch.xauc"]
    corner = next(i for i, fusion in enumerate(sweep.fusions) if fusion.weights["watch"] == 1.0)
    assert sweep.values[corner, 1] == pytest.approx(1.0)  # ranking by watch alone orders watch perfectly
    with pytest.raises(ValueError, match="positive scores"):
        sweep_fusions(scores, targets, fusion_grid(["click", "watch"], 2, ["weighted_product"]))


def _hand_made_sweep() -> Sweep:
    fusions = [Fusion("weighted_sum", {"click": 1 - w, "conversion": w}) for w in (0.0, 0.25, 0.5, 0.75, 1.0)]
    values = np.array(
        [  # click.gauc, conversion.auc
            [0.70, 0.60],
            [0.69, 0.70],
            [0.66, 0.78],
            [0.62, 0.80],
            [0.55, 0.81],
        ]
    )
    return Sweep(fusions, ["click.gauc", "conversion.auc"], values, pareto_front(values))


def test_choice_maximises_the_criterion_among_settings_meeting_the_constraints():
    sweep = _hand_made_sweep()
    assert choose(sweep, "click.gauc", ["conversion.auc >= 0.75"]).index == 2
    assert choose(sweep, "click.gauc", ["conversion.auc >= 0.8"]).index == 3
    assert choose(sweep, "click.gauc").index == 0
    assert choose(sweep, "conversion.auc", ["click.gauc > 0.6"]).index == 3
    assert choose(sweep).index == 2  # the mean of both metrics: 0.72 at index 2
    both = choose(sweep, "0.5 * click.gauc + 0.5 * conversion.auc", ["conversion.auc >= 0.6", "click.gauc >= 0.65"])
    assert both.index == 2 and "subject to" in both.message


def test_no_setting_meeting_the_constraints_is_reported_with_the_ranges():
    choice = choose(_hand_made_sweep(), "click.gauc", ["conversion.auc >= 0.9"])
    assert choice.index is None
    assert "conversion.auc 0.6000..0.8100" in choice.message


@pytest.mark.parametrize(
    ("maximize", "constraints", "match"),
    [
        ("click.auc", [], "click.auc"),
        ("click.gauc", ["conversion.auc"], "not a condition"),
        ("click.gauc > 1", [], "condition"),
    ],
)
def test_bad_criteria_are_errors(maximize, constraints, match):
    with pytest.raises(ValueError, match=match):
        choose(_hand_made_sweep(), maximize, constraints)


def test_the_chosen_fusion_is_a_valid_config_snippet_and_rows_flag_it():
    sweep = _hand_made_sweep()
    snippet = yaml.safe_load(fusion_yaml(sweep.fusions[3]))
    fusion = FusionConfig.model_validate(snippet["serving"]["fusion"])
    assert fusion.weighted_sum == {"click": 0.25, "conversion": 0.75}
    rows = sweep_rows(sweep, chosen=3)
    assert [row["chosen"] for row in rows] == [0, 0, 0, 1, 0]
    assert rows[3]["weight.conversion"] == 0.75 and rows[3]["conversion.auc"] == 0.80
    assert [row["pareto"] for row in rows] == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("metrics", [2, 3])
def test_the_pareto_plot_is_a_png_for_two_or_more_objectives(metrics):
    from mtlrec.tuning.plots import pareto_png

    values = np.random.default_rng(0).random((12, metrics))
    fusions = [Fusion(kind, {"a": 0.5, "b": 0.5}) for kind in ["weighted_sum", "weighted_product"] * 6]
    sweep = Sweep(fusions, [f"t{k}.auc" for k in range(metrics)], values, pareto_front(values))
    png = pareto_png(sweep, chosen=3)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
