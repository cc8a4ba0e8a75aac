"""Streaming statistics for fits: merged moments and a uniform reservoir sample.

* :class:`Moments`: count, mean and sum of squared deviations, merged with the pairwise update of
  Chan, Golub & LeVeque ("Updating formulae and a pairwise algorithm for computing sample
  variances", 1979), equal to numpy's over the whole stream up to rounding.
* :class:`Reservoir`: a uniform sample without replacement of at most K values (Vitter's
  Algorithm R, drawn per batch); with no K, or while it holds every value, it is the stream itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (M2) of a stream of values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        """Merge a batch of (finite) values (N,)."""
        if values.size:
            batch_mean = float(values.mean())
            self.merge(values.size, batch_mean, float(np.square(values - batch_mean).sum()))

    def merge(self, count: int, mean: float, m2: float) -> None:
        """Merge another group's statistics (Chan et al. 1979, eq. 2.1)."""
        if count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total

    @property
    def std(self) -> float:
        """Population standard deviation (0 without values)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


class Reservoir:
    """A uniform sample without replacement of at most ``capacity`` values of a stream (Algorithm R).

    Args:
        capacity: K, the most values kept (None: keep every value).
        rng: the random generator (the sample is deterministic given its seed and the stream).
    """

    def __init__(self, capacity: int | None, rng: np.random.Generator):
        self.capacity, self.rng = capacity, rng
        self.parts: list[np.ndarray] = []
        self.sample = np.empty(0, dtype=np.float64)
        self.seen = 0

    def add(self, values: np.ndarray) -> None:
        """Offer a batch (N,): the i-th value of the stream replaces a random slot with probability K/i."""
        if self.capacity is None:
            self.parts.append(np.asarray(values, dtype=np.float64))
            self.seen += values.size
            return
        free = self.capacity - self.sample.size
        if free > 0:
            self.sample = np.concatenate([self.sample, values[:free]])
        rest = values[max(free, 0) :]
        if rest.size:
            positions = self.seen + max(free, 0) + 1 + np.arange(rest.size)  # 1-based stream positions
            accepted = np.flatnonzero(self.rng.random(rest.size) * positions < self.capacity)
            slots = self.rng.integers(0, self.capacity, accepted.size)
            # sequential semantics: a later value overwrites an earlier one drawn for the same slot
            last = slots.size - 1 - np.unique(slots[::-1], return_index=True)[1]
            self.sample[slots[last]] = rest[accepted[last]]
        self.seen += values.size

    @property
    def values(self) -> np.ndarray:
        """The sample (every value seen, in order, when it is complete)."""
        if self.parts:
            self.sample = np.concatenate([self.sample, *self.parts])
            self.parts = []
        return self.sample

    @property
    def complete(self) -> bool:
        """Whether the sample holds every value seen."""
        return self.values.size == self.seen
