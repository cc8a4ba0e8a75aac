"""Parity check: the exported model must give the eager model's outputs on real rows.

The criterion is ``max |exported − eager| / max(1, |eager|) ≤ 1e-5`` over every output: an absolute
difference for scores within [−1, 1] (probabilities), relative for larger values, since float32
carries about 7 significant digits (a regression score of 3600 s cannot agree to 1e-5 absolutely).
Both sides must agree on NaN and ±inf. Rows are run in one batch of all rows and one row at a time
(the first ``single_rows``), so a graph that baked in the tracing batch size fails.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import torch

from mtlrec.export.scoring import ScoringModel

TOLERANCE = 1e-5


class RunsArrays(Protocol):
    """An exported model: (ids, dense) numpy arrays → outputs in the ScoringModel's order."""

    def run(self, ids: np.ndarray, dense: np.ndarray) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class ParityResult:
    """What the parity check measured.

    Attributes:
        rows: rows compared.
        batch_sizes: batch sizes the exported model ran with.
        max_abs_diff: largest |exported − eager| over every output and row.
        max_scaled_diff: largest |exported − eager| / max(1, |eager|): the figure held to ``tolerance``.
        worst_output: the output where ``max_scaled_diff`` was found.
        tolerance: the bound on ``max_scaled_diff``.
    """

    rows: int
    batch_sizes: list[int]
    max_abs_diff: float
    max_scaled_diff: float
    worst_output: str
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return self.max_scaled_diff <= self.tolerance

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


def differences(exported: np.ndarray, eager: np.ndarray) -> tuple[float, float]:
    """(max absolute, max scaled) difference; equal NaNs and equal infinities count as 0, others as inf."""
    exported, eager = np.asarray(exported, np.float64), np.asarray(eager, np.float64)
    if exported.shape != eager.shape:
        return float("inf"), float("inf")
    same = (exported == eager) | (np.isnan(exported) & np.isnan(eager))
    with np.errstate(invalid="ignore"):
        absolute = np.where(same, 0.0, np.abs(exported - eager))
    absolute = np.where(np.isnan(absolute), np.inf, absolute)
    scaled = absolute / np.maximum(1.0, np.abs(np.nan_to_num(eager, nan=1.0, posinf=1.0, neginf=1.0)))
    return float(absolute.max(initial=0.0)), float(scaled.max(initial=0.0))


def check_parity(
    eager: ScoringModel, exported: RunsArrays, ids: np.ndarray, dense: np.ndarray, single_rows: int = 32
) -> ParityResult:
    """Compare ``exported`` with ``eager`` on the rows (ids (N, F) int64, dense (N, Dd) float32).

    Args:
        eager: the module that was exported.
        exported: the exported model, loaded back from its file.
        ids, dense: encoded rows.
        single_rows: how many of the first rows also run one at a time.
    """
    reference = [tensor.numpy() for tensor in eager.score(torch.from_numpy(ids), torch.from_numpy(dense)).values()]
    names = eager.output_names
    runs = [(slice(0, len(ids)), exported.run(ids, dense))]
    for row in range(min(single_rows, len(ids))):
        runs.append((slice(row, row + 1), exported.run(ids[row : row + 1], dense[row : row + 1])))
    worst_abs, worst_scaled, worst_output = 0.0, 0.0, names[0]
    for rows, outputs in runs:
        if len(outputs) != len(names):
            return ParityResult(len(ids), [len(ids), 1], float("inf"), float("inf"), "(output count)")
        for name, output, expected in zip(names, outputs, reference):
            absolute, scaled = differences(output, expected[rows])
            worst_abs = max(worst_abs, absolute)
            if scaled > worst_scaled:
                worst_scaled, worst_output = scaled, name
    batch_sizes = [len(ids)] + ([1] if single_rows and len(ids) else [])
    return ParityResult(len(ids), batch_sizes, worst_abs, worst_scaled, worst_output)
