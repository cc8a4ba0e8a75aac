"""Dynamic batching for the HTTP server: concurrent requests scored by one model call.

Request threads parse and validate their own body, then hand the parsed request to a
:class:`Batcher` and wait. The batcher's one worker thread takes the first request waiting, collects
more until ``max_batch_rows`` candidates or ``wait_ms`` after the first one arrived (``0``: only what
is already queued, so a lone request waits for nothing), and scores them with one call
(:func:`score_requests`): the requests' candidates one after another, and a context table with one
row per request for the columns every request sends once (the user, their history), which the
predictor encodes once per request and gives each candidate its own request's row of. The scores are
split back per request; ranks and the response are built by each request's own thread. While the
worker runs a call the next requests queue up, so under load batches grow by themselves.

A merged call that fails (a value that only the model rejects, a runtime error) is retried one
request at a time, so each request gets its own result or its own error and no request fails
because of another.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from mtlrec.errors import DataError, RequestError
from mtlrec.serving.requests import ParsedRequest

log = logging.getLogger(__name__)

#: Largest merged call, in candidates (``mtlrec serve --max-batch-rows``); 0 turns batching off.
DEFAULT_MAX_BATCH_ROWS = 1000
#: How long the first request of a batch waits for more (``--batch-wait-ms``): 0 = take only those queued.
DEFAULT_BATCH_WAIT_MS = 0.0

Outputs = dict[str, np.ndarray]


class MergingPredictor(Protocol):
    """What batching needs of a predictor (``mtlrec.serving.Predictor`` has it)."""

    def predict_shared(self, candidates: pa.Table, context: pa.Table, source: str) -> Outputs: ...

    def predict_merged(self, candidates: pa.Table, contexts: pa.Table, owners: np.ndarray, source: str) -> Outputs: ...


@dataclass(frozen=True)
class MergedRequests:
    """Several requests as one predictor input.

    Attributes:
        candidates: every request's candidates, request after request: the columns not in ``contexts``.
        contexts: one row per distinct context: the columns that every request gives once.
        owners: (N,) the row of ``contexts`` of each candidate.
        offsets: where each request's candidates start, and the total (R + 1 values).
    """

    candidates: pa.Table
    contexts: pa.Table
    owners: np.ndarray
    offsets: list[int]


def merge_requests(requests: Sequence[ParsedRequest]) -> MergedRequests:
    """One input of these requests' candidates; a context column only some requests share is expanded.

    A column every request gives once (in its context) stays one value per distinct context (requests
    of the same user, e.g. one ranking split into parallel requests, share one row: with a single one
    the model still gets it once for all candidates); any other is one value per candidate (a
    request's context value repeated over its own candidates).
    """
    columns = requests[0].columns
    in_every_context = set.intersection(*(set(request.context.column_names) for request in requests))
    shared = [name for name in columns if name in in_every_context]
    own = [name for name in columns if name not in in_every_context]
    sizes = [request.rows for request in requests]
    candidates = pa.concat_tables([request.per_candidate(own) for request in requests])
    distinct, rows = _distinct([request.context.select(shared) for request in requests])
    contexts = pa.concat_tables(distinct) if shared else pa.table({"": pa.nulls(len(distinct))}).drop_columns([""])
    owners = np.repeat(np.asarray(rows, dtype=np.int64), sizes)
    return MergedRequests(candidates, contexts, owners, np.concatenate([[0], np.cumsum(sizes)]).tolist())


def _distinct(tables: list[pa.Table]) -> tuple[list[pa.Table], list[int]]:
    """The distinct one-row tables, and the position of each table among them."""
    distinct: list[pa.Table] = []
    positions = []
    for table in tables:
        position = next((index for index, seen in enumerate(distinct) if seen.equals(table)), len(distinct))
        if position == len(distinct):
            distinct.append(table)
        positions.append(position)
    return distinct, positions


def split_outputs(outputs: Outputs, offsets: list[int]) -> list[Outputs]:
    """Each request's slice of a merged call's outputs."""
    return [
        {name: values[start:stop] for name, values in outputs.items()}
        for start, stop in zip(offsets[:-1], offsets[1:])
    ]


def predict_request(predictor: MergingPredictor, parsed: ParsedRequest) -> Outputs:
    """Scores of one request, alone; a failure becomes the request's error.

    Raises:
        RequestError: 422 for a value the predictor rejects (naming its field), 500 when the model fails.
    """
    try:
        return predictor.predict_shared(parsed.candidates, parsed.context, "request")  # null = unknown, by design
    except DataError as exc:
        fields = [] if exc.column is None else [parsed.field(exc.column, exc.row or 0)]
        raise RequestError(422, str(exc), fields) from None
    except Exception as exc:
        log.exception("prediction failed on a request of %d candidates", parsed.rows)
        raise RequestError(500, f"prediction failed: {type(exc).__name__}: {exc}") from None


def score_requests(predictor: MergingPredictor, requests: Sequence[ParsedRequest]) -> list[Outputs | RequestError]:
    """Each request's scores (or its error), from one merged call when there are several.

    If the merged call fails, every request is scored alone, so only a request that fails alone
    gets an error.
    """
    if len(requests) == 1:
        return [_outcome(predictor, requests[0])]
    try:
        merged = merge_requests(requests)
        outputs = predictor.predict_merged(merged.candidates, merged.contexts, merged.owners, "request")
    except Exception as exc:
        log.info("a merged call of %d requests failed (%s: %s): scoring them one by one",
                 len(requests), type(exc).__name__, exc)
        return [_outcome(predictor, request) for request in requests]
    return list(split_outputs(outputs, merged.offsets))


def _outcome(predictor: MergingPredictor, parsed: ParsedRequest) -> Outputs | RequestError:
    try:
        return predict_request(predictor, parsed)
    except RequestError as error:
        return error


@dataclass
class BatchStats:
    """Counters of a batcher (read them for monitoring and tests; only its worker writes them).

    Attributes:
        calls: batches scored (one merged model call each, or one call for a lone request).
        requests: requests scored.
        rows: candidates scored.
        merged_calls: batches of more than one request.
        largest_batch: most requests in one batch.
    """

    calls: int = 0
    requests: int = 0
    rows: int = 0
    merged_calls: int = 0
    largest_batch: int = 0

    def add(self, requests: int, rows: int) -> None:
        self.calls += 1
        self.requests += requests
        self.rows += rows
        self.merged_calls += requests > 1
        self.largest_batch = max(self.largest_batch, requests)


@dataclass
class _Pending:
    request: ParsedRequest
    arrived: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


_STOP = object()


class Batcher:
    """Collects concurrent requests and scores each batch with one call, on one worker thread.

    Args:
        score: scores a batch: one result (outputs, or the request's error) per request, in order.
        max_batch_rows: a batch stops growing before it passes this many candidates (a larger
            request is scored alone).
        wait_ms: how long a batch's first request waits for others; 0 takes only those already queued.
    """

    def __init__(
        self,
        score: Callable[[Sequence[ParsedRequest]], list[Any]],
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        wait_ms: float = DEFAULT_BATCH_WAIT_MS,
    ):
        if max_batch_rows < 1 or wait_ms < 0:
            raise ValueError(f"max_batch_rows must be >= 1 and wait_ms >= 0, got {max_batch_rows} and {wait_ms}")
        self._score = score
        self.max_batch_rows = max_batch_rows
        self.wait_s = wait_ms / 1e3
        self.stats = BatchStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._held: Any = None  # taken from the queue but left for the next batch (it did not fit)
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None


    @property
    def waiting(self) -> int:
        """Requests queued for the next batch (not counting those being scored)."""
        return self._queue.qsize() + (self._held is not None and self._held is not _STOP)

    def predict(self, request: ParsedRequest) -> Outputs:
        """The request's scores, from the batch it joins (blocks the calling thread until then).

        Raises:
            RequestError: the request's own error (a merged call that fails is retried per request).
        """
        pending = _Pending(request)
        self._start()
        self._queue.put(pending)
        return pending.future.result()

    def close(self, timeout_s: float = 10.0) -> None:
        """Score what is queued, then stop the worker (a later :meth:`predict` starts a new one)."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(_STOP)
            worker.join(timeout_s)

    def _start(self) -> None:
        if self._worker is None:
            with self._lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._run, daemon=True, name="mtlrec-batcher")
                    self._worker.start()

    def _run(self) -> None:
        while True:
            first = self._held if self._held is not None else self._queue.get()
            self._held = None
            if first is _STOP:
                return
            batch = self._collect(first)
            self._score_batch(batch)

    def _collect(self, first: _Pending) -> list[_Pending]:
        """``first`` and the requests that join it: until the rows are full, the wait is over or the
        queue is empty (with no wait)."""
        batch, rows = [first], first.request.rows
        deadline = first.arrived + self.wait_s
        while rows < self.max_batch_rows:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP or rows + item.request.rows > self.max_batch_rows:
                self._held = item
                break
            batch.append(item)
            rows += item.request.rows
        return batch

    def _score_batch(self, batch: list[_Pending]) -> None:
        requests = [pending.request for pending in batch]
        try:
            results = self._score(requests)
        except BaseException as exc:  # the scorer handles errors itself; this only guards the worker
            log.exception("scoring a batch of %d requests failed", len(batch))
            message = f"prediction failed: {type(exc).__name__}: {exc}"
            results = [RequestError(500, message) for _ in batch]
        self.stats.add(len(batch), sum(request.rows for request in requests))
        for pending, result in zip(batch, results):
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)
