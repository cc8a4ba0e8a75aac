"""Front end of export and batch prediction from an artifact (``mtlrec export``, ``mtlrec predict ARTIFACT``).

Kept apart from :mod:`mtlrec.app.api` (which calls it) so that the serving path is loaded only when used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mtlrec.app import build
from mtlrec.app.runs import load_run
from mtlrec.data.reading import RawSplit, read_splits
from mtlrec.errors import DataError
from mtlrec.export import export_artifact, scoring_model
from mtlrec.features import FeaturePipeline
from mtlrec.io import expand_paths, iter_record_batches

log = logging.getLogger("mtlrec")

#: Rows the parity check compares (a seeded sample of the held-out split).
PARITY_ROWS = 512


def export_run(
    run_dir: str | Path,
    output: str | Path,
    model_format: str = "onnx",
    fusion: str | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export a run's best model as an artifact directory; returns its manifest (with the parity figures).

    Args:
        run_dir: a finished run.
        output: the artifact directory to create.
        model_format: ``onnx`` (default) or ``torchscript``.
        fusion: a formula over task names overriding ``serving.fusion``.
        data: a file whose rows the parity check uses (default: the run's validation split, else test,
            else train).
        overwrite: replace an existing artifact.

    Raises:
        ConfigError: a bad fusion. ExportError: the parity check failed (nothing written).
        RunDirError: not a run, or ``output`` exists.
    """
    config, pipeline, model = load_run(run_dir)
    losses, served = build.build_losses(config, pipeline), build.served_tasks(config)
    scoring = scoring_model(model, losses, pipeline, build.build_fusion(config, fusion), served)
    table, source = _parity_table(config, pipeline, data)
    inputs = pipeline.transform_features(table, source)
    manifest = export_artifact(
        scoring,
        pipeline,
        inputs,
        output,
        model_format,
        build.read_options(config).csv,
        Path(run_dir).resolve().name,
        overwrite,
    )
    log.info(
        "exported %s to %s (%s); parity on %d rows of %s: max abs diff %.3g",
        *(run_dir, output, model_format, table.num_rows, source, manifest["parity"]["max_abs_diff"]),
    )
    return manifest


def predict_artifact(
    artifact_dir: str | Path, data_path: str | Path, output: str | Path, threads: int | None = None
) -> int:
    """Score a CSV/Parquet file (or a directory or glob of them) with an artifact, streamed, into Parquet
    (or CSV); returns the row count."""
    from mtlrec.serving import Predictor
    from mtlrec.serving.batch import predict_file

    return predict_file(Predictor.load(artifact_dir, threads), data_path, output)


def _parity_table(config: Any, pipeline: FeaturePipeline, data: str | Path | None) -> tuple[pa.Table, str]:
    """Up to ``PARITY_ROWS`` rows (seeded sample) of ``data``, else the run's valid, test or train split."""
    options = build.read_options(config)
    columns = pipeline.column_types(include_labels=False)
    if data is not None:
        return _sample(_head(data, pipeline, options), 0), str(data)
    files, split = build.data_files(config), build.random_split(config)
    for name in ("valid", "test", "train"):
        if split is not None and (name in split.fractions or name == split.source):
            raw: dict[str, RawSplit] = read_splits({split.source: files[split.source]}, pipeline, options, split)
            return _sample(raw[name].table.select(list(columns)), 0), f"{raw[name].source}"
        if name in files:
            return _sample(_head(files[name], pipeline, options), 0), files[name]
    raise DataError("the config names no data file for the parity check; pass --data FILE")


def _head(path: str | Path, pipeline: FeaturePipeline, options: Any, rows: int = 8 * PARITY_ROWS) -> pa.Table:
    """The first ``rows`` rows (about) of the first file of ``path``."""
    batches, count = [], 0
    first = expand_paths(path)[0]
    columns, separators = pipeline.column_types(include_labels=False), pipeline.separators()
    reading = (options.file_format, options.csv, max(rows, 1024))
    for batch in iter_record_batches(first, columns, *reading, separators=separators):
        batches.append(batch)
        count += batch.num_rows
        if count >= rows:
            break
    if count == 0:
        raise DataError(f"{first}: the file has no data rows")
    return pa.Table.from_batches(batches)


def _sample(table: pa.Table, seed: int) -> pa.Table:
    if table.num_rows <= PARITY_ROWS:
        return table
    rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, PARITY_ROWS, replace=False))
    return table.take(pa.array(rows))
