"""Batch: the one input type of the model and the losses, and EncodedData, a split held as tensors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Batch:
    """One mini-batch.

    Attributes:
        ids: (B, F) int64 ids of the single-valued id features (0 padding, 1 OOV).
        dense: (B, Dd) float32 dense inputs.
        labels: {task: (B,) float32 target}; empty when the data has no labels.
        weights: {task: (B,) float32 sample weight}; empty without sample weights.
    """

    ids: torch.Tensor
    dense: torch.Tensor
    labels: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        """The batch on ``device`` (itself when already there)."""
        if self.ids.device == device:
            return self
        return Batch(
            self.ids.to(device, non_blocking=non_blocking),
            self.dense.to(device, non_blocking=non_blocking),
            {task: value.to(device, non_blocking=non_blocking) for task, value in self.labels.items()},
            {task: value.to(device, non_blocking=non_blocking) for task, value in self.weights.items()},
        )


@dataclass
class EncodedData:
    """A whole split, encoded.

    Attributes:
        ids: (N, F) int64.
        dense: (N, Dd) float32.
        labels: (N, T) float32, or None for unlabelled data.
        task_names: the T task names, in column order of ``labels``.
        weights: (N, T) float32 sample weights, or None.
        groups: (N,) int64 group id per row for grouped metrics (GAUC; -1: no group), or None. Not a
            model input, so it stays a numpy array and is not part of the batches.
    """

    ids: torch.Tensor
    dense: torch.Tensor
    labels: torch.Tensor | None
    task_names: list[str]
    weights: torch.Tensor | None = None
    groups: np.ndarray | None = None

    @classmethod
    def from_numpy(
        cls,
        ids: np.ndarray,
        dense: np.ndarray,
        labels: np.ndarray | None,
        task_names: list[str],
        weights: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> EncodedData:
        return cls(
            torch.from_numpy(ids),
            torch.from_numpy(dense),
            None if labels is None else torch.from_numpy(labels),
            task_names,
            None if weights is None else torch.from_numpy(weights),
            groups,
        )

    def __len__(self) -> int:
        return self.ids.shape[0]

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """Yield batches in order, or in a fresh random order drawn from ``generator``.

        Shuffling permutes the whole split once (one gather per tensor), then slices contiguous
        views, so no per-row work happens per batch.
        """
        ids, dense, labels, weights = self.ids, self.dense, self.labels, self.weights
        if shuffle:
            order = torch.randperm(len(self), generator=generator)
            ids, dense = ids.index_select(0, order), dense.index_select(0, order)
            labels = None if labels is None else labels.index_select(0, order)
            weights = None if weights is None else weights.index_select(0, order)
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            yield Batch(
                ids[start:stop],
                dense[start:stop],
                self._by_task(labels, start, stop),
                self._by_task(weights, start, stop),
            )

    def rows(self, start: int, stop: int) -> Batch:
        """Rows [start, stop) as a Batch of views (no copy)."""
        return Batch(
            self.ids[start:stop],
            self.dense[start:stop],
            self._by_task(self.labels, start, stop),
            self._by_task(self.weights, start, stop),
        )

    def _by_task(self, values: torch.Tensor | None, start: int, stop: int) -> dict[str, torch.Tensor]:
        if values is None:
            return {}
        return {task: values[start:stop, index] for index, task in enumerate(self.task_names)}
