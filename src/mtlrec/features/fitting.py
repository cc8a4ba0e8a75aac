"""Fit a whole FeaturePipeline from record batches offered one at a time: streamed or in memory alike.

Each encoder fits through its own accumulator (``Encoder.begin_fit``); each vocabulary counts the
values of every feature that shares it (``Vocabulary.begin_fit``) and is finished before the
encoders; standardised regression targets keep merged moments. What a streamed pass keeps, and its
bounds (``FitLimits``): exact value counts per vocabulary up to ``max_distinct_values`` (beyond, the
table is hashed), a uniform sample of ``sample_rows`` values per numeric feature for a median fill and
quantile buckets. Without bounds, the fit is the exact in-memory fit.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import numpy as np

from mtlrec.features.encoder import Encoder, FitLimits, Table
from mtlrec.features.label_spec import LabelSpec
from mtlrec.features.statistics import Moments
from mtlrec.features.vocabulary import Vocabulary


class Fittable(Protocol):
    """What a fit reads of a pipeline (``FeaturePipeline`` has it)."""

    encoders: list[Encoder]
    labels: list[LabelSpec]
    vocabularies: dict[str, Vocabulary]

    def describe_table(self, table: str) -> str: ...


P = TypeVar("P", bound=Fittable)


class PipelineFit:
    """Fits ``pipeline`` (in place) from the batches given to :meth:`update`; :meth:`finish` completes it.

    Args:
        pipeline: the unfitted pipeline.
        limits: the bounds of the fit (default: none, exact).
    """

    def __init__(self, pipeline: P, limits: FitLimits | None = None):
        limits = limits or FitLimits()
        self.pipeline, self.rows = pipeline, 0
        self.counters = {
            table: vocabulary.begin_fit(limits.max_distinct_values, pipeline.describe_table(table))
            for table, vocabulary in pipeline.vocabularies.items()
        }
        self.states = [encoder.begin_fit(limits, self.counters) for encoder in pipeline.encoders]
        self.targets = {spec.task: Moments() for spec in pipeline.labels if spec.rule.needs_fit}

    def update(self, table: Table, labels: dict[str, np.ndarray] | None = None, source: str = "training data") -> None:
        """Account for one batch of input columns and its targets as read ({task: (N,)}, before scaling)."""
        self.rows += table.num_rows
        for state in self.states:
            state.update(table, source)
        if labels is not None:
            for task, moments in self.targets.items():
                target = labels[task].astype(np.float64)
                moments.add(target[np.isfinite(target)])

    def finish(self) -> P:
        """Set every vocabulary's, encoder's and label rule's fitted state; returns the pipeline."""
        for counter in self.counters.values():
            counter.finish()
        for state in self.states:
            state.finish()
        for spec in self.pipeline.labels:
            moments = self.targets.get(spec.task)
            if moments is not None and moments.count:
                spec.rule.fit_moments(moments.mean, moments.std)
        return self.pipeline
