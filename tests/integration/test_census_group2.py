"""The Group 2 census configs (education ≥ college, never married): labels, inputs and model twins."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from scipy import stats

from mtlrec.app.experiments.census import ARCHITECTURES, label_correlation
from mtlrec.config import config_to_dict, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "census"
COLLEGE = {
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
}


TWINS = sorted(path.stem for path in (CONFIGS / "group2").glob("*.yaml") if path.stem != "base")


def test_every_reproduced_architecture_and_industrial_model_has_a_group_2_twin():
    assert set(ARCHITECTURES) | {"dbmtl", "pepnet", "adatt", "stem", "home"} <= set(TWINS)


@pytest.mark.parametrize("architecture", TWINS)
def test_group_2_twins_have_group_1_models_and_group_2_tasks(architecture):
    group1 = config_to_dict(load_config(CONFIGS / f"{architecture}.yaml"))
    group2 = config_to_dict(load_config(CONFIGS / "group2" / f"{architecture}.yaml"))
    assert group2["model"] == group1["model"] and group2["features"] == group1["features"]
    assert group2.get("feature_groups") == group1.get("feature_groups")
    assert group2["data"] == group1["data"]
    assert [task["name"] for task in group2["tasks"]] == ["education", "never_married"]
    assert group2["train"]["early_stopping"]["metric"] == "education.auc"
    inputs = {feature.get("column") or feature["name"] for feature in group2["features"]}
    assert not inputs & {"education", "marital_stat", "income", "instance_weight"}


def test_label_correlation_matches_a_direct_computation(census_slice):
    config = load_config(CONFIGS / "group2" / "mmoe.yaml", [f"data.train={census_slice['train']}"])
    with gzip.open(census_slice["train"], "rt") as handle:
        rows = [[value.strip() for value in row] for row in csv.reader(handle)]
    education = [float(row[4] in COLLEGE) for row in rows]
    never_married = [float(row[7] == "Never married") for row in rows]
    expected = stats.pearsonr(education, never_married).statistic
    assert label_correlation(config) == pytest.approx(expected)
    assert expected < -0.1  # college graduates are less often never married (adults vs children)
