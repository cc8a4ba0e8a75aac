"""Front end of export and batch prediction from an artifact (``mtlrec export``, ``mtlrec predict ARTIFACT``).

Kept apart from :mod:`mtlrec.app.api` (which calls it) so that the serving path is loaded only when used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mtlrec.app import build
from mtlrec.app.runs import load_run
from mtlrec.data.reading import RawSplit, read_splits
from mtlrec.errors import DataError
from mtlrec.evaluation.metrics import accuracy, auc
from mtlrec.export import LabelledRows, export_artifact, scoring_model
from mtlrec.export.accuracy import describe
from mtlrec.features import BinaryLabel, ClassLabel, FeaturePipeline
from mtlrec.io import expand_paths, iter_record_batches

log = logging.getLogger("mtlrec")

#: Rows the parity check compares (a seeded sample of the held-out split).
PARITY_ROWS = 512
#: Default cap on the held-out rows whose AUC goes into the manifest (a seeded sample of the test split).
ACCURACY_ROWS = 100_000


def export_run(
    run_dir: str | Path,
    output: str | Path,
    model_format: str | None = None,
    fusion: str | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
    quantization: str | None = None,
    accuracy_rows: int = ACCURACY_ROWS,
) -> dict[str, Any]:
    """Export a run's best model as an artifact directory; returns its manifest (with the parity figures).

    Args:
        run_dir: a finished run.
        output: the artifact directory to create.
        model_format: ``onnx`` or ``torchscript``; None: ``torchscript`` for ``bf16``, else ``onnx``.
        fusion: a formula over task names overriding ``serving.fusion``.
        data: a file whose rows the parity check uses (default: the run's validation split, else test,
            else train).
        overwrite: replace an existing artifact.
        quantization: None (fp32), ``int8`` (ONNX) or ``bf16`` (TorchScript), held to a looser parity
            tolerance (``mtlrec.export.PARITY_TOLERANCES``).
        accuracy_rows: at most this many labelled rows of the run's test split (else validation; a
            seeded sample) on which the exported and the fp32 model's AUC go into the manifest
            (``accuracy``); 0: not measured.

    Raises:
        ConfigError: a bad fusion. ExportError: the parity check failed (nothing written), or a
        quantization the format does not support. RunDirError: not a run, or ``output`` exists.
    """
    config, pipeline, model = load_run(run_dir)
    losses, served = build.build_losses(config, pipeline), build.served_tasks(config)
    scoring = scoring_model(model, losses, pipeline, build.build_fusion(config, fusion), served)
    splits = _Splits(config, pipeline)
    table, source = _parity_table(splits, data)
    inputs = pipeline.transform_features(table, source)
    holdout = _accuracy_rows(splits, accuracy_rows) if accuracy_rows > 0 else None
    manifest = export_artifact(
        scoring,
        pipeline,
        inputs,
        output,
        model_format,
        build.read_options(config).csv,
        Path(run_dir).resolve().name,
        overwrite,
        quantization,
        holdout,
    )
    log.info(
        "exported %s to %s (%s%s); parity on %d rows of %s: max abs diff %.3g; %s",
        *(run_dir, output, manifest["model"]["format"], f", {quantization}" if quantization else ""),
        *(table.num_rows, source, manifest["parity"]["max_abs_diff"], _accuracy_note(manifest["accuracy"])),
    )
    return manifest


def _accuracy_note(accuracy: dict[str, Any] | None) -> str:
    if accuracy is None:
        return "accuracy not measured (no held-out split)"
    return f"on {accuracy['rows']} held-out rows of {accuracy['source']}: {describe(accuracy)}"


def predict_artifact(
    artifact_dir: str | Path, data_path: str | Path, output: str | Path, threads: int | None = None
) -> int:
    """Score a CSV/Parquet file (or a directory or glob of them) with an artifact, streamed, into Parquet
    (or CSV); returns the row count."""
    from mtlrec.serving import Predictor
    from mtlrec.serving.batch import predict_file

    return predict_file(Predictor.load(artifact_dir, threads), data_path, output)


class _Splits:
    """The run's data files and random split, each source read (with labels) at most once."""

    def __init__(self, config: Any, pipeline: FeaturePipeline):
        self.pipeline, self.options = pipeline, build.read_options(config)
        self.files, self.split = build.data_files(config), build.random_split(config)
        self._random: dict[str, RawSplit] | None = None

    def carved(self, name: str) -> bool:
        """Whether split ``name`` comes from the random split (rather than a file of its own)."""
        return self.split is not None and (name in self.split.fractions or name == self.split.source)

    def random_part(self, name: str) -> RawSplit:
        if self._random is None:
            source = self.split.source
            self._random = read_splits({source: self.files[source]}, self.pipeline, self.options, self.split)
        return self._random[name]


def _parity_table(splits: _Splits, data: str | Path | None) -> tuple[pa.Table, str]:
    """Up to ``PARITY_ROWS`` rows (seeded sample) of ``data``, else the run's valid, test or train split."""
    pipeline, options = splits.pipeline, splits.options
    columns = pipeline.column_types(include_labels=False)
    if data is not None:
        return _sample(_head(data, pipeline, options), 0), str(data)
    for name in ("valid", "test", "train"):
        if splits.carved(name):
            raw = splits.random_part(name)
            return _sample(raw.table.select(list(columns)), 0), f"{raw.source}"
        if name in splits.files:
            return _sample(_head(splits.files[name], pipeline, options), 0), splits.files[name]
    raise DataError("the config names no data file for the parity check; pass --data FILE")


def _accuracy_rows(splits: _Splits, rows: int, seed: int = 0) -> LabelledRows | None:
    """A seeded sample of at most ``rows`` labelled rows of the test split, else the validation split."""
    pipeline = splits.pipeline
    for name in ("test", "valid"):
        if splits.carved(name):
            raw = splits.random_part(name)
            chosen = _sample_rows(raw.table.num_rows, rows, seed)
            table, labels = raw.table.take(pa.array(chosen)), {t: v[chosen] for t, v in raw.labels.items()}
            source = raw.source
        elif name in splits.files:
            source = splits.files[name]
            table = _sample_file(source, pipeline, splits.options, rows, seed)
            labels = pipeline.transform_labels(table, source)
        else:
            continue
        inputs = pipeline.transform_features(table, source, log_missing=False)
        return LabelledRows(inputs, labels, source, task_metrics(pipeline))
    log.info("the run has no test or validation split: the export's accuracy is not measured")
    return None


def task_metrics(pipeline: FeaturePipeline) -> dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], float]]]:
    """The figure of each task in an artifact's ``accuracy``: ROC AUC (binary) or top-1 accuracy (multi-class).

    Regression tasks get none: their labels are read in the training space (log1p'd, for instance),
    not in the unit of the exported scores.
    """
    metrics: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], float]]] = {}
    for spec in pipeline.labels:
        if isinstance(spec.rule, BinaryLabel):
            metrics[spec.task] = ("auc", auc)
        elif isinstance(spec.rule, ClassLabel):
            metrics[spec.task] = ("accuracy", accuracy)
    return metrics


def _sample_rows(total: int, rows: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of ``rows`` of ``total`` (all of them when there are fewer)."""
    if total <= rows:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, rows, replace=False))


def _sample_file(path: str | Path, pipeline: FeaturePipeline, options: Any, rows: int, seed: int) -> pa.Table:
    """A seeded uniform sample of at most ``rows`` rows (features and labels) of ``path``, in file order.

    Streamed: every row draws a random key and the ``rows`` smallest keys are kept, so memory stays
    bounded by about twice ``rows`` whatever the file's size.
    """
    rng = np.random.default_rng(seed)
    columns, separators = pipeline.column_types(include_labels=True), pipeline.separators()
    kept: list[pa.Table] = []
    keys = np.empty(0)
    for file in expand_paths(path):
        for batch in iter_record_batches(file, columns, options.file_format, options.csv, options.batch_rows,
                                         separators=separators):
            kept.append(pa.Table.from_batches([batch]))
            keys = np.concatenate([keys, rng.random(batch.num_rows)])
            if len(keys) > 2 * rows:
                kept, keys = _smallest_keys(pa.concat_tables(kept), keys, rows)
    if not kept:
        raise DataError(f"{path}: the file has no data rows")
    table, _ = _smallest_keys(pa.concat_tables(kept), keys, rows)
    return table[0]


def _smallest_keys(table: pa.Table, keys: np.ndarray, rows: int) -> tuple[list[pa.Table], np.ndarray]:
    """The rows of ``table`` with the ``rows`` smallest keys, in their order."""
    if len(keys) <= rows:
        return [table], keys
    chosen = np.sort(np.argpartition(keys, rows - 1)[:rows])
    return [table.take(pa.array(chosen))], keys[chosen]


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
    """Up to ``PARITY_ROWS`` rows of ``table`` (a seeded sample, in table order)."""
    if table.num_rows <= PARITY_ROWS:
        return table
    return table.take(pa.array(_sample_rows(table.num_rows, PARITY_ROWS, seed)))
