"""Average gradients (and running buffers) over data-parallel ranks after the strategy's backward.

Each rank r holds gradients g_r of its mean loss over n_r rows. The global-batch gradient is
Σ_r n_r g_r / Σ_r n_r, which for mean losses equals the gradient of one process over all the rows
(and is the plain average when the ranks' batches are equal).

* Dense parameters: one flat all-reduce (sum) of [n_r·g_r | n_r·buffers | bool buffers | each
  rank's embedding row counts | has-gradient flags | n_r], then a division by Σ n_r. A parameter no
  rank produced a gradient for keeps ``grad=None`` (Adam skips it, as in a single process).
* Embedding tables with row-sparse gradients (:func:`mtlrec.nn.sparse_lookup.row_sparse_lookup`):
  each rank's (rows, values) pairs, packed as bytes, are all-gathered in one collective (padded to
  the longest; the counts came with the all-reduce), repeated rows summed, and the table gets one
  coalesced sparse gradient over the union of rows: O(rows touched) traffic instead of the table size.
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
        tables = [self._local_rows(parameter, rows) for parameter in self.sparse]
        total, counts = self._reduce_dense(rows, [indices.numel() for indices, _ in tables])
        for parameter, (indices, values), table_counts in zip(self.sparse, tables, counts):
            self._reduce_table(parameter, indices, values, table_counts, total)

    def _reduce_dense(self, rows: int, table_rows: list[int]) -> tuple[float, list[list[int]]]:
        """All-reduce the dense gradients, buffers and row count, and every rank's rows per table.

        Returns Σ_r n_r and, per table, every rank's number of gradient rows (this rank's count in its
        own slot of a zero block: the sum is every rank's count, one collective fewer than a gather).
        """
        world, rank = dist.get_world_size(), dist.get_rank()
        counts = torch.zeros(len(table_rows), world)
        counts[:, rank] = torch.tensor(table_rows, dtype=torch.float32)
        flags = [0.0 if parameter.grad is None else 1.0 for parameter in self.dense]
        parts = [
            parameter.new_zeros(parameter.numel()) if parameter.grad is None else parameter.grad.reshape(-1)
            for parameter in self.dense
        ]
        parts += [buffer.reshape(-1) for buffer in self.float_buffers]
        weighted = sum(part.numel() for part in parts)  # the entries scaled by this rank's rows
        parts += [buffer.reshape(-1) for buffer in self.bool_buffers]
        parts += [counts.view(-1), torch.tensor(flags + [float(rows)])]
        flat = torch.cat([part.to(self.device, torch.float32) for part in parts])  # one copy of the gradients
        flat[:weighted].mul_(rows)
        dist.all_reduce(flat)
        total = float(flat[-1])
        flags_seen = flat[-1 - len(self.dense) : -1].cpu()
        counts_start = -1 - len(self.dense) - counts.numel()
        summed_counts = flat[counts_start : counts_start + counts.numel()].view_as(counts).cpu()
        values = flat[:counts_start].div_(total)  # the weighted means; bool buffers are tested > 0 below
        offset = 0
        for index, parameter in enumerate(self.dense):
            size = parameter.numel()
            if flags_seen[index] > 0:
                mean = values[offset : offset + size].view_as(parameter).to(parameter.dtype)
                if parameter.grad is None:
                    parameter.grad = mean.to(parameter.device).clone()
                else:
                    parameter.grad.copy_(mean)
            offset += size
        for buffer in [*self.float_buffers, *self.bool_buffers]:
            mean = values[offset : offset + buffer.numel()].view_as(buffer)
            buffer.copy_(mean > 0 if buffer.dtype == torch.bool else mean)
            offset += buffer.numel()
        return total, [[int(count) for count in table] for table in summed_counts.round().long()]

    def _local_rows(self, parameter: nn.Parameter, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's (U,) gradient rows of a table and their (U, width) values times ``rows``."""
        grad = parameter.grad
        if grad is None:
            return (
                torch.zeros(0, dtype=torch.long, device=self.device),
                torch.zeros(0, parameter.shape[1], dtype=parameter.dtype, device=self.device),
            )
        if not grad.is_sparse:  # a dense table gradient: every row
            indices = torch.arange(parameter.shape[0], device=self.device)
            return indices, (grad * rows).to(self.device)
        grad = grad if grad.is_coalesced() else grad.coalesce()
        return grad._indices()[0].to(self.device), (grad._values() * rows).to(self.device)

    def _reduce_table(
        self, parameter: nn.Parameter, indices: torch.Tensor, values: torch.Tensor, counts: list[int], total: float
    ) -> None:
        """Sum every rank's rows (one all-gather of rows and values as bytes) into a coalesced sparse gradient."""
        width = parameter.shape[1]
        packed = torch.cat([indices.unsqueeze(1).view(torch.uint8), values.contiguous().view(torch.uint8)], dim=1)
        gathered = gather_rows(packed, counts)
        all_indices = gathered[:, :8].contiguous().view(torch.long).squeeze(1)
        all_values = gathered[:, 8:].contiguous().view(values.dtype)
        unique, inverse = torch.unique(all_indices, return_inverse=True)
        summed = all_values.new_zeros(unique.numel(), width).index_add_(0, inverse, all_values) / total
        if parameter.grad is not None and not parameter.grad.is_sparse:
            parameter.grad.zero_().index_add_(0, unique.to(parameter.device), summed.to(parameter.device))
            return
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
