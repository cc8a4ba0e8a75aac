"""Tests for mtlrec.nn.embedding: the embedding collection against per-table oracles (single ids, bags,
sequences, shared tables, several widths), its row-sparse gradients, and one-row inputs beside N rows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.nn import EmbeddingCollection, Lookup, Table

TABLES = [Table("user", 3, 4), Table("item", 5, 4), Table("cate", 4, 2), Table("tag", 6, 4)]


def collection(sparse: bool = True) -> EmbeddingCollection:
    torch.manual_seed(0)
    lookups = [
        Lookup("user", "user"),
        Lookup("item", "item"),
        Lookup("cate", "cate"),
        Lookup("tags", "tag", "mean", "tags.length"),
        Lookup("tags_sum", "tag", "sum", "tags_sum.length", "tags_sum.weight"),
        Lookup("tags_max", "tag", "max", "tags_max.length"),
        Lookup("hist.item", "item", lengths="hist.length"),  # a sequence sharing the item table
    ]
    return EmbeddingCollection(TABLES, lookups, sparse=sparse)


def table(embeddings: EmbeddingCollection, name: str) -> torch.Tensor:
    """The rows of one table (an oracle built from the fused parameter and the offsets)."""
    spec = embeddings.tables[name]
    offset = embeddings.offsets[name]
    return embeddings.weights[f"dim{spec.dim}"].detach()[offset : offset + spec.rows]


def inputs(rows: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([0, 1, 3, 2, 3][:rows])
    mask = torch.arange(3) < lengths.unsqueeze(1)
    tags = torch.randint(1, 6, (rows, 3), generator=generator) * mask
    return {
        "user": torch.randint(1, 3, (rows,), generator=generator),
        "item": torch.randint(1, 5, (rows,), generator=generator),
        "cate": torch.randint(1, 4, (rows,), generator=generator),
        "tags": tags,
        "tags.length": lengths,
        "tags_sum": tags,
        "tags_sum.length": lengths,
        "tags_sum.weight": torch.rand(rows, 3, generator=generator) * mask,
        "tags_max": tags,
        "tags_max.length": lengths,
        "hist.item": torch.randint(1, 5, (rows, 4), generator=generator) * (torch.arange(4) < lengths.unsqueeze(1)),
        "hist.length": lengths,
    }


def test_tables_of_one_width_share_a_parameter_and_lookups_equal_per_table_oracles():
    embeddings = collection(sparse=False)
    assert {key: tuple(p.shape) for key, p in embeddings.weights.items()} == {"dim2": (4, 2), "dim4": (3 + 5 + 6, 4)}
    batch = inputs()
    out = embeddings(batch)
    user, item, cate, tag = (table(embeddings, name) for name in ("user", "item", "cate", "tag"))
    torch.testing.assert_close(out["user"], user[batch["user"]])
    torch.testing.assert_close(out["item"], item[batch["item"]])
    torch.testing.assert_close(out["cate"], cate[batch["cate"]])
    hist = item[batch["hist.item"]] * (batch["hist.item"] > 0).unsqueeze(2)  # (B, L, E), the shared table
    torch.testing.assert_close(out["hist.item"], hist)  # zeros at the padding
    for row in range(5):
        length = int(batch["tags.length"][row])
        values = tag[batch["tags"][row, :length]]
        weights = batch["tags_sum.weight"][row, :length]
        mean = values.mean(0) if length else torch.zeros(4)
        torch.testing.assert_close(out["tags"][row], mean)
        torch.testing.assert_close(out["tags_sum"][row], (weights.unsqueeze(1) * values).sum(0))
        torch.testing.assert_close(out["tags_max"][row], values.max(0).values if length else torch.zeros(4))
    assert embeddings.output_dim("cate") == 2 and embeddings.output_dim("tags") == 4


@pytest.mark.parametrize("sparse", [True, False])
def test_the_gradient_is_the_oracles_and_touches_only_looked_up_rows(sparse):
    embeddings = collection(sparse=sparse)
    batch = inputs()
    out = embeddings(batch)
    upstream = {name: torch.randn_like(value) for name, value in out.items()}
    sum(((out[name] * upstream[name]).sum() for name in out), torch.zeros(())).backward()
    grads = {key: p.grad.to_dense() if p.grad.is_sparse else p.grad for key, p in embeddings.weights.items()}
    if sparse:  # one row per distinct id, sorted: what the row-wise optimizer reads without coalescing
        for p in embeddings.weights.values():
            rows = p.grad._indices()[0]
            assert p.grad.is_sparse and bool((rows[1:] > rows[:-1]).all())
    oracle = {key: p.detach().clone().requires_grad_(True) for key, p in embeddings.weights.items()}
    reference = EmbeddingCollection(TABLES, embeddings.lookups, sparse=False)
    reference.weights = nn.ParameterDict({key: nn.Parameter(value) for key, value in oracle.items()})
    again = reference(batch)
    sum(((again[name] * upstream[name]).sum() for name in again), torch.zeros(())).backward()
    for key in grads:
        torch.testing.assert_close(grads[key], reference.weights[key].grad)
    untouched = table(embeddings, "user").new_zeros(1)  # the user table's padding row is never looked up
    assert torch.equal(grads["dim4"][embeddings.offsets["user"]], untouched.expand(4))


def test_inputs_with_one_row_are_looked_up_once_beside_n_rows():
    embeddings = collection(sparse=False)
    batch = inputs(rows=5)
    shared = {name: value[:1] for name, value in batch.items() if name.startswith(("user", "tags_sum", "hist"))}
    out = embeddings({**batch, **shared})
    full = embeddings({**batch, **{name: value[:1].expand(5, *value.shape[1:]) for name, value in shared.items()}})
    assert out["user"].shape == (1, 4) and out["hist.item"].shape == (1, 4, 4) and out["item"].shape == (5, 4)
    torch.testing.assert_close(out["user"].expand(5, 4), full["user"])
    torch.testing.assert_close(out["tags_sum"].expand(5, 4), full["tags_sum"])
    torch.testing.assert_close(out["item"], full["item"])


def test_bad_lookups_are_refused():
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        EmbeddingCollection(TABLES, [Lookup("x", "nope")])
    with pytest.raises(ValueError, match="pooling must be one of"):
        EmbeddingCollection(TABLES, [Lookup("x", "tag", "median", "x.length")])
    with pytest.raises(ValueError, match="needs its lengths input"):
        EmbeddingCollection(TABLES, [Lookup("x", "tag", "mean")])
    with pytest.raises(ValueError, match="max pooling takes no weights"):
        EmbeddingCollection(TABLES, [Lookup("x", "tag", "max", "x.length", "x.weight")])
