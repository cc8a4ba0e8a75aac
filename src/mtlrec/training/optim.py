"""Optimizers: Adam/AdamW for dense parameters, sparse-aware Adam for embedding tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

DENSE_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class CompositeOptimizer:
    """Several optimizers stepped together, checkpointed as one state dict.

    Args:
        optimizers: {name: optimizer}, e.g. ``dense`` and ``embedding``.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers

    def zero_grad(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])


def make_optimizer(
    embedding_parameters: Iterable[nn.Parameter],
    dense_parameters: Iterable[nn.Parameter],
    name: str = "adam",
    lr: float = 1e-3,
    embedding_lr: float | None = None,
    weight_decay: float = 0.0,
) -> CompositeOptimizer:
    """Adam/AdamW over dense parameters and ``torch.optim.SparseAdam`` over embedding tables.

    SparseAdam ("lazy Adam") updates only the rows a batch touched, with their moment estimates;
    a dense Adam step over all embedding rows every batch costs time proportional to the table size.
    """
    embedding_parameters = list(embedding_parameters)
    embedding_ids = {id(p) for p in embedding_parameters}
    dense = [p for p in dense_parameters if p.requires_grad and id(p) not in embedding_ids]
    optimizers: dict[str, torch.optim.Optimizer] = {}
    if dense:
        optimizers["dense"] = DENSE_OPTIMIZERS[name](dense, lr=lr, weight_decay=weight_decay, foreach=True)
    if embedding_parameters:
        optimizers["embedding"] = torch.optim.SparseAdam(embedding_parameters, lr=embedding_lr or lr)
    return CompositeOptimizer(optimizers)
