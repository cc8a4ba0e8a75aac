"""Optimizers: Adam/AdamW for dense parameters, sparse-aware Adam for embedding tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mtlrec.training.sparse_adam import RowSparseAdam

DENSE_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class CompositeOptimizer:
    """Several optimizers stepped together, checkpointed as one state dict.

    Args:
        optimizers: {name: optimizer}, e.g. ``dense`` and ``embedding``.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])

    def scale_lr(self, factor: float) -> None:
        """Set every group's learning rate to ``factor`` × its initial learning rate."""
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

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
    undecayed_parameters: Iterable[nn.Parameter] = (),
    embedding_weight_decay: float = 0.0,
) -> CompositeOptimizer:
    """Adam/AdamW over dense parameters and row-wise lazy Adam over embedding tables.

    The embedding optimizer (``RowSparseAdam``, the update of ``torch.optim.SparseAdam``) touches only
    the rows a batch used; a dense Adam step over all embedding rows costs time proportional to the
    table size every batch. ``undecayed_parameters`` (a weighting strategy's learnable weights or
    log-variances) join the dense optimizer without weight decay, which would bias them toward 0.
    ``embedding_weight_decay`` is the lazy L2 of the rows each batch touches (see ``RowSparseAdam``).
    """
    embedding_parameters = list(embedding_parameters)
    embedding_ids = {id(p) for p in embedding_parameters}
    dense = [p for p in dense_parameters if p.requires_grad and id(p) not in embedding_ids]
    undecayed = [p for p in undecayed_parameters if p.requires_grad]
    optimizers: dict[str, torch.optim.Optimizer] = {}
    if dense or undecayed:
        groups = [{"params": dense, "weight_decay": weight_decay}] + (
            [{"params": undecayed, "weight_decay": 0.0}] if undecayed else []
        )
        optimizers["dense"] = DENSE_OPTIMIZERS[name]([g for g in groups if g["params"]], lr=lr, fused=True)
    if embedding_parameters:
        optimizers["embedding"] = RowSparseAdam(
            embedding_parameters, lr=embedding_lr or lr, weight_decay=embedding_weight_decay
        )
    return CompositeOptimizer(optimizers)
