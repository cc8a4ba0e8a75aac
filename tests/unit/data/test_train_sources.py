"""Tests for InMemorySource: under data parallelism the ranks' batches put together are the 1-process batches."""

from __future__ import annotations

import torch

from mtlrec.data.batch import Batch, EncodedData
from mtlrec.data.sources import InMemorySource, share


def _data(rows: int) -> EncodedData:
    ids = torch.arange(rows)
    batch = Batch({"id": ids, "price": ids.float()}, {"a": ids.float(), "b": -ids.float()})
    return EncodedData(batch, ["a", "b"])


def test_one_rank_is_the_shuffled_split():
    data = _data(50)
    generator = torch.Generator().manual_seed(3 * 1_000_003 + 2)
    expected = [b.inputs["id"].tolist() for b in data.batches(8, shuffle=True, generator=generator)]
    assert [b.inputs["id"].tolist() for b in InMemorySource(data, 8, seed=3).epoch(2)] == expected


def test_the_ranks_split_each_global_batch_in_order():
    data = _data(70)
    single = [b.inputs["id"].tolist() for b in InMemorySource(data, 16, seed=1).epoch(0)]
    ranks = [list(InMemorySource(data, 16, seed=1, rank=r, world_size=3).epoch(0)) for r in range(3)]
    assert len(ranks[0]) == len(ranks[1]) == len(ranks[2]) == len(single) == 5
    for step, rows in enumerate(single):
        together = [row for rank in ranks for row in rank[step].inputs["id"].tolist()]
        assert together == rows
        for rank in ranks:
            assert rank[step].labels["b"].tolist() == [-float(r) for r in rank[step].inputs["id"].tolist()]


def test_a_last_global_batch_smaller_than_the_ranks_is_dropped():
    assert InMemorySource(_data(33), 16, 0, world_size=2).steps(0) == 2  # 1 row left for 2 ranks
    assert InMemorySource(_data(34), 16, 0, world_size=2).steps(0) == 3
    assert InMemorySource(_data(33), 16, 0).steps(0) == 3


def test_shares_cover_the_rows_with_sizes_differing_by_at_most_one():
    for size in (0, 1, 7, 16):
        parts = [share(size, rank, 3) for rank in range(3)]
        assert parts[0][0] == 0 and parts[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        lengths = [high - low for low, high in parts]
        assert max(lengths) - min(lengths) <= 1
