"""Dynamic batching: merging requests of different contexts, splitting the scores, the batcher's queue."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pytest

from mtlrec.errors import RequestError
from mtlrec.serving.batching import Batcher, merge_requests, score_requests, split_outputs
from mtlrec.serving.requests import RequestReader

COLUMNS = {"user": pa.string(), "item": pa.string(), "age": pa.float64(), "price": pa.float64()}
READER = RequestReader(COLUMNS, 100)


def _request(context: dict, candidates: list | dict):
    return READER.read({"context": context, "candidates": candidates})


def test_merging_keeps_the_columns_every_request_sends_once_and_expands_the_others():
    first = _request({"user": "u1", "age": 20}, [{"item": "a", "price": 1}, {"item": "b", "price": 2}])
    second = _request({"user": "u2", "price": 5}, {"item": ["c"], "age": [60]})
    merged = merge_requests([first, second])
    assert merged.contexts.to_pydict() == {"user": ["u1", "u2"]}  # in both contexts: one row per request
    assert merged.candidates.to_pydict() == {  # age and price: the context's value where a request sent it once
        "item": ["a", "b", "c"],
        "age": [20.0, 20.0, 60.0],
        "price": [1.0, 2.0, 5.0],
    }
    assert merged.owners.tolist() == [0, 0, 1] and merged.offsets == [0, 2, 3]


def test_requests_of_the_same_context_share_its_row():
    same = [_request({"user": "u1", "age": 20}, {"item": ["a", "b"], "price": [1, 2]}) for _ in range(2)]
    other = _request({"user": "u2", "age": 20}, {"item": ["c"], "price": [3]})
    merged = merge_requests([same[0], other, same[1]])
    assert merged.contexts.to_pydict() == {"user": ["u1", "u2"], "age": [20.0, 20.0]}
    assert merged.owners.tolist() == [0, 0, 1, 0, 0]
    assert merge_requests(same).contexts.num_rows == 1  # one row: the model gets it once for all


def test_merging_requests_without_a_shared_context_column():
    first = _request({}, [{"user": "u", "item": "a", "age": 1, "price": 1}])
    second = _request({"user": "v", "item": "b", "age": 2, "price": 3}, [{}, {}])
    merged = merge_requests([first, second])
    assert merged.contexts.num_columns == 0 and merged.contexts.num_rows == 1
    assert merged.candidates.column("user").to_pylist() == ["u", "v", "v"]


def test_outputs_are_split_per_request():
    outputs = {"ctr": np.arange(5.0), "classes": np.arange(10.0).reshape(5, 2)}
    parts = split_outputs(outputs, [0, 2, 2, 5])
    assert [part["ctr"].tolist() for part in parts] == [[0.0, 1.0], [], [2.0, 3.0, 4.0]]
    assert parts[2]["classes"].shape == (3, 2)


class JoiningPredictor:
    """Scores = age + price of each candidate (its context row joined); a price of -1 fails the call."""

    def __init__(self):
        self.calls: list[int] = []

    def predict_shared(self, candidates, context, source="request"):
        return self.predict_merged(candidates, context, np.zeros(candidates.num_rows, dtype=np.int64), source)

    def predict_merged(self, candidates, contexts, owners, source="request"):
        self.calls.append(candidates.num_rows)
        columns = {name: candidates.column(name) for name in candidates.column_names}
        columns.update({name: contexts.column(name).take(pa.array(owners)) for name in contexts.column_names})
        table = pa.table(columns)
        price = table.column("price").to_numpy()
        if (price == -1).any():
            raise RuntimeError("bad price")
        return {"score": table.column("age").to_numpy() + price}


def test_a_failing_merged_call_is_retried_request_by_request():
    predictor = JoiningPredictor()
    good = _request({"user": "u", "age": 10}, {"item": ["a", "b"], "price": [1, 2]})
    bad = _request({"user": "v", "age": 20}, {"item": ["a"], "price": [-1]})
    results = score_requests(predictor, [good, bad, good])
    assert predictor.calls == [5, 2, 1, 2]
    assert results[0]["score"].tolist() == results[2]["score"].tolist() == [11.0, 12.0]
    assert isinstance(results[1], RequestError) and results[1].status == 500


def test_merged_scores_equal_the_scores_alone():
    predictor = JoiningPredictor()
    requests = [_request({"user": f"u{i}", "age": i}, {"item": ["a"] * 3, "price": [1, 2, i]}) for i in range(4)]
    alone = [score_requests(predictor, [request])[0]["score"].tolist() for request in requests]
    merged = [result["score"].tolist() for result in score_requests(predictor, requests)]
    assert merged == alone and predictor.calls[-1] == 12


def _sizes(rows: list[int]) -> list:
    return [_request({"user": "u", "age": 1, "price": 1}, {"item": ["a"] * n}) for n in rows]


def test_the_batcher_merges_what_waits_up_to_max_batch_rows():
    batches: list[list[int]] = []
    gate = threading.Event()

    def score(requests):
        batches.append([request.rows for request in requests])
        gate.wait(10)
        return [{"score": np.zeros(request.rows)} for request in requests]

    batcher = Batcher(score, max_batch_rows=5, wait_ms=0)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.predict, _sizes([1])[0])
        while not batches:
            time.sleep(0.001)
        futures = []
        for request in _sizes([2, 2, 2, 7]):  # queued in this order while the first call runs
            futures.append(pool.submit(batcher.predict, request))
            while batcher.waiting < len(futures):
                time.sleep(0.001)
        gate.set()
        results = [future.result(10) for future in [first, *futures]]
    batcher.close()
    assert batches == [[1], [2, 2], [2], [7]]  # the third 2 does not fit; 7 rows is over the limit: alone
    assert [len(result["score"]) for result in results] == [1, 2, 2, 2, 7]
    assert batcher.stats.calls == 4 and batcher.stats.merged_calls == 1 and batcher.stats.rows == 14


def test_a_lone_request_does_not_wait_and_a_wait_collects_later_ones():
    batches: list[int] = []

    def score(requests):
        batches.append(len(requests))
        return [{"score": np.zeros(request.rows)} for request in requests]

    lone = Batcher(score, wait_ms=0)
    start = time.perf_counter()
    lone.predict(_sizes([3])[0])
    assert time.perf_counter() - start < 0.5
    lone.close()
    waiting = Batcher(score, wait_ms=300)
    with ThreadPoolExecutor(2) as pool:
        early = pool.submit(waiting.predict, _sizes([1])[0])
        time.sleep(0.05)  # well inside the first one's wait
        late = pool.submit(waiting.predict, _sizes([1])[0])
        early.result(10), late.result(10)
    waiting.close()
    assert batches == [1, 2]


def test_a_scorer_that_raises_fails_its_batch_and_the_worker_goes_on():
    calls = []

    def score(requests):
        calls.append(len(requests))
        if len(calls) == 1:
            raise ValueError("broken")
        return [{"score": np.ones(request.rows)} for request in requests]

    batcher = Batcher(score)
    with pytest.raises(RequestError, match="prediction failed: ValueError: broken"):
        batcher.predict(_sizes([2])[0])
    assert batcher.predict(_sizes([2])[0])["score"].tolist() == [1.0, 1.0]
    batcher.close()
    assert batcher.predict(_sizes([1])[0])["score"].tolist() == [1.0]  # a closed batcher starts again
    batcher.close()


@pytest.mark.parametrize(("rows", "wait"), [(0, 0), (5, -1)])
def test_bad_settings_are_refused(rows, wait):
    with pytest.raises(ValueError):
        Batcher(lambda requests: [], max_batch_rows=rows, wait_ms=wait)

