"""FeaturePipeline: fit the encoders once on train, then encode any table into inputs keyed by name.

Its fitted state is one JSON artifact (``features.json``) shared by training, evaluation,
prediction, export and serving: the vocabularies by embedding table, each encoder's state (by its
registry kind), and the label specs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mtlrec.errors import ConfigError, RunDirError
from mtlrec.features.encoder import Encoder, FitLimits, InputSpec, Table
from mtlrec.features.label_spec import LabelSpec
from mtlrec.features.registry import ENCODERS
from mtlrec.features.vocabulary import Vocabulary
from mtlrec.io import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 2


class FeaturePipeline:
    """Encodes tables: every encoder's inputs as arrays keyed by input name, labels and weights by task.

    Args:
        encoders: the features, in order; names (and the input names they emit) must be unique.
        labels: one per task, in task order.

    Raises:
        ConfigError: a column read as two types, two vocabularies under one table name, a table both
            shared and owned by a bucketised feature, or duplicate input names.
    """

    def __init__(self, encoders: list[Encoder], labels: list[LabelSpec]):
        self.encoders = list(encoders)
        self.labels = labels
        self.vocabularies = self._shared_vocabularies()
        self.column_types(include_labels=True)  # fail early on conflicting column types

    @property
    def task_names(self) -> list[str]:
        return [spec.task for spec in self.labels]

    def encoder(self, name: str) -> Encoder:
        """The feature called ``name``."""
        for encoder in self.encoders:
            if encoder.name == name:
                return encoder
        raise KeyError(name)

    def inputs(self) -> list[InputSpec]:
        """Every model input, in feature order (after fit)."""
        specs = [spec for encoder in self.encoders for spec in encoder.inputs()]
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"features emit the same input name(s) {duplicates}; rename a feature")
        return specs

    def tables(self) -> dict[str, int]:
        """Rows of each embedding table, in order of first use (after fit)."""
        return {spec.table: spec.rows for spec in self.inputs() if spec.table is not None}

    def column_types(self, include_labels: bool) -> dict[str, pa.DataType]:
        """The source columns to read and the Arrow type each is read as."""
        wanted: dict[str, tuple[pa.DataType, str]] = {}
        entries = [
            (column, dtype, f"feature '{encoder.name}'")
            for encoder in self.encoders
            for column, dtype in encoder.columns().items()
        ]
        if include_labels:
            entries += [(s.column, s.rule.arrow_type, f"label of task '{s.task}'") for s in self.labels]
            expression_columns = [(name, s.task) for s in self.labels for name in sorted(s.expression_columns())]
            known = {column for column, _, _ in entries}
            entries += [
                (name, pa.float64(), f"sample space/weight of task '{task}'")
                for name, task in expression_columns
                if name not in known
            ]
        for column, dtype, user in entries:
            if column in wanted and wanted[column][0] != dtype:
                raise ConfigError(
                    f"column '{column}' is read as {wanted[column][0]} for {wanted[column][1]} "
                    f"but as {dtype} for {user}; use it one way only"
                )
            wanted.setdefault(column, (dtype, user))
        return {column: dtype for column, (dtype, _) in wanted.items()}

    def separators(self) -> dict[str, str]:
        """The separator of every list column's text form (CSV cells), by column."""
        found: dict[str, tuple[str, str]] = {}
        for encoder in self.encoders:
            for column, separator in encoder.separators().items():
                if column in found and found[column][0] != separator:
                    raise ConfigError(
                        f"column '{column}' is split on {found[column][0]!r} for feature '{found[column][1]}' "
                        f"but on {separator!r} for feature '{encoder.name}'"
                    )
                found.setdefault(column, (separator, encoder.name))
        return {column: separator for column, (separator, _) in found.items()}

    def fit(self, table: Table, labels: dict[str, np.ndarray] | None = None) -> FeaturePipeline:
        """Fit every encoder and vocabulary on the training table, and label transforms on its targets."""
        from mtlrec.features.fitting import PipelineFit

        fit = PipelineFit(self, FitLimits())
        fit.update(table, labels)
        return fit.finish()

    def scale_labels(self, labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Apply the fitted label standardisation to targets as read ({task: (N,)})."""
        return {spec.task: spec.rule.scale(labels[spec.task]) for spec in self.labels}

    def transform_features(self, table: Table, source: str, log_missing: bool = True) -> dict[str, np.ndarray]:
        """Encode inputs: {input name: (N,) or (N, L) array}; logs filled missing values (if asked)."""
        encoded: dict[str, np.ndarray] = {}
        for encoder in self.encoders:
            encoded.update(encoder.transform(table, source))
            if log_missing and (note := encoder.missing_note(table)):
                columns = ", ".join(encoder.columns())
                log.warning("%s: feature '%s' (column '%s'): %s", source, encoder.name, columns, note)
        return encoded

    def transform_labels(self, table: Table, source: str) -> dict[str, np.ndarray]:
        """Targets {task: (N,) float32}; raises DataError naming file, column and row for bad labels."""
        return {spec.task: spec.targets(table, source) for spec in self.labels}

    def transform_weights(self, table: Table, source: str) -> dict[str, np.ndarray] | None:
        """Sample weights {task: (N,) float32}, or None when no task has a sample weight."""
        if all(spec.weight is None for spec in self.labels):
            return None
        return {spec.task: spec.weights(table, source) for spec in self.labels}

    def describe_table(self, table: str) -> str:
        """How messages name a table's users: ``feature 'a' (column 'c')``, or ``table 't' (features 'a', 'b')``."""
        users = [encoder for encoder in self.encoders if table in encoder.tables()]
        if len(users) == 1:
            columns = ", ".join(f"'{column}'" for column in users[0].columns())
            return f"feature '{users[0].name}' (column {columns})"
        return f"table '{table}' (features {', '.join(repr(user.name) for user in users)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "vocabularies": {name: vocabulary.to_dict() for name, vocabulary in self.vocabularies.items()},
            "features": [encoder.to_dict() for encoder in self.encoders],
            "labels": [spec.to_dict() for spec in self.labels],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeaturePipeline:
        if state.get("format_version") != FORMAT_VERSION:
            raise RunDirError(
                f"feature artifact format {state.get('format_version')!r} is not {FORMAT_VERSION} "
                "(written by another mtlrec version: train the run again)"
            )
        vocabularies = {name: Vocabulary.from_dict(v) for name, v in state["vocabularies"].items()}
        unknown = [f["kind"] for f in state["features"] if f["kind"] not in ENCODERS]
        if unknown:
            raise RunDirError(f"unknown feature kind(s) {unknown}; this mtlrec knows {', '.join(ENCODERS)}")
        encoders = [ENCODERS[f["kind"]].from_dict(f, vocabularies) for f in state["features"]]
        return cls(encoders, [LabelSpec.from_dict(s) for s in state["labels"]])

    def save(self, path: str | Path) -> None:
        """Write the fitted state as JSON, atomically."""
        text = json.dumps(self.to_dict(), indent=1)
        atomic_write(path, lambda tmp: tmp.write_text(text))

    @classmethod
    def load(cls, path: str | Path) -> FeaturePipeline:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RunDirError(f"cannot load the feature artifact {path}: {exc}") from None

    def _shared_vocabularies(self) -> dict[str, Vocabulary]:
        """{table: vocabulary}; one object per table, and no table both shared and a feature's own buckets."""
        vocabularies: dict[str, Vocabulary] = {}
        for encoder in self.encoders:
            for table, vocabulary in encoder.vocabularies().items():
                if vocabularies.setdefault(table, vocabulary) is not vocabulary:
                    raise ConfigError(f"embedding table '{table}' has two vocabularies (feature '{encoder.name}')")
        owners: dict[str, set[str]] = {}
        private: set[str] = set()  # tables of ids an encoder makes itself (numeric buckets)
        for encoder in self.encoders:
            for table in encoder.tables():
                owners.setdefault(table, set()).add(encoder.name)
            private |= encoder.tables() - set(encoder.vocabularies())
        for table, users in owners.items():
            if table in private and len(users) > 1:
                raise ConfigError(
                    f"embedding table '{table}' holds the buckets of a numeric feature and cannot be shared "
                    f"(used by {sorted(users)})"
                )
        return vocabularies
