"""The fused lookup of the server gives every plain vocabulary feature exactly its own ids."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mtlrec.features import CategoricalEncoder
from mtlrec.features.cross import CrossEncoder
from mtlrec.features.vocabulary import Vocabulary
from mtlrec.serving import lookup
from mtlrec.serving.lookup import FusedLookup


def _vocabulary(values: list[str | None], **options) -> Vocabulary:
    return Vocabulary(**options).fit(pa.array(values, pa.string()))


def test_fused_ids_equal_each_encoders_own():
    shared = _vocabulary(["i1", "i2", "i2", "i3"])  # two features of one table
    encoders = [
        CategoricalEncoder("colour", vocabulary=_vocabulary(["red", "blue", "red", "i1"])),
        CategoricalEncoder("item", vocabulary=shared),
        CategoricalEncoder("clicked", "clicked_item", table="item", vocabulary=shared),
        CategoricalEncoder("rare", vocabulary=_vocabulary(["a", "a", "b"], min_count=2)),
    ]
    fused = FusedLookup(encoders)
    assert all(fused.covers(encoder) for encoder in encoders)
    table = pa.table(
        {
            "colour": pa.chunked_array([["red", "i1", None], ["green", "blue"]], pa.string()),
            "item": pa.chunked_array([["i2", "i1", "red"], [None, "i9"]], pa.string()),
            "clicked_item": pa.array(["i3", None, "i3", "", "i1"], pa.string()),
            "rare": pa.array(["a", "b", "c", None, "a"], pa.string()),
        }
    )
    ids = fused.transform(table, encoders)
    for encoder in encoders:
        expected = encoder.transform(table)[encoder.name]
        assert ids[encoder.name].dtype == expected.dtype and np.array_equal(ids[encoder.name], expected), encoder.name
    assert ids["colour"].tolist() == [2, 4, 1, 1, 3]  # known values from 2; unseen values and nulls: OOV (1)
    assert fused.transform(table.slice(0, 0), encoders)["item"].tolist() == []


def test_crosses_hash_buckets_and_large_vocabularies_keep_their_own_lookup(monkeypatch):
    monkeypatch.setattr(lookup, "MAX_FUSED_VALUES", 3)
    encoders = [
        CategoricalEncoder("hashed", vocabulary=Vocabulary(hash_buckets=10)),
        CrossEncoder("cross", ["a", "b"], vocabulary=_vocabulary(["x\x1fy"])),
        CategoricalEncoder("large", vocabulary=_vocabulary(["1", "2", "3", "4"])),
        CategoricalEncoder("small", vocabulary=_vocabulary(["1", "2"])),
        CategoricalEncoder("too_many_together", vocabulary=_vocabulary(["5", "6"])),  # 4 distinct values in all
    ]
    fused = FusedLookup(encoders)
    assert [encoder.name for encoder in encoders if fused.covers(encoder)] == ["small"]
