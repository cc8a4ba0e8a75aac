"""Pydantic models of the HTTP API: they document requests and responses in the OpenAPI spec.

Requests are validated by :mod:`mtlrec.serving.requests` (column-wise, with errors naming the
field), not by these models; the request models are built per artifact by :func:`request_models` so
that the spec lists the artifact's own input columns with their JSON types.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, create_model


class TaskScores(BaseModel):
    """One candidate's result."""

    scores: dict[str, float | list[float] | None] = Field(
        description="task → score in the task's original unit (probability for binary tasks, "
        "the label's unit for regression, class probabilities for multi-class tasks)"
    )
    score: float | None = Field(description="the fused score the candidates are ranked by")
    rank: int = Field(description="1-based position by fused score, descending (ties keep request order)")


class CandidateColumns(BaseModel):
    """Every candidate's result as arrays in request order (the answer to columnar candidates)."""

    scores: dict[str, list[float | list[float] | None]] = Field(
        description="task → one score per candidate (a list of class probabilities for a multi-class task)"
    )
    score: list[float | None] = Field(description="the fused score of each candidate")
    rank: list[int] = Field(description="1-based position of each candidate by fused score, descending")


class Timing(BaseModel):
    """Server-side time of the request in milliseconds."""

    parse_ms: float = Field(description="JSON decoding, validation and building the input table")
    predict_ms: float = Field(
        description="encoding and the model (ONNX Runtime or TorchScript); with dynamic batching, from joining "
        "the queue to the merged call's end"
    )
    total_ms: float = Field(description="from the body's last byte to the response body")


class PredictResponse(BaseModel):
    """Scores, fused score and rank of every candidate, in request order: one object per candidate,
    or (for candidates sent as columns) an object of arrays."""

    model_version: str
    request_id: str | None = None
    tasks: list[str]
    candidates: list[TaskScores] | CandidateColumns = Field(
        description="one object per candidate; for candidates sent as columns, an object of arrays"
    )
    timing: Timing


class ErrorResponse(BaseModel):
    """Every error: a message naming the offending field(s), and their JSON paths."""

    detail: str = Field(examples=["candidates[3].age: expected a number or null, got a string"])
    fields: list[str] = Field(default_factory=list, examples=[["candidates[3].age"]])


class Health(BaseModel):
    status: str = "ok"


def request_models(input_columns: dict[str, pa.DataType]) -> type[BaseModel]:
    """``PredictRequest`` for these input columns (for the spec only; column names may have any text).

    Args:
        input_columns: raw column → Arrow type; ``pa.string()`` columns take strings or integers,
            numeric ones numbers, list ones arrays of strings or integers (or their text form
            ``"a|b"``); every column also takes null (unknown, or an empty list).
    """
    fields: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    for index, (name, dtype) in enumerate(input_columns.items()):
        python_type, kind = _json_type(dtype)
        fields[f"column_{index}"] = (
            python_type,
            Field(default=None, alias=name, description=f"{kind}; null = unknown"),
        )
        columns[f"column_{index}"] = (
            list[python_type],  # type: ignore[valid-type]
            Field(default=None, alias=name, description=f"one value per candidate; {kind}; null = unknown"),
        )
    forbid = ConfigDict(extra="forbid", populate_by_name=False)
    row = create_model(
        "InputRow", __config__=forbid, __doc__="Raw input values by column name (as in the training data).", **fields
    )
    column_arrays = create_model(
        "InputColumns",
        __config__=forbid,
        __doc__="Candidates as columns: column name → an array of one value per candidate, all of equal length. "
        "The response's candidates are then columns too.",
        **columns,
    )
    return create_model(
        "PredictRequest",
        __doc__="Shared context features and the candidates to score; a candidate's value overrides the context's.",
        context=(row, Field(default=None, description="values shared by every candidate (the user, the request)")),
        candidates=(
            list[row] | column_arrays,  # type: ignore[valid-type]
            Field(description="one object per candidate (e.g. item features), or an object of column arrays"),
        ),
        request_id=(str | None, Field(default=None, description="echoed in the response")),
    )


def _json_type(dtype: pa.DataType) -> tuple[Any, str]:
    """The JSON (Python) type a column accepts, and how the spec describes it."""
    if pa.types.is_list(dtype):
        return list[str | int] | str | None, "list: array of strings or integers, or text 'a|b|c'"
    if pa.types.is_string(dtype):
        return str | int | None, "categorical: string or integer"
    return float | None, "numeric"
