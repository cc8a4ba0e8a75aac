"""Diagnostics of multi-task training as pure functions: label correlation, gradient cosines, gate statistics.

* Label correlation: Pearson's r of every pair of tasks' labels, the usual first answer to "how
  related are my tasks?" (the MMoE paper, Ma et al., KDD 2018, Sec. 4, controls exactly this
  quantity in its synthetic data and shows that MMoE's gain grows as it falls).
* Gradient cosine: cos(g_i, g_j) of the tasks' gradients on the shared parameters; negative values
  are the conflicting gradients that PCGrad (Yu et al., NeurIPS 2020) projects away.
* Gate statistics: per gate, the batch mean weight of each expert and the mean entropy of the
  weights; with the alarms for the expert collapse / dead experts that MMoE-style gates are prone to
  (the "gate polarization" of Tang et al., RecSys 2020, PLE, Sec. 5.3 / Fig. 7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def label_correlation(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of every pair of label columns, over the rows where both labels are present.

    Args:
        labels: (N, T) labels, NaN where a task has none (a missing label, or a row outside the
            task's sample space).

    Returns:
        (T, T) correlations (NaN where the pair has fewer than 2 common rows or a label is constant
        on them) and the (T, T) int64 counts of common rows.
    """
    labels = np.asarray(labels)
    moments = LabelMoments(labels.shape[1])
    for start in range(0, len(labels), _CHUNK_ROWS):  # bounded temporaries, whatever the rows
        moments.update(labels[start : start + _CHUNK_ROWS])
    return moments.correlation()


_CHUNK_ROWS = 1 << 18


class LabelMoments:
    """Pairwise label moments accumulated batch by batch: the exact ``label_correlation`` of a stream.

    For every pair (i, j) it keeps, over the rows where both labels exist, the row count, each
    label's mean and sum of squared deviations, and the co-moment; batches are combined with the
    pairwise update of Chan, Golub & LeVeque ("Updating formulae and a pairwise algorithm for computing
    sample variances", 1979), which needs no second pass and loses no precision to large means.

    Args:
        num_tasks: T, the label columns.
    """

    def __init__(self, num_tasks: int):
        shape = (num_tasks, num_tasks)
        self.rows = np.zeros(shape, dtype=np.int64)
        self.mean = np.zeros(shape)  # [i, j]: label i's mean over the rows where i and j exist
        self.squares = np.zeros(shape)  # [i, j]: label i's sum of squared deviations on those rows
        self.comoment = np.zeros(shape)  # symmetric: sum of (x_i - mean) (x_j - mean) on those rows
        self.low = np.full(shape, np.inf)  # [i, j]: label i's least value on those rows
        self.high = np.full(shape, -np.inf)  # and its greatest: equal when it is constant there

    def update(self, labels: np.ndarray) -> None:
        """Add a batch of (N, T) labels (NaN where a task has none)."""
        values = np.ascontiguousarray(np.asarray(labels).T, dtype=np.float64)  # (T, N): row-wise reductions
        present = ~np.isnan(values)
        if not present.any():
            return
        # deviations from each label's first value in the batch: sums stay small whatever the mean
        shift = np.where(present.any(1), values[np.arange(len(values)), present.argmax(1)], 0.0)
        deviations = np.where(present, values - shift[:, None], 0.0)  # 0 where a label is missing
        mask = present.astype(np.float64)
        rows = mask @ mask.T  # [i, j]: the rows where labels i and j both exist
        sums = deviations @ mask.T  # [i, j]: label i's deviations summed over those rows
        second = (deviations * deviations) @ mask.T
        mean = np.divide(sums, rows, out=np.zeros_like(sums), where=rows > 0)
        squares = np.maximum(second - sums * mean, 0.0)
        comoment = deviations @ deviations.T - sums * mean.T
        self._merge(rows.astype(np.int64), shift[:, None] + mean, squares, comoment)
        for j, where_j in enumerate(present):
            on_rows = values if where_j.all() else np.where(where_j, values, np.nan)  # NaN: ignored by fmin/fmax
            self.low[:, j] = np.fmin(self.low[:, j], np.fmin.reduce(on_rows, axis=1))
            self.high[:, j] = np.fmax(self.high[:, j], np.fmax.reduce(on_rows, axis=1))

    def _merge(self, rows: np.ndarray, mean: np.ndarray, squares: np.ndarray, comoment: np.ndarray) -> None:
        """Combine the moments so far with a batch's (all (T, T), laid out as the attributes)."""
        total = self.rows + rows
        share = np.divide(rows, total, out=np.zeros(total.shape), where=total > 0)  # 1.0 for the first batch
        weight = self.rows * share  # n_a n_b / n
        delta = mean - self.mean  # [i, j]: the change of label i's mean on the pair's rows
        self.mean += delta * share
        self.squares += squares + delta * delta * weight
        self.comoment += comoment + delta * delta.T * weight
        self.rows = total

    def correlation(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, T) Pearson correlations and (T, T) common-row counts, as ``label_correlation`` returns them."""
        # a label constant on a pair's rows has no correlation there, whatever rounding left in its squares
        varies = self.low < self.high
        scale = np.sqrt(self.squares * self.squares.T)
        defined = (self.rows >= 2) & varies & varies.T & (scale > 0)
        pearson = np.full(scale.shape, np.nan)
        pearson[defined] = np.clip(self.comoment[defined] / scale[defined], -1.0, 1.0)
        return pearson, self.rows.copy()


def cosine_matrix(grads: torch.Tensor) -> torch.Tensor:
    """Pairwise cosine similarity of per-task gradients.

    Args:
        grads: (T, P) gradients, one row per task.

    Returns:
        (T, T) float64 cosines; NaN in the rows and columns of a task whose gradient is zero.
    """
    grads = grads.detach().to(torch.float64)
    norms = grads.norm(dim=1)
    cosines = (grads @ grads.T) / torch.outer(norms, norms)
    cosines.fill_diagonal_(1.0)
    zero = norms == 0
    cosines[zero, :] = float("nan")
    cosines[:, zero] = float("nan")
    return cosines.clamp(-1.0, 1.0)


def gate_statistics(weights: torch.Tensor) -> tuple[list[float], float]:
    """The batch mean of a gate's weights per expert and the batch mean of their entropy.

    Args:
        weights: (B, E) mixture weights, rows summing to 1.

    Returns:
        the (E,) mean weights and the mean entropy −Σ_e g_e ln g_e in nats (0: one expert takes all,
        ln E: evenly spread).
    """
    weights = weights.detach().to(torch.float64)
    entropy = -torch.special.xlogy(weights, weights).sum(dim=1).mean()
    return weights.mean(dim=0).tolist(), float(entropy)


@dataclass(frozen=True)
class GateSummary:
    """One gate's statistics.

    Attributes:
        level: the level of the experts it weighs ('' for a one-level architecture).
        experts: names of the experts its columns weigh (the same name in a level is the same expert).
        mean: (E,) mean weight per expert.
        entropy: mean entropy of its weights (nats).
    """

    level: str
    experts: list[str]
    mean: list[float]
    entropy: float


def expert_alarms(gates: Mapping[str, GateSummary], collapse_share: float, dead_share: float) -> list[dict[str, Any]]:
    """Collapsed gates and dead experts.

    A gate has *collapsed* when one expert's mean share is ≥ ``collapse_share`` (gates over a single
    expert are skipped); an expert is *dead* when its largest mean share over every gate of its
    level that can weigh it is ≤ ``dead_share``.

    Returns:
        alarms as plain dicts: ``{"kind": "collapse", "gate", "level", "expert", "share"}`` or
        ``{"kind": "dead", "level", "expert", "share"}`` (the largest share it gets).
    """
    alarms: list[dict[str, Any]] = []
    best: dict[tuple[str, str], float] = {}
    for name, gate in gates.items():
        top = int(np.argmax(gate.mean))
        if len(gate.mean) > 1 and gate.mean[top] >= collapse_share:
            alarm = {"kind": "collapse", "gate": name, "level": gate.level, "expert": gate.experts[top]}
            alarms.append({**alarm, "share": gate.mean[top]})
        for expert, share in zip(gate.experts, gate.mean):
            key = (gate.level, expert)
            best[key] = max(best.get(key, 0.0), share)
    for (level, expert), share in best.items():
        if share <= dead_share:
            alarms.append({"kind": "dead", "level": level, "expert": expert, "share": share})
    return alarms


def alarm_message(alarm: Mapping[str, Any]) -> str:
    """One line describing an alarm of ``expert_alarms``."""
    where = f"{alarm['level']}." if alarm["level"] else ""
    if alarm["kind"] == "collapse":
        return f"gate '{alarm['gate']}' gives expert {where}{alarm['expert']} {alarm['share']:.1%} of its weight"
    return f"expert {where}{alarm['expert']} gets at most {alarm['share']:.2%} of any gate's weight"
