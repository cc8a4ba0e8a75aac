"""Learning-rate schedules against their formulas, and their effect on the optimizers."""

from __future__ import annotations

import math

import pytest
import torch

from mtlrec.training.optim import make_optimizer
from mtlrec.training.schedule import lr_factor


def test_constant_is_one_after_warmup():
    assert [lr_factor("constant", s, 100, warmup_steps=4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_follows_the_half_cosine():
    total = 50
    for step in range(total):
        assert lr_factor("cosine", step, total) == pytest.approx(0.5 * (1 + math.cos(math.pi * step / total)))
    assert lr_factor("cosine", 0, total) == 1.0
    assert lr_factor("cosine", total, total) == pytest.approx(0.0)
    assert lr_factor("cosine", total + 7, total) == pytest.approx(0.0)


def test_cosine_starts_after_warmup():
    assert lr_factor("cosine", 9, 110, warmup_steps=10) == 1.0
    assert lr_factor("cosine", 10, 110, warmup_steps=10) == 1.0
    assert lr_factor("cosine", 60, 110, warmup_steps=10) == pytest.approx(0.5)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor("linear", 0, 10)


def test_scale_lr_scales_every_group_from_its_initial_lr():
    embedding = torch.nn.Parameter(torch.zeros(10, 2))
    dense = torch.nn.Parameter(torch.zeros(3))
    optimizer = make_optimizer([embedding], [dense], lr=0.01, embedding_lr=0.1)
    optimizer.scale_lr(0.5)
    optimizer.scale_lr(0.5)  # from the initial rate, not compounded
    assert optimizer.optimizers["dense"].param_groups[0]["lr"] == pytest.approx(0.005)
    assert optimizer.optimizers["embedding"].param_groups[0]["lr"] == pytest.approx(0.05)
