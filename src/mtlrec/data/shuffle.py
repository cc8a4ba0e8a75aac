"""A shuffle buffer over column arrays: bounded memory, vectorised, deterministic given its generator.

Semantics are those of the classic streaming shuffle (``tf.data.Dataset.shuffle``): the buffer
holds up to ``capacity`` rows; once full, each incoming row takes the place of a row drawn uniformly
at random from the buffer, which is emitted. Rows are moved in blocks — k incoming rows evict k
distinct random slots with one gather and one scatter per array — so no Python runs per row.
At the end of the stream the remaining rows are emitted in random order. Rows are gathered with
``np.take`` and scattered through a view with one opaque element per row (a few times faster than
row-wise fancy indexing of 2-D arrays).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

Columns = tuple[np.ndarray, ...]


class ShuffleBuffer:
    """Shuffles a stream of row blocks (tuples of arrays sharing their first dimension).

    Args:
        capacity: rows held (0 disables shuffling: blocks pass through unchanged).
        rng: the generator; the output order is a function of it and of the input.
    """

    def __init__(self, capacity: int, rng: np.random.Generator):
        self.capacity, self.rng = capacity, rng
        self.slots: Columns | None = None
        self.rows_of: tuple[np.ndarray | None, ...] = ()
        self.filled = 0

    def push(self, block: Columns) -> Iterator[Columns]:
        """Add a block of rows; yields the blocks of rows evicted to make room."""
        rows = block[0].shape[0]
        if self.capacity == 0:
            if rows:
                yield block
            return
        if self.slots is None:
            self.slots = tuple(np.empty((self.capacity, *a.shape[1:]), dtype=a.dtype) for a in block)
            self.rows_of = tuple(_row_view(slot) for slot in self.slots)
        start = min(self.capacity - self.filled, rows)
        for slot, array in zip(self.slots, block):
            slot[self.filled : self.filled + start] = array[:start]
        self.filled += start
        while start < rows:
            count = min(rows - start, self.capacity)
            chosen = self.rng.choice(self.capacity, count, replace=False)
            evicted = tuple(np.take(slot, chosen, axis=0) for slot in self.slots)
            for row_view, array in zip(self.rows_of, block):
                if row_view is not None:
                    row_view[chosen] = _row_view(array[start : start + count])
            start += count
            yield evicted

    def drain(self) -> Iterator[Columns]:
        """Emit every row still held, in random order, and empty the buffer."""
        if self.slots is None or self.filled == 0:
            return
        order = self.rng.permutation(self.filled)
        remaining = tuple(slot[order] for slot in self.slots)
        self.filled = 0
        yield remaining


def _row_view(array: np.ndarray) -> np.ndarray | None:
    """(N, ...) array → (N,) view with one opaque element per row (None for rows of zero bytes)."""
    width = array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
    if width == 0:
        return None
    return np.ascontiguousarray(array).reshape(array.shape[0], -1).view(np.dtype((np.void, width))).reshape(-1)


def rebatch(blocks: Iterator[Columns], batch_rows: int) -> Iterator[Columns]:
    """Cut a stream of row blocks into blocks of exactly ``batch_rows`` rows (the last may be shorter)."""
    pending: list[Columns] = []
    held = 0
    for block in blocks:
        offset = 0
        rows = block[0].shape[0]
        if held:
            need = batch_rows - held
            pending.append(tuple(a[:need] for a in block))
            offset = min(need, rows)
            held += offset
            if held < batch_rows:
                continue
            yield tuple(np.concatenate(parts) for parts in zip(*pending))
            pending, held = [], 0
        while rows - offset >= batch_rows:
            yield tuple(a[offset : offset + batch_rows] for a in block)
            offset += batch_rows
        if offset < rows:
            pending.append(tuple(a[offset:] for a in block))
            held = rows - offset
    if held:
        yield tuple(np.concatenate(parts) for parts in zip(*pending))
