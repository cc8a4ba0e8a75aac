"""Score fusion: one ranking score from the tasks' scores, compiled into the exported graph.

Three kinds, declared in config (``serving.fusion``) or on the command line (``--fusion``):

* ``weighted_sum``: Σ_t w_t · s_t;
* ``weighted_product``: Π_t s_t^a_t (e.g. ``ctr^1 · cvr^0.5``; a score of 0 with a negative exponent gives inf,
  a negative regression score with a non-integer exponent gives NaN, as IEEE arithmetic does);
* ``formula``: an expression of :mod:`mtlrec.expressions` over task names (``ctr * log1p(duration)``,
  ``ctr^0.5 * cvr``), parsed by mtlrec's own parser (never Python's ``eval``).

Scores are in their original unit: probabilities for binary tasks, label transforms undone for
regression tasks. Multi-class tasks (a (B, C) output) cannot enter a fusion. Without a declared
fusion the fused score is the first single-score task's score (``Fusion.first``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mtlrec.expressions import Expression, ExpressionError, parse_expression

FUSION_KINDS = ("weighted_sum", "weighted_product", "formula")


@dataclass(frozen=True)
class Fusion:
    """How task scores combine into one score.

    Attributes:
        kind: one of ``FUSION_KINDS``.
        weights: {task: weight} (``weighted_sum``) or {task: exponent} (``weighted_product``); empty for formulas.
        formula: the expression text (``formula`` only).
    """

    kind: str
    weights: dict[str, float] = field(default_factory=dict)
    formula: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FUSION_KINDS:
            raise ValueError(f"unknown fusion kind {self.kind!r}; choose one of {', '.join(FUSION_KINDS)}")
        if self.kind == "formula":
            if self.formula is None or self.weights:
                raise ValueError("a formula fusion needs a formula and no weights")
            self.expression  # noqa: B018 -- parse now, so a bad formula fails where it is declared
        elif self.formula is not None or not self.weights:
            raise ValueError(f"a {self.kind} fusion needs weights {{task: number}} and no formula")
        bad = [task for task, value in self.weights.items() if not np.isfinite(value)]
        if bad:
            raise ValueError(f"the weight of task '{bad[0]}' is {self.weights[bad[0]]}; weights must be finite numbers")

    @classmethod
    def first(cls, task: str) -> Fusion:
        """The default: the fused score is ``task``'s score."""
        return cls("weighted_sum", {task: 1.0})

    @classmethod
    def from_formula(cls, text: str) -> Fusion:
        """A formula fusion; raises ``ExpressionError`` (a ``ValueError``) if the text does not parse."""
        return cls("formula", formula=text)

    @property
    def expression(self) -> Expression:
        """The parsed formula (``formula`` kind only)."""
        if self.formula is None:
            raise ValueError(f"a {self.kind} fusion has no formula")
        return parse_expression(self.formula)

    @property
    def names(self) -> list[str]:
        """The task names the fusion reads, sorted."""
        return sorted(self.expression.names if self.kind == "formula" else self.weights)

    def check_tasks(self, single_score_tasks: list[str], all_tasks: list[str]) -> None:
        """Raise ``ValueError`` naming the first name that is not a task giving one score per row."""
        if not self.names:
            raise ValueError(f"{self.formula!r} reads no task score")
        for name in self.names:
            if name in single_score_tasks:
                continue
            if name in all_tasks:
                raise ValueError(f"task '{name}' is multi-class (C scores per row) and cannot enter a fusion")
            raise ValueError(f"unknown task '{name}'; tasks are {', '.join(single_score_tasks)}")
        if self.kind == "formula" and self.expression.is_boolean:
            raise ValueError(f"{self.formula!r} is a condition, not a score")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"kind": ..., "weights": {...}}`` or ``{"kind": "formula", "formula": ...}``."""
        if self.kind == "formula":
            return {"kind": self.kind, "formula": self.formula}
        return {"kind": self.kind, "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Fusion:
        weights = {str(task): float(value) for task, value in (state.get("weights") or {}).items()}
        return cls(str(state["kind"]), weights, state.get("formula"))

    def evaluate_numpy(self, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        """The fused score (N,) float64 from {task: (N,) score} (the same arithmetic as ``FusionModule``)."""
        values = {name: np.asarray(scores[name], dtype=np.float64) for name in self.names}
        if self.kind == "formula":
            return np.asarray(self.expression.evaluate(values), dtype=np.float64)
        with np.errstate(all="ignore"):
            if self.kind == "weighted_sum":
                return sum(weight * values[task] for task, weight in self.weights.items())
            return np.prod([values[task] ** exponent for task, exponent in self.weights.items()], axis=0)


class FusionModule(nn.Module):
    """{task: (B,) score} → (B,) fused score, with torch ops only (traced into the exported graph).

    Args:
        fusion: what to compute.
    """

    def __init__(self, fusion: Fusion):
        super().__init__()
        self.fusion = fusion
        self._expression = fusion.expression if fusion.kind == "formula" else None

    def forward(self, scores: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._expression is not None:
            try:
                return self._expression.evaluate_torch(scores)
            except ExpressionError as exc:  # only on names missing from ``scores``: a bug of the caller
                raise ValueError(str(exc)) from None
        terms = list(self.fusion.weights.items())
        if self.fusion.kind == "weighted_sum":
            result = scores[terms[0][0]] * terms[0][1]
            for task, weight in terms[1:]:
                result = result + scores[task] * weight
            return result
        result = torch.pow(scores[terms[0][0]], terms[0][1])
        for task, exponent in terms[1:]:
            result = result * torch.pow(scores[task], exponent)
        return result
