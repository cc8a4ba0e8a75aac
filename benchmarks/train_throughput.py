"""Training and inference throughput, peak memory and test quality of one config, as one JSON line.

Usage (the 1M-row synthetic benchmark; the data comes from ../shared/bench/make_synth.py):

    python ../shared/bench/make_synth.py --rows 1000000 --seed 0 --out bench_data/synth_1m.csv.gz
    .venv/bin/python benchmarks/train_throughput.py --config benchmarks/configs/synth_mmoe.yaml

Training samples/s counts only the optimisation loop (forward, backward, optimizer steps, batching);
data reading/encoding and evaluation are timed separately. With ``train.compile`` the compilation (in the
first step, or the ``auto`` probe) is left out of ``train_samples_per_s`` and kept in
``train_samples_per_s_with_compile``. Inference samples/s is the
eager model scoring the test split in batches of ``train.eval_batch_size``. ``train.device`` is honoured
(``--set train.device=cuda`` on a GPU). Run it alone on the machine: another busy process makes the
figures meaningless.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from mtlrec.app import build
from mtlrec.app.run_files import RunFiles
from mtlrec.config import load_config
from mtlrec.data.reading import encode, read_splits
from mtlrec.evaluation import compute_metrics, predict_scores
from mtlrec.training.distributed import distributed_session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", help="override data.train")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--slice-by", metavar="COLUMN", help="also the test metrics per value of this data column")
    args = parser.parse_args(argv)
    overrides = list(args.set) + ([f"data.train={args.data}"] if args.data else [])
    config = load_config(args.config, overrides)
    build.check_config(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)

    started = time.perf_counter()
    pipeline = build.build_pipeline(config)
    raw = read_splits(build.data_files(config), pipeline, build.read_options(config), build.random_split(config))
    pipeline.fit(raw["train"].table, raw["train"].labels)
    data = {name: encode(split, pipeline) for name, split in raw.items()}
    evaluated = "test" if "test" in raw else "valid" if "valid" in raw else "train"
    slices = raw[evaluated].table.column(args.slice_by).to_numpy() if args.slice_by else None
    del raw
    data_seconds = time.perf_counter() - started

    with distributed_session(config.train.device) as context, tempfile.TemporaryDirectory() as run_dir:
        model = build.build_model(config, pipeline).to(context.device)
        files = RunFiles(Path(run_dir))
        trainer = build.build_trainer(config, model, pipeline, files, show_progress_bar=False, context=context)
        train_seconds = _train(trainer, data["train"], config.train.epochs, context.device)
    compile_seconds = trainer.compilation.compile_seconds or 0.0
    evaluation = data[evaluated]
    losses = build.build_losses(config, pipeline)
    predict_scores(model, evaluation, losses, config.train.eval_batch_size)  # warm-up
    inference_started = time.perf_counter()
    scores = predict_scores(model, evaluation, losses, config.train.eval_batch_size)
    inference_seconds = time.perf_counter() - inference_started
    labels = {task: evaluation.labels[task].numpy() for task in evaluation.task_names}
    metrics = compute_metrics(labels, scores, build.metric_names(config))
    by_slice = {}
    for value in [] if slices is None else sorted(set(slices.tolist())):
        rows = slices == value
        sliced = compute_metrics(
            {t: v[rows] for t, v in labels.items()}, {t: v[rows] for t, v in scores.items()}, build.metric_names(config)
        )
        by_slice[str(value)] = {task: {k: round(v, 5) for k, v in values.items()} for task, values in sliced.items()}

    result = {
        "config": args.config,
        "architecture": config.model.architecture,
        "train_rows": len(data["train"]),
        "eval_rows": len(evaluation),
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "threads": torch.get_num_threads(),
        "device": str(context.device),
        "precision": trainer.precision,
        "compile": trainer.compilation.as_dict(),
        "train_samples_per_s": round(len(data["train"]) * config.train.epochs / (train_seconds - compile_seconds), 1),
        "train_samples_per_s_with_compile": round(len(data["train"]) * config.train.epochs / train_seconds, 1),
        "inference_samples_per_s": round(len(evaluation) / inference_seconds, 1),
        "data_load_seconds": round(data_seconds, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
        "metrics": {
            task: {name: round(value, 5) for name, value in values.items()} for task, values in metrics.items()
        },
        **({"slices": {args.slice_by: by_slice}} if slices is not None else {}),
    }
    print(json.dumps(result))
    return 0


def _train(trainer, train, epochs: int, device: torch.device) -> float:
    """Train every epoch; the seconds it took."""
    started = time.perf_counter()
    for epoch in range(epochs):
        trainer.train_epoch(train, epoch)
    _synchronize(device)
    return time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    sys.exit(main())
