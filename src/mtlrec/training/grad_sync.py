"""Average gradients (and running buffers) over data-parallel ranks after the strategy's backward.

Each rank r holds gradients g_r of its mean loss over n_r rows. The global-batch gradient is
Σ_r n_r g_r / Σ_r n_r, which for mean losses equals the gradient of one process over all the rows
(and is the plain average when the ranks' batches are equal).

* Dense parameters: one flat all-reduce (sum) of [n_r·g_r | has-gradient flags | n_r·buffers |
  n_r], then a division by Σ n_r. A parameter no rank produced a gradient for keeps ``grad=None``
  (Adam skips it, as in a single process).
* Embedding tables with row-sparse gradients (:func:`mtlrec.nn.sparse_lookup.row_sparse_lookup`):
  each rank's (rows, values) pairs are all-gathered (padded to the longest), repeated rows summed,
  and the table gets one coalesced sparse gradient over the union of rows: O(rows touched) traffic
  instead of the table size.
* Floating-point buffers (a weighting strategy's running state such as FAMO's logits, an
  architecture's running statistics) are replaced by their row-weighted mean and boolean buffers by
  their OR, so every rank keeps the same state; integer buffers are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn


class GradientSync:
    """Makes every rank's gradients the global-batch gradient.

    Args:
        parameters: every trainable parameter (model and weighting strategy), in the same order on all ranks.
        sparse_parameters: the embedding tables (their gradients may be sparse).
        buffers: running state to keep equal across ranks.
        device: where collectives run (the CUDA device under NCCL).
    """

    def __init__(
        self,
        parameters: Iterable[nn.Parameter],
        sparse_parameters: Iterable[nn.Parameter],
        buffers: Iterable[torch.Tensor] = (),
        device: torch.device | None = None,
    ):
        self.sparse = list(dict.fromkeys(sparse_parameters))
        sparse_ids = {id(p) for p in self.sparse}
        self.dense = [p for p in dict.fromkeys(parameters) if p.requires_grad and id(p) not in sparse_ids]
        buffers = list(buffers)
        self.float_buffers = [b for b in buffers if b.is_floating_point()]
        self.bool_buffers = [b for b in buffers if b.dtype == torch.bool]
        self.device = device or torch.device("cpu")

    @torch.no_grad()
    def __call__(self, rows: int) -> None:
        """Replace this rank's gradients of a step over ``rows`` rows by the global-batch gradient."""
        total = self._reduce_dense(rows)
        for parameter in self.sparse:
            self._reduce_table(parameter, rows, total)

    def _reduce_dense(self, rows: int) -> float:
        parts, flags = [], []
        for parameter in self.dense:
            grad = parameter.grad
            flags.append(0.0 if grad is None else 1.0)
            parts.append(parameter.new_zeros(parameter.numel()) if grad is None else grad.reshape(-1) * rows)
        parts += [buffer.reshape(-1).float() * rows for buffer in self.float_buffers]
        parts += [buffer.reshape(-1).float() for buffer in self.bool_buffers]
        parts.append(torch.tensor(flags + [float(rows)]))
        flat = torch.cat([part.to(self.device, torch.float32) for part in parts])
        dist.all_reduce(flat)
        total = float(flat[-1])
        flags_seen = flat[-1 - len(self.dense) : -1].cpu()
        offset = 0
        for index, parameter in enumerate(self.dense):
            size = parameter.numel()
            if flags_seen[index] > 0:
                mean = (flat[offset : offset + size] / total).view_as(parameter).to(parameter.dtype)
                if parameter.grad is None:
                    parameter.grad = mean.to(parameter.device).clone()
                else:
                    parameter.grad.copy_(mean)
            offset += size
        for buffer in self.float_buffers:
            buffer.copy_((flat[offset : offset + buffer.numel()] / total).view_as(buffer))
            offset += buffer.numel()
        for buffer in self.bool_buffers:
            buffer.copy_((flat[offset : offset + buffer.numel()] > 0).view_as(buffer))
            offset += buffer.numel()
        return total

    def _reduce_table(self, parameter: nn.Parameter, rows: int, total: float) -> None:
        grad = parameter.grad
        if grad is not None and not grad.is_sparse:  # a dense table gradient: plain weighted mean
            summed = (grad * rows).to(self.device)
            dist.all_reduce(summed)
            grad.copy_(summed / total)
            return
        width = parameter.shape[1]
        if grad is None:
            indices = torch.zeros(0, dtype=torch.long, device=self.device)
            values = torch.zeros(0, width, dtype=parameter.dtype, device=self.device)
        else:
            grad = grad if grad.is_coalesced() else grad.coalesce()
            indices, values = grad._indices()[0].to(self.device), (grad._values() * rows).to(self.device)
        counts = gather_counts(indices.numel(), self.device)
        all_indices = gather_rows(indices, counts)
        all_values = gather_rows(values, counts)
        unique, inverse = torch.unique(all_indices, return_inverse=True)
        summed = all_values.new_zeros(unique.numel(), width).index_add_(0, inverse, all_values) / total
        parameter.grad = torch.sparse_coo_tensor(
            unique.unsqueeze(0).to(parameter.device),
            summed.to(parameter.device, parameter.dtype),
            parameter.shape,
            is_coalesced=True,
            check_invariants=False,
        )


def gather_rows(tensor: torch.Tensor, counts: list[int] | None = None) -> torch.Tensor:
    """Every rank's (N_r, ...) tensor concatenated in rank order (padded to the longest for the gather).

    ``counts`` (every rank's N_r), when already known, saves the gather of the sizes.
    """
    counts = counts if counts is not None else gather_counts(tensor.shape[0], tensor.device)
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


def gather_counts(count: int, device: torch.device) -> list[int]:
    """Every rank's ``count``, in rank order."""
    size = torch.tensor([count], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s) for s in sizes]
