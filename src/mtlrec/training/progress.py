"""Training progress: a tqdm bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

import torch
from tqdm import tqdm

log = logging.getLogger("mtlrec.train")

_BAR_REFRESH_STEPS = 10


class EpochProgress:
    """Reports loss and samples/s while an epoch runs.

    Args:
        epoch: 0-based epoch number.
        epochs: total epochs.
        steps: batches in the epoch.
        log_every: steps between log lines when not on a TTY.
        use_bar: show a tqdm bar (default: when stderr is a terminal).
        first: the step the epoch starts from (a run resumed inside it).
    """

    def __init__(
        self, epoch: int, epochs: int, steps: int, log_every: int, use_bar: bool | None = None, first: int = 0
    ):
        self.epoch, self.epochs, self.steps, self.log_every = epoch, epochs, steps, log_every
        use_bar = sys.stderr.isatty() if use_bar is None else use_bar
        self.bar = (
            tqdm(total=steps, initial=first, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False)
            if use_bar
            else None
        )
        self.start = time.perf_counter()
        self.samples = 0
        self.step = first

    def update(self, samples: int, loss: torch.Tensor) -> None:
        """Count one step of ``samples``; ``loss`` (a 0-d tensor) is read only when it is shown."""
        self.samples += samples
        self.step += 1
        every = _BAR_REFRESH_STEPS if self.bar is not None else self.log_every
        if self.step % every:
            return
        rate = self.samples_per_second()
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss.item():.4f}", samples_per_s=f"{rate:,.0f}", refresh=False)
            self.bar.update(self.step - self.bar.n)
        else:
            log.info(
                "epoch %d/%d step %d/%d loss %.4f %.0f samples/s",
                self.epoch + 1,
                self.epochs,
                self.step,
                self.steps,
                loss.item(),
                rate,
            )

    def samples_per_second(self) -> float:
        return self.samples / max(time.perf_counter() - self.start, 1e-9)

    def close(self) -> float:
        """Finish the bar; return the epoch's samples/s."""
        if self.bar is not None:
            self.bar.update(self.step - self.bar.n)
            self.bar.close()
        return self.samples_per_second()


class StepClock:
    """Seconds since it started, frozen by ``pause()``: the training time of the steps before an evaluation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.paused_at: float | None = None

    def pause(self) -> None:
        self.paused_at = time.perf_counter()

    def seconds(self) -> float:
        return max((self.paused_at or time.perf_counter()) - self.start, 1e-9)
