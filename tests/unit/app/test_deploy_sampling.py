"""The held-out rows an export measures its accuracy on: a seeded, bounded, uniform sample of a test file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mtlrec.app.deploy import _sample_file, task_metrics
from mtlrec.data.reading import ReadOptions
from mtlrec.features import (
    BinaryLabel,
    CategoricalEncoder,
    ClassLabel,
    FeaturePipeline,
    LabelSpec,
    NumericEncoder,
    RegressionLabel,
)


def _pipeline() -> FeaturePipeline:
    return FeaturePipeline(
        [CategoricalEncoder("user"), NumericEncoder("age")],
        [
            LabelSpec("click", "click", BinaryLabel()),
            LabelSpec("watch", "watch", RegressionLabel()),
            LabelSpec("genre", "genre", ClassLabel(["a", "b"])),
        ],
    )


def _file(tmp_path, rows: int):
    table = pa.table({
        "row": np.arange(rows, dtype=np.int64),
        "user": [f"u{i % 7}" for i in range(rows)],
        "age": np.arange(rows, dtype=np.float64),
        "click": (np.arange(rows) % 2).astype(np.float64),
        "watch": np.ones(rows),
        "genre": ["a", "b"] * (rows // 2),
    })
    path = tmp_path / "test.parquet"
    pq.write_table(table, path, row_group_size=1000)  # several record batches
    return path


def test_a_file_is_sampled_uniformly_in_order_and_reproducibly(tmp_path):
    path, options = _file(tmp_path, 10_000), ReadOptions(batch_rows=1000)
    sample = _sample_file(path, _pipeline(), options, 500, seed=0)
    ages = sample.column("age").to_numpy()
    assert sample.num_rows == 500 and len(np.unique(ages)) == 500
    assert np.all(np.diff(ages) > 0)  # file order
    assert {"click", "watch", "genre"} <= set(sample.column_names)  # labels read too
    assert 3500 < ages.mean() < 6500 and ages.max() > 9000  # from the whole file, not its head
    assert np.array_equal(_sample_file(path, _pipeline(), options, 500, seed=0).column("age").to_numpy(), ages)
    assert not np.array_equal(_sample_file(path, _pipeline(), options, 500, seed=1).column("age").to_numpy(), ages)
    assert _sample_file(path, _pipeline(), options, 20_000, seed=0).num_rows == 10_000  # fewer rows: all of them


def test_binary_tasks_get_auc_and_multi_class_tasks_accuracy():
    metrics = task_metrics(_pipeline())
    assert {task: name for task, (name, _) in metrics.items()} == {"click": "auc", "genre": "accuracy"}
