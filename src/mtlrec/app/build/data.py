"""Config → the fitted feature pipeline and the data of a training run (in memory or streamed).

Under data parallelism rank 0 fits (or, on resume, loads) the pipeline and writes ``features.json``;
the fitted state reaches the other ranks over the process group, so they need no shared file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from mtlrec.app.build.objects import build_pipeline, data_files, random_split, read_options
from mtlrec.app.run_files import RunFiles
from mtlrec.config import Config
from mtlrec.data import FitSettings, StreamingDataset, StreamSettings, fit_streaming
from mtlrec.data.reading import encode, read_split, read_splits
from mtlrec.evaluation.diagnostics import LabelMoments
from mtlrec.features import FeaturePipeline
from mtlrec.io import count_rows, list_fragments
from mtlrec.training.distributed import DistributedContext

log = logging.getLogger("mtlrec")


def training_data(
    config: Config, files: RunFiles, resume: bool, context: DistributedContext | None = None
) -> tuple[FeaturePipeline, dict[str, Any]]:
    """The fitted pipeline and ``{"train": EncodedData | StreamingDataset, "valid"/"test": EncodedData}``.

    Without ``resume`` the pipeline is fitted on the training data and saved; with it, loaded from the run.
    """
    context = context or DistributedContext()
    if config.data.streaming is not None:
        return _streamed(config, files, resume, context)
    pipeline = build_pipeline(config)
    raw = read_splits(data_files(config), pipeline, read_options(config), random_split(config))
    text = None
    if context.is_main:
        if resume:
            pipeline = FeaturePipeline.load(files.features)
        else:
            pipeline.fit(raw["train"].table, raw["train"].labels)
            pipeline.save(files.features)
        text = json.dumps(pipeline.to_dict())
    pipeline = FeaturePipeline.from_dict(json.loads(context.broadcast_text(text)))
    return pipeline, {name: encode(split, pipeline, config.evaluation.group_by) for name, split in raw.items()}


def _streamed(
    config: Config, files: RunFiles, resume: bool, context: DistributedContext
) -> tuple[FeaturePipeline, dict[str, Any]]:
    options, streaming = read_options(config), config.data.streaming
    fragments = list_fragments(config.data.train, config.data.format)
    text = None
    if context.is_main:
        pearson_and_rows = None  # a resumed run keeps the label correlation its diagnostics recorded
        if resume:
            pipeline = FeaturePipeline.load(files.features)
            fragments = count_rows(fragments, pipeline.labels[0].column, options.csv, options.batch_rows)
        else:
            fit = FitSettings(streaming.fit_sample_rows, streaming.max_distinct_values, config.train.seed)
            fit = replace(fit, read_batch_rows=options.batch_rows, csv=options.csv)
            pipeline = build_pipeline(config)
            moments = LabelMoments(len(pipeline.labels))
            tasks = pipeline.task_names

            def on_labels(labels: dict[str, np.ndarray]) -> None:
                moments.update(np.stack([labels[task] for task in tasks], axis=1))

            pipeline, fragments = fit_streaming(pipeline, fragments, fit, on_labels=on_labels)
            pipeline.save(files.features)
            pearson_and_rows = [matrix.tolist() for matrix in moments.correlation()]
        row_counts = [f.rows for f in fragments]
        text = json.dumps({"pipeline": pipeline.to_dict(), "rows": row_counts, "label_correlation": pearson_and_rows})
    shared = json.loads(context.broadcast_text(text))
    pipeline = FeaturePipeline.from_dict(shared["pipeline"])
    fragments = [replace(f, rows=rows) for f, rows in zip(fragments, shared["rows"])]
    pearson_and_rows = shared["label_correlation"]
    if pearson_and_rows is not None:
        pearson_and_rows = (np.array(pearson_and_rows[0], dtype=np.float64), np.array(pearson_and_rows[1]))
    settings = StreamSettings(
        batch_size=config.train.batch_size,
        seed=config.train.seed,
        shuffle_buffer_rows=streaming.shuffle_buffer_rows,
        prefetch_batches=streaming.prefetch_batches,
        read_batch_rows=options.batch_rows,
        csv=options.csv,
        rank=context.rank,
        world_size=context.world_size,
    )
    train = StreamingDataset(fragments, pipeline, settings, pearson_and_rows)
    _warn_uneven(train, context)
    data: dict[str, Any] = {"train": train}
    for name in ("valid", "test"):
        path = getattr(config.data, name)
        if path:
            raw = read_split(path, pipeline, options, with_labels=True)
            data[name] = encode(raw, pipeline, config.evaluation.group_by)
    return pipeline, data


def _warn_uneven(train: StreamingDataset, context: DistributedContext) -> None:
    if not context.enabled or not context.is_main:
        return
    if train.settings.batch_size % context.world_size:
        log.warning(
            "train.batch_size %d is not a multiple of the %d ranks; each rank takes %d rows per step",
            train.settings.batch_size,
            context.world_size,
            train.settings.local_batch_size,
        )
    used = train.steps(0) * train.settings.local_batch_size * context.world_size
    if used < 0.99 * train.rows:
        log.warning(
            "the %d fragments (row groups / CSV files) of data.train split unevenly over %d ranks: about %.0f%% of "
            "the rows are skipped per epoch (a different part each epoch); write more, smaller row groups or files",
            len(train.fragments),
            context.world_size,
            100 * (1 - used / train.rows),
        )
