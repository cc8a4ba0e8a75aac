"""List columns read from files: Parquet ``list<int|string>``, or text joined by a separator (``a|b|c``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.errors import DataError


@dataclass(frozen=True)
class ListSplitting:
    """How list columns written as text are split: separator by column (``|`` for the others)."""

    separators: dict[str, str]
    strip: bool = True

    def split(self, name: str, array: pa.Array) -> pa.Array:
        """A string column → ``list<string>`` (see :func:`split_text_lists`)."""
        return split_text_lists(array, self.separators.get(name, "|"), self.strip)


def split_text_lists(array: pa.Array | pa.ChunkedArray, separator: str, strip: bool = True) -> pa.Array:
    """Strings such as ``a|b|c`` → ``list<string>``: the values between separators (stripped of spaces
    when ``strip``); an empty string or a null is a null list (no values)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = pc.cast(array, pa.string())
    lists = pc.split_pattern(pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array), separator)
    if not strip or len(lists) == 0:
        return lists
    return pa.ListArray.from_arrays(lists.offsets, pc.utf8_trim_whitespace(lists.values), mask=lists.is_null())


def string_lists(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A list array of ids (integers or strings) as ``list<string>``, casting only its values.

    pyarrow's cast of a whole list array has a fixed cost of milliseconds (2 ms for 100 short
    histories, as a request brings); casting the flat values and keeping the offsets takes tens of µs.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_list(array.type) and pa.types.is_string(array.type.value_type):
        return array
    if not pa.types.is_list(array.type):  # large or fixed-size lists: rare, the general cast
        return pc.cast(array, pa.list_(pa.string()))
    offsets = array.offsets
    start, stop = offsets[0].as_py(), offsets[-1].as_py()
    values = pc.cast(array.values.slice(start, stop - start), pa.string())
    shifted = pc.subtract(offsets, pa.scalar(start, offsets.type))
    return pa.ListArray.from_arrays(shifted, values, mask=array.is_null() if array.null_count else None)


def cast_list(path: Path, name: str, array: pa.Array, dtype: pa.DataType, lists: ListSplitting) -> pa.Array:
    """A list column read from a list of ids/strings, or from text joined by the column's separator."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return lists.split(name, pc.cast(array, pa.string()))
    kind = array.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise DataError(
            f"{path}: column '{name}' has type {kind}; a list feature reads a list column or text such as 'a|b|c'"
        )
    value_type = kind.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise DataError(f"{path}: column '{name}' has type {kind}; list values must be strings or integers")
    return string_lists(array)
