"""``mtlrec tune`` end to end on a small learnable file: the outputs, continuing a search, a search killed
with kill -9 and restarted, parallel workers, the seeds' summary, and the errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from scipy import stats

from mtlrec.app.cli import main
from mtlrec.app.tune.study import STUDY_NAME, storage_url
from mtlrec.config import load_config

CONFIG = """
data:
  train: {train}
  split: {{source: train, fractions: {{valid: 0.2, test: 0.2}}, seed: 1}}
features:
  - {{name: age, kind: numeric}}
  - {{name: city, kind: categorical}}
tasks:
  - {{name: click, label: {{column: click}}, loss: bce}}
  - {{name: buy, label: {{column: buy}}, loss: bce}}
model:
  architecture: mmoe
  embedding_dim: 4
  params: {{num_experts: 2, expert_hidden_units: [8], tower_hidden_units: [4]}}
train:
  epochs: {epochs}
  batch_size: 64
  eval_every_steps: 5
  early_stopping: {{metric: "click.auc + buy.auc", patience: 50}}
tune:
  trials: 3
  pruning: {{startup_trials: 2, warmup_evaluations: 1}}
  space:
    train.lr: {{low: 0.0001, high: 0.05, log: true}}
    model.embedding_dim: {{choices: [2, 4, 8]}}
    features.*.min_count: {{low: 1, high: 5}}
    model.params.expert_hidden_units: {{choices: [[8], [16, 8]]}}
"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """1500 rows whose labels depend on age and city (so the learning rate matters)."""
    rng = np.random.default_rng(0)
    rows = 1500
    age, city = rng.integers(18, 70, rows), rng.integers(0, 30, rows)
    logit = (age - 40) / 10 + rng.normal(0, 1.5, 30)[city]
    click = rng.random(rows) < 1 / (1 + np.exp(-logit))
    buy = rng.random(rows) < 1 / (1 + np.exp(-(logit - 1.5)))
    path = tmp_path_factory.mktemp("tune_data") / "data.csv"
    lines = [f"{a},c{c},{int(k)},{int(b)}" for a, c, k, b in zip(age, city, click, buy)]
    path.write_text("age,city,click,buy\n" + "\n".join(lines) + "\n")
    return path


def write_config(tmp_path: Path, data_file: Path, epochs: int = 1, text: str = CONFIG) -> Path:
    path = tmp_path / "tune.yaml"
    path.write_text(textwrap.dedent(text.format(train=data_file, epochs=epochs)))
    return path


def study_of(output: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY_NAME, storage=storage_url(output))


def test_a_search_writes_the_best_config_the_table_and_the_importance(tmp_path, data_file, capsys):
    config, output = write_config(tmp_path, data_file), tmp_path / "search"
    assert main(["tune", str(config), "-o", str(output), "--trials", "5"]) == 0
    assert "best: trial" in capsys.readouterr().out
    study = study_of(output)
    states = [t.state for t in study.trials]
    assert len(states) == 5 and set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}

    best = study.best_trial  # its value is the criterion of its run's best weights on the validation split
    valid = json.loads((output / "trials" / f"{best.number:04d}" / "metrics.json").read_text())["valid"]
    assert best.value == pytest.approx(valid["click"]["auc"] + valid["buy"]["auc"], abs=1e-12)
    assert best.user_attrs["test"]["click"]["auc"] > 0.6  # learnt

    tuned = load_config(output / "best.yaml")  # trains as is: the best values written in, no tune section
    assert tuned.tune is None and tuned.train.lr == best.params["train.lr"]
    assert tuned.model.embedding_dim == best.params["model.embedding_dim"]
    assert tuned.model.params["expert_hidden_units"] == json.loads(best.params["model.params.expert_hidden_units"])
    assert tuned.features[1].min_count == best.params["features.*.min_count"]

    table = (output / "trials.csv").read_text().splitlines()
    assert len(table) == 6 and table[0].startswith("trial,state,value,seconds,train.lr")
    importance = json.loads((output / "importance.json").read_text())
    assert set(importance) <= set(best.params) and sum(importance.values()) == pytest.approx(1.0)
    assert (output / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_running_again_continues_the_search(tmp_path, data_file):
    config, output = write_config(tmp_path, data_file), tmp_path / "search"
    assert main(["tune", str(config), "-o", str(output), "--trials", "2"]) == 0
    first = [t.params for t in study_of(output).trials]
    assert main(["tune", str(config), "-o", str(output), "--trials", "4"]) == 0
    trials = study_of(output).trials
    assert len(trials) == 4 and [t.params for t in trials[:2]] == first
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4  # no point drawn again


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_stopped_search_continues_where_it_stopped(tmp_path, data_file, stop):
    epochs = 30  # trials of seconds: the signal comes well before trial 1 ends, however fast the machine
    config, output = write_config(tmp_path, data_file, epochs=epochs), tmp_path / "search"
    command = [sys.executable, "-m", "mtlrec", "tune", str(config), "-o", str(output), "--trials", "3"]
    command += ["--set", "train.early_stopping.patience=1000"]
    # a shell's background job inherits SIGINT ignored, and Python then keeps ignoring it: restore the default
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    checkpoint = output / "trials" / "0001" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), "trial 1 never reached its first evaluation"
    os.kill(process.pid, stop)
    process.wait()
    stopped = study_of(output).trials
    running, failed = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL
    assert stopped[1].state == (running if stop == signal.SIGKILL else failed)  # as the signal left it

    restarted = subprocess.run(command, capture_output=True, text=True)
    assert restarted.returncode == 0, restarted.stderr
    if stop == signal.SIGKILL:
        assert "trial 1 was interrupted" in restarted.stderr
    trials = study_of(output).trials
    finished = [t for t in trials if t.state != failed]
    assert len(finished) == 3 and trials[1].state == failed and trials[1].user_attrs["interrupted"]
    assert trials[0].params == stopped[0].params and trials[0].value == stopped[0].value  # kept
    rerun = trials[2]  # the interrupted trial runs again first, with its values, resuming its training
    assert rerun.params == stopped[1].params and rerun.user_attrs["resumes_trial"] == 1
    assert rerun.user_attrs["run_dir"].endswith("0001")
    history = json.loads((output / "trials" / "0001" / "history.json").read_text())
    steps = [record["step"] for record in history]
    assert steps == sorted(set(steps)) and steps[-1] == epochs * 15  # one record per evaluation, to the run's end
    assert (output / "trials" / "0001" / "metrics.json").is_file()


def test_parallel_workers_share_the_study(tmp_path, data_file):
    config, output = write_config(tmp_path, data_file), tmp_path / "search"
    assert main(["tune", str(config), "-o", str(output), "--trials", "4", "--workers", "2"]) == 0
    trials = study_of(output).trials
    assert len([t for t in trials if t.state != optuna.trial.TrialState.FAIL]) >= 4
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == len(trials)  # the workers draw apart
    assert (output / "best.yaml").is_file()


def test_the_best_config_retrained_per_seed_gives_a_t_interval(tmp_path, data_file):
    config, output = write_config(tmp_path, data_file), tmp_path / "search"
    assert main(["tune", str(config), "-o", str(output), "--trials", "2", "--seeds", "3,4,5"]) == 0
    summary = json.loads((output / "seeds.json").read_text())
    values = [
        json.loads((output / "seeds" / f"seed_{seed}" / "metrics.json").read_text())["test"]["click"]["auc"]
        for seed in (3, 4, 5)
    ]
    assert len(set(values)) == 3  # the seeds differ
    click = summary["metrics"]["test"]["click"]["auc"]
    half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
    assert click["values"] == values and click["mean"] == pytest.approx(np.mean(values))
    assert click["ci_high"] - click["mean"] == pytest.approx(half)
    seed_config = yaml.safe_load((output / "seeds" / "seed_4" / "config.yaml").read_text())
    assert seed_config["train"]["seed"] == 4
    saved = [(output / "seeds" / f"seed_{seed}" / "metrics.json").stat().st_mtime_ns for seed in (3, 4, 5)]
    assert main(["tune", str(config), "-o", str(output), "--trials", "2", "--seeds", "3,4,5"]) == 0
    again = [(output / "seeds" / f"seed_{seed}" / "metrics.json").stat().st_mtime_ns for seed in (3, 4, 5)]
    assert again == saved  # the same best config: its seeds' runs are kept, not trained again


def test_errors_name_what_is_wrong(tmp_path, data_file, capsys):
    no_tune = write_config(tmp_path, data_file, text=CONFIG.split("tune:")[0])
    assert main(["tune", str(no_tune), "-o", str(tmp_path / "a")]) == 2
    assert "the config has no tune section" in capsys.readouterr().err

    config = write_config(tmp_path, data_file)
    no_valid = ["--set", "data.split.fractions={test: 0.2}"]
    assert main(["tune", str(config), "-o", str(tmp_path / "b"), *no_valid]) == 2
    assert "tune scores trials on the validation split" in capsys.readouterr().err

    bad_end = CONFIG.replace("train.lr: {{low", "model.embedding_dropout: {{low: 0.5, high: 1.0}}\n    train.lr: {{low")
    assert main(["tune", str(write_config(tmp_path, data_file, text=bad_end)), "-o", str(tmp_path / "c")]) == 2
    assert "tune.space.model.embedding_dropout = 1.0 gives an invalid config" in capsys.readouterr().err

    output, config = tmp_path / "d", write_config(tmp_path, data_file)
    assert main(["tune", str(config), "-o", str(output), "--trials", "1"]) == 0
    other = ["--set", "train.batch_size=32"]
    assert main(["tune", str(config), "-o", str(output), "--trials", "1", *other]) == 2
    assert "holds a search of another config" in capsys.readouterr().err
    assert main(["tune", str(config), "-o", str(output), "--trials", "1", *other, "--overwrite"]) == 0
    assert len(study_of(output).trials) == 1  # started afresh
