"""Pareto front of points scored on several objectives, all higher-is-better."""

from __future__ import annotations

import numpy as np

_BLOCK = 512  # rows compared at once: memory (block, M, K) booleans


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Which points no other point dominates (vectorised, O(M² K) comparisons in blocks).

    Point j dominates point i when it is at least as good on every objective and strictly better on
    one. Equal points do not dominate each other, so duplicates on the front all stay. NaN counts as
    the worst value.

    Args:
        points: (M, K) objective values, higher is better.

    Returns:
        (M,) bool, True on the front.
    """
    values = np.where(np.isnan(points), -np.inf, np.asarray(points, dtype=np.float64))
    dominated = np.zeros(len(values), dtype=bool)
    for start in range(0, len(values), _BLOCK):
        block = values[start : start + _BLOCK, None, :]  # (b, 1, K): candidates to be dominated
        at_least = (values[None, :, :] >= block).all(axis=2)  # (b, M): j ≥ i everywhere
        better = (values[None, :, :] > block).any(axis=2)  # (b, M): j > i somewhere
        dominated[start : start + _BLOCK] = (at_least & better).any(axis=1)
    return ~dominated
