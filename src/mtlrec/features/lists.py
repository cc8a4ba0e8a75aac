"""Lists between their two forms, in one place: jagged (values + lengths) and padded ((N, L) + lengths).

Files and requests carry lists jagged (an Arrow list column: offsets into one flat array of values).
The model reads them padded: an (N, L) array whose row r holds its first ``length[r]`` values and
0 (the padding id) after them, with the (N,) lengths beside it. A list longer than L is truncated,
keeping either its first or its last L values; a sequence whose most recent value is its last is
reversed, so that position 0 is always the most recent. The reverse conversion gives the jagged form
back (for a sharded-table path that takes values + lengths, e.g. TorchRec's ``KeyedJaggedTensor``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.io import split_text_lists, string_lists

KEEP = ("first", "last")


@dataclass(frozen=True)
class Jagged:
    """A list column as flat values and per-row lengths.

    Attributes:
        values: the (T,) values of every row, row after row (an Arrow array: strings before encoding).
        lengths: (N,) int64 values per row (a null list has none).
    """

    values: pa.Array
    lengths: np.ndarray

    @classmethod
    def from_arrow(cls, column: pa.Array | pa.ChunkedArray, separator: str = "|") -> Jagged:
        """Split an Arrow list column (list or large_list, possibly chunked or sliced), or text lists
        joined by ``separator`` (``a|b|c``)."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = split_text_lists(column, separator)
        else:
            column = string_lists(column)
        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        return cls(pc.list_flatten(column), lengths)

    @property
    def offsets(self) -> np.ndarray:
        """(N + 1,) int64: row r's values are ``values[offsets[r]:offsets[r + 1]]``."""
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    def row_of_value(self) -> np.ndarray:
        """(T,) int64: the row each value belongs to."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)


def padded_from_jagged(
    values: np.ndarray,
    lengths: np.ndarray,
    max_length: int,
    keep: str = "first",
    reverse: bool = False,
    fill: int | float = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The padded form of a jagged list column, in one vectorised pass (no loop over rows).

    Args:
        values: (T,) the values of every row, row after row.
        lengths: (N,) values per row (Σ = T).
        max_length: L, the padded width; longer rows are truncated.
        keep: which values a truncated row keeps: its ``first`` or its ``last`` L.
        reverse: write each row's kept values in reverse order (so that a list whose most recent value
            is last starts with it).
        fill: the value of the empty positions.

    Returns:
        (N, L) array of ``values``' dtype and the (N,) int64 lengths after truncation.
    """
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
    lengths = np.asarray(lengths, dtype=np.int64)
    kept = np.minimum(lengths, max_length)
    offsets = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    starts = offsets + (lengths - kept if keep == "last" else 0)
    rows = np.repeat(np.arange(len(lengths)), kept)
    position = np.arange(rows.size) - np.repeat(np.cumsum(kept) - kept, kept)
    column = np.repeat(kept, kept) - 1 - position if reverse else position
    padded = np.full((len(lengths), max_length), fill, dtype=np.asarray(values).dtype)
    padded[rows, column] = np.asarray(values)[np.repeat(starts, kept) + position]
    return padded, kept


def jagged_from_padded(padded: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The jagged form of a padded array: (T,) values of the first ``lengths[r]`` positions of each row,
    and the (N + 1,) offsets."""
    lengths = np.asarray(lengths, dtype=np.int64)
    mask = np.arange(padded.shape[1]) < lengths[:, None]
    return padded[mask], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
