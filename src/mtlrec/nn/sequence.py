"""Sequence encoders: a behaviour sequence (B, L, D) with its lengths → one (B, D_out) vector per row.

Registered in ``SEQUENCE_ENCODERS``; each takes ``(sequence_dim, query_dim, **params)`` and is called
``encoder(sequence, lengths, query)`` on the padded sequence, or ``encoder.forward_jagged(values,
positions, query)`` on its valid positions only (what the embedding collection gathers in training
and evaluation; the same result, without work on padding). ``pooling`` ignores the query; ``attention`` (DIN) weighs
every position by its relevance to the query, the candidate item. A new encoder (self-attention,
…) is one class in this file and one registry entry. Positions at or beyond a row's length are
padding and never contribute. The sequence may have one row shared by every candidate (a request's
context) while the query has N: the result has N rows.
"""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.nn.broadcast import common_rows, expand_rows
from mtlrec.nn.jagged import (
    POOLINGS,
    JaggedRows,
    pool_jagged,
    pool_padded,
    segment_softmax,
    segment_sum,
    valid_positions,
)
from mtlrec.nn.mlp import ACTIVATIONS

NORMALIZATIONS = ("softmax", "none")


class SequencePooling(nn.Module):
    """The mean, sum or max of a sequence's valid positions (0 for an empty sequence).

    Args:
        sequence_dim: D, the width of a position.
        query_dim: ignored (pooling does not read the query).
        pooling: ``mean``, ``sum`` or ``max``.
    """

    needs_query = False

    def __init__(self, sequence_dim: int, query_dim: int = 0, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.dim, self.pooling = sequence_dim, pooling

    def output_dim(self) -> int:
        return self.dim

    def forward(
        self, sequence: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor | None = None
    ) -> torch.Tensor:
        """sequence (B, L, D), lengths (B,) → (B, D); with a query of N rows and a one-row sequence, (N, D)."""
        pooled = pool_padded(sequence, lengths, self.pooling)
        return pooled if query is None else expand_rows(pooled, common_rows([pooled, query]))

    def forward_jagged(
        self, values: torch.Tensor, positions: JaggedRows, query: torch.Tensor | None = None
    ) -> torch.Tensor:
        """values (T, D) at the valid positions → (B, D)."""
        return pool_jagged(values, positions, self.pooling)


class TargetAttention(nn.Module):
    """DIN target attention: the candidate weighs each past item (Zhou et al., KDD 2018).

    Zhou, Zhu, Song, Fan, Zhu, Ma, Yan, Jin, Li, Gai: "Deep Interest Network for Click-Through Rate
    Prediction", KDD 2018, Sec. 4.3 and Fig. 2.

    Each position j of the sequence (the user's past items k_j) gets a weight from an MLP ("activation
    unit") over [q, k_j, q − k_j, q ⊙ k_j], q the candidate's embedding; the output is Σ_j w_j k_j.
    The paper leaves the weights unnormalised (``normalization="none"``: w_j is the MLP's output, so the
    result also reflects how much relevant history there is); the default normalises them with a softmax
    over the valid positions (as transformer-style target attention does).

    Cost: the activation unit's first layer is linear, and q − k_j is linear in q and k_j, so the layer
    is computed as A q + B k_j + C (q ⊙ k_j) + b — the same family of functions as a linear layer over
    the four-part concatenation, at half its multiply-adds. A q is computed once per row (not per
    position), B k_j once per sequence: when one sequence (a request's context) serves N candidates,
    the per-candidate work is C (q ⊙ k_j) and the rest of the activation unit (about L·D·H₁ + L·H₁·H₂
    multiply-adds for widths H₁, H₂).

    Deviation from the paper: its Dice activation is replaced by a choice from ``ACTIVATIONS``
    (PReLU, which the paper uses as its baseline, by default); no mini-batch aware regularisation.

    Args:
        sequence_dim: D, the width of a position (the history's fields side by side).
        query_dim: the query's width; must equal D (the candidate's fields aligned with the history's).
        hidden_units: the activation unit's widths (non-empty).
        activation: a name in ``ACTIVATIONS``.
        normalization: ``softmax`` (over valid positions) or ``none`` (DIN's raw weights).
        dropout: after each hidden layer of the activation unit.
        interaction: also output q ⊙ Σ_j w_j k_j (width 2D in all), whose sum is the attention-weighted
            similarity of the candidate to the history; a network reads it linearly, where it would have
            to learn a product of q and Σ w k otherwise (an extension; DIN outputs Σ w k only).
    """

    needs_query = True

    def __init__(
        self,
        sequence_dim: int,
        query_dim: int,
        hidden_units: list[int] = (64, 32),
        activation: str = "prelu",
        normalization: str = "softmax",
        dropout: float = 0.0,
        interaction: bool = False,
    ):
        super().__init__()
        if query_dim != sequence_dim:
            raise ValueError(
                f"target attention needs a query as wide as a sequence position ({query_dim} != {sequence_dim}): "
                "give the query one feature per sequence field, sharing its embedding table"
            )
        if not hidden_units:
            raise ValueError("the activation unit needs at least one hidden layer")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.dim, self.normalization, self.interaction = sequence_dim, normalization, interaction
        first = hidden_units[0]
        self.query_layer = nn.Linear(sequence_dim, first)  # A q + b
        self.key_layer = nn.Linear(sequence_dim, first, bias=False)  # B k
        self.product_layer = nn.Linear(sequence_dim, first, bias=False)  # C (q ⊙ k)
        self.first_activation = ACTIVATIONS[activation]()
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
        for width_in, width_out in zip(hidden_units, hidden_units[1:]):
            layers += [nn.Linear(width_in, width_out), ACTIVATIONS[activation]()]
            layers += [nn.Dropout(dropout)] if dropout > 0 else []
        layers.append(nn.Linear(hidden_units[-1], 1))
        self.rest = nn.Sequential(*layers)

    def output_dim(self) -> int:
        return 2 * self.dim if self.interaction else self.dim

    def _output(self, pooled: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Σ w k (N, D), or [Σ w k, q ⊙ Σ w k] (N, 2D) with ``interaction``."""
        return torch.cat([pooled, query.to(pooled.dtype) * pooled], dim=1) if self.interaction else pooled

    def scores(self, sequence: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """The activation unit's output for every (row, position): (N, L)."""
        hidden = (
            self.query_layer(query).unsqueeze(1)  # (N, 1, H)
            + self.key_layer(sequence)  # (B, L, H), B = N or 1
            + self.product_layer(query.unsqueeze(1) * sequence)  # (N, L, H)
        )
        return self.rest(self.first_activation(hidden)).squeeze(2)

    def forward_jagged(self, values: torch.Tensor, positions: JaggedRows, query: torch.Tensor) -> torch.Tensor:
        """values (T, D) at the valid positions of B rows, query (B, D) → (B, D): the activation unit runs on
        the T valid positions only."""
        rows, batch = positions.rows, positions.batch
        hidden = self.query_layer(query)[rows] + self.key_layer(values) + self.product_layer(query[rows] * values)
        scores = self.rest(self.first_activation(hidden)).squeeze(1)  # (T,)
        weights = segment_softmax(scores, rows, batch) if self.normalization == "softmax" else scores
        return self._output(segment_sum(weights.unsqueeze(1) * values.to(weights.dtype), rows, batch), query)

    def forward(self, sequence: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """sequence (B, L, D), lengths (B,), query (N, D) with B = N or 1 → (N, D)."""
        scores = self.scores(sequence, query)
        mask = valid_positions(lengths, sequence.shape[1])  # (B, L)
        if self.normalization == "softmax":
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=1)
        weights = scores.masked_fill(~mask, 0.0)  # an empty sequence contributes nothing
        return self._output(torch.matmul(weights.unsqueeze(1), sequence.to(weights.dtype)).squeeze(1), query)


SEQUENCE_ENCODERS: dict[str, type[nn.Module]] = {"pooling": SequencePooling, "attention": TargetAttention}
