"""single_task_baseline: the widths, towers and training budget of the derived single-task config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtlrec.app import build
from mtlrec.app.build.baseline import single_task_baseline
from mtlrec.app.build.groups import model_input_groups
from mtlrec.architectures import ARCHITECTURES
from mtlrec.config import config_to_dict, load_config
from mtlrec.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[4] / "configs"

# one task's path through each census config, read off the YAML files by hand
EXPECTED_HIDDEN = {
    "single_task": [256, 128],
    "shared_bottom": [256, 128],
    "omoe": [128, 64],
    "mmoe": [128, 64],
    "multi_level_mmoe": [128, 64, 128, 64],
    "cgc": [128, 64],
    "ple": [128, 64, 64],
    "cross_stitch": [128, 64],
    "sluice": [128, 64],
    "l2_soft_sharing": [256, 128],
    "star": [256, 128],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_HIDDEN))
def test_census_baselines_keep_everything_but_the_sharing(name):
    config = load_config(CONFIGS / "census" / f"{name}.yaml")
    baseline = single_task_baseline(config)
    build.check_config(baseline)
    assert baseline.model.architecture == "single_task"
    groups = baseline.model.input_groups
    assert groups == model_input_groups(config) and "domain" not in groups  # star's domain stays out
    assert baseline.model.params["hidden_units"] == EXPECTED_HIDDEN[name]
    assert baseline.model.params["tower_hidden_units"] == [32]
    assert baseline.model.embedding_dim == config.model.embedding_dim
    original, derived = config_to_dict(config), config_to_dict(baseline)
    for section in ("data", "features", "tasks", "train"):
        assert derived[section] == original[section], section


def test_the_architecture_defaults_fill_what_the_config_leaves_out():
    config = load_config(CONFIGS / "census" / "mmoe.yaml", ["model.params={}", "weighting.name=uncertainty"])
    baseline = single_task_baseline(config)
    # MMoE's own defaults (expert (64,), tower (32,)), not SingleTask's tower default (64,)
    assert baseline.model.params["hidden_units"] == [64] and baseline.model.params["tower_hidden_units"] == [32]
    assert baseline.weighting.name == "equal"


def test_per_task_towers_and_dropout_carry_over():
    overrides = ["tasks[0].tower_hidden_units=[16, 8]", "model.params.dropout=0.2"]
    baseline = single_task_baseline(load_config(CONFIGS / "census" / "cgc.yaml", overrides))
    params = build.architecture_params(baseline)
    assert params["tower_hidden_units"] == {"income": [16, 8], "never_married": [32]}
    assert params["dropout"] == 0.2
    model = ARCHITECTURES["single_task"](input_dim=12, task_names=["income", "never_married"], **params)
    widths = [layer.out_features for layer in model.bottoms["income"].modules() if hasattr(layer, "out_features")]
    assert widths == [128, 64]


def test_funnel_architectures():
    esmm = single_task_baseline(load_config(CONFIGS / "cascade" / "esmm.yaml"))
    assert esmm.model.params["hidden_units"] == [] and esmm.model.params["tower_hidden_units"] == [128, 64, 32]
    aitm = single_task_baseline(load_config(CONFIGS / "cascade" / "aitm.yaml"))
    assert aitm.model.params["hidden_units"] == [128, 64] and aitm.model.params["tower_hidden_units"] == [32]


def test_bad_architecture_and_params_are_config_errors():
    with pytest.raises(ConfigError, match="unknown architecture 'mmeo'"):
        single_task_baseline(load_config(CONFIGS / "census" / "mmoe.yaml", ["model.architecture=mmeo"]))
    with pytest.raises(ConfigError, match="model.params.num_expert"):
        single_task_baseline(load_config(CONFIGS / "census" / "mmoe.yaml", ["model.params.num_expert=3"]))
