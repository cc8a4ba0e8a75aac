"""``mtlrec reproduce census``: the census-income protocol of the MMoE paper (Ma et al., KDD 2018, Sec. 6.3).

Group 1: income > 50K (main) and never married (auxiliary), configs in ``configs/census/``. Group 2:
education ≥ college (main; Bachelors, Masters, Prof school, Doctorate and both Associates degrees, the
set whose label correlation matches the paper's) and never married, configs in
``configs/census/group2/``. Education and marital status are inputs in neither group. Every
architecture is trained over N seeds; the table sets our mean, std, 95% interval and best run beside
the paper's mean of 400 runs and best run, with the MTL gain against the single-task runs.

Output directory: ``<architecture>/seed<k>/`` runs (reused when finished), ``runs.csv``,
``reproduction.csv``, ``reproduction.md`` and ``reproduction.png``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlrec.app import build
from mtlrec.app.experiments.compare import gain_cell, mean_cell, number, write_csv
from mtlrec.app.experiments.published import CENSUS_TASKS, MMOE_CENSUS, MMOE_LABEL_CORRELATION
from mtlrec.app.experiments.seeds import SeedRuns, run_rows, run_seeds, seed_list
from mtlrec.config import Config, load_config
from mtlrec.data.reading import read_split
from mtlrec.errors import ConfigError
from mtlrec.evaluation.mtl_gain import delta_m, is_seesaw, mtl_gain, summarize_seeds
from mtlrec.io import atomic_write

log = logging.getLogger("mtlrec")

ARCHITECTURES = ("single_task", "shared_bottom", "omoe", "mmoe", "cross_stitch", "l2_soft_sharing", "cgc", "ple")
CONFIG_DIRS = {1: Path("configs/census"), 2: Path("configs/census/group2")}
METRIC = "auc"


def load_group_configs(
    group: int, architectures: Sequence[str], overrides: Sequence[str] = (), config_dir: str | Path | None = None
) -> dict[str, Config]:
    """``<config_dir>/<architecture>.yaml`` for each architecture, with ``--set`` overrides applied."""
    if group not in CONFIG_DIRS:
        raise ConfigError(f"--group: the MMoE paper has census groups 1 and 2, got {group}")
    folder = Path(config_dir) if config_dir is not None else CONFIG_DIRS[group]
    configs = {}
    for architecture in architectures:
        path = folder / f"{architecture}.yaml"
        if not path.is_file():
            available = sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "base") if folder.is_dir() else []
            raise ConfigError(
                f"--architectures: no config {path} (run from the repository root or pass --configs DIR); "
                f"available: {', '.join(available) or 'none'}"
            )
        config = load_config(path, list(overrides))
        tasks = tuple(task.name for task in config.tasks)
        if tasks != CENSUS_TASKS[group]:
            raise ConfigError(f"{path}: tasks {list(tasks)} are not census group {group}'s {list(CENSUS_TASKS[group])}")
        configs[architecture] = config
    return configs


def label_correlation(config: Config, split: str = "train") -> float:
    """Pearson correlation of the first two tasks' labels over the rows of ``split``'s file where both are set."""
    path = build.data_files(config)[split]
    raw = read_split(path, build.build_pipeline(config), build.read_options(config), with_labels=True)
    labels = np.stack([raw.labels[task] for task in list(raw.labels)[:2]], axis=1).astype(np.float64)
    labels = labels[np.isfinite(labels).all(axis=1)]
    return float(np.corrcoef(labels[:, 0], labels[:, 1])[0, 1])


def reproduce_census(
    group: int,
    seeds: int | Sequence[int],
    output_dir: str | Path,
    architectures: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    config_dir: str | Path | None = None,
    show_progress_bar: bool | None = None,
) -> list[dict[str, Any]]:
    """Train each architecture over the seeds and write the reproduction table and figure.

    ``single_task`` is always trained (it is the reference of the MTL gain). Returns the rows of
    ``reproduction.csv``: per architecture and task our n, mean, std, 95% interval and best (the
    main task's best test AUC over seeds; for the auxiliary task, its AUC in that same run, as in the
    paper), the paper's mean and best, and the MTL gain against single-task with its Welch interval.
    """
    chosen = list(dict.fromkeys(["single_task", *(architectures or ARCHITECTURES)]))
    configs = load_group_configs(group, chosen, overrides, config_dir)
    output, seed_values = Path(output_dir), seed_list(seeds)
    runs = {name: run_seeds(config, name, output, seed_values, show_progress_bar) for name, config in configs.items()}
    rows = reproduction_rows(group, runs)
    run_table = [row for name, r in runs.items() for row in run_rows("baseline" if name == "single_task" else "mtl", r)]
    write_csv(output / "runs.csv", run_table)
    write_csv(output / "reproduction.csv", rows)
    text = format_reproduction(group, rows, label_correlation(configs["single_task"]))
    atomic_write(output / "reproduction.md", lambda tmp: tmp.write_text(text + "\n"))
    from mtlrec.app.experiments.plot import plot_reproduction

    plot_reproduction(rows, output / "reproduction.png", f"census-income group {group}: test AUC")
    return rows


def reproduction_rows(group: int, runs: dict[str, SeedRuns], split: str = "test") -> list[dict[str, Any]]:
    """The rows of ``reproduction.csv`` (see :func:`reproduce_census`)."""
    rows = []
    for name, seed_runs in runs.items():
        rows += _architecture_rows(group, name, seed_runs, runs["single_task"], split)
    return rows


def _architecture_rows(group: int, name: str, runs: SeedRuns, single: SeedRuns, split: str) -> list[dict[str, Any]]:
    tasks = CENSUS_TASKS[group]
    best_seed = sorted(runs.metrics)[int(np.argmax(runs.values(split, tasks[0], METRIC)))]
    rows, gains, means, single_means = [], {}, {}, {}
    for task in tasks:
        values, single_values = runs.values(split, task, METRIC), single.values(split, task, METRIC)
        summary = summarize_seeds(values)
        gain = gains[task] = mtl_gain(values, single_values, higher_is_better=True)
        means[task], single_means[task] = summary.mean, float(np.mean(single_values))
        paper = MMOE_CENSUS[group].get(name, {}).get(task)
        row: dict[str, Any] = {"group": group, "architecture": name, "task": task, "metric": METRIC}
        row.update({"n": summary.n, "mean": summary.mean, "std": summary.std})
        row.update({"ci_low": summary.ci_low, "ci_high": summary.ci_high})
        row.update({"best": runs.metrics[best_seed][split][task][METRIC], "best_seed": best_seed})
        row.update({"paper_mean": paper.mean if paper else math.nan, "paper_best": paper.best if paper else math.nan})
        row.update({"gain": gain.gain, "gain_ci_low": gain.ci_low, "gain_ci_high": gain.ci_high})
        rows.append(row)
    delta = delta_m(means, single_means, dict.fromkeys(tasks, True))
    for row in rows:
        row.update({"delta_m_pct": delta, "seesaw": is_seesaw(gains)})
    return rows


def format_reproduction(group: int, rows: list[dict[str, Any]], correlation: float | None = None) -> str:
    """The reproduction as a Markdown table: ours beside the paper's, and the MTL gain vs single-task."""
    from mtlrec.app.runs import format_table

    display = [
        {
            "architecture": row["architecture"],
            "task": row["task"],
            f"ours: mean ± std [95% CI] (n={row['n']})": mean_cell(
                row["mean"], row["std"], row["ci_low"], row["ci_high"]
            ),
            "ours: best": number(row["best"]),
            "paper: mean": number(row["paper_mean"]),
            "paper: best": number(row["paper_best"]),
            "MTL gain vs single-task [95% CI]": gain_cell(row) if row["architecture"] != "single_task" else "",
            "Δm %": number(row["delta_m_pct"], True) if row["architecture"] != "single_task" else "",
        }
        for row in rows
    ]
    paper = (
        "paper: Ma et al., KDD 2018, Table "
        f"{group} (mean of 400 runs; best = the run with the best {CENSUS_TASKS[group][0]} AUC)"
    )
    lines = [f"census-income group {group}, test AUC; {paper}", "", format_table(display)]
    seesaws = sorted({row["architecture"] for row in rows if row["seesaw"]})
    lines += ["", f"seesaw (one task up, the other down beyond the interval): {', '.join(seesaws) or 'none'}"]
    ours = f"{abs(correlation):.4f} on our training file; " if correlation is not None else ""
    lines.append(f"|Pearson correlation| of the two labels: {ours}paper {MMOE_LABEL_CORRELATION[group]}")
    return "\n".join(lines)
