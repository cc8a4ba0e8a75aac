"""The training loop through the CLI: early stopping stops (and a stopped run stays stopped on resume), and
per-task sample weights change what is learned, in memory and streaming."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from tests.small_runs import good_rows, run_cli, train_run, write_config, write_csv

STOPPING_CONFIG = """
data:
  train: {train}
  split: {{source: train, fractions: {{valid: 0.25}}, seed: 1}}
features:
  - {{name: age, kind: numeric}}
  - {{name: city, kind: categorical}}
tasks:
  - {{name: click, label: {{column: click}}}}
  - {{name: buy, label: {{column: buy, positive: ["yes"], negative: ["no"]}}}}
model: {{architecture: mmoe, embedding_dim: 4, params: {{num_experts: 2, expert_hidden_units: [8]}}}}
train:
  epochs: 6
  batch_size: 16
  early_stopping: {{metric: click.auc, patience: 1, min_delta: 1.0}}
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_early_stopping_stops_and_a_stopped_run_stays_stopped_on_resume(tmp_path, capsys):
    """No AUC improves by min_delta 1.0: epoch 1 is the best, epoch 2 exhausts patience 1, training stops."""
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows(80)), STOPPING_CONFIG)
    code, err = train_run(tmp_path, config, capsys)
    assert code == 0, err
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2]
    steps = [record["step"] for record in history]
    expected = f"early stopping after epoch 2, step {steps[1]} (best: epoch 1, step {steps[0]})"
    assert expected in (run / "train.log").read_text()
    weights, metrics = _sha(run / "model.safetensors"), (run / "metrics.json").read_text()

    code, err = train_run(tmp_path, config, capsys, "--resume", "--set", "train.epochs=9")
    assert code == 0, err
    assert len(json.loads((run / "history.json").read_text())) == 2  # no epoch trained after the stop
    assert _sha(run / "model.safetensors") == weights and (run / "metrics.json").read_text() == metrics


WEIGHTED_CONFIG = """
data:
  train: {train}
  valid: {valid}
  {streaming}
features:
  - {{name: age, kind: numeric}}
  - {{name: city, kind: categorical}}
tasks:
  - {{name: click, label: {{column: click}}, sample_weight: {weight}}}
  - {{name: buy, label: {{column: buy, positive: ["yes"], negative: ["no"]}}}}
model: {{architecture: shared_bottom, embedding_dim: 4}}
train: {{epochs: 8, batch_size: 32, lr: 0.02, lr_schedule: constant, early_stopping: null}}
"""


def _weighted_rows(clean: int, noisy: int, seed: int = 0) -> list[str]:
    """Clean rows (w = 1) click in city a, not in b; three times as many noisy rows (w = 0) the other way."""
    rng = random.Random(seed)
    rows = []
    for weight, count in ((1, clean), (0, noisy)):
        for _ in range(count):
            city = rng.choice("ab")
            click = int((city == "a") == bool(weight))
            rows.append(f"{rng.randint(20, 60)},{city},{click},{rng.choice(['yes', 'no'])},{weight}")
    rng.shuffle(rows)
    return rows


@pytest.mark.parametrize("streaming", [False, True], ids=["in_memory", "streaming"])
def test_sample_weights_decide_what_the_task_learns(tmp_path, capsys, streaming):
    """Weighted, the clean rows win (AUC near 1 on them); unweighted, the noisy majority wins (AUC near 0)."""
    header = "age,city,click,buy,w"
    train = write_csv(tmp_path / "train.csv", _weighted_rows(100, 300), header)
    valid = write_csv(tmp_path / "valid.csv", _weighted_rows(60, 0, seed=1), header)
    aucs = {}
    for weight in ("w", "null"):
        text = WEIGHTED_CONFIG.format(
            train=train, valid=valid, weight=weight, streaming="streaming: true" if streaming else ""
        )
        config = write_config(tmp_path, train, text.replace("{", "{{").replace("}", "}}"))
        code, err = run_cli(["train", str(config), "--output", str(tmp_path / weight), "--no-progress"], capsys)
        assert code == 0, err
        aucs[weight] = json.loads((tmp_path / weight / "metrics.json").read_text())["valid"]["click"]["auc"]
    assert aucs["w"] > 0.95 and aucs["null"] < 0.05, aucs
