"""Tests for the shuffle buffer, re-batching and the background prefetch thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from scipy import stats

from mtlrec.data import ShuffleBuffer, prefetch, rebatch


def _blocks(rows: int, block_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    values = np.arange(rows)
    return [(values[i : i + block_rows], values[i : i + block_rows] * 10.0) for i in range(0, rows, block_rows)]


def _shuffle(rows: int, block_rows: int, capacity: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    buffer = ShuffleBuffer(capacity, np.random.default_rng(seed))
    out = [evicted for block in _blocks(rows, block_rows) for evicted in buffer.push(block)]
    return out + list(buffer.drain())


@pytest.mark.parametrize("capacity", [0, 7, 64, 1000])
def test_every_row_comes_out_once_with_its_columns_together(capacity):
    out = _shuffle(rows=300, block_rows=32, capacity=capacity, seed=0)
    ids = np.concatenate([block[0] for block in out])
    assert sorted(ids.tolist()) == list(range(300))
    np.testing.assert_array_equal(np.concatenate([block[1] for block in out]), ids * 10.0)
    if capacity == 0:
        assert ids.tolist() == list(range(300))  # no buffer: blocks pass through


def test_the_order_is_a_function_of_the_seed():
    first = np.concatenate([b[0] for b in _shuffle(500, 50, 100, seed=3)])
    again = np.concatenate([b[0] for b in _shuffle(500, 50, 100, seed=3)])
    other = np.concatenate([b[0] for b in _shuffle(500, 50, 100, seed=4)])
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_buffer_holds_at_most_its_capacity_and_mixes_within_that_window():
    buffer = ShuffleBuffer(100, np.random.default_rng(0))
    emitted = 0
    for block in _blocks(2000, 50):
        for evicted in buffer.push(block):
            emitted += len(evicted[0])
            # a row can only leave after it entered, and at most `capacity` rows wait
            assert evicted[0].max() < emitted + 100
        assert buffer.filled <= 100
        assert buffer.slots[0].shape[0] == 100


def test_a_full_buffer_emits_each_held_row_with_equal_probability():
    # one push of 1 row into a full buffer of 10: which of the 10 held rows leaves is uniform
    counts = np.zeros(11, dtype=int)
    rng = np.random.default_rng(0)
    for _ in range(3000):
        buffer = ShuffleBuffer(10, rng)
        list(buffer.push((np.arange(10),)))
        (evicted,) = next(buffer.push((np.array([10]),)))
        counts[evicted[0]] += 1
    assert counts[10] == 0  # the incoming row cannot leave at once
    assert stats.chisquare(counts[:10]).pvalue > 1e-3


def test_rebatch_cuts_exact_batches_across_block_edges():
    blocks = [(np.arange(a, b),) for a, b in [(0, 5), (5, 6), (6, 30), (30, 31)]]
    sizes = [len(batch[0]) for batch in rebatch(iter(blocks), 8)]
    assert sizes == [8, 8, 8, 7]
    assert np.concatenate([b[0] for b in rebatch(iter(blocks), 8)]).tolist() == list(range(31))


def test_prefetch_yields_everything_in_order():
    assert list(prefetch(lambda: iter(range(50)), depth=3)) == list(range(50))
    assert list(prefetch(lambda: iter(range(5)), depth=0)) == list(range(5))


def test_a_producer_error_reaches_the_consumer_and_the_thread_ends():
    def produce():
        yield 1
        yield 2
        raise ValueError("bad row in file 3")

    received = []
    with pytest.raises(ValueError, match="bad row in file 3"):
        for item in prefetch(produce, depth=1, name="test-prefetch-error"):
            received.append(item)
    assert received == [1, 2]
    assert not any(t.name == "test-prefetch-error" for t in threading.enumerate())


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []

    def produce():
        for i in range(10_000):
            produced.append(i)
            yield i

    items = prefetch(produce, depth=2, name="test-prefetch-stop")
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    started = time.perf_counter()
    items.close()
    assert time.perf_counter() - started < 5
    assert not any(t.name == "test-prefetch-stop" for t in threading.enumerate())
    assert len(produced) < 10  # the bounded queue kept it at most a few items ahead
