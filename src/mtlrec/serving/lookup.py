"""The ids of many categorical features in one pyarrow lookup, for the server's small batches.

A request of 100 candidates with 30 categorical columns costs 30 vocabulary lookups of about 30 µs
each, almost all of it the fixed cost of a pyarrow call. :class:`FusedLookup` gives the same ids with
one ``index_in`` over every such column's values end to end, against the union of the vocabularies,
and one numpy ``take`` per feature from the union's position to the feature's own id.

Only plain vocabulary features take part (``CategoricalEncoder`` itself, not a cross, and no hash
buckets), and only up to :data:`MAX_FUSED_VALUES` distinct values in all (``index_in`` hashes its value
set on every call): a large vocabulary (a million item ids) keeps its own lookup, which for a short
column is a dict built once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.features import CategoricalEncoder
from mtlrec.features.encoder import Encoder
from mtlrec.features.vocabulary import FIRST_ID, OOV_ID

#: Most distinct values, over all the vocabularies, in the fused lookup.
MAX_FUSED_VALUES = 20_000


class FusedLookup:
    """One lookup for the plain vocabulary features among ``encoders`` (see the module's docstring).

    Args:
        encoders: the feature pipeline's encoders, fitted.
    """

    def __init__(self, encoders: Sequence[Encoder]):
        union: dict[str, int] = {}
        chosen: list[CategoricalEncoder] = []
        for encoder in encoders:
            vocabulary = _vocabulary(encoder)
            if vocabulary is None:
                continue
            new = [value for value in dict.fromkeys(vocabulary) if value not in union]
            if len(union) + len(new) > MAX_FUSED_VALUES:
                continue
            union.update(zip(new, range(len(union), len(union) + len(new))))
            chosen.append(encoder)
        self._value_set = pa.array(list(union), type=pa.string())
        # per feature: union position → its id; the last entry, for values in no vocabulary (-1), is OOV
        self._ids: dict[str, np.ndarray] = {}
        for encoder in chosen:
            ids = np.full(len(union) + 1, OOV_ID, dtype=np.int64)
            vocabulary = encoder.vocabulary.vocabulary_ or []
            ids[[union[value] for value in vocabulary]] = np.arange(FIRST_ID, FIRST_ID + len(vocabulary))
            self._ids[encoder.name] = ids

    def covers(self, encoder: Encoder) -> bool:
        """Whether the fused lookup encodes this feature."""
        return encoder.name in self._ids and type(encoder) is CategoricalEncoder

    def transform(self, table: pa.Table, encoders: Sequence[CategoricalEncoder]) -> dict[str, np.ndarray]:
        """{feature: (N,) int64 ids} of these features (each :meth:`covers`), as their own transform gives.

        Args:
            table: the rows, with each feature's column as ``string``.
        """
        if not encoders:
            return {}
        rows = table.num_rows
        chunks = [chunk for encoder in encoders for chunk in table.column(encoder.column).chunks]
        values = pa.chunked_array(chunks, type=pa.string())
        positions = pc.fill_null(pc.index_in(values, value_set=self._value_set), -1).to_numpy(zero_copy_only=False)
        return {
            encoder.name: self._ids[encoder.name][positions[index * rows : (index + 1) * rows]]
            for index, encoder in enumerate(encoders)
        }


def _vocabulary(encoder: Encoder) -> list[str] | None:
    """The vocabulary of a plain vocabulary feature (None for any other encoder, or a large one)."""
    if type(encoder) is not CategoricalEncoder or encoder.vocabulary.hash_buckets is not None:
        return None
    vocabulary = encoder.vocabulary.vocabulary_
    return vocabulary if vocabulary is not None and len(vocabulary) <= MAX_FUSED_VALUES else None
