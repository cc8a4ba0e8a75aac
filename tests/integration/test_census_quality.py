"""Quality guard: MMoE on the full census-income Group 1 protocol must learn well (not only run).

Three epochs (about half a minute) instead of the demo's ten; the thresholds sit above the MMoE
paper's mean test AUC (0.9359 income, 0.9927 never married) with room for platform numerics.
"""

from __future__ import annotations

from pathlib import Path

from mtlrec.app import api
from mtlrec.config import load_config

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "census" / "mmoe.yaml"


def test_census_mmoe_beats_the_paper(tmp_path, monkeypatch):
    monkeypatch.chdir(CONFIG.parents[2])  # the config's data paths are relative to the repository
    config = load_config(CONFIG, ["train.epochs=3", "train.batch_size=512", "train.lr=0.002"])
    metrics = api.train(config, tmp_path / "run", show_progress_bar=False)
    assert metrics["test"]["income"]["auc"] >= 0.945
    assert metrics["test"]["never_married"]["auc"] >= 0.993
