"""Tests for mtlrec.data.batch: EncodedData batching and shuffling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlrec.data.batch import Batch, EncodedData

TASKS = ["click", "buy", "minutes"]


def make_data(rows: int = 23, with_labels: bool = True) -> EncodedData:
    """Row r has ids [r, 1000 + r], dense [r / 2, -r] and labels [r, 10r, 100r] (each row is identifiable)."""
    r = np.arange(rows)
    ids = np.stack([r, 1000 + r], axis=1).astype(np.int64)
    dense = np.stack([r / 2, -r], axis=1).astype(np.float32)
    labels = np.stack([r, 10 * r, 100 * r], axis=1).astype(np.float32) if with_labels else None
    return EncodedData.from_numpy(ids, dense, labels, TASKS)


def rows_of(batch: Batch) -> list[int]:
    return batch.ids[:, 0].tolist()


def check_consistent(batch: Batch) -> None:
    """Every tensor in the batch describes the same rows, in the same order."""
    rows = batch.ids[:, 0].to(torch.float64)
    assert torch.equal(batch.ids[:, 1], batch.ids[:, 0] + 1000)
    assert torch.allclose(batch.dense[:, 0].double(), rows / 2)
    assert torch.allclose(batch.dense[:, 1].double(), -rows)
    assert list(batch.labels) == TASKS
    for factor, task in zip((1, 10, 100), TASKS, strict=True):
        assert batch.labels[task].shape == (len(batch),)
        assert torch.allclose(batch.labels[task].double(), factor * rows)


def test_from_numpy_and_len():
    data = make_data(23)
    assert len(data) == 23
    assert data.ids.dtype == torch.int64 and data.dense.dtype == torch.float32
    assert data.labels is not None and data.labels.shape == (23, 3)


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
    before = (data.ids.clone(), data.dense.clone(), data.labels.clone())
    list(data.batches(8, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(data.ids, before[0]) and torch.equal(data.dense, before[1])
    assert torch.equal(data.labels, before[2])


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
