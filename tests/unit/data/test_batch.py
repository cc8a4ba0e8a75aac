"""Tests for mtlrec.data.batch: keyed batches (slice, take, concat), EncodedData batching and shuffling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlrec.data.batch import Batch, EncodedData

TASKS = ["click", "buy", "minutes"]


def make_data(rows: int = 23, with_labels: bool = True) -> EncodedData:
    """Row r has inputs user = r, item = 1000 + r, tags = [r, r, 0], price = r / 2, and labels [r, 10r, 100r]
    (each row is identifiable in every tensor)."""
    r = np.arange(rows)
    inputs = {
        "user": r.astype(np.int64),
        "item": (1000 + r).astype(np.int64),
        "tags": np.stack([r, r, np.zeros_like(r)], axis=1).astype(np.int64),
        "price": (r / 2).astype(np.float32),
    }
    labels = {task: (factor * r).astype(np.float32) for task, factor in zip(TASKS, (1, 10, 100))}
    return EncodedData(Batch.from_numpy(inputs, labels if with_labels else None), TASKS)


def rows_of(batch: Batch) -> list[int]:
    return batch.inputs["user"].tolist()


def check_consistent(batch: Batch) -> None:
    """Every tensor in the batch describes the same rows, in the same order."""
    rows = batch.inputs["user"].to(torch.float64)
    assert torch.equal(batch.inputs["item"], batch.inputs["user"] + 1000)
    assert torch.equal(batch.inputs["tags"][:, 1], batch.inputs["user"]) and batch.inputs["tags"].shape[1] == 3
    assert torch.allclose(batch.inputs["price"].double(), rows / 2)
    assert list(batch.labels) == TASKS
    for factor, task in zip((1, 10, 100), TASKS, strict=True):
        assert batch.labels[task].shape == (len(batch),)
        assert torch.allclose(batch.labels[task].double(), factor * rows)


def test_from_numpy_and_len():
    data = make_data(23)
    assert len(data) == 23
    assert data.rows.inputs["user"].dtype == torch.int64 and data.rows.inputs["price"].dtype == torch.float32
    assert list(data.labels) == TASKS and data.labels["buy"].shape == (23,)


def test_slice_take_and_concat_keep_rows_together():
    batch = make_data(10).rows
    taken = batch.take(torch.tensor([7, 2, 2]))
    check_consistent(taken)
    assert rows_of(taken) == [7, 2, 2]
    assert rows_of(batch.slice(3, 6)) == [3, 4, 5]
    joined = Batch.concat([batch.slice(8, 10), taken, batch.slice(0, 1)])
    check_consistent(joined)
    assert rows_of(joined) == [8, 9, 7, 2, 2, 0] and list(joined.labels) == TASKS
    assert Batch.from_columns(joined.to_columns()).inputs.keys() == joined.inputs.keys()
    assert ("labels", "click") in joined.to_columns()


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(("rows", "batch_size"), [(23, 5), (20, 5), (7, 100), (1, 1), (64, 64)])
def test_batches_cover_every_row_once(shuffle, rows, batch_size):
    data = make_data(rows)
    generator = torch.Generator().manual_seed(0)
    batches = list(data.batches(batch_size, shuffle=shuffle, generator=generator))
    sizes = [len(b) for b in batches]
    full, rest = divmod(rows, batch_size)
    assert sizes == [batch_size] * full + ([rest] if rest else [])
    seen = [row for batch in batches for row in rows_of(batch)]
    assert sorted(seen) == list(range(rows))
    for batch in batches:
        check_consistent(batch)
    if not shuffle:
        assert seen == list(range(rows))


def test_last_batch_is_smaller():
    batches = list(make_data(23).batches(10))
    assert [len(b) for b in batches] == [10, 10, 3]
    assert rows_of(batches[-1]) == [20, 21, 22]


def test_shuffle_is_reproducible_with_the_same_seed_and_differs_with_another():
    data = make_data(200)

    def order(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return [row for batch in data.batches(32, shuffle=True, generator=generator) for row in rows_of(batch)]

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert order(7) != list(range(200))


def test_successive_epochs_from_one_generator_differ():
    data = make_data(100)
    generator = torch.Generator().manual_seed(1)
    first = [row for batch in data.batches(10, shuffle=True, generator=generator) for row in rows_of(batch)]
    second = [row for batch in data.batches(10, shuffle=True, generator=generator) for row in rows_of(batch)]
    assert first != second and sorted(first) == sorted(second)


def test_shuffle_does_not_modify_the_data():
    data = make_data(50)
    before = {key: value.clone() for key, value in data.rows.to_columns().items()}
    list(data.batches(8, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(data.rows.to_columns()[key], value) for key, value in before.items())


def test_labels_dict_keys_are_task_names_in_order():
    batch = next(make_data(6).batches(4))
    assert list(batch.labels) == TASKS
    assert batch.labels["click"].tolist() == [0, 1, 2, 3]
    assert batch.labels["buy"].tolist() == [0, 10, 20, 30]
    assert batch.labels["minutes"].tolist() == [0, 100, 200, 300]


def test_unlabelled_data_gives_empty_label_dicts():
    data = make_data(9, with_labels=False)
    batches = list(data.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 1]
    assert all(b.labels == {} for b in batches)
    assert sorted(row for b in batches for row in rows_of(b)) == list(range(9))


def test_empty_data_gives_no_batches():
    data = make_data(0)
    assert list(data.batches(4)) == []
    assert list(data.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0))) == []
