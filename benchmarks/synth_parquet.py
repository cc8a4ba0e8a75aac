"""Write the synthetic benchmark schema to Parquet in chunks (any number of rows in bounded memory).

The columns are those of ``../shared/bench/make_synth.py``: ``c00..c19`` Zipf-distributed integer
ids (vocabularies 10 … 100k, log-spaced), ``d0..d9`` dense floats (every third heavy-tailed),
``click``, ``conversion`` (only after a click) and ``watch_log`` (0 without a click). The labels
come from a hidden model drawn once from ``--seed``: a latent vector per id, a latent vector per row
behind the dense columns, a random tanh layer, and per-task directions sharing half their variance.
Rows are generated ``--chunk-rows`` at a time, each chunk from its own seeded generator, so memory
stays bounded and the file is deterministic. Each chunk becomes one Parquet row group.

    .venv/bin/python benchmarks/synth_parquet.py --rows 10000000 --out bench_data/synth_10m.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mtlrec.io import atomic_write

SPARSE, DENSE, LATENT, HIDDEN = 20, 10, 8, 32
CTR, CVR, SIGNAL, TASK_CORRELATION = 0.15, 0.10, 2.0, 0.5


@dataclass
class HiddenModel:
    """What every chunk shares: id popularity, latent tables, the tanh layer and the label directions."""

    cdfs: list[np.ndarray]
    id_of_rank: list[np.ndarray]
    tables: list[np.ndarray]
    dense_loadings: np.ndarray
    noise_dense: set[int]
    layer: np.ndarray
    offset: np.ndarray
    directions: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    biases: np.ndarray


def draw_model(seed: int) -> HiddenModel:
    rng = np.random.default_rng(seed)
    vocabs = np.round(np.geomspace(10, 100_000, SPARSE)).astype(np.int64)
    noise_sparse = set(rng.choice(SPARSE, 4, replace=False).tolist())
    cdfs, id_of_rank, tables = [], [], []
    for column, vocab in enumerate(vocabs):
        weights = np.arange(1, vocab + 1, dtype=np.float64) ** -1.1
        cdfs.append(np.cumsum(weights) / weights.sum())
        id_of_rank.append(rng.permutation(vocab))
        scale = 0.0 if column in noise_sparse else rng.uniform(0.3, 1.0)
        tables.append((rng.normal(size=(vocab, LATENT)) * scale).astype(np.float32))
    model = HiddenModel(
        cdfs,
        id_of_rank,
        tables,
        rng.normal(size=(LATENT, DENSE)) / np.sqrt(LATENT),
        set(rng.choice(DENSE, 3, replace=False).tolist()),
        rng.normal(size=(LATENT, HIDDEN)) * 1.5 / np.sqrt(LATENT),
        rng.normal(size=HIDDEN) * 0.5,
        rng.normal(size=(HIDDEN, 4)) / np.sqrt(HIDDEN),
        np.zeros(4),
        np.ones(4),
        np.zeros(2),
    )
    _calibrate(model, np.random.default_rng([seed, 1 << 30]))
    return model


def _calibrate(model: HiddenModel, rng: np.random.Generator) -> None:
    """Fix the score standardisation and the label biases (target CTR/CVR) on a calibration chunk."""
    _, components = _features(model, rng, 200_000)
    model.centre, model.scale = components.mean(0), components.std(0) + 1e-12
    scores = _scores(model, components)
    model.biases[0] = _solve_bias(scores[:, 0], CTR, None)
    model.biases[1] = _solve_bias(scores[:, 1], CVR, _sigmoid(model.biases[0] + scores[:, 0]))


def _features(model: HiddenModel, rng: np.random.Generator, rows: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    latent = np.zeros((rows, LATENT), dtype=np.float32)
    for column, (cdf, ids, table) in enumerate(zip(model.cdfs, model.id_of_rank, model.tables)):
        rank = np.minimum(np.searchsorted(cdf, rng.random(rows), side="right"), len(cdf) - 1)
        columns[f"c{column:02d}"] = ids[rank]
        latent += table[ids[rank]]
    row_latent = rng.normal(size=(rows, LATENT))
    for column in range(DENSE):
        if column in model.noise_dense:
            values = rng.normal(size=rows)
        else:
            values = row_latent @ model.dense_loadings[:, column] + 0.5 * rng.normal(size=rows)
        columns[f"d{column}"] = (np.expm1(np.abs(values) * 1.5) if column % 3 == 2 else values).astype(np.float32)
    hidden = np.tanh((latent / np.sqrt(SPARSE - 3) + 0.7 * row_latent) @ model.layer + model.offset)
    return columns, hidden @ model.directions


def _scores(model: HiddenModel, components: np.ndarray) -> np.ndarray:
    standard = (components - model.centre) / model.scale
    shared = np.sqrt(TASK_CORRELATION) * standard[:, :1]
    return SIGNAL * (shared + np.sqrt(1 - TASK_CORRELATION) * standard[:, 1:])


def chunk(model: HiddenModel, seed: int, index: int, rows: int) -> pa.Table:
    rng = np.random.default_rng([seed, index])
    columns, components = _features(model, rng, rows)
    scores = _scores(model, components)
    p_click = _sigmoid(model.biases[0] + scores[:, 0])
    click = rng.random(rows) < p_click
    conversion = click & (rng.random(rows) < _sigmoid(model.biases[1] + scores[:, 1]))
    watch = np.log1p(np.exp(3.0 + 0.5 * scores[:, 2] + 0.5 * rng.normal(size=rows)))
    columns.update(
        click=click.astype(np.int8), conversion=conversion.astype(np.int8), watch_log=(watch * click).astype(np.float32)
    )
    return pa.table(columns)


def write(path: str | Path, rows: int, seed: int = 0, chunk_rows: int = 500_000) -> None:
    """Write ``rows`` rows to ``path`` (atomically), one row group per chunk."""
    model = draw_model(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)

    def write_chunks(tmp: Path) -> None:
        writer = None
        for index, start in enumerate(range(0, rows, chunk_rows)):
            table = chunk(model, seed, index, min(chunk_rows, rows - start))
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=chunk_rows)
        if writer is not None:
            writer.close()

    atomic_write(path, write_chunks)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _solve_bias(score: np.ndarray, target: float, weights: np.ndarray | None) -> float:
    low, high = -30.0, 30.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if np.average(_sigmoid(middle + score), weights=weights) < target else (low, middle)
    return (low + high) / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--out", required=True, help=".parquet file to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    write(args.out, args.rows, args.seed, args.chunk_rows)
    print(json.dumps({"out": args.out, "rows": args.rows, "seconds": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
