"""Cost of the explicit gradient synchronisation of data-parallel training (``GradientSync``), one JSON line.

Two gloo ranks on 127.0.0.1 (``torch.multiprocessing``) each hold the synthetic benchmark's MMoE
(20 id features with vocabularies 10 … 100k and embedding 16, 10 dense inputs, 4 experts of
[256, 128], towers [64], 2 tasks) and take steps on their half of a global batch (default 1024) of
Zipf-distributed ids. Per step we time the forward + backward on the rank's rows and, after a
barrier (so the wait for the slower rank is not counted), ``GradientSync``: one all-reduce of the
dense gradients (≈ 0.5M floats) plus the all-gather of the embedding rows the step touched. The
figures are medians over ``--steps`` steps, from rank 0.

    .venv/bin/python benchmarks/ddp_sync.py --steps 30 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtlrec.architectures.moe import MMoE
from mtlrec.model import ModelInputs, MultiTaskModel
from mtlrec.nn import EmbeddingCollection, Lookup, Table
from mtlrec.training.grad_sync import GradientSync

TASKS = ["click", "conversion"]


def _batch(rng: np.random.Generator, rows: int, vocabs: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    inputs = {f"c{i}": torch.from_numpy(np.minimum(rng.zipf(1.1, rows), v - 2) + 1) for i, v in enumerate(vocabs)}
    inputs.update({f"x{i}": torch.randn(rows) for i in range(10)})
    return inputs, torch.randint(0, 2, (rows, len(TASKS))).float()


def _inputs(vocabs: np.ndarray) -> ModelInputs:
    """20 id features (one table each, 16 wide) and 10 dense values in one group."""
    tables = [Table(f"c{i}", int(rows), 16) for i, rows in enumerate(vocabs)]
    dense = [f"x{i}" for i in range(10)]
    members = [table.name for table in tables] + dense
    embeddings = EmbeddingCollection(tables, [Lookup(table.name, table.name) for table in tables])
    return ModelInputs(embeddings, [], {}, dense, {"all": members})


def _worker(rank: int, port: int, args: argparse.Namespace) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocabs = np.round(np.geomspace(10, 100_000, 20)).astype(np.int64) + 2
    inputs = _inputs(vocabs)
    mmoe = MMoE(inputs.output_dim("all"), TASKS, num_experts=4, expert_hidden_units=[256, 128], tower_hidden_units=[64])
    model = MultiTaskModel(inputs, mmoe, ["all"])
    sync = GradientSync(model.parameters(), model.embedding_parameters(), model.buffers())
    rng = np.random.default_rng(rank)
    compute, communicate, touched = [], [], []
    for step in range(args.steps + 3):
        batch, labels = _batch(rng, args.batch_size // 2, vocabs)
        started = time.perf_counter()
        logits = model(batch)
        loss = sum(
            torch.nn.functional.binary_cross_entropy_with_logits(logits[t], labels[:, i]) for i, t in enumerate(TASKS)
        )
        model.zero_grad(set_to_none=True)
        loss.backward()
        middle = time.perf_counter()
        dist.barrier()  # time the synchronisation itself, not the wait for the slower rank
        synced = time.perf_counter()
        sync(len(labels))
        ended = time.perf_counter()
        if step >= 3:  # warm-up
            compute.append(middle - started)
            communicate.append(ended - synced)
            touched.append(model.embedding_parameters()[0].grad._nnz())
    if rank == 0:
        dense_floats = sum(p.numel() for p in sync.dense)
        result = {
            "world_size": 2,
            "global_batch": args.batch_size,
            "threads_per_rank": args.threads,
            "dense_gradient_floats": dense_floats,
            "embedding_rows_after_sync_median": int(statistics.median(touched)),
            "forward_backward_ms": round(1000 * statistics.median(compute), 2),
            "gradient_sync_ms": round(1000 * statistics.median(communicate), 2),
            "load_average_1min": float(open("/proc/loadavg").read().split()[0]),
        }
        print(json.dumps(result), flush=True)
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=1024, help="global batch (each rank takes half)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    args = parser.parse_args(argv)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_worker, args=(port, args), nprocs=2, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
