"""Batch: the one input type of the model and the losses, keyed by name; EncodedData: a split held as tensors.

A batch carries the model's inputs keyed by input name (single ids (B,), padded lists (B, L) with
their lengths (B,), dense values (B,)), and the labels and sample weights keyed by task (a NaN label
is a row the task does not learn from: outside its sample space, or a masked missing label). Rows
are cut, gathered and joined in one way only: :meth:`Batch.slice`, :meth:`Batch.take`,
:meth:`Batch.concat`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

Tensors = dict[str, torch.Tensor]


@dataclass
class Batch:
    """Rows of inputs, labels and sample weights.

    Attributes:
        inputs: {input name: (B, ...) tensor}.
        labels: {task: (B,) float32 target}; NaN where the task has no label; empty for unlabelled data.
        weights: {task: (B,) float32 sample weight}; empty without sample weights.
    """

    inputs: Tensors
    labels: Tensors = field(default_factory=dict)
    weights: Tensors = field(default_factory=dict)

    def __len__(self) -> int:
        return next(iter(self.inputs.values())).shape[0]

    @classmethod
    def from_numpy(
        cls,
        inputs: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray] | None = None,
        weights: Mapping[str, np.ndarray] | None = None,
    ) -> Batch:
        """A batch sharing the arrays' memory (``torch.from_numpy``)."""

        def tensors(arrays: Mapping[str, np.ndarray] | None) -> Tensors:
            return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in (arrays or {}).items()}

        return cls(tensors(inputs), tensors(labels), tensors(weights))

    def map(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """The batch with ``function`` applied to every tensor."""
        return Batch(
            {k: function(v) for k, v in self.inputs.items()},
            {k: function(v) for k, v in self.labels.items()},
            {k: function(v) for k, v in self.weights.items()},
        )

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        """The batch on ``device`` (itself when already there)."""
        if next(iter(self.inputs.values())).device == device:
            return self
        return self.map(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def slice(self, start: int, stop: int) -> Batch:
        """Rows [start, stop) as views (no copy)."""
        return self.map(lambda tensor: tensor[start:stop])

    def take(self, rows: torch.Tensor) -> Batch:
        """The rows at the (K,) int64 indices ``rows``, in that order (one gather per tensor)."""
        return self.map(lambda tensor: tensor.index_select(0, rows))

    @classmethod
    def concat(cls, batches: list[Batch]) -> Batch:
        """The batches' rows one after another (same keys in every batch)."""
        first = batches[0]

        def joined(part: Callable[[Batch], Tensors]) -> Tensors:
            return {key: torch.cat([part(batch)[key] for batch in batches]) for key in part(first)}

        return cls(joined(lambda b: b.inputs), joined(lambda b: b.labels), joined(lambda b: b.weights))

    def to_columns(self) -> dict[tuple[str, str], torch.Tensor]:
        """Every tensor under a flat key: ``("inputs", name)``, ``("labels", task)``, ``("weights", task)``."""
        parts = {"inputs": self.inputs, "labels": self.labels, "weights": self.weights}
        return {(part, key): value for part, tensors in parts.items() for key, value in tensors.items()}

    @classmethod
    def from_columns(cls, columns: Mapping[tuple[str, str], torch.Tensor]) -> Batch:
        """The inverse of :meth:`to_columns`."""
        parts: dict[str, Tensors] = {"inputs": {}, "labels": {}, "weights": {}}
        for (part, key), value in columns.items():
            parts[part][key] = value
        return cls(parts["inputs"], parts["labels"], parts["weights"])


@dataclass
class EncodedData:
    """A whole split, encoded.

    Attributes:
        rows: every row as one :class:`Batch` (labels empty for unlabelled data).
        task_names: the tasks, in order.
        groups: (N,) int64 group id per row for grouped metrics (GAUC; -1: no group), or None. Not a
            model input, so it stays a numpy array and is not part of the batches.
    """

    rows: Batch
    task_names: list[str]
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> Tensors:
        """{task: (N,) targets}; empty for unlabelled data."""
        return self.rows.labels

    def slice(self, start: int, stop: int) -> EncodedData:
        """Rows [start, stop) (views; the group ids too)."""
        groups = None if self.groups is None else self.groups[start:stop]
        return EncodedData(self.rows.slice(start, stop), self.task_names, groups)

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """Yield batches in order, or in a fresh random order drawn from ``generator``.

        Shuffling permutes the whole split once (one gather per tensor), then slices contiguous
        views, so no per-row work happens per batch.
        """
        rows = self.rows
        if shuffle:
            rows = rows.take(torch.randperm(len(self), generator=generator))
        for start in range(0, len(self), batch_size):
            yield rows.slice(start, start + batch_size)
