"""Dropout on the embedded inputs: it drops (and rescales) embedding values while training, never dense
values, and is the identity in evaluation."""

from __future__ import annotations

import torch

from mtlrec.model import ModelInputs
from mtlrec.nn import EmbeddingCollection, Lookup, Table

P = 0.5


def inputs_layer(dropout: float) -> ModelInputs:
    tables = [Table("user", 50, 8), Table("item", 40, 8)]
    lookups = [Lookup("user", "user"), Lookup("item", "item")]
    groups = {"all": ["user", "item", "price"]}
    return ModelInputs(EmbeddingCollection(tables, lookups), [], {}, ["price"], groups, None, dropout)


def batch(rows: int = 256) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "user": torch.randint(0, 50, (rows,), generator=generator),
        "item": torch.randint(0, 40, (rows,), generator=generator),
        "price": torch.rand(rows, generator=generator) + 1.0,
    }


def test_training_drops_and_rescales_embedded_values_only():
    torch.manual_seed(0)
    layer, plain = inputs_layer(P), inputs_layer(0.0)
    plain.load_state_dict(layer.state_dict())
    values = batch()
    layer.train()
    dropped, reference = layer(values)["all"], plain(values)["all"]
    embedded, dense = dropped[:, :16], dropped[:, 16]
    zeroed = embedded == 0
    assert 0.4 < zeroed.float().mean() < 0.6  # about P of the embedding values
    kept = ~zeroed
    assert torch.allclose(embedded[kept], reference[:, :16][kept] / (1 - P))  # inverted dropout's rescaling
    assert torch.equal(dense, values["price"])  # dense values pass untouched


def test_evaluation_is_the_identity():
    layer, plain = inputs_layer(P), inputs_layer(0.0)
    plain.load_state_dict(layer.state_dict())
    layer.eval()
    assert torch.equal(layer(batch())["all"], plain(batch())["all"])
