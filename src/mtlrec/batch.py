"""Batch: the one input type of the model and the losses, and EncodedData, a split held as tensors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """One mini-batch.

    Attributes:
        ids: (B, F) int64 ids of the single-valued id features (0 padding, 1 OOV).
        dense: (B, Dd) float32 dense inputs.
        labels: {task: (B,) float32 target}; empty when the data has no labels.
    """

    ids: torch.Tensor
    dense: torch.Tensor
    labels: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return self.ids.shape[0]


@dataclass
class EncodedData:
    """A whole split, encoded.

    Attributes:
        ids: (N, F) int64.
        dense: (N, Dd) float32.
        labels: (N, T) float32, or None for unlabelled data.
        task_names: the T task names, in column order of ``labels``.
    """

    ids: torch.Tensor
    dense: torch.Tensor
    labels: torch.Tensor | None
    task_names: list[str]

    @classmethod
    def from_numpy(
        cls, ids: np.ndarray, dense: np.ndarray, labels: np.ndarray | None, task_names: list[str]
    ) -> EncodedData:
        return cls(
            torch.from_numpy(ids),
            torch.from_numpy(dense),
            None if labels is None else torch.from_numpy(labels),
            task_names,
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
        ids, dense, labels = self.ids, self.dense, self.labels
        if shuffle:
            order = torch.randperm(len(self), generator=generator)
            ids, dense = ids.index_select(0, order), dense.index_select(0, order)
            labels = None if labels is None else labels.index_select(0, order)
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            batch_labels = (
                {}
                if labels is None
                else {task: labels[start:stop, index] for index, task in enumerate(self.task_names)}
            )
            yield Batch(ids[start:stop], dense[start:stop], batch_labels)
