"""Tests for the single-process side of mtlrec.training.distributed: devices, environment checks, no-ops."""

from __future__ import annotations

import pytest
import torch

from mtlrec.errors import ConfigError, DistributedError
from mtlrec.training.distributed import DistributedContext, distributed_session, resolve_device


def test_auto_is_the_cpu_without_cuda_and_cuda_without_a_gpu_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="train.device: cuda, but torch sees no CUDA device"):
        resolve_device("cuda")


def test_auto_takes_the_local_ranks_gpu_when_there_are_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resolve_device("auto", local_rank=5) == torch.device("cuda", 1)
    assert resolve_device("cpu", local_rank=5) == torch.device("cpu")


def test_without_torchrun_the_session_is_one_process_and_collectives_are_no_ops(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed_session("cpu") as context:
        assert (context.rank, context.world_size, context.is_main, context.enabled) == (0, 1, True, False)
        values = torch.tensor([1.0, 2.0])
        assert context.all_reduce_sum(values) is values and values.tolist() == [1.0, 2.0]
        assert context.broadcast_text("features") == "features"
        assert context.all_gather_rows(values) is values
    assert not DistributedContext(rank=1, world_size=2).is_main


def test_an_incomplete_torchrun_environment_is_an_error_naming_what_is_missing(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(DistributedError, match="MASTER_ADDR, MASTER_PORT unset; start with torchrun"):
        with distributed_session("cpu"):
            pass
