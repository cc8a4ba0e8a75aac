"""Data-parallel training on two gloo ranks (127.0.0.1) against one process with the same global batch.

One ``torch.multiprocessing`` launch (two forked ranks) checks GradientSync against the gradient of one process over all
rows and trains through ``api.train`` on two ranks (each rank given its own output directory, so
the test sees that rank 1 writes nothing); one ``torchrun -m mtlrec train --resume`` launch checks
the command line and resuming. Metrics are compared with a 1e-4 tolerance: the ranks' gradients are
summed in another order than one backward pass sums them (float rounding, ~1e-7 relative per step),
which a few dozen Adam steps carry into the metrics at the 1e-8 level in practice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from torch import nn

from mtlrec.app import api
from mtlrec.config import load_config
from mtlrec.nn.sparse_lookup import row_sparse_lookup
from mtlrec.training.grad_sync import GradientSync

ROWS = {0: slice(0, 5), 1: slice(5, 8)}  # unequal shares: the ranks are weighted by their rows
TOLERANCE = 1e-4


def _table(rows: int, seed: int) -> pa.Table:
    """Every feature kind: ids, numbers, a weighted tag list and a two-field history (Parquet lists)."""
    rng = np.random.default_rng(seed)
    c0, c1, d0, d1 = (
        rng.integers(0, 50, rows),
        rng.integers(0, 20, rows),
        rng.normal(size=rows),
        rng.exponential(size=rows),
    )
    lengths = rng.integers(0, 6, rows)
    hist = [list(rng.integers(0, 20, n)) for n in lengths]
    seen = np.array([value in row for value, row in zip(c1, hist)])
    click = rng.random(rows) < 1 / (1 + np.exp(-(0.05 * (c0 % 7) + 1.5 * seen + 0.8 * d0 - 1.0)))
    conversion = click & (rng.random(rows) < 1 / (1 + np.exp(1 - d1)))
    tags = [[f"t{v}:{w:.2f}" for v, w in zip(rng.integers(0, 9, n), rng.uniform(0.5, 2, n))] for n in lengths % 4]
    return pa.table(
        {
            "c0": c0.astype(str),
            "c1": c1,
            "d0": d0,
            "d1": d1,
            "tags": pa.array(tags, pa.list_(pa.string())),
            "hist_c1": pa.array(hist, pa.list_(pa.int64())),
            "hist_parity": pa.array([[int(v) % 2 for v in row] for row in hist], pa.list_(pa.int64())),
            "click": click * 1.0,
            "conversion": conversion * 1.0,
        }
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Train data in 4 Parquet files (read through a glob), a validation file and a tiny MMoE config."""
    folder = tmp_path_factory.mktemp("ddp")
    table = _table(2048, seed=0)
    for index in range(4):
        pq.write_table(table.slice(index * 512, 512), folder / f"train-{index}.parquet", row_group_size=128)
    pq.write_table(_table(512, seed=1), folder / "valid.parquet")
    config = {
        "data": {"train": str(folder / "train-*.parquet"), "valid": str(folder / "valid.parquet")},
        "features": [
            {"name": "c0", "kind": "categorical"},
            {"name": "c1", "kind": "categorical"},
            {"name": "d0", "kind": "numeric"},
            {"name": "d1", "kind": "numeric", "log1p": True},
            {"name": "c0_x_c1", "kind": "cross", "columns": ["c0", "c1"], "hash_buckets": 64},
            {"name": "tags", "kind": "multi_valued", "kv_separator": ":", "pooling": "sum"},
            {
                "name": "hist",
                "kind": "sequence",
                "max_length": 4,
                "fields": [{"name": "c1", "column": "hist_c1", "embedding": "c1"}, {"column": "hist_parity"}],
                "encoder": {"kind": "attention", "query": ["c1", "c0"], "params": {"hidden_units": [8]}},
            },
        ],
        "tasks": [
            {"name": "click", "label": {"column": "click"}},
            {"name": "conversion", "label": {"column": "conversion"}},
        ],
        "model": {
            "architecture": "mmoe",
            "embedding_dim": 4,
            "params": {"num_experts": 2, "expert_hidden_units": [16], "tower_hidden_units": [8]},
        },
        # fp32: the comparison is at fp32 rounding (bf16's would carry the summation order into 1e-3 differences)
        "train": {
            "batch_size": 128, "epochs": 2, "lr": 0.01, "threads": 1, "device": "cpu", "early_stopping": None,
            "precision": "fp32",
        },  # fmt: skip
        "diagnostics": {"every_steps": 0},
    }
    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    return {"folder": folder, "config": folder / "tiny.yaml"}


def _problem() -> tuple[nn.Parameter, nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    table, linear = nn.Parameter(torch.randn(20, 3)), nn.Linear(6, 1)
    ids = torch.tensor([[0, 4], [1, 4], [2, 9], [3, 9], [4, 19], [5, 4], [6, 7], [0, 19]])
    return table, linear, ids, torch.linspace(-1, 1, 8)


def _loss(table: nn.Parameter, linear: nn.Linear, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (linear(row_sparse_lookup(table, ids).flatten(1)).squeeze(1) - targets).square().mean()


def _sync_gradients(rank: int, folder: Path) -> None:
    table, linear, ids, targets = _problem()
    unused, first_rank_only = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    running, seen = torch.tensor([float(rank)]), torch.tensor([rank == 1])
    part = ROWS[rank]
    loss = _loss(table, linear, ids[part], targets[part]) + (first_rank_only.sum() if rank == 0 else 0.0)
    loss.backward()
    GradientSync([table, *linear.parameters(), unused, first_rank_only], [table], [running, seen])(
        part.stop - part.start
    )
    assert table.grad.is_sparse and table.grad.is_coalesced() and unused.grad is None
    grads = {"table": table.grad.to_dense(), "weight": linear.weight.grad, "bias": linear.bias.grad}
    grads.update(first_rank_only=first_rank_only.grad, running=running, seen=seen.float())
    for name, value in grads.items():
        np.save(folder / f"{name}{rank}.npy", value.numpy())


def _worker(rank: int, ports: tuple[int, int], folder: str, config_path: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(ports[0]), RANK=str(rank), WORLD_SIZE="2")
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group("gloo")
    try:
        _sync_gradients(rank, Path(folder))
    finally:
        dist.destroy_process_group()
    os.environ["MASTER_PORT"] = str(ports[1])
    api.train(load_config(config_path), Path(folder) / f"rank{rank}")  # joins its own process group


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


@pytest.fixture(scope="module")
def two_ranks(tiny: dict[str, Path]) -> Path:
    folder = tiny["folder"] / "two_ranks"
    folder.mkdir()
    # fork (as DataLoader workers do on Linux): the ranks start without importing torch and mtlrec again
    mp.start_processes(
        _worker, args=(tuple(_free_ports(2)), str(folder), str(tiny["config"])), nprocs=2, start_method="fork"
    )
    return folder


@pytest.fixture(scope="module")
def one_process(tiny: dict[str, Path]) -> Path:
    output = tiny["folder"] / "one_process"
    api.train(load_config(tiny["config"]), output)
    return output


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _assert_close(actual: dict, expected: dict) -> None:
    for task, values in expected["valid"].items():
        for name, value in values.items():
            assert actual["valid"][task][name] == pytest.approx(value, abs=TOLERANCE), (task, name)


def test_synced_gradients_are_the_gradients_of_the_whole_batch(two_ranks):
    table, linear, ids, targets = _problem()
    _loss(table, linear, ids, targets).backward()  # the oracle: one process over all 8 rows
    expected = {"table": table.grad.to_dense(), "weight": linear.weight.grad, "bias": linear.bias.grad}
    for rank in range(2):
        for name, value in expected.items():
            np.testing.assert_allclose(np.load(two_ranks / f"{name}{rank}.npy"), value.numpy(), rtol=1e-5, atol=1e-7)
        # a term on rank 0's 5 rows only counts 5/8; running buffers: row-weighted mean; flags: OR
        np.testing.assert_allclose(np.load(two_ranks / f"first_rank_only{rank}.npy"), [5 / 8, 5 / 8], rtol=1e-6)
        np.testing.assert_allclose(np.load(two_ranks / f"running{rank}.npy"), [3 / 8], rtol=1e-6)
        assert np.load(two_ranks / f"seen{rank}.npy").tolist() == [1.0]


def test_two_ranks_give_the_metrics_of_one_process_and_only_rank_0_writes(two_ranks, one_process):
    _assert_close(_metrics(two_ranks / "rank0"), _metrics(one_process))
    assert _metrics(one_process)["valid"]["click"]["auc"] > 0.65  # it learned something
    assert not (two_ranks / "rank1").exists()
    written = {path.name for path in (two_ranks / "rank0").iterdir()}
    assert {"config.yaml", "features.json", "model.safetensors", "checkpoint.pt", "history.json"} <= written
    history = json.loads((two_ranks / "rank0" / "history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2]


def test_torchrun_resumes_a_two_rank_run_like_one_process(tiny, two_ranks, one_process):
    distributed, single = tiny["folder"] / "resumed_ddp", tiny["folder"] / "resumed_single"
    shutil.copytree(two_ranks / "rank0", distributed)
    shutil.copytree(one_process, single)
    api.train(load_config(tiny["config"], ["train.epochs=3"]), single, resume=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    command += ["--master_port", str(_free_ports(1)[0]), "-m", "mtlrec", "train", str(tiny["config"])]
    command += ["--output", str(distributed), "--resume", "--no-progress", "--set", "train.epochs=3"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout)  # rank 0 alone prints the metrics
    assert printed == _metrics(distributed)
    _assert_close(printed, _metrics(single))
    log = (distributed / "train.log").read_text()
    epoch_3 = re.findall(r"epoch 3 step \d+: train loss", log)
    assert len(epoch_3) == 1 and log.count("resumed from") == 1  # rank 1 does not log to the file


def _wait_all(launches: list[subprocess.Popen], logs: list[Path], timeout: float) -> None:
    """Wait for every launch; past ``timeout`` kill them all and fail with every launch's stderr."""
    deadline = time.monotonic() + timeout
    try:
        for launch in launches:
            launch.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for launch in launches:
            launch.kill()
            launch.wait()
        tails = "\n".join(f"--- {log.name}:\n{log.read_text()[-2000:]}" for log in logs)
        pytest.fail(f"the launches did not finish within {timeout} s\n{tails}")


def test_two_nodes_with_c10d_rendezvous_train_like_one_process(tiny, one_process):
    """The README's multi-node launch, with both "nodes" on 127.0.0.1: one torchrun per node.

    The c10d rendezvous numbers the nodes itself; the node that gets rank 0 prints and writes the run.
    """
    port = _free_ports(1)[0]
    folder = tiny["folder"] / "two_nodes"
    folder.mkdir()
    launches, logs = [], []
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    for node in (0, 1):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
        command += ["--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "mtlrec-test"]
        command += ["-m", "mtlrec", "train", str(tiny["config"]), "--output", str(folder / f"node{node}")]
        command += ["--no-progress"]
        logs += [folder / f"node{node}.stdout", folder / f"node{node}.stderr"]
        with logs[-2].open("w") as stdout, logs[-1].open("w") as stderr:
            launches.append(subprocess.Popen(command, stdout=stdout, stderr=stderr, env=environment))
    _wait_all(launches, logs, timeout=300)
    for launch, log in zip(launches, logs[1::2]):
        assert launch.returncode == 0, log.read_text()[-3000:]
    printed = [log.read_text() for log in logs[0::2]]
    main = [node for node, text in enumerate(printed) if text.strip()]
    assert len(main) == 1, printed  # rank 0 alone prints the metrics
    metrics = json.loads(printed[main[0]])
    _assert_close(metrics, _metrics(one_process))
    assert _metrics(folder / f"node{main[0]}") == metrics
    other = folder / f"node{1 - main[0]}"
    assert not other.exists() or not any(other.iterdir())  # the other node's rank writes nothing


LEAVE_THE_SESSION = """
import json, os, sys, torch
from mtlrec.training import make_optimizer
from mtlrec.training.distributed import distributed_session

with distributed_session("cpu") as context:
    make_optimizer([], torch.nn.Linear(3, 1).parameters())  # imports torch._dynamo for the first time
    context.all_reduce_sum(torch.ones(2))
names = [open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")]
with open(f"{sys.argv[1]}/threads{context.rank}.json", "w") as out:
    json.dump(sorted(name for name in names if "gloo" in name), out)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from /proc")
def test_leaving_the_session_stops_the_gloo_threads(tmp_path):
    """Gloo threads alive at interpreter exit can abort a rank (SIGABRT) after its work is done.

    torch.distributed.nn.functional binds the default group as its functions' default arguments when
    first imported, and torch._dynamo imports it as an optimizer is built: imported inside the session,
    it kept the group, and its threads, alive after destroy_process_group (torch 2.13).
    """
    script = tmp_path / "leave.py"
    script.write_text(LEAVE_THE_SESSION)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    command += ["--master_port", str(_free_ports(1)[0]), str(script), str(tmp_path)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        assert json.loads((tmp_path / f"threads{rank}.json").read_text()) == []
