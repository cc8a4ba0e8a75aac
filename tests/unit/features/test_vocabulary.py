"""Tests for mtlrec.features.vocabulary: the vocabulary (min count, cap, ties, OOV), hashing and FNV-1a."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from mtlrec.features import OOV_ID, PADDING_ID, NotFittedError, Vocabulary, fnv1a_64

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def reference_fnv1a_64(text: str) -> int:
    """Plain-Python FNV-1a 64 over the UTF-8 bytes (the oracle)."""
    value = FNV_OFFSET
    for byte in text.encode("utf-8"):
        value ^= byte
        value = (value * FNV_PRIME) % (1 << 64)
    return value


def reference_vocabulary(values: list[str | None], min_count: int = 1, max_vocab_size: int | None = None) -> list[str]:
    counts = Counter(v for v in values if v is not None)
    kept = sorted((value for value, n in counts.items() if n >= min_count), key=lambda v: (-counts[v], v))
    return kept if max_vocab_size is None else kept[:max_vocab_size]


# a×5, b×3, c×3 (tie with b), d×2, e×1, and four nulls (never counted)
TRAIN = ["c", "a", None, "b", "a", "d", "c", None, "a", "b", "e", "a", None, "c", "d", "b", "a", None]


def test_reference_fnv_matches_published_test_vectors():
    # sanity of the oracle itself: FNV-1a 64 test vectors from the FNV reference (draft-eastlake-fnv)
    assert reference_fnv1a_64("") == 0xCBF29CE484222325
    assert reference_fnv1a_64("a") == 0xAF63DC4C8601EC8C
    assert reference_fnv1a_64("foobar") == 0x85944171F73967E8


def test_id_layout_constants():
    assert (PADDING_ID, OOV_ID) == (0, 1)


def test_transform_before_fit_raises():
    encoder = Vocabulary()
    assert not encoder.fitted
    with pytest.raises(NotFittedError):
        encoder.transform(pa.array(["a"]))
    with pytest.raises(NotFittedError):
        _ = encoder.num_ids
    with pytest.raises(NotFittedError):
        encoder.to_dict()


def test_known_values_start_at_two_in_frequency_order_and_unknown_and_null_are_oov():
    encoder = Vocabulary().fit(pa.array(TRAIN))
    assert encoder.vocabulary_ == ["a", "b", "c", "d", "e"]
    ids = encoder.transform(pa.array(["a", "b", "c", "d", "e", "zzz", None, "", "A"]))
    assert ids.dtype == np.int64
    assert ids.tolist() == [2, 3, 4, 5, 6, 1, 1, 1, 1]
    assert encoder.num_ids == 2 + 5


def test_transform_matches_reference_mapping_on_random_data():
    rng = random.Random(0)
    alphabet = ["x", "y", "z", "é", "ü", "日", "Z", "a"]
    train = [None if rng.random() < 0.1 else "".join(rng.choices(alphabet, k=rng.randint(0, 2))) for _ in range(3000)]
    test = [None if rng.random() < 0.1 else "".join(rng.choices(alphabet, k=rng.randint(0, 3))) for _ in range(2000)]
    encoder = Vocabulary(min_count=3).fit(pa.array(train, pa.string()))
    vocabulary = reference_vocabulary(train, min_count=3)
    assert encoder.vocabulary_ == vocabulary
    mapping = {value: index + 2 for index, value in enumerate(vocabulary)}
    expected = [mapping.get(v, OOV_ID) if v is not None else OOV_ID for v in test]
    assert encoder.transform(pa.array(test, pa.string())).tolist() == expected


@pytest.mark.parametrize(
    ("min_count", "max_vocab_size", "expected"),
    [
        (1, None, ["a", "b", "c", "d", "e"]),
        (2, None, ["a", "b", "c", "d"]),
        (3, None, ["a", "b", "c"]),
        (4, None, ["a"]),
        (6, None, []),
        (1, 2, ["a", "b"]),  # b and c tie at 3: the smaller value wins
        (1, 3, ["a", "b", "c"]),
        (2, 10, ["a", "b", "c", "d"]),
        (3, 1, ["a"]),
    ],
)
def test_min_count_and_max_vocab_size(min_count, max_vocab_size, expected):
    encoder = Vocabulary(min_count=min_count, max_vocab_size=max_vocab_size).fit(pa.array(TRAIN))
    assert encoder.vocabulary_ == expected
    assert encoder.num_ids == 2 + len(expected)
    ids = encoder.transform(pa.array(["a", "b", "c", "d", "e"]))
    assert ids.tolist() == [expected.index(v) + 2 if v in expected else OOV_ID for v in "abcde"]


def test_empty_vocabulary_maps_everything_to_oov():
    encoder = Vocabulary(min_count=100).fit(pa.array(TRAIN))
    assert encoder.transform(pa.array(["a", None])).tolist() == [OOV_ID, OOV_ID]


def test_vocabulary_is_deterministic_regardless_of_row_order_and_chunking():
    values = [f"v{i % 17}" for i in range(500)] + [f"w{i % 5}" for i in range(85)]
    expected = reference_vocabulary(values)
    for seed in range(5):
        shuffled = values[:]
        random.Random(seed).shuffle(shuffled)
        assert Vocabulary().fit(pa.array(shuffled)).vocabulary_ == expected
    chunked = pa.chunked_array([pa.array(values[:100]), pa.array(values[100:]), pa.array([], pa.string())])
    assert Vocabulary().fit(chunked).vocabulary_ == expected


def test_ties_are_broken_by_value():
    encoder = Vocabulary().fit(pa.array(["b", "ä", "a", "B", "b", "ä", "a", "B", "10", "9", "10", "9"]))
    assert encoder.vocabulary_ == sorted(["b", "ä", "a", "B", "10", "9"])


def test_transform_accepts_chunked_and_sliced_arrays():
    encoder = Vocabulary().fit(pa.array(TRAIN))
    column = pa.array(["x", "a", None, "d", "b"])
    expected = [1, 2, 1, 5, 3]
    assert encoder.transform(column.slice(1)).tolist() == expected[1:]
    chunked = pa.chunked_array([column.slice(0, 2), column.slice(2)])
    assert encoder.transform(chunked).tolist() == expected


@pytest.mark.parametrize("kwargs", [{}, {"min_count": 2, "max_vocab_size": 3}, {"hash_buckets": 13}])
def test_to_dict_from_dict_round_trip_through_json(kwargs):
    encoder = Vocabulary(**kwargs).fit(pa.array(TRAIN))
    state = encoder.to_dict()
    assert set(state) == {"min_count", "max_vocab_size", "hash_buckets", "vocabulary"}
    restored = Vocabulary.from_dict(json.loads(json.dumps(state)))
    probe = pa.array(["a", "b", "c", "d", "e", "unseen", None, "日本"])
    np.testing.assert_array_equal(restored.transform(probe), encoder.transform(probe))
    assert restored.num_ids == encoder.num_ids
    assert restored.vocabulary_ == encoder.vocabulary_
    assert restored.to_dict() == state


STRINGS = [
    "",
    "a",
    "foobar",
    "héllo wörld",
    "日本語テキスト",
    "emoji 🚀✨",
    "\x00nul",
    "x" * 300,
    " ",
    "a,b;c",
]


def test_fnv1a_64_matches_reference():
    hashes = fnv1a_64(pa.array(STRINGS))
    assert hashes.dtype == np.uint64
    assert [int(h) for h in hashes] == [reference_fnv1a_64(s) for s in STRINGS]


def test_fnv1a_64_nulls_hash_like_empty_string():
    hashes = fnv1a_64(pa.array([None, "a", None]))
    assert [int(h) for h in hashes] == [
        reference_fnv1a_64(""),
        reference_fnv1a_64("a"),
        reference_fnv1a_64(""),
    ]


def test_fnv1a_64_only_empty_strings_and_empty_input():
    assert [int(h) for h in fnv1a_64(pa.array(["", ""]))] == [FNV_OFFSET, FNV_OFFSET]
    assert fnv1a_64(pa.array([], pa.string())).shape == (0,)
    assert fnv1a_64(pa.chunked_array([], pa.string())).shape == (0,)


@pytest.mark.parametrize(("offset", "length"), [(1, None), (3, 4), (5, 1), (9, None), (4, 0)])
def test_fnv1a_64_sliced_arrays(offset, length):
    base = pa.array(STRINGS)
    sliced = base.slice(offset) if length is None else base.slice(offset, length)
    expected = STRINGS[offset:] if length is None else STRINGS[offset : offset + length]
    assert [int(h) for h in fnv1a_64(sliced)] == [reference_fnv1a_64(s) for s in expected]


def test_fnv1a_64_sliced_array_with_nulls_and_large_string():
    values = ["p", None, "ö", "", None, "qq"]
    for dtype in (pa.string(), pa.large_string()):
        sliced = pa.array(values, dtype).slice(1, 4)
        assert [int(h) for h in fnv1a_64(sliced)] == [reference_fnv1a_64(v or "") for v in values[1:5]]


def test_fnv1a_64_chunked_arrays():
    base = pa.array(STRINGS)
    chunked = pa.chunked_array([base.slice(2, 3), pa.array(["zz", None]), base.slice(7)])
    expected = STRINGS[2:5] + ["zz", ""] + STRINGS[7:]
    assert [int(h) for h in fnv1a_64(chunked)] == [reference_fnv1a_64(s) for s in expected]


@pytest.mark.parametrize("buckets", [1, 2, 7, 1000])
def test_hash_buckets_ids(buckets):
    values = STRINGS + [None, "unseen"]
    column = pa.chunked_array([pa.array(values[:4]), pa.array(values[4:]).slice(0)])
    encoder = Vocabulary(hash_buckets=buckets)
    assert encoder.fitted  # hashing needs no fit
    ids = encoder.fit(pa.array(["ignored"])).transform(column)
    expected = [OOV_ID if v is None else 2 + reference_fnv1a_64(v) % buckets for v in values]
    assert ids.dtype == np.int64
    assert ids.tolist() == expected
    known = ids[[v is not None for v in values]]
    assert ((known >= 2) & (known < 2 + buckets)).all()
    assert encoder.num_ids == 2 + buckets
    assert encoder.vocabulary_ is None


def test_hash_ids_of_a_sliced_column_with_nulls():
    values = ["a", None, "b", "c", None, "d"]
    ids = Vocabulary(hash_buckets=50).transform(pa.array(values).slice(1))
    assert ids.tolist() == [OOV_ID if v is None else 2 + reference_fnv1a_64(v) % 50 for v in values[1:]]


def test_hash_ids_are_stable_across_encoders():
    column = pa.array([f"user{i}" for i in range(1000)])
    first = Vocabulary(hash_buckets=64).transform(column)
    second = Vocabulary.from_dict(Vocabulary(hash_buckets=64).to_dict()).transform(column)
    np.testing.assert_array_equal(first, second)
    # hashes spread over the buckets
    assert len(np.unique(first)) > 50


def test_fnv1a_64_sliced_large_string_without_nulls():
    values = ["first", "zweite", "третий", "4"]
    sliced = pa.array(values, pa.large_string()).slice(1, 2)
    assert sliced.offset == 1
    assert [int(h) for h in fnv1a_64(sliced)] == [reference_fnv1a_64(v) for v in values[1:3]]


def test_fit_on_all_null_column_gives_empty_vocabulary():
    encoder = Vocabulary().fit(pa.array([None, None], pa.string()))
    assert encoder.vocabulary_ == []
    assert encoder.num_ids == 2
    assert encoder.transform(pa.array(["a", None])).tolist() == [OOV_ID, OOV_ID]


def test_a_short_column_against_a_large_vocabulary_gives_the_same_ids_as_a_long_one():
    vocabulary = Vocabulary().fit(pa.array([f"v{i}" for i in range(1000)] * 2))
    probe = ["v5", None, "unknown", "v999", "", "v0"]
    short = vocabulary.transform(pa.array(probe, pa.string()))  # 6 values against 1000: the dict path
    long = vocabulary.transform(pa.array(probe * 200, pa.string()))[:6]  # 1200 values: one pyarrow call
    np.testing.assert_array_equal(short, long)
    assert short.tolist() == [vocabulary.vocabulary_.index("v5") + 2, OOV_ID, OOV_ID,
                              vocabulary.vocabulary_.index("v999") + 2, OOV_ID, vocabulary.vocabulary_.index("v0") + 2]
    chunked = pa.chunked_array([pa.array(probe[:2], pa.string()), pa.array(probe[2:], pa.string())])
    np.testing.assert_array_equal(vocabulary.transform(chunked), short)
