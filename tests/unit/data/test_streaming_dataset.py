"""Tests for StreamingDataset: rows once per epoch, determinism, rank shards, errors that name file and row."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mtlrec.data import FitSettings, StreamingDataset, StreamSettings, fit_streaming
from mtlrec.errors import DataError
from mtlrec.features import BinaryLabel, CategoricalEncoder, FeaturePipeline, LabelSpec, NumericEncoder
from mtlrec.io import CsvFormat, count_rows, list_fragments


def _pipeline() -> FeaturePipeline:
    features = [
        CategoricalEncoder("user"),
        NumericEncoder("row", standardize=False),  # identifies the row in a batch
    ]
    return FeaturePipeline(features, [LabelSpec("click", "click", BinaryLabel())])


def _write(folder: Path, files: int, rows_per_file: int, row_group_size: int) -> Path:
    folder.mkdir()
    for index in range(files):
        rows = np.arange(index * rows_per_file, (index + 1) * rows_per_file)
        table = pa.table({"user": [f"u{r % 7}" for r in rows], "row": rows.astype(float), "click": (rows % 2) * 1.0})
        pq.write_table(table, folder / f"part-{index}.parquet", row_group_size=row_group_size)
    return folder


def _dataset(folder: Path, **settings) -> StreamingDataset:
    pipeline, fragments = fit_streaming(_pipeline(), list_fragments(folder), FitSettings())
    return StreamingDataset(fragments, pipeline, StreamSettings(**{"batch_size": 32, "seed": 5, **settings}))


def _rows(batches) -> list[int]:
    return [int(row) for batch in batches for row in batch.inputs["row"].tolist()]


def test_an_epoch_yields_every_row_once_in_a_seeded_order(tmp_path):
    data = _dataset(_write(tmp_path / "d", files=3, rows_per_file=100, row_group_size=40), shuffle_buffer_rows=50)
    batches = list(data.epoch(0))
    assert [len(b) for b in batches] == [32] * 9 + [12] and data.steps(0) == 10
    assert sorted(_rows(batches)) == list(range(300))
    batch = batches[0]
    users = [f"u{r % 7}" for r in batch.inputs["row"].int().tolist()]  # ids and labels travel with their row
    expected = data.pipeline.encoders[0].transform(pa.table({"user": users}))["user"]
    np.testing.assert_array_equal(batch.inputs["user"].numpy(), expected)
    np.testing.assert_array_equal(batch.labels["click"].numpy(), batch.inputs["row"].numpy() % 2)
    assert _rows(data.epoch(0)) == _rows(batches)  # deterministic for a seed and epoch
    assert _rows(data.epoch(1)) != _rows(batches)  # a new order each epoch
    assert _rows(batches) != sorted(_rows(batches))


def test_the_fitting_pass_hands_every_rows_labels_to_on_labels(tmp_path):
    seen: list[dict[str, np.ndarray]] = []
    folder = _write(tmp_path / "d", files=3, rows_per_file=100, row_group_size=40)
    fit_streaming(_pipeline(), list_fragments(folder), FitSettings(read_batch_rows=32), on_labels=seen.append)
    assert all(list(batch) == ["click"] for batch in seen) and len(seen) > 3
    np.testing.assert_array_equal(np.concatenate([b["click"] for b in seen]), np.arange(300) % 2)  # once, in order


def test_two_ranks_read_disjoint_shards_and_take_the_same_number_of_steps(tmp_path):
    folder = _write(tmp_path / "d", files=4, rows_per_file=64, row_group_size=32)
    ranks = [_dataset(folder, world_size=2, rank=rank, prefetch_batches=2) for rank in range(2)]
    for epoch in range(2):
        batches = [list(data.epoch(epoch)) for data in ranks]
        assert len(batches[0]) == len(batches[1]) == ranks[0].steps(epoch) == 8
        assert all(len(b) == 16 for rank in batches for b in rank)  # the global batch 32, split in two
        rows = [set(_rows(rank)) for rank in batches]
        assert not rows[0] & rows[1]
        assert rows[0] | rows[1] == set(range(256))


def test_a_bad_row_in_the_third_csv_file_stops_with_its_file_and_line(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for index in range(4):
        lines = ["user,row,click"] + [f"u{i},{i},{i % 2}" for i in range(200)]
        if index == 2:
            lines[151] = "u1,oops,1"
        (folder / f"part-{index}.csv").write_text("\n".join(lines) + "\n")
    pipeline = _pipeline().fit(pa.table({"user": ["u1"], "row": [1.0]}))
    fragments = count_rows(list_fragments(folder), "click")
    data = StreamingDataset(fragments, pipeline, StreamSettings(batch_size=16, read_batch_rows=32, csv=CsvFormat()))
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            for epoch in range(4):  # the file order changes per epoch; file 3 is read in every one
                list(data.epoch(epoch))
        except DataError as error:
            outcome.append(error)

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the stream hung on a bad row"
    assert outcome and "part-2.csv" in str(outcome[0]) and "'oops' at line 152" in str(outcome[0])


def test_a_label_error_names_the_row_within_the_file_not_within_the_batch(tmp_path):
    rows = np.arange(100)
    clicks = (rows % 2).astype(float)
    clicks[77] = 3.0
    table = pa.table({"user": [f"u{r}" for r in rows], "row": rows.astype(float), "click": clicks})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=30)
    with pytest.raises(DataError, match=r"t\.parquet: label column 'click' value 3\.0 at data row 78 "):
        fit_streaming(_pipeline(), list_fragments(tmp_path / "t.parquet"), FitSettings(read_batch_rows=8))


def test_streamed_batches_equal_the_in_memory_encoding_for_every_feature_kind(tmp_path):
    """No shuffling, one fragment, one batch of every row: the stream's inputs are the in-memory ones."""
    from mtlrec.data import ReadOptions, encode, read_split
    from mtlrec.features import CrossEncoder, MultiValuedEncoder, SequenceEncoder, SequenceField, Vocabulary

    def pipeline() -> FeaturePipeline:
        item = Vocabulary()
        encoders = [
            CategoricalEncoder("item", table="item", vocabulary=item),
            NumericEncoder("price", buckets=3),
            MultiValuedEncoder("tags", kv_separator=":"),
            SequenceEncoder("hist", [SequenceField("item", "hist", "item", item)], max_length=3, recent="last"),
            CrossEncoder("item_x_user", ["item", "user"], hash_buckets=13),
        ]
        return FeaturePipeline(encoders, [LabelSpec("click", "click", BinaryLabel())])

    rng = np.random.default_rng(0)
    rows = 200
    table = pa.table(
        {
            "item": [f"i{v}" for v in rng.integers(0, 20, rows)],
            "user": [f"u{v}" for v in rng.integers(0, 5, rows)],
            "price": rng.lognormal(size=rows),
            "tags": [[f"t{t}:{w:.1f}" for t, w in zip(rng.integers(0, 6, n), rng.uniform(0.1, 2, n))]
                     for n in rng.integers(0, 4, rows)],
            "hist": pa.array([[f"i{v}" for v in rng.integers(0, 20, n)] for n in rng.integers(0, 6, rows)]),
            "click": rng.integers(0, 2, rows) * 1.0,
        }
    )
    path = tmp_path / "log.parquet"
    pq.write_table(table, path)
    memory_pipeline = pipeline()
    raw = read_split(path, memory_pipeline, ReadOptions(), with_labels=True)
    memory_pipeline.fit(raw.table, raw.labels)
    expected = encode(raw, memory_pipeline).rows
    fitted, fragments = fit_streaming(pipeline(), list_fragments(path), FitSettings())
    assert fitted.to_dict() == memory_pipeline.to_dict()
    stream = StreamingDataset(fragments, fitted, StreamSettings(batch_size=rows, shuffle_buffer_rows=0))
    (batch,) = list(stream.epoch(0))
    assert list(batch.inputs) == list(expected.inputs)
    for name, value in expected.inputs.items():
        np.testing.assert_array_equal(batch.inputs[name].numpy(), value.numpy(), err_msg=name)
    np.testing.assert_array_equal(batch.labels["click"].numpy(), expected.labels["click"].numpy())
