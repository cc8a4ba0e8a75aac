"""Ranking metrics beyond plain AUC: GAUC (per-group AUC) and XAUC (pairwise order of a regression target).

Both are exact and vectorised: one sort of the rows, then array arithmetic; no Python loop per group
or per row. Memory is a few (N,) int64/float64 arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau


def gauc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    """Group AUC: the impression-weighted mean of per-group AUCs (Zhou et al., KDD 2018, "Deep Interest Network").

    ``GAUC = Σ_g n_g · AUC_g / Σ_g n_g`` over the groups g (e.g. users) whose rows hold both classes,
    where n_g is the group's number of rows (impressions) and AUC_g the exact, tie-aware AUC of its
    rows (tied scores count one half, as in :func:`mtlrec.evaluation.metrics.auc`). Groups whose rows
    are all positive or all negative have no AUC and are skipped, weight included. Rows whose group
    is negative (a missing group id) are left out. Returns NaN when no group
    holds both classes.

    One lexsort by (group, score); average ranks within each (group, score) tie block and per-group
    sums by ``np.add.reduceat``. O(N log N).

    Args:
        labels: (N,) 0/1 targets.
        scores: (N,) scores, higher meaning more likely positive.
        groups: (N,) integer group ids (any other dtype is coded with ``np.unique`` first).
    """
    groups = np.asarray(groups)
    if groups.dtype.kind not in "iu":
        groups = np.unique(groups, return_inverse=True)[1].reshape(-1)
    keep = groups >= 0
    positive = (np.asarray(labels) > 0.5)[keep]
    scores = np.asarray(scores, dtype=np.float64)[keep]
    groups = groups[keep]
    if groups.size == 0:
        return float("nan")
    order = np.lexsort((scores, groups))
    groups, scores, positive = groups[order], scores[order], positive[order]
    group_start = _run_starts(groups)  # (G,) first sorted row of each group
    block_start = _run_starts(groups, scores)  # (K,) first sorted row of each (group, score) tie block
    block_end = np.append(block_start[1:], groups.size)
    block_group_start = group_start[np.searchsorted(group_start, block_start, side="right") - 1]
    # 1-based ranks within the group run from start+1 to end; a tie block gets their mean
    block_rank = (block_start - block_group_start + 1 + block_end - block_group_start) / 2.0
    rank = np.repeat(block_rank, block_end - block_start)
    sizes = np.diff(np.append(group_start, groups.size)).astype(np.float64)
    n_pos = np.add.reduceat(positive.astype(np.float64), group_start)
    rank_sum = np.add.reduceat(np.where(positive, rank, 0.0), group_start)
    n_neg = sizes - n_pos
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        return float("nan")
    n_pos, n_neg, sizes = n_pos[both], n_neg[both], sizes[both]
    group_auc = (rank_sum[both] - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return float(np.sum(sizes * group_auc) / np.sum(sizes))


def xauc(labels: np.ndarray, predictions: np.ndarray) -> float:
    """XAUC: the share of row pairs with different labels that the predictions order the same way.

    From Zhan et al., KDD 2022, "Deconfounding Duration Bias in Watch-time Prediction for Video
    Recommendation": the probability that two random items are ordered by prediction as by their true
    (e.g. watch-time) label. Pairs with equal labels are not counted; a pair with different labels
    but equal predictions counts one half (as tied scores in AUC), so a constant prediction gives 0.5.
    On 0/1 labels it equals AUC. Returns NaN when all labels are equal.

    With C concordant and D discordant pairs among the P pairs of distinct labels,
    ``XAUC = (C + (P - C - D) / 2) / P = 1/2 + (C - D) / (2P)``. C - D is recovered exactly (to
    rounding) from Kendall's tau-b, ``tau_b = (C - D) / sqrt((n0 - t_pred)(n0 - t_label))``, which
    ``scipy.stats.kendalltau`` computes in O(N log N) by merge sort; n0 = N(N-1)/2 and t_* count
    the pairs tied in the predictions / the labels.

    Args:
        labels: (N,) true values.
        predictions: (N,) predicted values.
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    pairs = y.size * (y.size - 1) // 2
    distinct_label_pairs = pairs - _tied_pairs(y)
    if distinct_label_pairs == 0:
        return float("nan")
    distinct_prediction_pairs = pairs - _tied_pairs(p)
    if distinct_prediction_pairs == 0:
        return 0.5
    tau_b = kendalltau(p, y, method="asymptotic").statistic
    concordant_minus_discordant = (
        tau_b * np.sqrt(float(distinct_prediction_pairs)) * np.sqrt(float(distinct_label_pairs))
    )
    return float(0.5 + concordant_minus_discordant / (2.0 * distinct_label_pairs))


def _run_starts(*keys: np.ndarray) -> np.ndarray:
    """Indices where a run of equal rows (in every key array, all sorted together) starts: (R,) int64."""
    size = keys[0].size
    starts = np.zeros(size, dtype=bool)
    starts[0] = True
    for key in keys:
        starts[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(starts)


def _tied_pairs(values: np.ndarray) -> int:
    """Number of unordered pairs with equal values."""
    counts = np.unique(values, return_counts=True)[1].astype(np.int64)
    return int(np.sum(counts * (counts - 1) // 2))
