"""Every search config the project ships is valid at both ends of every dimension."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtlrec.app.tune.space import check_space
from mtlrec.config import load_raw_config, validate_config

REPO = Path(__file__).resolve().parents[2]
SEARCHES = sorted(
    str(path.relative_to(REPO))
    for path in [*REPO.glob("configs/**/tune/*.yaml"), *REPO.glob("benchmarks/configs/*tune*.yaml")]
)


def test_the_shipped_searches_are_found():
    assert {"configs/census/tune/mmoe.yaml", "benchmarks/configs/synth_mmoe_tune.yaml"} <= set(SEARCHES)


@pytest.mark.parametrize("path", SEARCHES)
def test_every_end_of_every_dimension_gives_a_valid_config(path, monkeypatch):
    monkeypatch.chdir(REPO)
    raw = load_raw_config(REPO / path)
    config = validate_config(raw)
    assert config.tune is not None and config.train.eval_every_steps
    check_space(raw, config)
