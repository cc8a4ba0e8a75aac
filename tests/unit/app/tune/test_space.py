"""The search space: paths naming list items, drawing values of each kind, writing them into the config,
and the errors for a dimension that gives an invalid config."""

from __future__ import annotations

import copy

import optuna
import pytest
from pydantic import ValidationError

from mtlrec.app.tune.space import check_space, expand_path, suggest, trial_config, value_of
from mtlrec.config import SearchDimension, validate_config
from mtlrec.errors import ConfigError

BASE = {
    "data": {"train": "x.csv", "split": {"source": "train", "fractions": {"valid": 0.2}}},
    "features": [
        {"name": "age", "kind": "numeric"},
        {"name": "city", "kind": "categorical"},
        {"name": "tags", "kind": "multi_valued"},
    ],
    "tasks": [{"name": "click", "label": {"column": "click"}}, {"name": "buy", "label": {"column": "buy"}}],
    "model": {"architecture": "mmoe", "params": {"num_experts": 2}},
    "tune": {"space": {"train.lr": {"low": 0.001, "high": 0.1, "log": True}}},
}


def test_a_star_names_every_item_whose_kind_has_the_key():
    assert expand_path(BASE, "features.*.min_count") == ["features.1.min_count", "features.2.min_count"]
    assert expand_path(BASE, "features.*.log1p") == ["features.0.log1p"]  # numeric only


def test_items_by_name_or_index_and_plain_keys():
    assert expand_path(BASE, "features.city.embedding_dim") == ["features.1.embedding_dim"]
    assert expand_path(BASE, "tasks.buy.weight") == ["tasks.1.weight"]
    assert expand_path(BASE, "tasks.0.weight") == ["tasks.0.weight"]
    assert expand_path(BASE, "model.params.dropout") == ["model.params.dropout"]


@pytest.mark.parametrize(
    ("path", "message"),
    [("features.price.min_count", "features has no item named 'price'"), ("tasks.*.unknown", "tasks has no item with")],
)
def test_a_path_matching_no_item_is_an_error_naming_it(path, message):
    with pytest.raises(ConfigError, match=f"tune.space.{path}: {message}"):
        expand_path(BASE, path)


def test_trial_values_are_written_and_the_tune_section_dropped():
    values = {"features.*.min_count": 5, "model.params.expert_hidden_units": [32, 16], "train.lr": 0.01}
    raw = trial_config(BASE, values)
    assert "tune" not in raw and "tune" in BASE  # the base is left alone
    assert [f.get("min_count") for f in raw["features"]] == [None, 5, 5]
    config = validate_config(raw)
    assert config.model.params["expert_hidden_units"] == [32, 16] and config.train.lr == 0.01


def test_each_dimension_kind_draws_its_type_within_its_bounds():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    dimensions = {
        "a": SearchDimension(low=1, high=50, log=True),
        "b": SearchDimension(low=0.0, high=0.5),
        "c": SearchDimension(low=16, high=64, step=16),
        "d": SearchDimension(choices=[[128], [256, 128], "x", 3]),
    }
    seen = []
    for _ in range(30):
        trial = study.ask()
        values = {name: suggest(trial, name, dimension) for name, dimension in dimensions.items()}
        study.tell(trial, 0.0)
        seen.append(values)
        assert isinstance(values["a"], int) and 1 <= values["a"] <= 50
        assert isinstance(values["b"], float) and 0.0 <= values["b"] <= 0.5
        assert values["c"] in (16, 32, 48, 64)
        assert values["d"] in ([128], [256, 128], "x", 3)
        stored = trial.params["d"]  # a list choice is stored as its JSON text and read back as the list
        assert value_of("d", dimensions["d"], stored) == values["d"]
    assert {str(v["d"]) for v in seen} == {"[128]", "[256, 128]", "x", "3"}


@pytest.mark.parametrize(
    ("dimension", "message"),
    [
        ({"low": 1.0}, "a range needs both low and high"),
        ({"low": 2, "high": 1}, "low \\(2\\) must be below high \\(1\\)"),
        ({"low": 0.0, "high": 1.0, "log": True}, "log needs low > 0"),
        ({"choices": [1], "low": 0, "high": 1}, "either choices or low and high"),
        ({"choices": []}, "at least 1 item"),
    ],
)
def test_a_malformed_dimension_is_a_config_error(dimension, message):
    raw = copy.deepcopy(BASE)
    raw["tune"]["space"] = {"train.lr": dimension}
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)
    with pytest.raises(ValidationError):
        SearchDimension(**dimension)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.lr": {"low": -1.0, "high": 0.1}}, r"tune.space.train.lr = -1.0 gives an invalid config"),
        ({"model.embedding_dropout": {"low": 0.0, "high": 1.5}}, "model.embedding_dropout = 1.5"),
        ({"model.params.no_such_param": {"choices": [1, 2]}}, "no_such_param"),
        ({"weighting.name": {"choices": ["equal", "nonsense"]}}, "'nonsense'"),
    ],
)
def test_a_dimension_whose_end_gives_an_invalid_config_is_an_error_naming_it(space, message):
    raw = copy.deepcopy(BASE)
    raw["tune"]["space"] = space
    with pytest.raises(ConfigError, match=message):
        check_space(raw, validate_config(raw))
