"""HTTP scoring service: FastAPI app around a :class:`~mtlrec.serving.Predictor`, run by uvicorn.

Endpoints: ``POST /v1/predict`` (context + candidates → each candidate's task scores, fused score
and rank), ``GET /healthz``, ``GET /v1/metadata`` (tasks, inputs, fusion, model version, limits),
``GET /openapi.json`` and ``/docs``. Every error is ``{"detail": message, "fields": [json paths]}``
with a 4xx status for bad requests (400 malformed JSON, 413 too large, 415 not declared as JSON, 422
invalid content) and 500 when prediction itself fails; the server keeps serving either way. Decoding,
validation and the response run in the threadpool, so the event loop stays free for other requests;
the model runs there too, or, with dynamic batching (the default), in the batcher's worker thread,
which scores concurrent requests with one call (:mod:`mtlrec.serving.batching`).

Candidates come as an array of objects (the response lists one object per candidate) or as an object
of column arrays (the response's ``candidates`` is then columnar too: ``{"scores": {task: [...]},
"score": [...], "rank": [...]}``).
"""

from __future__ import annotations

import copy
import gc
import logging
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mtlrec import __version__
from mtlrec.errors import ConfigError, RequestError
from mtlrec.serving.batching import (
    DEFAULT_BATCH_WAIT_MS,
    DEFAULT_MAX_BATCH_ROWS,
    Batcher,
    predict_request,
    score_requests,
)
from mtlrec.serving.requests import ParsedRequest, RequestReader, decode_json
from mtlrec.serving.schemas import ErrorResponse, Health, PredictResponse, request_models

log = logging.getLogger(__name__)

DEFAULT_MAX_CANDIDATES = 1000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 413, 415, 422, 500)}


class ScoringPredictor(Protocol):
    """What the app needs of a predictor (``mtlrec.serving.Predictor`` has it)."""

    @property
    def metadata(self) -> dict[str, Any]: ...

    @property
    def input_columns(self) -> dict[str, pa.DataType]: ...

    @property
    def task_names(self) -> list[str]: ...

    @property
    def separators(self) -> dict[str, str]: ...

    def predict_shared(self, candidates: pa.Table, context: pa.Table, source: str) -> dict[str, np.ndarray]: ...

    def predict_merged(
        self, candidates: pa.Table, contexts: pa.Table, owners: np.ndarray, source: str
    ) -> dict[str, np.ndarray]: ...


def create_app(
    predictor: ScoringPredictor,
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ignore_unknown_columns: bool = False,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
) -> FastAPI:
    """The FastAPI app serving ``predictor``.

    Args:
        predictor: a loaded artifact.
        max_candidates: candidates per request; more is a 413 error.
        max_body_bytes: request body size; more (by Content-Length or by the bytes read) is a 413 error.
        ignore_unknown_columns: drop request keys that are not input columns instead of a 422 error.
        max_batch_rows: dynamic batching: concurrent requests are scored together, up to this many
            candidates per model call; 0 turns batching off (one call per request, in its own thread).
        batch_wait_ms: how long a batch's first request waits for others; 0 (no added latency) merges
            only the requests already waiting while the previous call ran.

    The batcher, if any, is ``app.state.batcher`` (its ``stats`` count calls and merged requests).
    """
    _check_batching(max_batch_rows, batch_wait_ms)
    reader = RequestReader(predictor.input_columns, max_candidates, ignore_unknown_columns, predictor.separators)
    version = model_version(predictor.metadata)
    batcher = Batcher(_scorer(predictor), max_batch_rows, batch_wait_ms) if max_batch_rows else None
    limits = {
        "max_candidates": max_candidates,
        "max_body_bytes": max_body_bytes,
        "ignore_unknown_columns": ignore_unknown_columns,
        "max_batch_rows": max_batch_rows,
        "batch_wait_ms": batch_wait_ms,
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if batcher is not None:
            await run_in_threadpool(batcher.close)

    app = FastAPI(
        title="mtlrec scoring service",
        version=__version__,
        description=f"Multi-task scores, fused score and rank for candidates (model {version}).",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(Exception, _internal_error)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/metadata")
    async def metadata() -> dict[str, Any]:
        return {**predictor.metadata, "model_version": version, "limits": limits}

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        openapi_extra={"requestBody": _request_body()},
    )
    async def predict(request: Request) -> Response:
        _check_json_content_type(request)
        body = await _read_body(request, max_body_bytes)
        content = await run_in_threadpool(_score, predictor, reader, version, body, batcher)
        return Response(content, media_type="application/json")

    _document_request(app, request_models(predictor.input_columns))
    return app


def _check_batching(max_batch_rows: int, batch_wait_ms: float) -> None:
    if max_batch_rows < 0 or not 0 <= batch_wait_ms < math.inf:
        raise ConfigError(
            f"--max-batch-rows must be >= 0 and --batch-wait-ms a finite number >= 0, "
            f"got {max_batch_rows} and {batch_wait_ms}"
        )


def model_version(metadata: dict[str, Any]) -> str:
    """The version reported to clients: ``<run name>-<first 12 hex digits of the model file's sha256>``.

    (A ``model_version`` key in the metadata, if any, wins.)
    """
    if metadata.get("model_version"):
        return str(metadata["model_version"])
    digest = str((metadata.get("model") or {}).get("sha256") or "unknown")[:12]
    return f"{metadata['run']}-{digest}" if metadata.get("run") else digest


def _scorer(predictor: ScoringPredictor) -> Callable[[Sequence[ParsedRequest]], list[Any]]:
    return lambda requests: score_requests(predictor, requests)


def _score(
    predictor: ScoringPredictor, reader: RequestReader, version: str, body: bytes, batcher: Batcher | None
) -> bytes:
    """Decode, validate, predict (alone or in the batcher's next batch) and encode one request (runs in
    the threadpool)."""
    start = time.perf_counter()
    parsed = reader.read(decode_json(body))
    parsed_at = time.perf_counter()
    if not parsed.rows:
        outputs = {}
    elif batcher is not None:
        outputs = batcher.predict(parsed)
    else:
        outputs = predict_request(predictor, parsed)
    predicted_at = time.perf_counter()
    if parsed.columnar:
        candidates: Any = _candidate_columns(outputs, predictor.task_names, parsed.rows)
    else:
        candidates = _candidates(outputs, predictor.task_names, parsed.rows)
    timing = {
        "parse_ms": (parsed_at - start) * 1e3,
        "predict_ms": (predicted_at - parsed_at) * 1e3,
        "total_ms": (time.perf_counter() - start) * 1e3,
    }
    response = {
        "model_version": version,
        "request_id": parsed.request_id,
        "tasks": predictor.task_names,
        "candidates": candidates,
        "timing": timing,
    }
    # every score is finite or None (``_json_values``; orjson writes a numpy NaN or ±inf as null)
    return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)


def _ranks(fused: np.ndarray) -> np.ndarray:
    """1-based positions by fused score, descending; ties keep request order."""
    ranks = np.empty(len(fused), dtype=np.int64)
    ranks[np.argsort(-fused, kind="stable")] = np.arange(1, len(fused) + 1)
    return ranks


def _candidates(outputs: dict[str, np.ndarray], tasks: list[str], rows: int) -> list[dict[str, Any]]:
    """Per candidate: {"scores": {task: value}, "score": fused, "rank": 1-based by fused score descending}."""
    if rows == 0:
        return []
    fused = np.asarray(outputs["score"], dtype=np.float64)
    columns = [_json_values(outputs[task]) for task in tasks]
    return [
        {"scores": dict(zip(tasks, values)), "score": score, "rank": rank}
        for values, score, rank in zip(zip(*columns), _json_values(fused), _ranks(fused).tolist())
    ]


def _candidate_columns(outputs: dict[str, np.ndarray], tasks: list[str], rows: int) -> dict[str, Any]:
    """The columnar answer: {"scores": {task: [value per candidate]}, "score": [...], "rank": [...]}.

    The same numbers as :func:`_candidates` (float64, NaN and ±inf as null), as numpy arrays for orjson.
    """
    if rows == 0:
        return {"scores": {task: [] for task in tasks}, "score": [], "rank": []}
    fused = np.ascontiguousarray(outputs["score"], dtype=np.float64)
    scores = {task: np.ascontiguousarray(outputs[task], dtype=np.float64) for task in tasks}
    return {"scores": scores, "score": fused, "rank": _ranks(fused)}


def _json_values(values: np.ndarray) -> list[Any]:
    """Rows as JSON-ready Python values; NaN and ±inf (not JSON) become null."""
    values = np.asarray(values, dtype=np.float64)
    if np.isfinite(values).all():
        return values.tolist()
    if values.ndim == 1:
        return [value if math.isfinite(value) else None for value in values.tolist()]
    return [[v if math.isfinite(v) else None for v in row] for row in values.tolist()]


def _check_json_content_type(request: Request) -> None:
    """Refuse with 415 a body not declared as JSON (``application/json``, or ``application/<x>+json``)."""
    declared = request.headers.get("content-type", "")
    kind, _, subtype = declared.split(";")[0].strip().lower().partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        shown = f"'{declared}'" if declared else "none"
        raise RequestError(415, f"the body must be JSON sent with Content-Type: application/json (got {shown})")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as its declared or received size passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body has {int(declared)} bytes, more than the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _request_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestError)
    if exc.status < 500:
        log.info("%s %s: %d %s", request.method, request.url.path, exc.status, exc.message)
    return JSONResponse({"detail": exc.message, "fields": exc.fields}, status_code=exc.status)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}", "fields": []}, status_code=500)


def _request_body() -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/PredictRequest"}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _document_request(app: FastAPI, model: type) -> None:
    """Add the per-artifact request models to the spec's components (the route reads the body itself)."""
    definitions = model.model_json_schema(ref_template="#/components/schemas/{model}")
    extra = {**definitions.pop("$defs", {}), "PredictRequest": definitions}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(extra)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread while the block runs; yields the base URL.

    Port 0 picks a free port (the socket is bound before uvicorn starts, so there is no race).
    For tests, notebooks and embedding; ``mtlrec serve`` runs uvicorn in the foreground instead.
    """
    import uvicorn

    # proto IPPROTO_TCP (not 0) so that asyncio sets TCP_NODELAY on accepted connections; without it Nagle
    # and delayed ACKs add about 40 ms to every response written in two parts (headers, then body)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="mtlrec-http")
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"uvicorn did not start on {host}:{sock.getsockname()[1]}")
        time.sleep(0.01)
    try:
        bound = sock.getsockname()[1]
        yield f"http://{f'[{host}]' if ':' in host else host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(start_timeout_s)
        sock.close()


def serve(
    artifact_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int | None = None,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ignore_unknown_columns: bool = False,
    access_log: bool = False,
    log_level: str = "info",
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
) -> None:
    """Load an artifact (sha256-verified by ``Predictor.load``) and serve it with uvicorn until interrupted.

    ``log_level`` is uvicorn's (``"warning"`` under ``mtlrec -q``); its access log, when asked for, logs
    every request whatever the level. ``max_batch_rows`` and ``batch_wait_ms``: see :func:`create_app`.
    """
    import uvicorn

    from mtlrec.serving.predictor import Predictor

    if max_candidates < 1 or max_body_bytes < 1:
        raise ConfigError(
            f"--max-candidates and --max-body-bytes must be >= 1, got {max_candidates} and {max_body_bytes}"
        )
    _check_batching(max_batch_rows, batch_wait_ms)
    predictor = Predictor.load(artifact_dir, threads=threads)
    app = create_app(
        predictor,
        max_candidates=max_candidates,
        max_body_bytes=max_body_bytes,
        ignore_unknown_columns=ignore_unknown_columns,
        max_batch_rows=max_batch_rows,
        batch_wait_ms=batch_wait_ms,
    )
    log.info("serving %s (model %s) on http://%s:%d", artifact_dir, model_version(predictor.metadata), host, port)
    # the ~200k objects of the libraries and the model loaded so far never die: out of the collector's
    # sight, a full collection takes microseconds instead of a 100+ ms stall of every request in flight
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_config=_uvicorn_logging(log_level))


def _uvicorn_logging(level: str) -> dict[str, Any]:
    """uvicorn's default logging config with its server messages at ``level``, its access log at INFO."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("uvicorn", "uvicorn.error"):
        config["loggers"][name]["level"] = level.upper()
    return config
