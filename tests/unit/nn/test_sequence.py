"""Tests for mtlrec.nn.sequence: pooling and DIN target attention against loop references over the valid
positions, the paper's four-part activation unit, empty sequences, and one sequence shared by N queries."""

from __future__ import annotations

import pytest
import torch

from mtlrec.nn import SEQUENCE_ENCODERS, SequencePooling, TargetAttention

LENGTHS = torch.tensor([0, 1, 4, 2, 3])


def sequence(rows: int = 5, length: int = 4, dim: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, length, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pooling", ["mean", "sum", "max"])
def test_pooling_reads_only_the_valid_positions(pooling):
    values = sequence()
    values[0] = 1e6  # padding of the empty row must not leak
    out = SequencePooling(6, pooling=pooling)(values, LENGTHS)
    for row, length in enumerate(LENGTHS.tolist()):
        valid = values[row, :length]
        expected = {"mean": valid.mean(0), "sum": valid.sum(0), "max": valid.max(0).values}[pooling] if length else (
            torch.zeros(6)
        )
        torch.testing.assert_close(out[row], expected)


def din_reference(attention: TargetAttention, keys: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor):
    """DIN as the paper writes it, row by row: a linear layer over [q, k, q - k, q * k], the rest of the
    activation unit, (masked softmax or raw) weights over the valid positions, Σ w_j k_j."""
    dim = keys.shape[2]
    a, b, c = attention.query_layer.weight, attention.key_layer.weight, attention.product_layer.weight
    # W [q; k; q-k; q*k] with W = [W_q, W_k, W_d, W_p]: choose W_d = 0.5·a so that A = W_q + W_d, B = W_k - W_d
    w_d = 0.5 * a
    full = torch.cat([a - w_d, b + w_d, w_d, c], dim=1)  # (H, 4D)
    rows = []
    for row in range(len(query)):
        length = int(lengths[row if len(lengths) > 1 else 0])
        k = keys[row if len(keys) > 1 else 0, :length]
        if length == 0:
            rows.append(torch.zeros(dim))
            continue
        q = query[row].expand(length, dim)
        hidden = torch.cat([q, k, q - k, q * k], dim=1) @ full.T + attention.query_layer.bias
        scores = attention.rest(attention.first_activation(hidden)).squeeze(1)
        weights = scores.softmax(0) if attention.normalization == "softmax" else scores
        rows.append((weights.unsqueeze(1) * k).sum(0))
    return torch.stack(rows)


@pytest.mark.parametrize("normalization", ["softmax", "none"])
def test_target_attention_is_dins_activation_unit(normalization):
    torch.manual_seed(0)
    attention = TargetAttention(6, 6, hidden_units=[5, 3], normalization=normalization)
    keys, query = sequence(), torch.randn(5, 6)
    keys[0] = 1e6  # the empty row's padding
    out = attention(keys, LENGTHS, query)
    torch.testing.assert_close(out, din_reference(attention, keys, LENGTHS, query))
    assert out.shape == (5, 6) and torch.equal(out[0], torch.zeros(6))


def test_one_sequence_shared_by_n_queries_equals_the_sequence_repeated():
    torch.manual_seed(1)
    attention = TargetAttention(6, 6, hidden_units=[4])
    keys, query, lengths = sequence(rows=1), torch.randn(7, 6), torch.tensor([3])
    shared = attention(keys, lengths, query)
    repeated = attention(keys.expand(7, 4, 6), lengths.expand(7), query)
    torch.testing.assert_close(shared, repeated)
    torch.testing.assert_close(shared, din_reference(attention, keys, lengths, query))
    pooled = SequencePooling(6)(keys, lengths, query)
    assert pooled.shape == (7, 6) and torch.equal(pooled[3], keys[0, :3].mean(0))


def test_gradients_are_finite_with_empty_sequences():
    attention = TargetAttention(6, 6)
    keys = sequence().requires_grad_(True)
    query = torch.randn(5, 6, requires_grad=True)
    attention(keys, torch.zeros(5, dtype=torch.long), query).sum().backward()
    assert torch.isfinite(keys.grad).all() and torch.isfinite(query.grad).all()
    assert torch.equal(keys.grad, torch.zeros_like(keys))


def test_registry_and_bad_arguments():
    assert set(SEQUENCE_ENCODERS) == {"pooling", "attention"}
    for cls in SEQUENCE_ENCODERS.values():
        encoder = cls(sequence_dim=6, query_dim=6)
        assert encoder.output_dim() == 6 and isinstance(cls.needs_query, bool)
    with pytest.raises(ValueError, match="as wide as a sequence position"):
        TargetAttention(6, 4)
    with pytest.raises(ValueError, match="normalization must be one of"):
        TargetAttention(6, 6, normalization="sparsemax")
    with pytest.raises(ValueError, match="pooling must be one of"):
        SequencePooling(6, pooling="median")
