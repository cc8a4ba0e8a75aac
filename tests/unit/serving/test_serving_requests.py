"""Request bodies → input tables: overrides, JSON types, and errors that name the field."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mtlrec.errors import RequestError
from mtlrec.serving.requests import RequestReader, decode_json

COLUMNS = {"user": pa.string(), "item": pa.string(), "age": pa.float64(), "price": pa.float64()}


def _read(document, max_candidates=10, ignore_unknown=False):
    return RequestReader(COLUMNS, max_candidates, ignore_unknown).read(document)


def _error(document, **options) -> RequestError:
    with pytest.raises(RequestError) as info:
        _read(document, **options)
    return info.value


def test_candidates_override_the_context_column_by_column():
    parsed = _read(
        {
            "context": {"user": "u1", "age": 30, "price": 9.5},
            "candidates": [{"item": "a"}, {"item": "b", "price": 1}, {"item": None, "user": "u2", "price": None}],
            "request_id": "r-1",
        }
    )
    expected = pa.table(
        {
            "user": pa.array(["u1", "u1", "u2"]),
            "item": pa.array(["a", "b", None], pa.string()),
            "age": pa.array([30.0, 30.0, 30.0]),
            "price": pa.array([9.5, 1.0, None], pa.float64()),  # an explicit null overrides the context too
        }
    )
    assert parsed.table.equals(expected)
    assert parsed.request_id == "r-1"


def test_integers_are_accepted_for_categorical_columns_as_their_text():
    parsed = _read({"context": {"user": 42, "age": 1.5, "price": 2}, "candidates": [{"item": 7}, {"item": "x"}]})
    assert parsed.table.column("user").to_pylist() == ["42", "42"]
    assert parsed.table.column("item").to_pylist() == ["7", "x"]  # mixed int/str takes the careful path
    assert parsed.table.schema.equals(pa.schema(list(COLUMNS.items())))


def test_every_column_has_the_declared_type_even_when_all_null_or_empty():
    parsed = _read({"context": {"user": None, "item": None, "age": None, "price": None}, "candidates": [{}]})
    assert parsed.table.schema.equals(pa.schema(list(COLUMNS.items())))
    assert parsed.table.column("age").null_count == 1
    empty = _read({"candidates": []})
    assert empty.table.num_rows == 0 and empty.table.schema.equals(pa.schema(list(COLUMNS.items())))


@pytest.mark.parametrize(
    ("candidate", "field", "expected"),
    [
        ({"age": "31"}, "candidates[2].age", "a number or null, got a string"),
        ({"age": True}, "candidates[2].age", "got a boolean"),
        ({"age": [1]}, "candidates[2].age", "got an array"),
        ({"age": {"v": 1}}, "candidates[2].age", "got an object"),
        ({"item": 1.5}, "candidates[2].item", "a string, an integer or null, got a number"),
        ({"item": False}, "candidates[2].item", "got a boolean"),
        ({"item": ["a"]}, "candidates[2].item", "got an array"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_named(candidate, field, expected):
    good = {"item": "a", "age": 1.5}
    error = _error({"context": {"user": "u", "price": 1.0}, "candidates": [good, good, {**good, **candidate}]})
    assert error.status == 422
    assert error.fields == [field]
    assert error.message.startswith(field) and expected in error.message


def test_a_boolean_hidden_among_numbers_is_still_rejected():
    # pyarrow alone would read [1.5, true] as two doubles
    error = _error({"context": {"user": "u", "item": "i", "price": 1.0}, "candidates": [{"age": 1.5}, {"age": True}]})
    assert error.fields == ["candidates[1].age"]


def test_a_bad_value_from_the_context_is_named_as_such():
    error = _error({"context": {"user": "u", "item": "i", "price": "cheap"}, "candidates": [{"age": 1}]})
    assert error.fields == ["context.price"]


def test_unknown_columns_are_named_or_ignored_on_request():
    document = {
        "context": {"user": "u", "age": 1, "price": 1, "agee": 3},
        "candidates": [{"item": "a"}, {"item": "b", "colour": "red"}],
    }
    error = _error(document)
    assert error.status == 422
    assert error.fields == ["context.agee", "candidates[1].colour"]
    assert "unknown column" in error.message and "user, item, age, price" in error.message
    assert _read(document, ignore_unknown=True).table.column("item").to_pylist() == ["a", "b"]


def test_missing_columns_are_named_with_the_first_candidate_lacking_them():
    error = _error(
        {"context": {"user": "u"}, "candidates": [{"item": "a", "age": 1, "price": 2}, {"item": "b", "age": 3}]}
    )
    assert error.status == 422
    assert error.fields == ["candidates[1].price"]
    error = _error({"candidates": [{"item": "a", "age": 1, "price": 2}]})
    assert error.fields == ["candidates[0].user"]


@pytest.mark.parametrize(
    ("document", "status", "field"),
    [
        ([{"item": "a"}], 422, None),
        ({"candidates": "a"}, 422, "candidates"),
        ({"candidates": {"item": "a"}}, 422, "candidates.item"),  # the columnar form: arrays of values
        ({"context": {}}, 422, "candidates"),
        ({"context": [1], "candidates": []}, 422, "context"),
        ({"candidates": [{"item": "a"}, "b"]}, 422, "candidates[1]"),
        ({"candidates": [], "request_id": 5}, 422, "request_id"),
        ({"candidates": [], "extra": 1}, 422, "extra"),
        ({"candidates": [{}] * 11}, 413, "candidates"),
    ],
)
def test_malformed_documents(document, status, field):
    error = _error(document)
    assert error.status == status
    assert error.fields == ([field] if field else [])
    if field:
        assert error.message.startswith(field)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"candidates": [', "malformed JSON at line 1, column 17"),
        (b'{"a": "\xff"}', "not UTF-8 text: invalid start byte at byte 7"),
        (b"", "malformed"),
        (b'{"candidates": [{"age": NaN}]}', "malformed JSON at line 1, column 25"),  # not JSON (RFC 8259)
        (b"[" * 2000 + b"]" * 2000, "nested too deeply"),
        (b'{"a": "\\ud800"}', "malformed JSON at line 1, column 8"),  # a lone surrogate is no text
    ],
)
def test_bodies_that_are_not_json_are_400(body, expected):
    with pytest.raises(RequestError) as info:
        decode_json(body)
    assert info.value.status == 400 and expected in info.value.message


# the columnar form: "candidates": {column: [one value per candidate]}

ROWS = [
    {"item": "a", "age": 1.5, "price": 2},
    {"item": 7, "age": None, "price": 0.5},
    {"item": None, "age": 40, "price": None},
]


def _columns(rows: list[dict]) -> dict[str, list]:
    return {name: [row[name] for row in rows] for name in rows[0]}


def test_columns_give_the_same_tables_as_rows():
    context = {"user": "u1", "price": 9.5}
    by_rows = _read({"context": context, "candidates": ROWS})
    by_columns = _read({"context": context, "candidates": _columns(ROWS), "request_id": "r"})
    assert by_columns.columnar and not by_rows.columnar
    assert by_columns.table.equals(by_rows.table)
    assert by_columns.context.equals(by_rows.context)  # a column only the context gives stays one row
    assert by_columns.request_id == "r"


def test_a_candidate_column_replaces_the_context_one():
    context = {"user": "u", "age": 3, "price": 1}
    parsed = _read({"context": context, "candidates": {"item": ["a", "b"], "age": [None, 5]}})
    assert parsed.table.column("age").to_pylist() == [None, 5.0]
    assert parsed.table.column("user").to_pylist() == ["u", "u"]


def test_no_columns_is_no_candidates():
    parsed = _read({"context": {"user": "u", "item": "i", "age": 1, "price": 1}, "candidates": {}})
    assert parsed.rows == 0 and parsed.columnar


@pytest.mark.parametrize(
    ("column", "values", "field", "expected"),
    [
        ("age", [1, 2, "old"], "candidates.age[2]", "a number or null, got a string"),
        ("age", [1.5, True, 2], "candidates.age[1]", "got a boolean"),
        ("item", ["a", 1.5, "c"], "candidates.item[1]", "a string, an integer or null, got a number"),
        ("item", ["a", "b", ["c"]], "candidates.item[2]", "got an array"),
        ("age", 3, "candidates.age", "expected an array (one value per candidate), got an integer"),
        ("age", {"0": 1}, "candidates.age", "got an object"),
    ],
)
def test_a_bad_columnar_value_names_its_element(column, values, field, expected):
    columns = {"item": ["a", "b", "c"], "age": [1, 2, 3], column: values}
    error = _error({"context": {"user": "u", "price": 1}, "candidates": columns})
    assert error.status == 422 and error.fields == [field]
    assert error.message.startswith(field) and expected in error.message


def test_unequal_columns_are_named_with_their_lengths():
    columns = {"item": ["a", "b", "c"], "age": [1, 2], "price": [1, 2, 3]}
    error = _error({"context": {"user": "u"}, "candidates": columns})
    assert error.status == 422 and error.fields == ["candidates.age"]
    assert "unequal lengths (item 3, age 2, price 3)" in error.message


def test_missing_and_unknown_columns_in_the_columnar_form():
    error = _error({"context": {"user": "u"}, "candidates": {"item": ["a"], "age": [1]}})
    assert error.status == 422 and error.fields == ["candidates.price"] and "missing" in error.message
    columns = {"item": ["a"], "age": [1], "price": [2], "colour": "x"}
    document = {"context": {"user": "u", "agee": 1}, "candidates": columns}
    error = _error(document)
    assert error.fields == ["context.agee", "candidates.colour"] and "unknown column" in error.message
    assert _read(document, ignore_unknown=True).table.column("item").to_pylist() == ["a"]


def test_too_many_columnar_candidates_is_413():
    error = _error({"context": {"user": "u", "age": 1, "price": 1}, "candidates": {"item": ["a"] * 11}})
    assert error.status == 413 and error.fields == ["candidates"] and "11 candidates" in error.message


def test_list_columns_in_the_columnar_form():
    columns = {"user": pa.string(), "tags": pa.list_(pa.string())}
    reader = RequestReader(columns, 10, separators={"tags": "|"})
    parsed = reader.read({"candidates": {"user": ["u", "v", "w"], "tags": [["a", 1], "b|c", None]}})
    assert parsed.table.column("tags").to_pylist() == [["a", "1"], ["b", "c"], None]
    with pytest.raises(RequestError) as info:
        reader.read({"candidates": {"user": ["u", "v"], "tags": [["a"], ["b", True]]}})
    assert info.value.fields == ["candidates.tags[1][1]"]
