"""The weighting-strategy contract (after LibMTL's AbsWeighting, without state injected by a trainer).

A strategy gets the per-task loss vector (T,) and the shared parameters, nothing else. Loss-level
strategies only combine the losses; gradient-level strategies (GradNorm, MGDA, PCGrad, ...) override
``backward`` to shape the gradients of the shared parameters themselves. Learnable state lives in
the module's ``state_dict`` so it survives checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class WeightingStrategy(nn.Module):
    """Base class.

    Args:
        num_tasks: T.
    """

    def __init__(self, num_tasks: int):
        super().__init__()
        self.num_tasks = num_tasks

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Populate ``.grad`` of every parameter from the loss vector (T,); return the weights used (T,).

        ``regularizer`` (a scalar, e.g. an architecture's auxiliary loss) is added to the objective
        unweighted: it is not a task, so no strategy balances it.
        """
        raise NotImplementedError

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        """Hook for strategies that adapt per epoch (DWA, dynamic weights); no-op by default."""


class LossWeighting(WeightingStrategy):
    """A strategy that backpropagates Σ_t w_t · L_t for weights computed from the losses."""

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """(T,) loss vector → (T,) weights."""
        raise NotImplementedError

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
    ) -> torch.Tensor:
        weights = self.weights(losses)
        objective = (weights * losses).sum()
        (objective if regularizer is None else objective + regularizer).backward()
        return weights.detach()
