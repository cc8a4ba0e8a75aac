"""The HTTP protocol on a real uvicorn server on 127.0.0.1, spoken to over real HTTP with httpx.

A small numpy predictor with known formulas checks validation, limits, errors and the 500 path;
``test_serving_artifact.py`` serves a real exported census model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

from mtlrec.errors import DataError
from mtlrec.serving.http import create_app, running

COLUMNS = {"user": pa.string(), "item": pa.string(), "age": pa.float64(), "price": pa.float64()}


class FormulaPredictor:
    """ctr = sigmoid(0.1·age − 0.5·price + [item == "a"]), value = 2·price + 1, score = ctr · value.

    Missing numbers count as 0; ``fail_on`` makes ``predict`` raise when that item is requested, and an
    age over 1000 is a ``DataError`` naming the column and row. ``calls`` records the rows of every call.
    """

    metadata = {"tasks": [{"name": "ctr"}, {"name": "value"}], "model_version": "formula-1"}
    input_columns = COLUMNS
    task_names = ["ctr", "value"]
    separators: dict[str, str] = {}

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on
        self.calls: list[int] = []  # candidates per call (predict_shared or predict_merged)
        self.gate: threading.Event | None = None  # when set up, a call waits for it

    def predict_shared(self, candidates: pa.Table, context: pa.Table, source: str = "request") -> dict[str, np.ndarray]:
        """The context's columns (one row) repeated for every candidate, then :meth:`predict`."""
        return self.predict_merged(candidates, context, np.zeros(candidates.num_rows, dtype=np.int64), source)

    def predict_merged(
        self, candidates: pa.Table, contexts: pa.Table, owners: np.ndarray, source: str = "request"
    ) -> dict[str, np.ndarray]:
        """Each candidate's context row (``owners``) joined to it, then :meth:`predict`."""
        self.calls.append(candidates.num_rows)
        if self.gate is not None:
            self.gate.wait(10)
        columns = {name: candidates.column(name) for name in candidates.column_names}
        columns.update({name: contexts.column(name).take(pa.array(owners)) for name in contexts.column_names})
        return self.predict(pa.table(columns), source, log_missing=False)

    def predict(self, table: pa.Table, source: str = "input", log_missing: bool = True) -> dict[str, np.ndarray]:
        items = table.column("item").to_pylist()
        if self.fail_on in items:
            raise RuntimeError("the model blew up")
        ages = np.nan_to_num(table.column("age").to_numpy(zero_copy_only=False))
        if (ages > 1000).any():
            raise DataError(f"{source}: age is out of range", column="age", row=int(np.argmax(ages > 1000)))
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
COLUMNAR = {"user": ["u", "v"], "item": ["a", "b"], "age": [3, 4], "price": [1.5, None]}
COLUMNAR_NO_USER = {"item": ["a", "b"], "age": [3, 4], "price": [1.5, None]}


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
        # the columnar form
        (json.dumps({"candidates": {**COLUMNAR, "age": [3, "old"]}}).encode(), 422, "candidates.age[1]"),
        (json.dumps({"candidates": {**COLUMNAR, "item": ["a", 1.5]}}).encode(), 422, "candidates.item[1]"),
        (json.dumps({"candidates": {**COLUMNAR, "age": [3]}}).encode(), 422, "candidates.age"),
        (json.dumps({"candidates": {**COLUMNAR, "colour": ["red", "blue"]}}).encode(), 422, "candidates.colour"),
        (json.dumps({"candidates": {**COLUMNAR, "user": None}}).encode(), 422, "candidates.user"),
        (json.dumps({"candidates": {**COLUMNAR_NO_USER}}).encode(), 422, "candidates.user"),  # missing
        (json.dumps({"context": GOOD, "candidates": {"item": ["a"] * 51}}).encode(), 413, "candidates"),
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
    assert metadata["limits"] == {
        "max_candidates": 50,
        "max_body_bytes": 4096,
        "ignore_unknown_columns": False,
        "max_batch_rows": 1000,
        "batch_wait_ms": 0.0,
    }
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
    columns = schemas["InputColumns"]  # the columnar form
    assert set(columns["properties"]) == set(COLUMNS) and columns["additionalProperties"] is False
    assert columns["properties"]["age"]["type"] == "array"
    assert {"type": "number"} in columns["properties"]["age"]["items"]["anyOf"]
    forms = schemas["PredictRequest"]["properties"]["candidates"]["anyOf"]
    assert {"type": "array", "items": {"$ref": "#/components/schemas/InputRow"}} in forms
    assert {"$ref": "#/components/schemas/InputColumns"} in forms
    answers = schemas["PredictResponse"]["properties"]["candidates"]["anyOf"]
    assert {"$ref": "#/components/schemas/CandidateColumns"} in answers
    assert set(schemas["CandidateColumns"]["properties"]) == {"scores", "score", "rank"}
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


def test_unequal_columns_are_named_with_their_lengths(formula_server):
    response = formula_server.post("/v1/predict", json={"candidates": {**COLUMNAR, "age": [3]}})
    assert response.status_code == 422
    assert "candidates.age: the candidates' arrays have unequal lengths (user 2, item 2, age 1, price 2)" in (
        response.json()["detail"]
    )


def test_columnar_candidates_get_the_scores_of_rows_and_a_columnar_answer(formula_server):
    context = {"user": "u1", "age": 30, "price": 1.0}
    rows = [{"item": "b"}, {"item": "a", "price": 3}, {"item": "c", "price": None}, {"item": "a", "age": 7.5}]
    columns = {"item": ["b", "a", "c", "a"], "price": [1.0, 3, None, 1.0], "age": [30, 30, 30, 7.5]}
    by_rows = formula_server.post("/v1/predict", json={"context": context, "candidates": rows, "request_id": "r"})
    by_columns = formula_server.post("/v1/predict", json={"context": context, "candidates": columns, "request_id": "r"})
    assert by_rows.status_code == by_columns.status_code == 200, by_columns.text
    listed, answer = by_rows.json(), by_columns.json()
    assert answer["candidates"] == {
        "scores": {task: [c["scores"][task] for c in listed["candidates"]] for task in ("ctr", "value")},
        "score": [c["score"] for c in listed["candidates"]],
        "rank": [c["rank"] for c in listed["candidates"]],
    }  # exactly the same numbers (both are float64 written by orjson)
    assert {k: v for k, v in answer.items() if k != "candidates"}.keys() == listed.keys() - {"candidates"}
    assert answer["request_id"] == "r" and answer["tasks"] == ["ctr", "value"]
    empty = formula_server.post("/v1/predict", json={"context": GOOD, "candidates": {}}).json()["candidates"]
    assert empty == {"scores": {"ctr": [], "value": []}, "score": [], "rank": []}


# dynamic batching: requests of different users (and different context columns) merged into one call

BODIES = [
    {"context": {"user": "u1", "age": 20, "price": 1.0}, "candidates": [{"item": "a"}, {"item": "b", "price": 2}]},
    {"context": {"user": "u2", "age": 60}, "candidates": [{"item": "a", "price": 0.5}, {"item": "c", "price": 4}]},
    {"context": {"user": "u3", "item": "a", "price": 3.0}, "candidates": {"age": [1, 2, 3]}, "request_id": "col"},
    {"candidates": [{"user": "u4", "item": "b", "age": 5, "price": 0.1}], "request_id": "no-context"},
]
SAME_CONTEXT_COLUMNS = [  # every request sends user and age once: the merged call gets one context row per request
    {"context": {"user": f"u{i}", "age": 10 * i}, "candidates": [{"item": "a", "price": i}, {"item": "b", "price": 9}]}
    for i in range(4)
]


@contextmanager
def _server(**options: Any) -> Iterator[tuple[str, FormulaPredictor, Any]]:
    """A server of its own (its predictor counts the calls): URL, predictor, app."""
    predictor = FormulaPredictor(fail_on="boom")
    app = create_app(predictor, **options)
    with running(app) as url:
        yield url, predictor, app


def _post(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", json=body, timeout=30)


def _rows(body: dict) -> int:
    candidates = body["candidates"]
    return len(candidates) if isinstance(candidates, list) else len(next(iter(candidates.values())))


def _answers(responses: list[httpx.Response]) -> list[tuple[int, Any]]:
    return [(r.status_code, {k: v for k, v in r.json().items() if k != "timing"}) for r in responses]


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _held_then_merged(url: str, predictor: FormulaPredictor, app: Any, first: dict, others: list[dict]) -> list:
    """``first`` holds the batcher's worker inside the model while ``others`` queue; then release it.
    (The default ``batch_wait_ms`` 0: only requests already waiting are merged.)"""
    predictor.gate = threading.Event()
    with ThreadPoolExecutor(len(others) + 1) as pool:
        held = pool.submit(_post, url, first)
        _wait_for(lambda: len(predictor.calls) == 1)
        queued = [pool.submit(_post, url, body) for body in others]
        _wait_for(lambda: app.state.batcher.waiting == len(others))
        predictor.gate.set()
        return [held.result(), *(future.result() for future in queued)]


@pytest.mark.parametrize("bodies", [BODIES, SAME_CONTEXT_COLUMNS], ids=["mixed-contexts", "same-context-columns"])
def test_concurrent_requests_are_merged_and_get_exactly_their_scores_alone(bodies):
    with _server() as (url, predictor, app):
        alone = _answers([_post(url, body) for body in bodies])  # one after another: one call each
        assert all(status == 200 for status, _ in alone), alone
        assert predictor.calls == [_rows(body) for body in bodies]
        predictor.calls.clear()
        merged = _answers(_held_then_merged(url, predictor, app, bodies[0], bodies[1:]))
        assert predictor.calls == [_rows(bodies[0]), sum(_rows(body) for body in bodies[1:])]  # one merged call
        assert app.state.batcher.stats.merged_calls == 1
        assert merged == alone  # scores, fused scores and ranks exactly, each with its own request's context


def test_a_batch_wait_collects_concurrent_requests_up_to_max_batch_rows():
    total = sum(_rows(body) for body in BODIES)
    with _server(max_batch_rows=0) as (url, _, _):
        alone = _answers([_post(url, body) for body in BODIES])
    assert all(status == 200 for status, _ in alone), alone
    with _server(batch_wait_ms=5000, max_batch_rows=total) as (url, predictor, app):
        with ThreadPoolExecutor(len(BODIES)) as pool:
            merged = _answers(list(pool.map(lambda body: _post(url, body), BODIES)))
        assert predictor.calls == [total]  # the batch closed when full, not after 5 s
        assert merged == alone


def test_with_batching_off_every_request_is_its_own_call():
    with _server(max_batch_rows=0) as (url, predictor, app):
        assert app.state.batcher is None
        assert httpx.get(f"{url}/v1/metadata").json()["limits"]["max_batch_rows"] == 0
        alone = _answers([_post(url, body) for body in BODIES])
        predictor.calls.clear()
        with ThreadPoolExecutor(len(BODIES)) as pool:
            concurrent = _answers(list(pool.map(lambda body: _post(url, body), BODIES)))
        assert sorted(predictor.calls) == sorted(_rows(body) for body in BODIES)
        assert concurrent == alone


def test_a_failing_request_in_a_merged_call_fails_alone():
    boom = {"context": {"user": "u9", "age": 1, "price": 1}, "candidates": [{"item": "a"}, {"item": "boom"}]}
    too_old = {"context": {"user": "u8", "price": 1}, "candidates": {"item": ["a", "b"], "age": [30, 5000]}}
    with _server() as (url, predictor, app):
        alone = _answers([_post(url, body) for body in BODIES])
        predictor.calls.clear()
        responses = _held_then_merged(url, predictor, app, BODIES[0], [BODIES[1], boom, BODIES[2], too_old, BODIES[3]])
        answers = _answers(responses)
        assert [answers[i] for i in (0, 1, 3, 5)] == alone
        assert answers[2] == (500, {"detail": "prediction failed: RuntimeError: the model blew up", "fields": []})
        assert answers[4][0] == 422 and answers[4][1]["fields"] == ["candidates.age[1]"]
        # the merged call failed, then each request of it was scored alone
        assert predictor.calls[:2] == [2, 10] and sorted(predictor.calls[2:]) == [1, 2, 2, 2, 3]  # (queue order)
        assert _post(url, BODIES[0]).status_code == 200
