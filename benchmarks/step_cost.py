"""The training step's cost at small and large batches, eager against compiled, per precision, as one JSON line.

Usage (the 1M-row synthetic benchmark, or any config):

    .venv/bin/python benchmarks/step_cost.py --config benchmarks/configs/synth_mmoe.yaml

At batch 8 a step's arithmetic is negligible, so its time is the fixed cost: operator dispatch, autograd,
the optimizers' per-parameter work. Every variant (``eager``/``compiled`` × each ``--precisions`` value) is
a trainer over the same initial model (built anew per batch size: compiled graphs are for one batch size);
they take turns, ``--rounds`` rounds of ``--steps`` steps each per batch size, and the median round counts.
``compile_seconds`` is the compiled variants' first compiled step (TorchDynamo tracing and Inductor code
generation, or less on a cache hit when an earlier variant had the same graph).
Run it alone on the machine: another busy process makes every figure meaningless.
"""

from __future__ import annotations

import argparse
import copy
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
from mtlrec.data.reading import encode, read_splits
from mtlrec.data.sources import InMemorySource

WARM_UP = 3  # untimed steps per variant and batch size (the first one may sample diagnostics, eagerly)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", help="override data.train")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--batch-sizes", default="8,1024")
    parser.add_argument("--precisions", default="fp32,auto", help="train.precision values to compare")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    overrides = list(args.set) + ([f"data.train={args.data}"] if args.data else [])
    config = load_config(args.config, overrides)
    build.check_config(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    pipeline = build.build_pipeline(config)
    raw = read_splits(build.data_files(config), pipeline, build.read_options(config), build.random_split(config))
    pipeline.fit(raw["train"].table, raw["train"].labels)
    train = encode(raw["train"], pipeline)
    del raw

    model = build.build_model(config, pipeline)
    result = {"config": args.config, "architecture": config.model.architecture, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as run_dir:
        for batch_size in (int(size) for size in args.batch_sizes.split(",")):
            variants = _variants(config, model, pipeline, args.precisions.split(","), Path(run_dir) / str(batch_size))
            batches = list(itertools.islice(InMemorySource(train, batch_size, 0).epoch(0), args.steps))
            for trainer in variants.values():
                for batch in batches[:WARM_UP]:  # a compiled variant compiles in these (for this batch size)
                    trainer.train_step(batch)
            rounds = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, trainer in variants.items():
                    started = time.perf_counter()
                    for batch in batches:
                        trainer.train_step(batch)
                    rounds[name].append((time.perf_counter() - started) / len(batches) * 1000)
            medians = {name: statistics.median(times) for name, times in rounds.items()}
            result[f"batch_{batch_size}"] = {
                "ms_per_step": {name: round(value, 3) for name, value in medians.items()},
                "samples_per_s": {name: round(batch_size * 1000 / value, 1) for name, value in medians.items()},
                "compile_seconds": {
                    name: trainer.compilation.compile_seconds for name, trainer in variants.items() if trainer.compiled
                },
            }
        result["precision"] = {name: trainer.precision for name, trainer in variants.items()}
    print(json.dumps(result))
    return 0


def _variants(config, model, pipeline, precisions: list[str], folder: Path) -> dict:
    """A trainer per (precision, eager or compiled), each over its own copy of the same initial model."""
    variants = {}
    for precision, compiled in itertools.product(precisions, (False, True)):
        name = f"{precision}_{'compiled' if compiled else 'eager'}"
        variant = config.model_copy(deep=True)
        variant.train.precision, variant.train.compile = precision, compiled
        files, network = RunFiles(folder / name), copy.deepcopy(model)
        variants[name] = build.build_trainer(variant, network, pipeline, files, show_progress_bar=False)
    return variants


if __name__ == "__main__":
    sys.exit(main())
