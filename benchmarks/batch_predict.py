"""Batch prediction throughput of an exported artifact on a data file, as one JSON line.

End to end is ``mtlrec predict ARTIFACT``'s path: stream the file in record batches (pyarrow), encode
(FeaturePipeline), run the exported graph, append to a Parquet file. The profile then times each
stage alone: reading, reading + encoding, and the model on rows already encoded.

Usage (the 1M-row synthetic set; the run from benchmarks/configs/synth_mmoe.yaml):

    .venv/bin/mtlrec train benchmarks/configs/synth_mmoe.yaml --output runs/synth_mmoe
    .venv/bin/mtlrec export runs/synth_mmoe --output runs/synth_mmoe.onnx
    .venv/bin/mtlrec export runs/synth_mmoe --output runs/synth_mmoe.pt --format torchscript
    .venv/bin/mtlrec export runs/synth_mmoe --output runs/synth_mmoe.int8 --quantize int8
    .venv/bin/mtlrec export runs/synth_mmoe --output runs/synth_mmoe.bf16 --quantize bf16
    .venv/bin/python benchmarks/batch_predict.py --artifact runs/synth_mmoe.onnx --data bench_data/synth_1m.csv.gz
    .venv/bin/python benchmarks/batch_predict.py --artifact runs/synth_mmoe.onnx --eager runs/synth_mmoe --data ...
    .venv/bin/python benchmarks/batch_predict.py --artifact runs/synth_mmoe.onnx --artifact runs/synth_mmoe.int8 \
        --artifact runs/synth_mmoe.bf16 --rounds 3 --no-profile --data bench_data/synth_1m.csv.gz

``--eager RUN_DIR`` swaps the artifact's graph for the run's eager PyTorch model (same encoders,
same streaming), for comparison. ``cpu_s`` is the process's user + system CPU time, which a machine
shared with other work inflates less than the wall time. Several ``--artifact`` with ``--rounds``
alternate them round by round (A, B, C, A, B, C, ...) and print one line per run, then one summary
line of medians per artifact, so that a shared machine's load weighs on each alike. Each line also
carries the artifact's quantization and the held-out AUC its manifest recorded (``mtlrec export``
measures it beside the fp32 model's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from mtlrec.io import iter_record_batches
from mtlrec.serving import Predictor
from mtlrec.serving.batch import predict_file


class EagerModel:
    """A run's eager ScoringModel behind the exported-model interface (``run(inputs by name)``)."""

    def __init__(self, run_dir: str, fusion: dict):
        from mtlrec.app import api, build
        from mtlrec.export import Fusion, scoring_model

        config, pipeline, model = api.load_run(run_dir)
        losses, served = build.build_losses(config, pipeline), build.served_tasks(config)
        self.scoring = scoring_model(model, losses, pipeline, Fusion.from_dict(fusion), served)
        self.scoring.eval()

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            positional = self.scoring.positional({name: torch.from_numpy(value) for name, value in inputs.items()})
            return [t.numpy() for t in self.scoring(*positional)]


def _clock() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def _timed(function) -> tuple[object, float, float]:
    wall, cpu = _clock()
    result = function()
    wall_end, cpu_end = _clock()
    return result, wall_end - wall, cpu_end - cpu


def _batches(predictor: Predictor, data: str, batch_rows: int):
    return iter_record_batches(
        data, predictor.input_columns, None, predictor.csv_format, batch_rows, separators=predictor.separators
    )


def profile(predictor: Predictor, data: str, batch_rows: int, model_rows: int) -> dict:
    """Seconds to read the file, to read and encode it, and samples/s of the model alone."""
    rows, read_s, read_cpu = _timed(lambda: sum(b.num_rows for b in _batches(predictor, data, batch_rows)))

    def read_and_encode() -> list[dict[str, np.ndarray]]:
        encoded, kept = [], 0
        for batch in _batches(predictor, data, batch_rows):
            inputs = predictor.encode(pa.Table.from_batches([batch]), data)
            if kept < model_rows:
                encoded.append(inputs)
                kept += batch.num_rows
        return encoded

    encoded, encode_s, encode_cpu = _timed(read_and_encode)
    predictor.model.run(encoded[0])  # warm-up
    _, model_s, model_cpu = _timed(lambda: [predictor.model.run(inputs) for inputs in encoded])
    scored = sum(len(next(iter(inputs.values()))) for inputs in encoded)
    return {
        "read_s": round(read_s, 2),
        "read_cpu_s": round(read_cpu, 2),
        "read_encode_s": round(encode_s, 2),
        "read_encode_cpu_s": round(encode_cpu, 2),
        "read_samples_per_s": round(rows / read_s),
        "read_encode_samples_per_s": round(rows / encode_s),
        "model_rows": scored,
        "model_s": round(model_s, 2),
        "model_samples_per_s": round(scored / model_s),
        "model_samples_per_cpu_s": round(scored / model_cpu),
    }


def run_once(args: argparse.Namespace, artifact: str) -> dict:
    """One end-to-end batch prediction (and, unless ``--no-profile``, the stage profile) of ``artifact``."""
    predictor = Predictor.load(artifact, threads=args.threads)
    backend = predictor.manifest["model"]["format"]
    if args.eager:
        predictor.model, backend = EagerModel(args.eager, predictor.manifest["fusion"]), "eager"
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "scores.parquet"
        rows, seconds, cpu = _timed(lambda: predict_file(predictor, args.data, output, args.batch_rows))
    accuracy = predictor.manifest.get("accuracy") or {}
    result = {
        "artifact": artifact,
        "backend": backend,
        "quantization": predictor.manifest.get("quantization"),
        "data": args.data,
        "rows": rows,
        "threads": args.threads,
        "batch_rows": args.batch_rows,
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "samples_per_s": round(rows / seconds),
        "samples_per_cpu_s": round(rows / cpu),
        "held_out": {task: {"fp32": figures["fp32"], "artifact": figures["artifact"], "metric": figures["metric"]}
                     for task, figures in (accuracy.get("tasks") or {}).items()},
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }
    if not args.no_profile:
        result["profile"] = profile(predictor, args.data, args.batch_rows, args.model_rows)
    return result


def summary(results: list[dict]) -> dict:
    """Medians per artifact over the rounds."""
    by_artifact: dict[str, list[dict]] = {}
    for result in results:
        by_artifact.setdefault(result["artifact"], []).append(result)
    return {
        artifact: {
            "quantization": runs[0]["quantization"],
            "rounds": len(runs),
            "median_samples_per_s": round(statistics.median(r["samples_per_s"] for r in runs)),
            "median_samples_per_cpu_s": round(statistics.median(r["samples_per_cpu_s"] for r in runs)),
            "held_out": runs[0]["held_out"],
        }
        for artifact, runs in by_artifact.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", required=True, action="append", help="artifact directory (repeatable)")
    parser.add_argument("--data", required=True, help="CSV/Parquet file to score")
    parser.add_argument("--eager", metavar="RUN_DIR", help="score with this run's eager model instead of the graph")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=65536)
    parser.add_argument("--model-rows", type=int, default=300_000, help="rows the model-only timing scores")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds over the artifacts")
    parser.add_argument("--no-profile", action="store_true", help="end to end only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for _ in range(args.rounds):
        for artifact in args.artifact:
            results.append(run_once(args, artifact))
            results[-1]["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)
            print(json.dumps(results[-1]), flush=True)
    if len(results) > 1:
        print(json.dumps({"summary": summary(results), "load_average": [round(x, 2) for x in os.getloadavg()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
