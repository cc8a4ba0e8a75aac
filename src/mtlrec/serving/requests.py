"""Prediction requests: a JSON body → validated Arrow tables of raw input columns, built column-wise.

A request is ``{"context": {column: value}, "candidates": [{column: value}, ...], "request_id": str}``.
For each candidate and column the candidate's value wins over the context's (an explicit ``null``
too). A column only the context gives is kept once (a one-row context table), so the context — the
user, their behaviour sequence — is encoded and looked up once for all candidates; a column some
candidate gives is one value per candidate (the context's where a candidate omits it). Rules, also
stated in the README's "Serving" section:

- every input column must be given, by the candidate or by the context; ``null`` means unknown and
  is encoded like an empty cell of the training data (OOV id for categorical columns, the fill value
  for numeric ones); a column given nowhere is an error, so a misspelt name never goes unnoticed;
- keys that are not input columns are an error (``ignore_unknown=True`` drops them instead);
- categorical columns take a JSON string or integer (an integer becomes its decimal text, as a CSV
  cell would be read) and numeric columns a JSON number; list columns (tags, behaviour sequences) a
  JSON array of strings or integers, or the text form of a file (``"a|b|c"``, the feature's
  separator); anything else (booleans, objects, strings for numbers, a nested array) is an error
  naming the field or the element, e.g. ``candidates[3].age`` or ``context.hist_item_ids[12]``.

Columns are converted by pyarrow in one call each; Python only walks the rows to pick each
column's values out of the parsed JSON (and, on the error path, to find the offending value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from mtlrec.errors import RequestError
from mtlrec.serving.columns import json_kind, lists_to_arrow, to_arrow

TOP_LEVEL_KEYS = ("context", "candidates", "request_id")
_SHOWN = 5  # how many names an error message lists before "..."


@dataclass(frozen=True)
class ParsedRequest:
    """A valid request.

    Attributes:
        candidates: N rows: the input columns some candidate gives.
        context: one row: the input columns only the context gives (shared by every candidate).
        request_id: the client's request id, if any.
        columns: every input column, in the model's order.
    """

    candidates: pa.Table
    context: pa.Table
    request_id: str | None
    columns: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        """N, the number of candidates."""
        return self.candidates.num_rows

    @property
    def table(self) -> pa.Table:
        """Every input column with one row per candidate (the context's values repeated)."""
        repeat = pa.array(np.zeros(self.rows, dtype=np.int64))
        own = set(self.candidates.column_names)
        columns = [
            self.candidates.column(name) if name in own else self.context.column(name).take(repeat)
            for name in self.columns
        ]
        return pa.Table.from_arrays(columns, names=list(self.columns))


def decode_json(body: bytes) -> Any:
    """Parse a request body as strict JSON (RFC 8259: no ``NaN``/``Infinity`` literals) with orjson.

    orjson parses a 1,000-candidate census body (1.5 MB) in 2.6 ms, against 6.5 ms for the standard library.

    Raises:
        RequestError: 400 for malformed JSON (with its line and column), text that is not UTF-8 (with
            the byte offset) or nesting deeper than 1,024 levels.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in exc.msg:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise RequestError(400, f"the body is not UTF-8 text: {bad.reason} at byte {bad.start}") from None
            raise RequestError(400, f"the body is not UTF-8 text: {exc.msg}") from None  # e.g. a lone surrogate
        if "depth limit" in exc.msg:
            raise RequestError(400, "malformed JSON: nested too deeply") from None
        raise RequestError(400, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


class RequestReader:
    """Validates parsed request documents and builds the input table the predictor reads.

    Args:
        input_columns: raw column → Arrow type (``pa.string()`` categorical, ``pa.float64()`` numeric).
        max_candidates: more candidates than this is a 413 error.
        ignore_unknown: drop keys that are not input columns instead of rejecting the request.
        separators: the separator of each list column's text form (default ``|``).
    """

    def __init__(
        self,
        input_columns: dict[str, pa.DataType],
        max_candidates: int,
        ignore_unknown: bool = False,
        separators: dict[str, str] | None = None,
    ):
        self.input_columns = dict(input_columns)
        self.max_candidates = max_candidates
        self.ignore_unknown = ignore_unknown
        self.separators = dict(separators or {})

    def read(self, document: Any) -> ParsedRequest:
        """Check a parsed body and build its candidate and context tables.

        Raises:
            RequestError: 413 for too many candidates, 422 naming the field for anything else invalid.
        """
        context, candidates, request_id = _split_document(document, self.max_candidates)
        given = set().union(*candidates)  # every key at least one candidate gives
        if not self.ignore_unknown:
            self._check_unknown(context, candidates, given)
        per_candidate, shared, missing = {}, {}, []
        for name, dtype in self.input_columns.items():
            if name not in given and name in context:
                shared[name] = self._arrow([context[name]], name, dtype, lambda row, name=name: f"context.{name}")
                continue
            values = _values(name, context, candidates)
            if values is None:
                row = next(i for i, candidate in enumerate(candidates) if name not in candidate)
                missing.append(f"candidates[{row}].{name}")
                continue
            per_candidate[name] = self._arrow(values, name, dtype, _locator(name, candidates))
        if missing:
            raise RequestError(
                422,
                f"{_names(missing)}: missing; give every input column in the candidate or in the context "
                "(null for an unknown value)",
                missing,
            )
        columns = tuple(self.input_columns)
        return ParsedRequest(_table(per_candidate, len(candidates)), _table(shared, 1), request_id, columns)

    def _arrow(self, values: list[Any], name: str, dtype: pa.DataType, where: Callable[[int], str]) -> pa.Array:
        if pa.types.is_list(dtype):
            return lists_to_arrow(values, self.separators.get(name, "|"), where)
        return to_arrow(values, dtype, where)

    def _check_unknown(self, context: dict[str, Any], candidates: list[dict[str, Any]], given: set[str]) -> None:
        fields = [f"context.{key}" for key in context if key not in self.input_columns]
        unknown = given - self.input_columns.keys()
        for row, candidate in enumerate(candidates):  # only reached with unknown keys: name each where first seen
            if not unknown:
                break
            for key in [key for key in candidate if key in unknown]:
                fields.append(f"candidates[{row}].{key}")
                unknown.discard(key)
        if fields:
            known = _names(list(self.input_columns))
            raise RequestError(422, f"{_names(fields)}: unknown column(s); the input columns are {known}", fields)


def _split_document(document: Any, max_candidates: int) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    if not isinstance(document, dict):
        raise RequestError(
            422, f"the body must be a JSON object with {', '.join(TOP_LEVEL_KEYS)}; got {json_kind(document)}"
        )
    extra = [key for key in document if key not in TOP_LEVEL_KEYS]
    if extra:
        raise RequestError(422, f"{_names(extra)}: unknown key(s); a request has {', '.join(TOP_LEVEL_KEYS)}", extra)
    context = document.get("context")
    context = {} if context is None else context
    if not isinstance(context, dict):
        raise RequestError(422, f"context: expected an object, got {json_kind(context)}", ["context"])
    if "candidates" not in document:
        raise RequestError(422, "candidates: missing; send a list of candidate objects", ["candidates"])
    candidates = document["candidates"]
    if not isinstance(candidates, list):
        raise RequestError(422, f"candidates: expected an array, got {json_kind(candidates)}", ["candidates"])
    if len(candidates) > max_candidates:
        raise RequestError(
            413, f"candidates: {len(candidates)} candidates, more than the limit of {max_candidates}", ["candidates"]
        )
    if not all(map(isinstance, candidates, repeat(dict))):
        row = next(i for i, candidate in enumerate(candidates) if not isinstance(candidate, dict))
        raise RequestError(
            422, f"candidates[{row}]: expected an object, got {json_kind(candidates[row])}", [f"candidates[{row}]"]
        )
    request_id = document.get("request_id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(422, f"request_id: expected a string, got {json_kind(request_id)}", ["request_id"])
    return context, candidates, request_id


def _table(columns: dict[str, pa.Array], rows: int) -> pa.Table:
    """A table of these columns (an empty one with ``rows`` rows when there are none)."""
    if columns:
        return pa.table(columns)
    return pa.table({"": pa.nulls(rows)}).drop_columns([""])


def _values(name: str, context: dict[str, Any], candidates: list[dict[str, Any]]) -> list | None:
    """One column's values, one per candidate (the candidate's where it has the key, else the context's),
    or None when some candidate lacks it and the context does not give it."""
    if not candidates:
        return []
    if name in context:
        default = context[name]
        return [candidate.get(name, default) for candidate in candidates]
    try:
        return list(map(itemgetter(name), candidates))
    except KeyError:
        return None


def _locator(name: str, candidates: list[dict[str, Any]]) -> Callable[[int], str]:
    """The JSON path a row's value of ``name`` came from (only called on the error path)."""
    return lambda row: f"candidates[{row}].{name}" if name in candidates[row] else f"context.{name}"


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOWN else "")
