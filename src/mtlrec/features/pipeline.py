"""FeaturePipeline: fit encoders once on train, transform any table into model inputs.

Its fitted state is one JSON artifact (``features.json``) shared by training, evaluation,
prediction and (later) export and serving.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mtlrec.errors import ConfigError, RunDirError
from mtlrec.features.categorical import CategoricalEncoder
from mtlrec.features.label_spec import LabelSpec
from mtlrec.features.labels import RegressionLabel
from mtlrec.features.numeric import NumericEncoder
from mtlrec.io import atomic_write

log = logging.getLogger(__name__)

Encoder = CategoricalEncoder | NumericEncoder
FORMAT_VERSION = 1


@dataclass
class FeatureSpec:
    """A model input: its name, the source column and the encoder."""

    name: str
    column: str
    encoder: Encoder

    @property
    def produces_ids(self) -> bool:
        return isinstance(self.encoder, CategoricalEncoder) or self.encoder.produces_ids

    @property
    def arrow_type(self) -> pa.DataType:
        return pa.string() if isinstance(self.encoder, CategoricalEncoder) else pa.float64()


class FeaturePipeline:
    """Encodes tables: id features → (N, F) int64, dense features → (N, Dd) float32, labels → (N, T).

    Args:
        features: model inputs, in order; id features and dense features keep this relative order.
        labels: one per task, in task order.
    """

    def __init__(self, features: list[FeatureSpec], labels: list[LabelSpec]):
        self.features = features
        self.labels = labels
        self.column_types(include_labels=True)  # fail early on conflicting column types

    @property
    def id_features(self) -> list[FeatureSpec]:
        return [f for f in self.features if f.produces_ids]

    @property
    def dense_features(self) -> list[FeatureSpec]:
        return [f for f in self.features if not f.produces_ids]

    @property
    def task_names(self) -> list[str]:
        return [spec.task for spec in self.labels]

    def vocab_sizes(self) -> list[int]:
        """Embedding rows per id feature, in ``id_features`` order."""
        return [f.encoder.num_ids for f in self.id_features]

    def column_types(self, include_labels: bool) -> dict[str, pa.DataType]:
        """The source columns to read and the Arrow type each is read as."""
        wanted: dict[str, tuple[pa.DataType, str]] = {}
        entries = [(f.column, f.arrow_type, f"feature '{f.name}'") for f in self.features]
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

    def fit(self, table: pa.Table, labels: np.ndarray | None = None) -> FeaturePipeline:
        """Fit every encoder on the training table, and label transforms on its (N, T) targets."""
        for feature in self.features:
            feature.encoder.fit(table.column(feature.column))
        if labels is not None:
            for index, spec in enumerate(self.labels):
                if isinstance(spec.rule, RegressionLabel):
                    spec.rule.fit(labels[:, index])
        return self

    def scale_labels(self, labels: np.ndarray) -> np.ndarray:
        """Apply the fitted label standardisation to (N, T) targets as read."""
        scaled = labels.copy()
        for index, spec in enumerate(self.labels):
            if isinstance(spec.rule, RegressionLabel):
                scaled[:, index] = spec.rule.scale(labels[:, index])
        return scaled

    def transform_features(
        self, table: pa.Table | pa.RecordBatch, source: str, log_missing: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode inputs: ids (N, F) int64 and dense (N, Dd) float32; logs filled missing values (if asked)."""
        rows = table.num_rows
        ids = np.empty((rows, len(self.id_features)), dtype=np.int64)
        dense = np.empty((rows, len(self.dense_features)), dtype=np.float32)
        for index, feature in enumerate(self.id_features):
            ids[:, index] = feature.encoder.transform(table.column(feature.column))
        for index, feature in enumerate(self.dense_features):
            dense[:, index] = feature.encoder.transform(table.column(feature.column))
        if log_missing:
            self._log_missing(table, source)
        return ids, dense

    def transform_labels(self, table: pa.Table, source: str) -> np.ndarray:
        """Targets (N, T) float32; raises DataError naming file, column and row for bad labels."""
        labels = np.empty((table.num_rows, len(self.labels)), dtype=np.float32)
        for index, spec in enumerate(self.labels):
            labels[:, index] = spec.targets(table, source)
        return labels

    def transform_weights(self, table: pa.Table, source: str) -> np.ndarray | None:
        """Sample weights (N, T) float32, or None when no task has a sample weight."""
        if all(spec.weight is None for spec in self.labels):
            return None
        return np.stack([spec.weights(table, source) for spec in self.labels], axis=1)

    def _log_missing(self, table: pa.Table, source: str) -> None:
        missing_by_column: dict[str, int] = {}
        for feature in self.features:
            if isinstance(feature.encoder, NumericEncoder):
                if feature.column not in missing_by_column:
                    missing_by_column[feature.column] = feature.encoder.count_missing(table.column(feature.column))
                missing = missing_by_column[feature.column]
                if missing:
                    log.warning(
                        "%s: feature '%s' (column '%s'): %d missing/NaN value(s) filled with %.6g",
                        source,
                        feature.name,
                        feature.column,
                        missing,
                        feature.encoder.fill_,
                    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "features": [{"name": f.name, "column": f.column, "encoder": f.encoder.to_dict()} for f in self.features],
            "labels": [spec.to_dict() for spec in self.labels],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeaturePipeline:
        if state.get("format_version") != FORMAT_VERSION:
            raise RunDirError(f"feature artifact format {state.get('format_version')!r} is not {FORMAT_VERSION}")
        features = [FeatureSpec(f["name"], f["column"], _encoder_from_dict(f["encoder"])) for f in state["features"]]
        labels = [LabelSpec.from_dict(s) for s in state["labels"]]
        return cls(features, labels)

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


def _encoder_from_dict(state: dict[str, Any]) -> Encoder:
    if state["kind"] == "categorical":
        return CategoricalEncoder.from_dict(state)
    return NumericEncoder.from_dict(state)
