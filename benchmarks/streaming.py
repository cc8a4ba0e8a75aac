"""Streaming against in-memory training: peak RSS at 10M rows, samples/s where both fit, as JSON lines.

    .venv/bin/python benchmarks/streaming.py --data bench_data/synth_10m.parquet \
        --compare-data bench_data/synth_1m.parquet --repeats 3

Missing data files are generated first (``synth_parquet.py``, chunked; ``bench_data/`` is git-ignored).
Every measurement runs in a fresh process, so its peak RSS (``ru_maxrss``, the high-water mark of
the resident set) is its own: the feature fit, the data (in memory, or the stream's shuffle buffer
and prefetch queue), the model and one epoch of MMoE (``benchmarks/configs/synth_mmoe.yaml``).
``train_samples_per_s`` is one epoch of ``Trainer.train_epoch``: for the stream it includes reading
and encoding (done by the background thread while the model trains); for the in-memory path the
data is already encoded. On ``--compare-data`` both paths run ``--repeats`` times, alternating, so
load from other processes affects both alike; the 10M-row file runs streaming only.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mtlrec.app import build
from mtlrec.app.run_files import RunFiles
from mtlrec.config import load_config

BENCHMARKS = Path(__file__).resolve().parent
CONFIG = BENCHMARKS / "configs" / "synth_mmoe.yaml"


def measure(config_path: str, data: str, streaming: bool, overrides: list[str]) -> dict:
    """One epoch in this process: fit the features, build the data and the model, train; figures as a dict."""
    settings = [f"data.train={data}", "data.split=null", f"data.streaming={'{}' if streaming else 'null'}"]
    config = load_config(config_path, settings + overrides)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        files = RunFiles(Path(run_dir))
        pipeline, splits = build.training_data(config, files, resume=False)
        data_seconds = time.perf_counter() - started
        model = build.build_model(config, pipeline)
        trainer = build.build_trainer(config, model, pipeline, files, show_progress_bar=False)
        epoch_started = time.perf_counter()
        trainer.train_epoch(splits["train"], 0)
        epoch_seconds = time.perf_counter() - epoch_started
    rows = len(splits["train"])
    return {
        "mode": "streaming" if streaming else "in_memory",
        "data": data,
        "rows": rows,
        "threads": torch.get_num_threads(),
        "fit_and_load_seconds": round(data_seconds, 1),
        "epoch_seconds": round(epoch_seconds, 1),
        "train_samples_per_s": round(rows / epoch_seconds, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
        "load_average_1min": round(_load_average(), 2),
    }


def _load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _child(config: str, data: str, streaming: bool, overrides: list[str]) -> dict:
    command = [sys.executable, __file__, "--measure", "--config", config, "--data", data]
    command += ["--streaming"] if streaming else []
    command += [arg for override in overrides for arg in ("--set", override)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"measurement failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def _ensure(path: str, rows: int) -> None:
    if not Path(path).is_file():
        command = [sys.executable, str(BENCHMARKS / "synth_parquet.py"), "--rows", str(rows), "--out", path]
        subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the large file, trained streaming only (generated if missing)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to generate for --data")
    parser.add_argument("--compare-data", help="a file both paths can hold (generated if missing)")
    parser.add_argument("--compare-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--streaming", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.config, args.data, args.streaming, args.set)))
        return 0
    summary: dict = {}
    if args.compare_data:
        _ensure(args.compare_data, args.compare_rows)
        speeds: dict[str, list[float]] = {"in_memory": [], "streaming": []}
        rss: dict[str, float] = {}
        for _ in range(args.repeats):
            for streaming in (False, True):
                result = _child(args.config, args.compare_data, streaming, args.set)
                speeds[result["mode"]].append(result["train_samples_per_s"])
                rss[result["mode"]] = max(rss.get(result["mode"], 0.0), result["peak_rss_gb"])
        medians = {mode: statistics.median(values) for mode, values in speeds.items()}
        summary["compare"] = {
            "rows": result["rows"],
            "peak_rss_gb": rss,
            "median_samples_per_s": medians,
            "streaming_vs_in_memory": round(medians["streaming"] / medians["in_memory"], 3),
        }
    if args.data:
        _ensure(args.data, args.rows)
        summary["large"] = _child(args.config, args.data, True, args.set)
    print(json.dumps({"summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
