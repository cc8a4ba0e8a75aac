"""The composition root for the industrial models: groups read as tensors, field widths, per-task embedding
tables, per-task feature gates, and MetaBalance's target tasks."""

from __future__ import annotations

import pytest
from tests.small_runs import good_rows, write_csv

from mtlrec.app import build
from mtlrec.config import validate_config
from mtlrec.data.reading import read_split
from mtlrec.errors import ConfigError


def _config(tmp_path, **changes):
    raw = {
        "data": {"train": str(write_csv(tmp_path / "train.csv", good_rows()))},
        "features": [
            {"name": "age", "kind": "numeric"},
            {"name": "city", "kind": "categorical"},
            {"name": "age_bucket", "column": "age", "kind": "numeric", "buckets": 4},
        ],
        "tasks": [
            {"name": "click", "label": {"column": "click"}},
            {"name": "buy", "label": {"column": "buy", "positive": ["yes"], "negative": ["no"]}},
        ],
        "model": {"architecture": "mmoe", "embedding_dim": 3},
    }
    raw.update(changes)
    return validate_config(raw)


def _model(config):
    build.check_config(config)
    pipeline = build.build_pipeline(config)
    raw = read_split(config.data.train, pipeline, build.read_options(config), with_labels=True)
    pipeline.fit(raw.table, raw.labels)
    return build.build_model(config, pipeline)


PEPNET_GROUPS = {"all": ["age", "city", "age_bucket"], "domain": ["city"], "prior": ["city", "age_bucket"]}


def test_pepnet_gets_its_groups_widths_and_field_widths(tmp_path):
    config = _config(
        tmp_path, feature_groups=PEPNET_GROUPS, model={"architecture": "pepnet", "embedding_dim": 3,
                                                       "input_groups": ["all"]}
    )
    architecture = _model(config).architecture
    assert architecture.epnet.hidden.in_features == 3 + 7  # domain (city: 3) + the input (age 1, city 3, bucket 3)
    assert architecture.epnet.output.out_features == 3  # one gate per field
    assert architecture.field_spread.sum(1).tolist() == [1.0, 3.0, 3.0]
    assert architecture.towers["click"].gates[0].hidden.in_features == 6 + 7  # prior (city, bucket) + O_ep


def test_a_group_read_as_a_tensor_must_exist(tmp_path):
    config = _config(tmp_path, model={"architecture": "pepnet"})
    with pytest.raises(ConfigError, match="reads the group 'domain'"):
        build.check_config(config)


def test_supplied_widths_cannot_be_set_in_the_config(tmp_path):
    config = _config(tmp_path, feature_groups=PEPNET_GROUPS,
                     model={"architecture": "pepnet", "input_groups": ["all"], "params": {"field_dims": [1, 1, 1]}})
    with pytest.raises(ConfigError, match="model.params.field_dims: unknown parameter"):
        build.check_config(config)


def test_stem_gets_a_shared_and_a_per_task_copy_of_every_table(tmp_path):
    model = _model(_config(tmp_path, model={"architecture": "stem", "embedding_dim": 3}))
    assert list(model.task_inputs) == ["click", "buy"]
    tables = model.embedding_parameters()
    assert len(tables) == 3 * len(model.inputs.embedding_parameters())
    assert len({id(table) for table in tables}) == len(tables)


def test_feature_selection_gates_fields_or_groups(tmp_path):
    groups = {"numbers": ["age", "age_bucket"], "places": ["city"]}
    fields = _model(_config(tmp_path, feature_groups=groups, model={"architecture": "mmoe", "feature_selection": {}}))
    assert fields.feature_gates.field_names == ["age", "age_bucket", "city"]
    model = {"architecture": "mmoe", "feature_selection": {"over": "groups", "sparsity": 0.1}}
    grouped = _model(_config(tmp_path, feature_groups=groups, model=model))
    assert grouped.feature_gates.field_names == ["numbers", "places"]
    assert grouped.feature_gates.spread.sum(1).tolist() == [17.0, 16.0] and grouped.feature_gates.sparsity == 0.1


@pytest.mark.parametrize("architecture", ["stem", "single_task"])
def test_feature_selection_with_per_task_inputs_already_is_a_config_error(tmp_path, architecture):
    config = _config(tmp_path, model={"architecture": architecture, "feature_selection": {}})
    with pytest.raises(ConfigError, match="model.feature_selection"):
        build.check_config(config)


def test_metabalance_targets_the_main_tasks_by_default_or_the_named_ones(tmp_path):
    tasks = [
        {"name": "click", "label": {"column": "click"}, "role": "auxiliary"},
        {"name": "buy", "label": {"column": "buy", "positive": ["yes"], "negative": ["no"]}},
    ]
    config = _config(tmp_path, tasks=tasks, weighting={"name": "metabalance"})
    assert build.weighting_params(config)["target_tasks"] == [1]
    all_main = _config(tmp_path, weighting={"name": "metabalance"})
    assert build.weighting_params(all_main)["target_tasks"] == [0]  # the first task, as torch-rechub
    named = _config(tmp_path, weighting={"name": "metabalance", "params": {"target_tasks": ["buy"]}})
    assert build.weighting_params(named)["target_tasks"] == [1]
    unknown = _config(tmp_path, weighting={"name": "metabalance", "params": {"target_tasks": ["like"]}})
    with pytest.raises(ConfigError, match="target_tasks: unknown or untrained task"):
        build.weighting_params(unknown)
