"""A tiny two-task CSV and config, trained through the CLI in a second (or built into a trainer by the
composition root): the data of the bad-input and wiring tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mtlrec.app import build
from mtlrec.app.cli import main
from mtlrec.app.run_files import RunFiles
from mtlrec.config import Config, validate_config
from mtlrec.training import Trainer

SMALL_CONFIG = """
data:
  train: {train}
  split: {{source: train, fractions: {{valid: 0.25, test: 0.25}}, seed: 1}}
features:
  - {{name: age, kind: numeric}}
  - {{name: city, kind: categorical}}
tasks:
  - {{name: click, label: {{column: click}}, loss: bce}}
  - {{name: buy, label: {{column: buy, positive: ["yes"], negative: ["no"]}}, loss: bce}}
model:
  architecture: mmoe
  embedding_dim: 4
  params: {{num_experts: 2, expert_hidden_units: [8], tower_hidden_units: [4]}}
train: {{epochs: 1, batch_size: 16}}
"""


def write_csv(path: Path, rows: list[str], header: str = "age,city,click,buy") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def good_rows(count: int = 40) -> list[str]:
    """``age,city,click,buy`` rows: both classes of both tasks, three cities."""
    cities = ["paris", "rome", "oslo"]
    return [f"{20 + i % 30},{cities[i % 3]},{i % 2},{'yes' if i % 4 == 0 else 'no'}" for i in range(count)]


def write_config(tmp_path: Path, train: Path, text: str = SMALL_CONFIG) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text.format(train=train)))
    return path


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """``mtlrec ARGS`` in this process: the exit code and what it wrote to stderr."""
    code = main(args)
    return code, capsys.readouterr().err


def train_run(tmp_path: Path, config: Path, capsys, *extra: str) -> tuple[int, str]:
    """``mtlrec train CONFIG --output tmp_path/run``: the exit code and stderr."""
    return run_cli(["train", str(config), "--output", str(tmp_path / "run"), "--no-progress", *extra], capsys)


def small_config(train: Path, model: dict | None = None, **train_section) -> Config:
    """The two-task MMoE config over ``train`` (a quarter held out for validation), with these ``train`` keys
    (and ``model`` keys replacing the default ones)."""
    return validate_config(
        {
            "data": {"train": str(train), "split": {"source": "train", "fractions": {"valid": 0.25}, "seed": 1}},
            "features": [{"name": "age", "kind": "numeric"}, {"name": "city", "kind": "categorical"}],
            "tasks": [
                {"name": "click", "label": {"column": "click"}},
                {"name": "buy", "label": {"column": "buy", "positive": ["yes"], "negative": ["no"]}},
            ],
            "model": {"architecture": "mmoe", "embedding_dim": 4, "params": {"num_experts": 2}, **(model or {})},
            "train": {"batch_size": 10, **train_section},
        }
    )


def built_trainer(
    tmp_path: Path, rows: int = 40, model: dict | None = None, run: str = "run", **train_section
) -> tuple[Trainer, dict]:
    """The trainer ``mtlrec train`` builds into ``tmp_path/run``, and its encoded splits: by default 40 rows
    (30 train: 3 steps of 10)."""
    train = tmp_path / "train.csv"
    config = small_config(train if train.exists() else write_csv(train, good_rows(rows)), model, **train_section)
    files = RunFiles(tmp_path / run)
    files.root.mkdir()
    pipeline, data = build.training_data(config, files, resume=False)
    network = build.build_model(config, pipeline)
    return build.build_trainer(config, network, pipeline, files, show_progress_bar=False), data
