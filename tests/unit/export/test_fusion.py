"""Score fusion: hand-computed values, numpy vs torch agreement, and config errors that name the path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mtlrec.app import build
from mtlrec.config import load_config
from mtlrec.errors import ConfigError
from mtlrec.export import Fusion, FusionModule

CENSUS = Path(__file__).resolve().parents[3] / "configs" / "census" / "mmoe.yaml"
CTR = np.array([0.1, 0.5, 0.9, 0.0])
CVR = np.array([0.2, 0.04, 1.0, 0.3])
DURATION = np.array([10.0, 0.0, 100.0, 3.0])
SCORES = {"ctr": CTR, "cvr": CVR, "duration": DURATION}


def _torch(fusion: Fusion, scores: dict[str, np.ndarray]) -> np.ndarray:
    tensors = {task: torch.tensor(values, dtype=torch.float32) for task, values in scores.items()}
    return FusionModule(fusion)(tensors).numpy()


@pytest.mark.parametrize(
    ("fusion", "expected"),
    [
        (Fusion("weighted_sum", {"ctr": 1.0, "cvr": 2.0}), [0.5, 0.58, 2.9, 0.6]),
        (Fusion("weighted_product", {"ctr": 1.0, "cvr": 0.5}), [0.1 * 0.2**0.5, 0.5 * 0.2, 0.9, 0.0]),
        (Fusion.from_formula("ctr * log1p(duration)"), [0.1 * np.log(11), 0.0, 0.9 * np.log(101), 0.0]),
        (Fusion.from_formula("ctr^0.5 * cvr"), [0.1**0.5 * 0.2, 0.5**0.5 * 0.04, 0.9**0.5, 0.0]),
        (Fusion.from_formula("max(ctr, cvr) - min(ctr, cvr)"), [0.1, 0.46, 0.1, 0.3]),
        (Fusion.first("cvr"), CVR),
    ],
)
def test_fusion_values_match_hand_computed_numbers(fusion, expected):
    np.testing.assert_allclose(fusion.evaluate_numpy(SCORES), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_torch(fusion, SCORES), expected, rtol=2e-6, atol=1e-7)


def test_numpy_and_torch_agree_on_random_scores():
    rng = np.random.default_rng(0)
    scores = {"ctr": rng.uniform(0, 1, 1000), "cvr": rng.uniform(0, 1, 1000), "duration": rng.exponential(60, 1000)}
    scores = {task: values.astype(np.float32).astype(np.float64) for task, values in scores.items()}
    for fusion in (
        Fusion("weighted_sum", {"ctr": 0.7, "cvr": -1.5, "duration": 0.01}),
        Fusion("weighted_product", {"ctr": 1.0, "cvr": 0.3, "duration": 0.25}),
        Fusion.from_formula("sigmoid(3 * ctr - 1) * pow(cvr, 0.5) + exp(-duration / 100) + clip(ctr, 0.2, 0.8)"),
    ):
        np.testing.assert_allclose(_torch(fusion, scores), fusion.evaluate_numpy(scores), rtol=1e-5, atol=1e-6)


def test_fusion_round_trips_through_a_dict():
    for fusion in (Fusion("weighted_product", {"ctr": 2.0}), Fusion.from_formula("ctr * cvr")):
        assert Fusion.from_dict(fusion.to_dict()) == fusion
    assert Fusion.from_formula("ctr^0.5 * log1p(duration)").names == ["ctr", "duration"]


def test_fusion_rejects_unknown_and_multi_class_tasks():
    fusion = Fusion.from_formula("ctrr * 2")
    with pytest.raises(ValueError, match="unknown task 'ctrr'; tasks are ctr, cvr"):
        fusion.check_tasks(["ctr", "cvr"], ["ctr", "cvr", "category"])
    with pytest.raises(ValueError, match="'category' is multi-class"):
        Fusion("weighted_sum", {"category": 1.0}).check_tasks(["ctr"], ["ctr", "category"])
    with pytest.raises(ValueError, match="condition"):
        Fusion.from_formula("ctr > 0.5").check_tasks(["ctr"], ["ctr"])
    with pytest.raises(ValueError, match="finite"):
        Fusion("weighted_sum", {"ctr": float("nan")})


def _config(*overrides: str):
    return load_config(CENSUS, list(overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["serving.fusion.formula=ctrr * 2"],
            "serving.fusion.formula: unknown task 'ctrr'; tasks are income, never_married",
        ),
        (["serving.fusion.formula=income *"], "serving.fusion.formula: "),
        (["serving.fusion.weighted_sum={income: 1, nope: 2}"], "serving.fusion.weighted_sum.nope: unknown task 'nope'"),
        (["serving.fusion.weighted_product={nope: 0.5}"], "serving.fusion.weighted_product.nope: unknown task"),
    ],
)
def test_bad_fusion_config_names_the_path(overrides, message):
    config = _config(*overrides)
    with pytest.raises(ConfigError) as caught:
        build.check_config(config)
    assert str(caught.value).startswith(message)


def test_fusion_config_needs_exactly_one_kind():
    with pytest.raises(ConfigError, match="serving.fusion"):
        _config("serving.fusion={formula: income, weighted_sum: {income: 1}}")
    with pytest.raises(ConfigError, match="serving.fusion"):
        _config("serving.fusion={}")


def test_fusion_from_config_and_command_line():
    config = _config("serving.fusion.weighted_sum={income: 1.0, never_married: 0.2}")
    assert build.build_fusion(config) == Fusion("weighted_sum", {"income": 1.0, "never_married": 0.2})
    assert build.build_fusion(config, "income * never_married") == Fusion.from_formula("income * never_married")
    assert build.build_fusion(_config()) is None
    with pytest.raises(ConfigError, match="--fusion: unknown task 'x'"):
        build.build_fusion(config, "x + 1")


def test_multi_class_task_in_fusion_config_is_rejected():
    marital = "{name: marital, label: {column: marital_stat, classes: [a, b]}, loss: softmax_ce}"
    config = _config(f"tasks[1]={marital}", "serving.fusion.formula=income + marital")
    with pytest.raises(ConfigError, match="serving.fusion.formula: task 'marital' is multi-class"):
        build.build_fusion(config)


def test_the_shipped_configs_declare_valid_fusions():
    configs = CENSUS.parents[1]
    declared = {
        configs / "census" / "ple.yaml": Fusion("weighted_sum", {"income": 1.0, "never_married": 0.2}),
        configs / "cascade" / "esmm.yaml": Fusion.from_formula("ctr * cvr^0.5"),
    }
    for path, fusion in declared.items():
        assert build.build_fusion(load_config(path)) == fusion, path
