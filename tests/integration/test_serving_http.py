"""The HTTP protocol on a real uvicorn server on 127.0.0.1, spoken to over real HTTP with httpx.

A small numpy predictor with known formulas checks validation, limits, errors and the 500 path;
``test_serving_artifact.py`` serves a real exported census model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pyarrow as pa
import pytest

from mtlrec.serving.http import create_app, running

COLUMNS = {"user": pa.string(), "item": pa.string(), "age": pa.float64(), "price": pa.float64()}


class FormulaPredictor:
    """ctr = sigmoid(0.1·age − 0.5·price + [item == "a"]), value = 2·price + 1, score = ctr · value.

    Missing numbers count as 0; ``fail_on`` makes ``predict`` raise when that item is requested.
    """

    metadata = {"tasks": [{"name": "ctr"}, {"name": "value"}], "model_version": "formula-1"}
    input_columns = COLUMNS
    task_names = ["ctr", "value"]
    separators: dict[str, str] = {}

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on

    def predict_shared(self, candidates: pa.Table, context: pa.Table, source: str = "request") -> dict[str, np.ndarray]:
        """The context's columns (one row) repeated for every candidate, then :meth:`predict`."""
        repeat = pa.array(np.zeros(candidates.num_rows, dtype=np.int64))
        columns = {name: candidates.column(name) for name in candidates.column_names}
        columns.update({name: context.column(name).take(repeat) for name in context.column_names})
        return self.predict(pa.table(columns), source, log_missing=False)

    def predict(self, table: pa.Table, source: str = "input", log_missing: bool = True) -> dict[str, np.ndarray]:
        items = table.column("item").to_pylist()
        if self.fail_on in items:
            raise RuntimeError("the model blew up")
        age = np.nan_to_num(table.column("age").to_numpy(zero_copy_only=False))
        price = np.nan_to_num(table.column("price").to_numpy(zero_copy_only=False))
        ctr = 1 / (1 + np.exp(-(0.1 * age - 0.5 * price + (np.array(items) == "a"))))
        value = 2 * price + 1
        return {"ctr": ctr.astype(np.float32), "value": value.astype(np.float32), "score": (ctr * value)}


@pytest.fixture(scope="module")
def formula_server() -> Iterator[httpx.Client]:
    app = create_app(FormulaPredictor(fail_on="boom"), max_candidates=50, max_body_bytes=4096)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _expected(age: float, price: float, item: str) -> tuple[float, float]:
    ctr = 1 / (1 + np.exp(-(0.1 * age - 0.5 * price + (item == "a"))))
    return ctr, 2 * price + 1


def test_scores_fused_score_and_ranks_follow_the_predictor(formula_server):
    body = {
        "context": {"user": "u1", "age": 30, "price": 1.0},
        "candidates": [{"item": "b"}, {"item": "a", "price": 3}, {"item": "c", "price": None}, {"item": "a"}],
        "request_id": "req-7",
    }
    response = formula_server.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model_version"] == "formula-1" and result["request_id"] == "req-7"
    assert result["tasks"] == ["ctr", "value"]
    prices = [1.0, 3.0, 0.0, 1.0]  # candidate overrides; null → 0 in this predictor
    items = ["b", "a", "c", "a"]
    fused = []
    for candidate, price, item in zip(result["candidates"], prices, items):
        ctr, value = _expected(30, price, item)
        assert candidate["scores"]["ctr"] == pytest.approx(ctr, abs=1e-6)
        assert candidate["scores"]["value"] == pytest.approx(value, abs=1e-6)
        assert candidate["score"] == pytest.approx(ctr * value, abs=1e-6)
        fused.append(ctr * value)
    by_score = sorted(range(4), key=lambda i: -fused[i])
    assert [result["candidates"][i]["rank"] for i in by_score] == [1, 2, 3, 4]
    assert set(result["timing"]) == {"parse_ms", "predict_ms", "total_ms"}


def test_equal_fused_scores_keep_request_order(formula_server):
    candidates = [{"item": "x"}] * 3
    result = formula_server.post(
        "/v1/predict", json={"context": {"user": "u", "age": 1, "price": 1}, "candidates": candidates}
    )
    assert [c["rank"] for c in result.json()["candidates"]] == [1, 2, 3]


def test_no_candidates_is_an_empty_answer(formula_server):
    result = formula_server.post("/v1/predict", json={"candidates": []}).json()
    assert result["candidates"] == []


GOOD = {"user": "u", "item": "a", "age": 3, "price": 1.5}


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        (b'{"candidates": [{"user": "u",', 400, None),
        (b"\xff\xfe{}", 400, None),
        (json.dumps({"candidates": [GOOD, {**GOOD, "age": "old"}]}).encode(), 422, "candidates[1].age"),
        (json.dumps({"candidates": [GOOD, {**GOOD, "item": [1, 2]}]}).encode(), 422, "candidates[1].item"),
        (json.dumps({"candidates": [GOOD, {**GOOD, "colour": "red"}]}).encode(), 422, "candidates[1].colour"),
        (json.dumps({"context": {"usr": "u"}, "candidates": [GOOD]}).encode(), 422, "context.usr"),
        (json.dumps({"candidates": [{"item": "a", "age": 3, "price": 1.5}]}).encode(), 422, "candidates[0].user"),
        (json.dumps({"candidates": [{"item": "a"}] * 51}).encode(), 413, "candidates"),
        (json.dumps({"candidates": "all"}).encode(), 422, "candidates"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field_and_the_server_keeps_serving(formula_server, content, status, field):
    response = formula_server.post("/v1/predict", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["fields"] == ([field] if field else [])
    if field:
        assert field in error["detail"]
    assert formula_server.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_a_body_not_declared_as_json_is_415(formula_server, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    response = formula_server.post("/v1/predict", content=json.dumps({"candidates": [GOOD]}), headers=headers)
    assert response.status_code == 415 and "Content-Type: application/json" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", "application/x+json"])
def test_json_content_types_with_parameters_or_a_suffix_are_accepted(formula_server, content_type):
    body = json.dumps({"candidates": [GOOD]})
    response = formula_server.post("/v1/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def test_the_spec_lists_415(formula_server):
    assert "415" in formula_server.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["responses"]


def test_a_body_over_the_limit_is_413_by_length_or_by_bytes_read(formula_server):
    big = json.dumps({"candidates": [{**GOOD, "item": "x" * 200}] * 30}).encode()
    assert len(big) > 4096
    response = formula_server.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "4096" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit applies to the bytes received
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    response = formula_server.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and "4096" in response.json()["detail"]
    assert formula_server.get("/healthz").status_code == 200


def test_a_failing_prediction_is_a_500_with_a_message_and_the_server_goes_on(formula_server, caplog):
    response = formula_server.post("/v1/predict", json={"candidates": [{**GOOD, "item": "boom"}]})
    assert response.status_code == 500
    assert response.json()["detail"] == "prediction failed: RuntimeError: the model blew up"
    assert "prediction failed on a request of 1 candidates" in caplog.text  # logged with its traceback
    assert formula_server.post("/v1/predict", json={"candidates": [GOOD]}).status_code == 200


def test_metadata_and_openapi_describe_the_service(formula_server):
    metadata = formula_server.get("/v1/metadata").json()
    assert metadata["model_version"] == "formula-1"
    assert metadata["limits"] == {"max_candidates": 50, "max_body_bytes": 4096, "ignore_unknown_columns": False}
    spec = formula_server.get("/openapi.json").json()
    predict = spec["paths"]["/v1/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"
    }
    assert {"200", "400", "413", "422", "500"} <= set(predict["responses"])
    schemas = spec["components"]["schemas"]
    row = schemas["InputRow"]
    assert set(row["properties"]) == set(COLUMNS) and row["additionalProperties"] is False
    assert {"type": "string"} in row["properties"]["user"]["anyOf"]
    assert {"type": "number"} in row["properties"]["age"]["anyOf"]
    assert set(schemas["PredictResponse"]["properties"]) == {
        "model_version",
        "request_id",
        "tasks",
        "candidates",
        "timing",
    }
    assert set(spec["paths"]) >= {"/healthz", "/v1/metadata", "/v1/predict"}


def test_responses_are_not_held_back_by_nagle_and_delayed_acks(formula_server):
    # with Nagle on the server's sockets every response (headers, then body) waits ~40 ms for the client's
    # delayed ACK, once the connection has left Linux's initial quick-ACK mode (the first few exchanges)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        formula_server.get("/healthz")
        times.append(time.perf_counter() - start)
    assert np.median(times[20:]) < 0.03
