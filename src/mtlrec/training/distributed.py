"""Data-parallel training across processes started by ``torchrun`` (gloo on CPU, NCCL on GPU).

:func:`distributed_session` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and joins the process group; without ``WORLD_SIZE`` > 1 it gives a
single-process context whose collectives are no-ops, so one code path serves both.

Design: no ``DistributedDataParallel`` wrapper. Gradient-level weighting strategies take per-task
gradients with ``torch.autograd.grad`` and the embedding tables get row-sparse gradients from a
custom autograd function; DDP's reducer hooks neither well. Instead each rank runs the strategy's
``backward`` on its own rows, then :class:`mtlrec.training.grad_sync.GradientSync` all-reduces the
dense gradients and all-gathers the embedding rows, weighting every rank by its batch rows. With a
mean loss this is the gradient of the global batch, so ``train.batch_size`` keeps its meaning (the
global batch) and the learning rate needs no scaling.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mtlrec.data.batch import EncodedData
from mtlrec.data.sources import share
from mtlrec.errors import ConfigError, DistributedError
from mtlrec.evaluation import compute_metrics, evaluate, predict_scores
from mtlrec.evaluation.evaluator import ScoreLink
from mtlrec.training.grad_sync import gather_rows

log = logging.getLogger("mtlrec.train")

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and logs at INFO."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (moved to the communication device and back)."""
        if self.enabled:
            moved = tensor.to(self.device)
            dist.all_reduce(moved)
            tensor.copy_(moved)
        return tensor

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's ``text`` on every rank (others pass None)."""
        if not self.enabled:
            return text or ""
        data = (text or "").encode() if self.is_main else b""
        size = torch.tensor([len(data)], dtype=torch.long, device=self.device)
        dist.broadcast(size, src=0)
        buffer = torch.empty(int(size.item()), dtype=torch.uint8, device=self.device)
        if self.is_main and data:
            buffer.copy_(torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy()))
        dist.broadcast(buffer, src=0)
        return bytes(buffer.cpu().numpy()).decode()

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if self.enabled:
            with torch.no_grad():
                for tensor in module.state_dict().values():
                    dist.broadcast(tensor, src=0)

    def all_gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's (N_r, ...) tensor along dim 0, in rank order (N_r may differ)."""
        if not self.enabled:
            return tensor
        return gather_rows(tensor.to(self.device)).to(tensor.device)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``; ``cuda`` requires CUDA."""
    if name not in DEVICES:
        raise ConfigError(f"train.device: {name!r} is not one of {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device: cuda, but torch sees no CUDA device here; use auto or cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _import_before_the_group() -> None:
    """Import ``torch.distributed.nn.functional`` now, while no process group exists.

    Its functions take ``group=group.WORLD`` as default arguments, evaluated when it is first
    imported (``torch._dynamo`` imports it, and building an optimizer imports that): imported while a
    group exists, it keeps 10 references to that group, which ``destroy_process_group`` cannot drop
    (torch 2.13). The group then outlives the session and its gloo threads still run at interpreter
    exit, where one of them can free a tensor during finalisation and abort the process (SIGABRT)
    after all its work is done; under torchrun the other nodes then wait 300 s in the agents' exit
    barrier.
    """
    import torch.distributed.nn.functional  # noqa: F401


@contextlib.contextmanager
def distributed_session(device: str = "auto", timeout_minutes: float = 30.0) -> Iterator[DistributedContext]:
    """The process's :class:`DistributedContext`; joins (and finally leaves) torchrun's process group.

    Raises:
        DistributedError: torchrun's environment is incomplete or the rendezvous fails.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank)
    if world_size <= 1:
        yield DistributedContext(device=target)
        return
    if target.type == "cuda":
        torch.cuda.set_device(target)
    created = not dist.is_initialized()
    if created:
        missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
        if missing:
            raise DistributedError(f"WORLD_SIZE={world_size} but {', '.join(missing)} unset; start with torchrun")
        backend = "nccl" if target.type == "cuda" else "gloo"
        _import_before_the_group()
        try:
            dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(
                f"cannot join the {backend} process group (rank {rank} of {world_size}): {exc}"
            ) from None
    try:
        yield DistributedContext(rank, world_size, local_rank, target)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def main_rank_logging(context: DistributedContext) -> Iterator[None]:
    """On ranks other than 0, let only warnings and errors of ``mtlrec`` through."""
    logger = logging.getLogger("mtlrec")
    previous = logger.level
    if not context.is_main:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def evaluate_sharded(
    model: nn.Module,
    data: EncodedData,
    links: dict[str, ScoreLink],
    metric_names: dict[str, list[str]],
    batch_size: int,
    context: DistributedContext,
) -> dict[str, dict[str, float]]:
    """Metrics on every row of ``data``: each rank scores its contiguous share, the scores are
    all-gathered, and every rank computes the same metrics from the same arrays."""
    if not context.enabled:
        return evaluate(model, data, links, metric_names, batch_size)
    if not data.labels:
        raise ValueError("evaluation needs labels")
    start, stop = share(len(data), context.rank, context.world_size)
    local = predict_scores(model, data.slice(start, stop), links, batch_size)
    scores = {task: context.all_gather_rows(torch.from_numpy(values)).numpy() for task, values in local.items()}
    labels = {task: links[task].original(data.labels[task]).numpy() for task in data.task_names}
    return compute_metrics(labels, scores, metric_names, data.groups)
