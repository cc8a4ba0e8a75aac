"""Latency and throughput of ``mtlrec serve`` over loopback HTTP, as one JSON document.

Usage (an artifact from ``mtlrec export``; candidates are rows of a data file the run can read):

    .venv/bin/mtlrec export runs/census/mmoe --output runs/census/mmoe.artifact
    .venv/bin/python benchmarks/serve_latency.py --artifact runs/census/mmoe.artifact \\
        --data data/census-income/census-income.test.gz

The server runs as a subprocess (``python -m mtlrec serve``) on a free 127.0.0.1 port. Latency:
sequential requests of 1, 100 and 1000 candidates on one keep-alive connection (``http.client``), after a warm-up;
p50/p99 of the client-measured round trip, with the server's own split (parse = JSON decoding,
validation and table building; predict = encoding + the model runtime) as medians. Throughput:
``--clients`` closed-loop clients (one request in flight each, own connection, threads) sending
100-candidate requests for ``--seconds``. Request bodies are encoded before timing starts.

With ``--context user_id,user_tags,hist_item_ids,hist_cate_ids`` those columns are sent once per request
(taken from the row whose lists in them are longest) and the candidates carry the others; the same
requests are then also timed with every candidate carrying the context itself (``latency_context_in_
every_candidate``), which gives the cost that sending the context once saves.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np

from mtlrec.io import read_table
from mtlrec.serving import Predictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--data", required=True, help="rows to send as candidates (CSV/Parquet the run can read)")
    parser.add_argument("--sizes", default="1,100,1000", help="candidates per request (comma-separated)")
    parser.add_argument("--requests", type=int, default=300, help="timed sequential requests per size")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the throughput run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    parser.add_argument("--threads", type=int, help="server's model runtime threads (default: every core)")
    parser.add_argument("--context", help="comma-separated columns sent once per request (e.g. the user's history)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    predictor = Predictor.load(args.artifact, threads=1)  # only for its input columns and CSV format
    columns, separators = predictor.input_columns, predictor.separators
    table = read_table(args.data, columns, None, predictor.csv_format, separators=separators)
    context_columns = [name.strip() for name in args.context.split(",")] if args.context else []
    context = _longest(table, context_columns) if context_columns else {}
    rows = [{k: v for k, v in row.items() if k not in context} for row in table.slice(0, max(sizes)).to_pylist()]
    bodies = {size: json.dumps({"context": context, "candidates": rows[:size]}).encode() for size in sizes}
    carried = {size: json.dumps({"candidates": [{**row, **context} for row in rows[:size]]}).encode() for size in sizes}

    largest = max(len(body) for body in [*bodies.values(), *carried.values()])
    with _server(args.artifact, args.threads, max(sizes), largest) as url:
        result = {
            "artifact": str(args.artifact),
            "server_threads": args.threads,
            "cpu_cores": len(os.sched_getaffinity(0)),
            "load_average_before": os.getloadavg()[0],
            "context": {name: len(value) if isinstance(value, list) else value for name, value in context.items()},
            "latency": {size: _latency(url, bodies[size], args.warmup, args.requests) for size in sizes},
            "throughput": _throughput(url, bodies[min(sizes, key=lambda s: abs(s - 100))], args.clients, args.seconds),
            "load_average_after": os.getloadavg()[0],
        }
        if context:
            result["latency_context_in_every_candidate"] = {
                size: _latency(url, carried[size], args.warmup, args.requests) for size in sizes
            }
    print(json.dumps(result, indent=1))
    return 0


def _longest(table, columns: list[str]) -> dict:
    """The context columns' values of the row whose lists in them are longest (a long history)."""
    import pyarrow.compute as pc

    lengths = [pc.fill_null(pc.list_value_length(table[name]), 0).to_numpy() for name in columns
               if str(table.schema.field(name).type).startswith("list")]
    row = int(np.argmax(sum(lengths))) if lengths else 0
    return {name: table[name][row].as_py() for name in columns}


class _Client:
    """A keep-alive loopback connection (``http.client``: a lighter client than httpx, whose own cost per
    request, about 1 ms, would be counted in the latency and compete for the same cores)."""

    def __init__(self, url: str):
        parsed = urlsplit(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)

    def predict(self, body: bytes) -> tuple[int, bytes]:
        self.connection.request("POST", "/v1/predict", body, {"content-type": "application/json"})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def _latency(url: str, body: bytes, warmup: int, requests: int) -> dict[str, float]:
    """Sequential requests on one connection: client round-trip percentiles and the server's split."""
    seconds, parse, predict = [], [], []
    client = _Client(url)
    for index in range(warmup + requests):
        start = time.perf_counter()
        status, content = client.predict(body)
        elapsed = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"status {status}: {content[:200]!r}")
        if index >= warmup:
            timing = json.loads(content)["timing"]
            seconds.append(elapsed)
            parse.append(timing["parse_ms"])
            predict.append(timing["predict_ms"])
    client.close()
    ms = np.array(seconds) * 1e3
    return {
        "body_bytes": len(body),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "server_parse_p50_ms": float(np.median(parse)),
        "server_predict_p50_ms": float(np.median(predict)),
    }


def _throughput(url: str, body: bytes, clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads, each with one request in flight on its own connection, for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.perf_counter() + seconds

    def client_loop(index: int) -> None:
        client = _Client(url)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status, _ = client.predict(body)
            latencies[index].append(time.perf_counter() - start)
            errors[index] += status != 200
        client.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ms = np.concatenate([np.array(values) for values in latencies]) * 1e3
    candidates = json.loads(body)["candidates"]
    return {
        "clients": clients,
        "candidates_per_request": len(candidates),
        "requests": int(ms.size),
        "errors": int(sum(errors)),
        "requests_per_s": ms.size / elapsed,
        "candidates_per_s": ms.size * len(candidates) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


class _server:
    """``python -m mtlrec serve`` on a free loopback port, stopped on exit."""

    def __init__(self, artifact: str, threads: int | None, max_candidates: int, max_body: int):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = [sys.executable, "-m", "mtlrec", "-q", "serve", str(Path(artifact)), "--port", str(self.port)]
        self.command += ["--max-candidates", str(max_candidates), "--max-body-bytes", str(2 * max_body)]
        self.command += ["--threads", str(threads)] if threads else []

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.command)
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not answer /healthz within 120 s")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)


if __name__ == "__main__":
    sys.exit(main())
