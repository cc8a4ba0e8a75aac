"""Parity check: the exported model must give the eager model's outputs on real rows.

The criterion is ``max |exported − eager| / max(1, |eager|) ≤ 1e-5`` (a quantized model: a looser,
declared bound, ``mtlrec.export.quantize.PARITY_TOLERANCES``) over every output: an absolute
difference for scores within [−1, 1] (probabilities), relative for larger values, since float32
carries about 7 significant digits (a regression score of 3600 s cannot agree to 1e-5 absolutely).
Both sides must agree on NaN and ±inf. Rows are run in one batch of all rows, one row at a time (the
first ``single_rows``), so a graph that baked in the tracing batch size fails, and twice with shared
rows: every other feature's inputs given once (the first row's, as a request's context is sent
once for all candidates) beside the others' N rows, compared with the eager model on the same rows
written out N times; the two runs swap which features are shared, so every input is tested both ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import torch

from mtlrec.export.scoring import ScoringModel

TOLERANCE = 1e-5


class RunsArrays(Protocol):
    """An exported model: numpy inputs by name (1 or N rows each) → outputs in the ScoringModel's order."""

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]: ...


Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ParityResult:
    """What the parity check measured.

    Attributes:
        rows: rows compared.
        batch_sizes: batch sizes the exported model ran with.
        shared_runs: runs with some features' inputs given once for all rows.
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
    shared_runs: int = 0
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
    eager: ScoringModel,
    exported: RunsArrays,
    inputs: Arrays,
    features: Mapping[str, list[str]] | None = None,
    single_rows: int = 32,
    tolerance: float = TOLERANCE,
) -> ParityResult:
    """Compare ``exported`` with ``eager`` on encoded rows (numpy inputs by name, N rows each).

    Args:
        eager: the module that was exported.
        exported: the exported model, loaded back from its file.
        inputs: encoded rows.
        features: {feature: its input names}; features alternate as shared (one row) in two extra runs.
        single_rows: how many of the first rows also run one at a time.
        tolerance: the bound on the scaled difference (looser for a quantized model, see
            :data:`mtlrec.export.quantize.PARITY_TOLERANCES`).
    """
    rows = len(next(iter(inputs.values())))
    names = eager.output_names
    runs: list[tuple[Arrays, Arrays]] = [(inputs, inputs)]
    runs += [(_rows(inputs, row, row + 1), _rows(inputs, row, row + 1)) for row in range(min(single_rows, rows))]
    groups = list((features or {}).values())
    shared = [[name for group in groups[parity::2] for name in group] for parity in (0, 1)] if rows > 1 else []
    for names_shared in (s for s in shared if s):
        given = {name: value[:1] if name in names_shared else value for name, value in inputs.items()}
        repeated = {name: np.repeat(value[:1], rows, axis=0) if name in names_shared else value
                    for name, value in inputs.items()}
        runs.append((given, repeated))
    worst_abs, worst_scaled, worst_output = 0.0, 0.0, names[0]
    for given, reference_inputs in runs:
        outputs = exported.run(given)
        reference = eager.score({name: torch.from_numpy(value) for name, value in reference_inputs.items()})
        if len(outputs) != len(names):
            return ParityResult(rows, [rows, 1], float("inf"), float("inf"), "(output count)", tolerance=tolerance)
        for name, output in zip(names, outputs):
            absolute, scaled = differences(output, reference[name].numpy())
            worst_abs = max(worst_abs, absolute)
            if scaled > worst_scaled:
                worst_scaled, worst_output = scaled, name
    batch_sizes = [rows] + ([1] if single_rows and rows else [])
    shared_runs = len([s for s in shared if s])
    return ParityResult(rows, batch_sizes, worst_abs, worst_scaled, worst_output, shared_runs, tolerance)


def _rows(inputs: Arrays, start: int, stop: int) -> Arrays:
    return {name: value[start:stop] for name, value in inputs.items()}
