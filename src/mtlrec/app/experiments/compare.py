"""``mtlrec compare``: a multi-task config against its single-task baseline over N seeds.

Output directory: ``<model>/seed<k>/`` and ``<baseline>/seed<k>/`` run directories (finished runs are
reused), ``runs.csv`` (one row per run, split, task and metric), ``comparison.csv`` and
``comparison.md`` (per task and metric: both models' mean ± std [95% CI], the MTL gain with its
Welch interval, Δm over the tasks and the seesaw flag; see ``evaluation.mtl_gain``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlrec.app.build.baseline import single_task_baseline
from mtlrec.app.experiments.seeds import SeedRuns, run_rows, run_seeds, seed_list
from mtlrec.config import Config, config_to_dict
from mtlrec.errors import ConfigError
from mtlrec.evaluation import METRICS
from mtlrec.evaluation.mtl_gain import Gain, SeedSummary, delta_m, is_seesaw, mtl_gain, summarize_seeds
from mtlrec.io import atomic_write

log = logging.getLogger("mtlrec")

SIGNIFICANCE = {1: "up", -1: "down", 0: "no"}


def compare(
    config: Config,
    output_dir: str | Path,
    seeds: int | Sequence[int],
    baseline: Config | None = None,
    metric: str | None = None,
    split: str = "test",
    show_progress_bar: bool | None = None,
) -> list[dict[str, Any]]:
    """Train ``config`` and its single-task baseline over the seeds; write and return the comparison rows.

    Args:
        config: the multi-task model.
        output_dir: where the runs and tables go.
        seeds: N (seeds 0..N−1) or the seeds; each sets ``train.seed`` of both models.
        baseline: the single-task config; default ``build.baseline.single_task_baseline(config)``.
        metric: compare only this metric (default: every metric both models report).
        split: the split whose metrics are compared.
        show_progress_bar: passed to ``train``.

    Returns:
        The rows of ``comparison.csv`` (see :func:`comparison_rows`).
    """
    output = Path(output_dir)
    chosen = seed_list(seeds)
    _check_metric(metric)
    name, baseline_name = model_names(config, baseline)
    baseline = baseline if baseline is not None else single_task_baseline(config)
    check_comparable(config, baseline)
    mtl = run_seeds(config, name, output, chosen, show_progress_bar)
    single = run_seeds(baseline, baseline_name, output, chosen, show_progress_bar)
    rows = comparison_rows(mtl, single, split, metric)
    write_csv(output / "runs.csv", run_rows("mtl", mtl) + run_rows("baseline", single))
    write_csv(output / "comparison.csv", rows)
    text = format_comparison(rows)
    atomic_write(output / "comparison.md", lambda tmp: tmp.write_text(text + "\n"))
    return rows


def model_names(config: Config, baseline: Config | None) -> tuple[str, str]:
    """Folder names of the model's and the baseline's runs.

    The model's is its architecture. A derived baseline (or one of the same architecture) goes to
    ``<architecture>-baseline``; a given one to its own architecture's name, so that the runs of
    ``mtlrec reproduce`` in the same directory (``single_task/seed<k>``) are reused.
    """
    name = config.model.architecture
    if baseline is None or baseline.model.architecture == name:
        return name, f"{name}-baseline"
    return name, baseline.model.architecture


def check_comparable(config: Config, baseline: Config) -> None:
    """Both configs must read the same data and tasks, or the gain would compare different problems."""
    for section in ("data", "features", "tasks"):
        if config_to_dict(config)[section] != config_to_dict(baseline)[section]:
            raise ConfigError(
                f"--baseline: its '{section}' section differs from the model's; the baseline must read the same "
                "data, features and tasks (overrides other than model.* apply to both)"
            )


def comparison_rows(mtl: SeedRuns, single: SeedRuns, split: str, metric: str | None = None) -> list[dict[str, Any]]:
    """Per task and metric: both sides' seed summaries and the MTL gain; Δm and seesaw per metric over tasks."""
    _check_metric(metric)
    mtl_metrics, single_metrics = mtl.task_metrics(split), single.task_metrics(split)
    if not mtl_metrics:
        raise ConfigError(f"no '{split}' metrics in the runs of {mtl.name}; does the config have a {split} split?")
    cells: dict[str, dict[str, tuple[SeedSummary, SeedSummary, Gain]]] = {}
    for task, names in mtl_metrics.items():
        for name in names:
            if (metric is not None and name != metric) or name not in single_metrics.get(task, []):
                continue
            if name not in METRICS:
                log.warning("compare: metric '%s' has no known direction; left out", name)
                continue
            mtl_values, single_values = mtl.values(split, task, name), single.values(split, task, name)
            gain = mtl_gain(mtl_values, single_values, METRICS[name].higher_is_better)
            cells.setdefault(name, {})[task] = (summarize_seeds(mtl_values), summarize_seeds(single_values), gain)
    if not cells:
        raise ConfigError(f"--metric: no task reports '{metric}' in both models; they report {mtl_metrics}")
    rows = []
    for name, by_task in cells.items():
        higher = METRICS[name].higher_is_better
        delta = delta_m(
            {t: c[0].mean for t, c in by_task.items()},
            {t: c[1].mean for t, c in by_task.items()},
            {t: higher for t in by_task},
        )
        seesaw = is_seesaw({t: c[2] for t, c in by_task.items()})
        for task, (mtl_summary, single_summary, gain) in by_task.items():
            row: dict[str, Any] = {"model": mtl.name, "baseline": single.name, "split": split, "task": task}
            row.update({"metric": name, "higher_is_better": higher})
            row.update(_summary_columns("mtl", mtl_summary) | _summary_columns("single", single_summary))
            row.update({"gain": gain.gain, "gain_ci_low": gain.ci_low, "gain_ci_high": gain.ci_high})
            row.update({"gain_df": gain.df, "significant": SIGNIFICANCE[gain.direction]})
            row.update({"delta_m_pct": delta, "seesaw": seesaw})
            rows.append(row)
    return rows


def _check_metric(metric: str | None) -> None:
    if metric is not None and metric not in METRICS:
        raise ConfigError(f"--metric: unknown metric '{metric}'; choose one of {', '.join(METRICS)}")


def _summary_columns(prefix: str, summary: SeedSummary) -> dict[str, Any]:
    return {
        f"n_{prefix}": summary.n,
        f"{prefix}_mean": summary.mean,
        f"{prefix}_std": summary.std,
        f"{prefix}_ci_low": summary.ci_low,
        f"{prefix}_ci_high": summary.ci_high,
    }


def number(value: float, signed: bool = False) -> str:
    """4 decimals (with a sign when ``signed``); ``n/a`` for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def mean_cell(mean: float, std: float, ci_low: float, ci_high: float) -> str:
    """``mean ± std [low, high]``."""
    return f"{number(mean)} ± {number(std)} [{number(ci_low)}, {number(ci_high)}]"


def _side(row: dict[str, Any], prefix: str) -> str:
    return mean_cell(*(row[f"{prefix}_{key}"] for key in ("mean", "std", "ci_low", "ci_high")))


def gain_cell(row: dict[str, Any]) -> str:
    """``gain [low, high]`` with signs."""
    return f"{number(row['gain'], True)} [{number(row['gain_ci_low'], True)}, {number(row['gain_ci_high'], True)}]"


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table, then Δm and the seesaw flag per metric."""
    from mtlrec.app.runs import format_table

    first = rows[0]
    title = f"{first['model']} vs {first['baseline']} ({first['split']} split; mean ± std [95% CI] over seeds)"
    display = [
        {
            "task": row["task"],
            "metric": row["metric"],
            f"MTL ({row['model']}, n={row['n_mtl']})": _side(row, "mtl"),
            f"single-task (n={row['n_single']})": _side(row, "single"),
            "MTL gain [95% CI]": gain_cell(row),
            "significant": row["significant"],
        }
        for row in rows
    ]
    lines = [title, "", format_table(display), ""]
    for name in dict.fromkeys(row["metric"] for row in rows):
        row = next(r for r in rows if r["metric"] == name)
        seesaw = "YES (some tasks up, some down beyond the interval)" if row["seesaw"] else "no"
        lines.append(f"{name}: Δm over tasks {number(row['delta_m_pct'], True)} %; seesaw: {seesaw}")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write dict rows as CSV (columns in first-seen order), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue()))
