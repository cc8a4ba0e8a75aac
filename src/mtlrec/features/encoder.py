"""The Encoder contract: every feature kind reads its source columns and emits named model inputs.

An encoder is fitted on the training data, then turns any table into arrays keyed by input name.
It states what it reads (:meth:`Encoder.columns`, with the Arrow type of each and, for list columns
written as text, their separator), what it emits (:meth:`Encoder.inputs`: name, dtype, per-row
shape, and the embedding table an id input looks up), and its fitted state as JSON. Fitting goes
through an accumulator (:meth:`Encoder.begin_fit` → ``update`` per record batch → ``finish``), so a
fit over a streamed file and a fit over the table in memory are the same code; vocabularies are
fitted apart (:class:`~mtlrec.features.vocabulary.VocabularyFit`), because several features may
share one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa

from mtlrec.features.vocabulary import NotFittedError, Vocabulary, VocabularyFit

Table = pa.Table | pa.RecordBatch

#: Input roles: ids looked up in a table, a list's lengths, a weighted list's value weights, a dense value.
ROLES = ("ids", "lengths", "weights", "dense")


@dataclass(frozen=True)
class InputSpec:
    """One model input an encoder emits.

    Attributes:
        name: the input's name (keys of the encoded arrays, of the model's inputs, of the exported graph).
        feature: the feature that emits it.
        role: one of ``ROLES``.
        dtype: ``int64`` or ``float32``.
        shape: the per-row shape: ``()`` for one value per row, ``(L,)`` for a padded list.
        table: the embedding table an ``ids`` input looks up (None for other roles).
        rows: that table's rows (padding and OOV included).
    """

    name: str
    feature: str
    role: str
    dtype: str
    shape: tuple[int, ...] = ()
    table: str | None = None
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature": self.feature,
            "role": self.role,
            "dtype": self.dtype,
            "shape": ["batch", *self.shape],
            "table": self.table,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class FitLimits:
    """Bounds of a fit. None means unbounded: every value is kept (the fit is exact).

    Attributes:
        sample_rows: values kept per numeric column for a median fill and quantile buckets.
        max_distinct_values: distinct values counted per vocabulary before it falls back to hashing.
        seed: seeds the samples.
    """

    sample_rows: int | None = None
    max_distinct_values: int | None = None
    seed: int = 0


class FitState(Protocol):
    """An encoder's fit in progress: offered record batches one at a time, then finished."""

    def update(self, table: Table, source: str = "training data") -> None:
        """Account for one batch of rows (the encoder's columns as :meth:`Encoder.columns` types them)."""
        ...

    def finish(self) -> None:
        """Set the encoder's fitted state (its vocabularies are finished before)."""
        ...


class Encoder:
    """Base class of the feature kinds registered in ``ENCODERS``.

    Subclasses implement :meth:`columns`, :meth:`begin_fit`, :meth:`transform`, :meth:`inputs`,
    :meth:`to_dict`, ``from_dict`` and ``fitted``; the vocabularies they use (by table name) are
    shared objects, passed in at construction.

    Attributes:
        kind: the registry name.
        name: the feature's name (its inputs' names start with it).
    """

    kind: ClassVar[str]
    name: str

    def columns(self) -> dict[str, pa.DataType]:
        """The source columns read, each with the Arrow type it is read as."""
        raise NotImplementedError

    def separators(self) -> dict[str, str]:
        """For list columns: the separator of their text form (a CSV cell such as ``a|b|c``)."""
        return {}

    def vocabularies(self) -> dict[str, Vocabulary]:
        """The vocabularies used, by embedding table name."""
        return {}

    def tables(self) -> set[str]:
        """Every embedding table the ids inputs look up (known before fit)."""
        return set(self.vocabularies())

    def missing_note(self, table: Table) -> str | None:
        """What was filled in for missing values of ``table`` (for a log line), or None."""
        return None

    @property
    def fitted(self) -> bool:
        raise NotImplementedError

    def begin_fit(self, limits: FitLimits, counters: Mapping[str, VocabularyFit]) -> FitState:
        """A fit accumulator; ``counters`` count the values of this encoder's vocabularies (by table)."""
        raise NotImplementedError

    def transform(self, table: Table, source: str = "input") -> dict[str, np.ndarray]:
        """The encoded inputs of ``table``'s rows, keyed by input name (errors name ``source`` and the row).

        Raises:
            NotFittedError: before fit.
            DataError: a malformed value.
        """
        raise NotImplementedError

    def inputs(self) -> list[InputSpec]:
        """What :meth:`transform` emits, in order (after fit)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Settings and fitted state as JSON (vocabularies are referred to by table name)."""
        raise NotImplementedError

    def fit(self, table: Table, limits: FitLimits | None = None) -> Encoder:
        """Fit on one table (vocabularies included): the in-memory path of the accumulators."""
        limits = limits or FitLimits()
        counters = {name: vocabulary.begin_fit(limits.max_distinct_values, f"feature '{self.name}'")
                    for name, vocabulary in self.vocabularies().items()}
        state = self.begin_fit(limits, counters)
        state.update(table, "training data")
        for counter in counters.values():
            counter.finish()
        state.finish()
        return self

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"{type(self).__name__} '{self.name}': transform called before fit")
