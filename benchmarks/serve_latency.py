"""Latency and throughput of ``mtlrec serve`` over loopback HTTP, as one JSON document.

Usage (an artifact from ``mtlrec export``; candidates are rows of a data file the run can read):

    .venv/bin/mtlrec export runs/census/mmoe --output runs/census/mmoe.artifact
    .venv/bin/python benchmarks/serve_latency.py --artifact runs/census/mmoe.artifact \\
        --data data/census-income/census-income.test.gz
    # before/after in one run: the previous server (rows, no batching) against columns with batching
    mkdir -p /tmp/before && git archive HEAD src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/serve_latency.py --artifact runs/census/mmoe.artifact \\
        --data data/census-income/census-income.test.gz --compare --rounds 5 --client-processes \\
        --before-src /tmp/before/src

The server runs as a subprocess (``python -m mtlrec serve``) on a free 127.0.0.1 port. Latency:
sequential requests of 1, 100 and 1000 candidates on one keep-alive connection (``http.client``), after a warm-up;
p50/p99 of the client-measured round trip, with the server's own split (parse = JSON decoding,
validation and table building; predict = encoding + the model runtime, and with batching the wait for
the batch) as medians. Throughput: ``--clients`` closed-loop clients (one request in flight each, own
connection; threads, or with ``--client-processes`` processes, so that the clients' Python does not
share one GIL) sending 100-candidate requests for ``--seconds``; besides the rates and latencies it
reports the CPU milliseconds per request of the server process (all its threads, from ``/proc``) and
of the clients, which other jobs on the machine disturb less than the rates. Request bodies are
encoded before timing starts.

``--body columns`` sends the candidates as an object of column arrays instead of a list of objects
(the answer is then columnar too); ``--max-batch-rows`` and ``--batch-wait-ms`` are passed to the
server (``--max-batch-rows 0``: batching off; default: the server's defaults).

``--compare`` starts the servers "before" (row bodies, batching off; with ``--before-src DIR`` the
``src`` folder of another checkout, e.g. ``git archive HEAD src | tar -x -C /tmp/head``, so that it is
the server as it was) and "after" (``--body``, default columns, with the batching flags), plus
"after_rows" (row bodies, the batching flags) with ``--rows-batched``, and measures them in
``--rounds`` rounds whose order alternates (before-after, after-before, ...): 100-candidate latency
of one client, then the throughput run; it prints every round and the medians, and the ratios to
"before". The machine's load average goes in the result: the rates are only comparable within a run.

With ``--context user_id,user_tags,hist_item_ids,hist_cate_ids`` those columns are sent once per request
(taken from the row whose lists in them are longest) and the candidates carry the others; the same
requests are then also timed with every candidate carrying the context itself (``latency_context_in_
every_candidate``), which gives the cost that sending the context once saves.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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
    parser.add_argument("--client-processes", action="store_true", help="run each client in its own process")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    parser.add_argument("--threads", type=int, help="server's model runtime threads (default: every core)")
    parser.add_argument("--context", help="comma-separated columns sent once per request (e.g. the user's history)")
    parser.add_argument("--body", choices=["rows", "columns"], help="candidates as objects or as column arrays "
                        "(default: rows; columns with --compare)")
    parser.add_argument("--max-batch-rows", type=int, help="server's --max-batch-rows (0: batching off)")
    parser.add_argument("--batch-wait-ms", type=float, help="server's --batch-wait-ms")
    parser.add_argument("--compare", action="store_true", help="before (rows, batching off) against after, "
                        "alternating rounds")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --compare")
    parser.add_argument("--before-src", help="--compare: run 'before' from this src folder (an older mtlrec)")
    parser.add_argument("--rows-batched", action="store_true", help="--compare: also row bodies with batching")
    parser.add_argument("--after-threads", type=int, help="--compare: runtime threads of the batching servers "
                        "(default: --threads)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    body = args.body or ("columns" if args.compare else "rows")

    predictor = Predictor.load(args.artifact, threads=1)  # only for its input columns and CSV format
    columns, separators = predictor.input_columns, predictor.separators
    table = read_table(args.data, columns, None, predictor.csv_format, separators=separators)
    context_columns = [name.strip() for name in args.context.split(",")] if args.context else []
    context = _longest(table, context_columns) if context_columns else {}
    candidates = table.drop_columns(list(context)).slice(0, max(sizes))
    bodies = {form: _bodies(candidates, context, sizes, form) for form in ("rows", "columns")}
    rows = candidates.to_pylist()
    carried = {size: json.dumps({"candidates": [{**row, **context} for row in rows[:size]]}).encode() for size in sizes}
    batching = _batching_flags(args.max_batch_rows, args.batch_wait_ms)
    if args.compare and args.after_threads:
        batching += ["--threads", str(args.after_threads)]  # (after --threads: argparse keeps the last)
    clients = _Clients(args.clients, args.client_processes)

    largest = max(len(body) for body in [*bodies["rows"].values(), *carried.values()])
    result = {
        "artifact": str(args.artifact),
        "server_threads": args.threads,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "load_average_before": os.getloadavg(),
        "context": {name: len(value) if isinstance(value, list) else value for name, value in context.items()},
        "client_processes": args.client_processes,
    }
    if args.compare:
        size = min(sizes, key=lambda s: abs(s - 100))
        variants = {
            "before": {"body": "rows", "flags": [] if args.before_src else ["--max-batch-rows", "0"],
                       "src": args.before_src},
            "after": {"body": body, "flags": batching},
        }
        if args.rows_batched:
            variants["after_rows"] = {"body": "rows", "flags": batching}
        result["variants"] = variants
        with contextlib.ExitStack() as servers:
            urls = {
                name: servers.enter_context(
                    _server(args.artifact, args.threads, max(sizes), largest, variant["flags"], variant.get("src"))
                )
                for name, variant in variants.items()
            }
            targets = {name: (urls[name], bodies[variant["body"]][size]) for name, variant in variants.items()}
            _check_same_scores(targets)
            result.update(_compare(targets, args.rounds, args.warmup, args.requests, clients, args.seconds))
    else:
        result["body"], result["server_flags"] = body, batching
        with _server(args.artifact, args.threads, max(sizes), largest, batching) as url:
            result["latency"] = {size: _latency(url, bodies[body][size], args.warmup, args.requests) for size in sizes}
            throughput_body = bodies[body][min(sizes, key=lambda s: abs(s - 100))]
            result["throughput"] = clients.throughput(url, throughput_body, args.seconds, _SERVER_PIDS.get(url))
            if context:
                result["latency_context_in_every_candidate"] = {
                    size: _latency(url, carried[size], args.warmup, args.requests) for size in sizes
                }
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    return 0


def _bodies(candidates, context: dict, sizes: list[int], form: str) -> dict[int, bytes]:
    """Request bodies of each size: the candidates as a list of objects, or as an object of arrays."""
    if form == "columns":
        return {size: _encode(context, candidates.slice(0, size).to_pydict()) for size in sizes}
    rows = candidates.to_pylist()
    return {size: _encode(context, rows[:size]) for size in sizes}


def _encode(context: dict, candidates: list | dict) -> bytes:
    return json.dumps({"context": context, "candidates": candidates}).encode()


def _batching_flags(max_batch_rows: int | None, batch_wait_ms: float | None) -> list[str]:
    flags = [] if max_batch_rows is None else ["--max-batch-rows", str(max_batch_rows)]
    return flags + ([] if batch_wait_ms is None else ["--batch-wait-ms", str(batch_wait_ms)])


def _compare(variants: dict[str, tuple[str, bytes]], rounds: int, warmup: int, requests: int,
             clients: _Clients, seconds: float) -> dict:
    """Rounds of every variant (in alternating order): one client's latency, then the throughput run; medians."""
    measured: dict[str, list[dict]] = {name: [] for name in variants}
    for index in range(rounds):
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in order:
            url, body = variants[name]
            latency = _latency(url, body, warmup, requests)
            throughput = clients.throughput(url, body, seconds, _SERVER_PIDS.get(url))
            measured[name].append({"round": index, "latency": latency, "throughput": throughput,
                                   "load_average": os.getloadavg()[0]})
            print(f"round {index} {name}: {throughput['candidates_per_s']:.0f} candidates/s "
                  f"(server CPU {throughput['server_cpu_ms_per_request']:.2f} ms/request), "
                  f"one client p50 {latency['p50_ms']:.2f} ms p99 {latency['p99_ms']:.2f} ms, "
                  f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    medians = {name: _medians(values) for name, values in measured.items()}
    keys = ("candidates_per_s", "one_client_p50_ms", "one_client_p99_ms", "server_cpu_ms_per_request")
    return {
        "rounds": measured,
        "medians": medians,
        "over_before": {
            name: {key: medians[name][key] / medians["before"][key] for key in keys}
            for name in variants if name != "before"
        },
    }


def _medians(rounds: list[dict]) -> dict[str, float]:
    def median(get) -> float:
        return float(np.median([get(value) for value in rounds]))

    return {
        "candidates_per_s": median(lambda r: r["throughput"]["candidates_per_s"]),
        "requests_per_s": median(lambda r: r["throughput"]["requests_per_s"]),
        "concurrent_p50_ms": median(lambda r: r["throughput"]["p50_ms"]),
        "concurrent_p99_ms": median(lambda r: r["throughput"]["p99_ms"]),
        "one_client_p50_ms": median(lambda r: r["latency"]["p50_ms"]),
        "one_client_p99_ms": median(lambda r: r["latency"]["p99_ms"]),
        "server_parse_p50_ms": median(lambda r: r["latency"]["server_parse_p50_ms"]),
        "server_predict_p50_ms": median(lambda r: r["latency"]["server_predict_p50_ms"]),
        "server_cpu_ms_per_request": median(lambda r: r["throughput"]["server_cpu_ms_per_request"]),
        "client_cpu_ms_per_request": median(lambda r: r["throughput"]["client_cpu_ms_per_request"]),
    }


def _check_same_scores(variants: dict[str, tuple[str, bytes]]) -> None:
    """Every server answers the same candidates with the same fused scores (whatever the body's form)."""
    scores = {}
    for name, (url, body) in variants.items():
        client = _Client(url)
        candidates = json.loads(client.predict(body)[1])["candidates"]
        client.close()
        scores[name] = candidates["score"] if isinstance(candidates, dict) else [c["score"] for c in candidates]
    if any(values != scores["before"] for values in scores.values()):
        raise RuntimeError("the servers disagree on the scores")


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


class _Clients:
    """``count`` closed-loop clients, each with one request in flight on its own connection: threads of
    this process, or processes of their own (``processes``: no GIL shared with each other)."""

    def __init__(self, count: int, processes: bool):
        self.count, self.processes = count, processes

    def throughput(self, url: str, body: bytes, seconds: float, server_pid: int | None = None) -> dict[str, float]:
        """Requests and candidates per second, latency percentiles and CPU milliseconds per request of the
        server (all its threads; ``server_pid``) and of the clients (a measure that load from other jobs
        on the machine disturbs less than the rates)."""
        start = time.monotonic() + (0.5 if self.processes else 0.0)  # processes: time to fork first
        args = [(url, body, start, start + seconds)] * self.count
        if self.processes:
            with multiprocessing.get_context("fork").Pool(self.count) as pool:
                waiting = pool.starmap_async(_client_loop, args)
                time.sleep(max(0.0, start - time.monotonic()))
                server_cpu = _cpu_seconds(server_pid)
                outcomes = waiting.get()
        else:
            with ThreadPoolExecutor(self.count) as pool:
                server_cpu = _cpu_seconds(server_pid)
                outcomes = list(pool.map(lambda a: _client_loop(*a), args))
        server_cpu = _cpu_seconds(server_pid) - server_cpu
        elapsed = max(outcome[2] for outcome in outcomes) - start
        ms = np.concatenate([np.array(outcome[0]) for outcome in outcomes]) * 1e3
        candidates = _candidates(body)
        return {
            "clients": self.count,
            "candidates_per_request": candidates,
            "requests": int(ms.size),
            "errors": int(sum(outcome[1] for outcome in outcomes)),
            "requests_per_s": ms.size / elapsed,
            "candidates_per_s": ms.size * candidates / elapsed,
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "server_cpu_ms_per_request": server_cpu * 1e3 / ms.size if server_pid else None,
            "client_cpu_ms_per_request": sum(outcome[3] for outcome in outcomes) * 1e3 / ms.size,
        }


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process, all its threads (Linux ``/proc``; 0 without a pid)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_loop(url: str, body: bytes, start: float, deadline: float) -> tuple[list[float], int, float, float]:
    """Requests one after another from ``start`` until ``deadline``: latencies, errors, time of the last
    answer, CPU seconds of this thread."""
    client = _Client(url)
    latencies, errors = [], 0
    time.sleep(max(0.0, start - time.monotonic()))
    cpu = time.thread_time()
    while time.monotonic() < deadline:
        sent = time.perf_counter()
        status, _ = client.predict(body)
        latencies.append(time.perf_counter() - sent)
        errors += status != 200
    cpu = time.thread_time() - cpu
    client.close()
    return latencies, errors, time.monotonic(), cpu


def _candidates(body: bytes) -> int:
    candidates = json.loads(body)["candidates"]
    return len(candidates) if isinstance(candidates, list) else len(next(iter(candidates.values()), []))


_SERVER_PIDS: dict[str, int] = {}  # URL → process id of the servers this script started


class _server:
    """``python -m mtlrec serve`` on a free loopback port, stopped on exit."""

    def __init__(self, artifact: str, threads: int | None, max_candidates: int, max_body: int, flags: list[str],
                 src: str | None = None):
        self.env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())} if src else None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = [sys.executable, "-m", "mtlrec", "-q", "serve", str(Path(artifact)), "--port", str(self.port)]
        self.command += ["--max-candidates", str(max_candidates), "--max-body-bytes", str(2 * max_body)]
        self.command += (["--threads", str(threads)] if threads else []) + flags

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.command, env=self.env)
        _SERVER_PIDS[f"http://127.0.0.1:{self.port}"] = self.process.pid
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
