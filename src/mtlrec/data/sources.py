"""Where training batches come from: a split held in memory, or a stream (``mtlrec.data``).

A source yields this rank's batches of an epoch. Under data parallelism every rank must take the
same number of steps (each step ends in collectives), so ``steps(epoch)`` is the same on all ranks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch

from mtlrec.data.batch import Batch, EncodedData


class TrainSource(Protocol):
    """This rank's training batches, epoch by epoch."""

    @property
    def rows(self) -> int:
        """Rows per epoch over all ranks (for logging and averages)."""
        ...

    def steps(self, epoch: int) -> int:
        """Batches this rank yields in ``epoch`` (equal on every rank)."""
        ...

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of ``epoch``, in a seeded random order."""
        ...


class InMemorySource:
    """A split in memory, shuffled per epoch, each global batch split between the ranks.

    Every rank draws the same permutation (from ``seed`` and the epoch) and cuts it into global
    batches of ``batch_size`` rows; rank r takes the r-th of ``world_size`` contiguous, near-equal
    parts of each. With one rank this is ``EncodedData.batches(batch_size, shuffle=True)``. A last
    global batch with fewer rows than ranks is dropped (no rank may get an empty batch).

    Args:
        data: the encoded split.
        batch_size: the global batch (summed over ranks).
        seed: the run's seed.
        rank: this process's place among the data-parallel ranks.
        world_size: this process's place among the data-parallel ranks.
    """

    def __init__(self, data: EncodedData, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.rank, self.world_size = rank, world_size

    @property
    def rows(self) -> int:
        return len(self.data)

    def steps(self, epoch: int) -> int:
        full, rest = divmod(len(self.data), self.batch_size)
        return full + (1 if rest >= self.world_size else 0)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.world_size == 1:
            yield from self.data.batches(self.batch_size, shuffle=True, generator=generator)
            return
        shuffled = self.data.rows.take(torch.randperm(len(self.data), generator=generator))
        for step in range(self.steps(epoch)):
            start = step * self.batch_size
            size = min(self.batch_size, len(self.data) - start)
            low, high = share(size, self.rank, self.world_size)
            yield shuffled.slice(start + low, start + high)


def share(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """[low, high) of rank's share of ``size`` rows (the first ``size % world_size`` ranks get one more)."""
    base, extra = divmod(size, world_size)
    low = rank * base + min(rank, extra)
    return low, low + base + (1 if rank < extra else 0)
