"""Write a synthetic cascade to CSV / Parquet in chunks, atomically, with a ``.meta.json`` beside it.

The meta records the settings, the observed base rates and label correlation matrix (counted over
all rows) and the *oracle* metrics: the AUC and log loss of the true probabilities, i.e. what a
perfect model reaches. Exact AUCs need the rows' probabilities and labels at once (9·T bytes per row
plus ~60 transient bytes per row while sorting), so they are computed on the first ``oracle_rows``
rows (all rows by default up to 10M: ≈1.3 GB peak for a three-stage funnel); everything else is
streamed chunk by chunk.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mtlrec.errors import DataError
from mtlrec.io import atomic_write
from mtlrec.synth.cascade import CascadeModel, Chunk, draw_model, iter_chunks
from mtlrec.synth.settings import CascadeSettings

_GZIP_LEVEL = 1  # 7× faster than level 6 for a file ~13% larger (pyarrow's own default is 9)
_FORMATS = {".csv": "csv", ".csv.gz": "csv.gz", ".parquet": "parquet", ".pq": "parquet"}


def output_format(path: str | Path) -> str:
    """``csv``, ``csv.gz`` or ``parquet`` from the file name; DataError for anything else."""
    name = str(path).lower()
    for suffix, kind in _FORMATS.items():
        if name.endswith(suffix):
            return kind
    raise DataError(f"{path}: output must end in {', '.join(_FORMATS)}")


def meta_path(path: str | Path) -> Path:
    """Where the meta of the data file ``path`` goes: ``<path>.meta.json``."""
    return Path(f"{path}.meta.json")


def write_cascade(
    path: str | Path,
    rows: int,
    seed: int = 0,
    settings: CascadeSettings | None = None,
    *,
    chunk_rows: int = 1_000_000,
    with_probabilities: bool = False,
    oracle_rows: int = 10_000_000,
    **options,
) -> dict:
    """Generate ``rows`` rows into ``path`` (CSV, CSV.gz or Parquet by extension) and its meta.

    Args:
        path: output file; its folder is created; written atomically.
        rows: number of rows, > 0.
        seed: non-negative seed; the same seed and settings give the same file.
        settings: the generator settings; or pass their fields as keyword ``options``.
        chunk_rows: rows generated and written at a time (bounds memory; does not change the rows).
        with_probabilities: also write ``p_<stage>`` columns, P(stage | previous stage, features).
        oracle_rows: the oracle metrics are computed on the first this many rows (bounds memory).

    Returns:
        The meta, also written to ``<path>.meta.json``.

    Raises:
        ConfigError: invalid settings, rows, seed, chunk size or oracle rows.
        DataError: unknown extension or an unwritable path.
    """
    settings = CascadeSettings.resolve(settings, options)
    settings.check_run(rows=rows, seed=seed, chunk_rows=chunk_rows, oracle_rows=oracle_rows)
    kind = output_format(path)
    model = draw_model(settings, seed)
    tally = _Tally(len(settings.stages), min(rows, oracle_rows))

    def write(tmp: Path) -> None:
        with _TableSink(tmp, kind) as sink:
            for chunk in iter_chunks(model, seed, rows, chunk_rows, with_probabilities):
                sink.write(chunk)
                tally.add(chunk)

    try:
        atomic_write(path, write)
        meta = build_meta(model, seed, kind, tally)
        atomic_write(meta_path(path), lambda tmp: tmp.write_text(json.dumps(meta, indent=1) + "\n"))
    except (OSError, pa.ArrowIOError) as exc:
        raise DataError(f"{path}: cannot write: {exc}") from exc
    return meta


class _Tally:
    """Label co-occurrence counts over all rows, and probabilities and labels of the first rows for the oracle."""

    def __init__(self, stages: int, kept_rows: int) -> None:
        self.rows = 0
        self.counts = np.zeros((stages, stages), np.int64)  # rows where labels i and j are both 1
        self.probabilities = np.empty((kept_rows, stages))
        self.labels = np.empty((kept_rows, stages), np.int8)

    def add(self, chunk: Chunk) -> None:
        ones = chunk.labels.astype(np.int64)
        self.counts += ones.T @ ones
        take = max(0, min(len(ones), len(self.labels) - self.rows))
        self.probabilities[self.rows : self.rows + take] = chunk.probabilities[:take]
        self.labels[self.rows : self.rows + take] = chunk.labels[:take]
        self.rows += len(ones)


class _TableSink:
    """Context manager writing chunks' tables to a CSV, gzip CSV or Parquet file."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.raw: BinaryIO | None = None
        self.sink: gzip.GzipFile | None = None
        self.writer: pa_csv.CSVWriter | pq.ParquetWriter | None = None

    def __enter__(self) -> _TableSink:
        if self.kind == "csv.gz":  # no file name or time in the header, so the bytes depend on the rows only
            self.raw = open(self.path, "wb")  # closed in __exit__
            self.sink = gzip.GzipFile("", "wb", _GZIP_LEVEL, self.raw, mtime=0)
        return self

    def write(self, chunk: Chunk) -> None:
        if self.writer is None:
            if self.kind == "parquet":
                self.writer = pq.ParquetWriter(str(self.path), chunk.table.schema)
            else:
                sink = self.sink if self.sink is not None else str(self.path)
                self.writer = pa_csv.CSVWriter(sink, chunk.table.schema)
        self.writer.write_table(chunk.table)

    def __exit__(self, *exc_info) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.sink is not None:
            self.sink.close()
            self.raw.close()


def build_meta(model: CascadeModel, seed: int, kind: str, tally: _Tally) -> dict:
    """The meta dict: settings, columns, observed rates, label correlations and oracle metrics.

    The tally's probabilities, P(stage k | stage k−1, features), are overwritten with the joint
    probabilities P(stage k | features) (a cumulative product) to save memory.
    """
    s = model.settings
    return {
        "generator": "mtlrec.synth.cascade",
        "format": kind,
        "rows": tally.rows,
        "seed": seed,
        "settings": {**asdict(s), "stages": list(s.stages), "rates": list(s.resolved_rates())},
        "columns": {
            "domain": "domain" if s.num_domains else None,
            "categorical": s.categorical_names(),
            "numeric": s.numeric_names(),
            "labels": list(s.stages),
        },
        "cardinalities": dict(zip(s.categorical_names(), model.cardinalities)),
        "interactions": [[f"c{i}", f"c{j}"] for i, j in model.pairs],
        "biases": dict(zip(s.stages, model.biases.round(6).tolist())),
        "base_rates": _observed_rates(s, tally.counts, tally.rows),
        "label_correlation": {"labels": list(s.stages), "matrix": _label_correlation(tally.counts, tally.rows)},
        "oracle_rows": len(tally.labels),
        "oracle": _oracle(s.stages, tally.probabilities, tally.labels),
    }


def _observed_rates(settings: CascadeSettings, counts: np.ndarray, rows: int) -> dict:
    """Per stage: positives, rate over impressions, and rate given the previous stage (vs. its target)."""
    result = {}
    for k, stage in enumerate(settings.stages):
        positives = int(counts[k, k])
        entry = {"positives": positives, "rate": positives / rows, "target": settings.resolved_rates()[k]}
        if k:
            previous = int(counts[k - 1, k - 1])
            entry[f"rate_given_{settings.stages[k - 1]}"] = positives / previous if previous else None
        result[stage] = entry
    return result


def _label_correlation(counts: np.ndarray, rows: int) -> list[list[float | None]]:
    """Pearson correlation matrix (T, T) of 0/1 labels from co-occurrence counts; None where undefined."""
    totals = np.diag(counts).astype(np.float64)
    covariance = rows * counts.astype(np.float64) - np.outer(totals, totals)
    variance = np.diag(covariance)
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = covariance / np.sqrt(np.outer(variance, variance))
    return [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in matrix]


def _oracle(stages: tuple[str, ...], probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Oracle AUC and log loss per stage: joint over all impressions; conditional given the previous stage."""
    from mtlrec.evaluation import auc, logloss  # here: the evaluation package imports torch

    result: dict[str, dict] = {stage: {} for stage in stages}
    for k in range(1, len(stages)):
        reached = labels[:, k - 1] == 1
        y, p = labels[reached, k], probabilities[reached, k]
        result[stages[k]][f"auc_given_{stages[k - 1]}"] = _finite(auc(y, p))
        result[stages[k]][f"logloss_given_{stages[k - 1]}"] = _finite(logloss(y, p)) if len(y) else None
    np.cumprod(probabilities, axis=1, out=probabilities)
    for k, stage in enumerate(stages):
        result[stage] = {
            "auc": _finite(auc(labels[:, k], probabilities[:, k])),
            "logloss": _finite(logloss(labels[:, k], probabilities[:, k])),
            **result[stage],
        }
    return result


def _finite(value: float) -> float | None:
    """``value`` for JSON: None instead of NaN (e.g. the AUC of a label with one class)."""
    return float(value) if np.isfinite(value) else None
