"""Learning-rate schedules as a pure function of the global step (nothing extra to checkpoint)."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate at 0-based ``step``.

    ``constant``: 1 after warm-up. ``cosine``: half-cosine decay from 1 to 0 over the steps after
    warm-up (Loshchilov & Hutter, "SGDR", ICLR 2017, without restarts). Warm-up is linear from
    1/warmup_steps to 1.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    raise ValueError(f"unknown schedule '{schedule}'; choose one of {', '.join(SCHEDULES)}")
