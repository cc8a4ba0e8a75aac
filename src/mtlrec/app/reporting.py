"""``mtlrec report``: read a run directory (and baseline runs), render the report, write it atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from mtlrec.app.run_files import RunFiles
from mtlrec.errors import RunDirError
from mtlrec.io import atomic_write

log = logging.getLogger("mtlrec")


def read_run(run_dir: str | Path) -> Any:
    """The recorded files of a run as ``RunData`` (diagnostics and calibration may be absent)."""
    from mtlrec.evaluation.report import RunData

    files = RunFiles(Path(run_dir))
    if not files.config.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no {files.config.name}); train one with `mtlrec train`")
    return RunData(
        name=files.root.resolve().name,
        config=yaml.safe_load(files.config.read_text()),
        history=_json(files.history) or [],
        metrics=_json(files.metrics) or {},
        diagnostics=_json(files.diagnostics),
        calibration=_json(files.calibration),
    )


def write_report(run_dir: str | Path, baselines: list[str | Path] = (), output: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` (default ``RUN_DIR/report/index.html``) with its PNGs beside it.

    Args:
        run_dir: the run to report on.
        baselines: runs whose metrics are shown beside this run's.
        output: the HTML file to write; the images go in the same directory.

    Returns:
        the path of the HTML file.
    """
    from mtlrec.evaluation.report import render_report

    run = read_run(run_dir)
    report = render_report(run, [read_run(path) for path in baselines])
    page = Path(output) if output is not None else RunFiles(Path(run_dir)).report
    for name, png in report.images.items():
        atomic_write(page.parent / name, lambda tmp, png=png: tmp.write_bytes(png))
    atomic_write(page, lambda tmp: tmp.write_text(report.html, encoding="utf-8"))
    log.info("wrote %s (%d images)", page, len(report.images))
    return page


def _json(path: Path) -> Any:
    """The parsed file, or None when it does not exist."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc}); was it written by mtlrec?") from None
