"""datasets.group_codes: one id per distinct group key across chunks, -1 for missing keys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mtlrec.data.reading import group_codes


def test_group_codes_partition_rows_like_the_keys_across_chunks():
    column = pa.chunked_array([["u1", "u2", None], ["u2", "u3", "u1"]])
    codes = group_codes(column)
    assert codes.dtype == np.int64 and codes[2] == -1
    keys = ["u1", "u2", None, "u2", "u3", "u1"]
    for i in range(6):
        for j in range(6):
            if keys[i] is not None and keys[j] is not None:
                assert (codes[i] == codes[j]) == (keys[i] == keys[j])
    numbers = group_codes(pa.array([7.0, 3.0, 7.0, None]))
    assert numbers[0] == numbers[2] != numbers[1] and numbers[3] == -1
