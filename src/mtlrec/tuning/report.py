"""Write a fusion sweep: ``all.csv``, ``pareto.csv``, ``pareto.png`` and the chosen ``fusion.yaml``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mtlrec.io import atomic_write
from mtlrec.tuning.plots import pareto_png
from mtlrec.tuning.select import Choice, fusion_yaml
from mtlrec.tuning.sweep import Sweep


def sweep_rows(sweep: Sweep, chosen: int | None = None) -> list[dict[str, Any]]:
    """One row per setting: ``setting, kind, weight.<task>..., <task.metric>..., pareto, chosen``."""
    tasks = list(dict.fromkeys(task for fusion in sweep.fusions for task in fusion.weights))
    rows = []
    for index, fusion in enumerate(sweep.fusions):
        row: dict[str, Any] = {"setting": index, "kind": fusion.kind}
        row.update({f"weight.{task}": fusion.weights.get(task, 0.0) for task in tasks})
        row.update({name: float(value) for name, value in zip(sweep.metric_names, sweep.values[index])})
        row.update(pareto=int(sweep.front[index]), chosen=int(index == chosen))
        rows.append(row)
    return rows


def write_sweep(sweep: Sweep, choice: Choice, output: str | Path) -> dict[str, Path]:
    """Write the sweep's files into ``output`` (created if needed), each atomically; returns them by name."""
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    rows = sweep_rows(sweep, choice.index)
    files = {"all": folder / "all.csv", "pareto": folder / "pareto.csv", "plot": folder / "pareto.png"}
    _write_csv(files["all"], rows)
    _write_csv(files["pareto"], [row for row in rows if row["pareto"]])
    png = pareto_png(sweep, choice.index)
    atomic_write(files["plot"], lambda tmp: tmp.write_bytes(png))
    if choice.index is not None:
        files["fusion"] = folder / "fusion.yaml"
        text = f"# {choice.message}\n" + fusion_yaml(sweep.fusions[choice.index])
        atomic_write(files["fusion"], lambda tmp: tmp.write_text(text))
    return files


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["setting"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue()))
