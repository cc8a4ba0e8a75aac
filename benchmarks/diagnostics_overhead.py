"""Cost of training diagnostics on the step time of one config, as one JSON line.

Times ``Trainer.train_step`` on the config's real training batches with the diagnostics hook off,
sampling every ``diagnostics.every_steps`` steps (the config's, default 200) and sampling every
step (the cost of one sampled step: T extra backward passes through the shared layers for the
gradient cosines, plus gate statistics). Modes are timed round-robin (``--rounds`` blocks of
``--steps`` steps each) so load from other processes spreads over all of them. Usage:

    .venv/bin/python benchmarks/diagnostics_overhead.py --config configs/census/mmoe.yaml --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from mtlrec.app import build
from mtlrec.app.run_files import RunFiles
from mtlrec.config import load_config
from mtlrec.data.reading import encode, read_split
from mtlrec.training.diagnostics import DiagnosticsRecorder, DiagnosticsSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config, args.set)
    build.check_config(config)
    pipeline = build.build_pipeline(config)
    raw = read_split(config.data.train, pipeline, build.read_options(config), with_labels=True)
    pipeline.fit(raw.table, raw.labels)
    train = encode(raw, pipeline)
    model = build.build_model(config, pipeline)
    every = config.diagnostics.every_steps or 200
    with tempfile.TemporaryDirectory() as run_dir:
        files = RunFiles(Path(run_dir))
        trainer = build.build_trainer(config, model, pipeline, files, show_progress_bar=False)
        tasks = list(trainer.train_losses)
        modes = {
            "off": None,
            f"every_{every}": DiagnosticsRecorder(model, tasks, DiagnosticsSettings(every), files.diagnostics),
            "every_1": DiagnosticsRecorder(model, tasks, DiagnosticsSettings(1), files.diagnostics),
        }
        batches = itertools.cycle(list(train.batches(config.train.batch_size, shuffle=True)))
        model.train()
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.steps):  # warm-up
            trainer.train_step(next(batches))
        for _ in range(args.rounds):
            for mode, recorder in modes.items():
                trainer.diagnostics = recorder
                started = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step(next(batches))
                times[mode].append((time.perf_counter() - started) / args.steps)
    mean = {mode: statistics.fmean(values) * 1e3 for mode, values in times.items()}
    result = {
        "config": args.config,
        "batch_size": config.train.batch_size,
        "threads": args.threads,
        "steps_per_mode": args.rounds * args.steps,
        "step_ms_mean": {mode: round(value, 3) for mode, value in mean.items()},
        "step_ms_median_block": {mode: round(statistics.median(v) * 1e3, 3) for mode, v in times.items()},
        "sampled_step_extra_ms": round(mean["every_1"] - mean["off"], 3),
        f"overhead_pct_every_{every}_measured": round(100 * (mean[f"every_{every}"] / mean["off"] - 1), 2),
        f"overhead_pct_every_{every}_expected": round(100 * (mean["every_1"] - mean["off"]) / every / mean["off"], 3),
    }
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
