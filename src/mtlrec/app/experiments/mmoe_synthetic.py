"""The MMoE paper's synthetic experiment (Figure 4): Shared-Bottom, OMoE and MMoE vs task correlation.

Ma, Zhao, Yi, Chen, Hong, Chi, "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, doi:10.1145/3219819.3220007, Section 5.1. Every run r has its own
synthetic data (``mtlrec.synth.mmoe_synthetic``: its own u1, u2, α, β, x, ε) and its own
initialisations; every model is trained with Adam on the MSE averaged over the two tasks, and the
held-out MSE (both tasks' mean) is recorded every ``eval_every`` steps.

Choices the paper leaves open (each a setting): the data constants are the PLE paper's (c = 1,
m = 10, d = 512, α, β ~ N(0, 1); Tang et al., RecSys 2020, §5.2.1) and ε has std 0.1. Training data
is an endless stream: each step draws ``batch_size`` new rows, so every row is seen once (10k steps
of 128 rows ≈ the PLE paper's 1.4M rows per correlation) and the training loss estimates the
expected loss; the held-out loss is measured on ``test_samples`` rows drawn first. Comparisons are
paired: within a run, all models read the same rows, and the correlations share u1, u2, α, β, x and
ε (only w2 turns, ``draw_task_family``), so run-to-run differences in the difficulty of the data
cancel out of every comparison. The paper grid-searched the learning rate over {1e-4, 1e-3, 1e-2};
several ``learning_rates`` train each model with each, and the reported curve per (model, p) is
the one with the lowest mean final loss.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mtlrec.app.experiments.mmoe_synthetic_models import MODELS, ModelSizes, RunEnsemble, build_model
from mtlrec.errors import ConfigError
from mtlrec.synth.mmoe_synthetic import NOISE_STD, PLE_NUM_SINES, PLE_SCALE, draw_task_family, sample_family

log = logging.getLogger("mtlrec")

#: Final average loss at 10k steps read off the MMoE paper's Figure 4 (≈, 200 runs; d = 100 and
#: unpublished c, m, α, β, so only the ordering and the gaps carry over). Source: PUBLISHED.md B1.1.
PAPER_FINAL_LOSS: dict[float, dict[str, float]] = {
    0.5: {"shared_bottom": 0.255, "omoe": 0.145, "mmoe": 0.083},
    0.9: {"shared_bottom": 0.22, "omoe": 0.12, "mmoe": 0.082},
    1.0: {"shared_bottom": 0.20, "omoe": 0.078, "mmoe": 0.072},
}
#: Training rows are drawn this many steps at a time (part of what fixes the data, with the seed).
BLOCK_STEPS = 10
#: The learning rates the paper grid-searched (Section 5.1).
PAPER_LEARNING_RATES = (1e-4, 1e-3, 1e-2)


@dataclass(frozen=True)
class SyntheticExperiment:
    """Settings of one reproduction; the defaults finish in minutes on two CPU cores (see the README)."""

    correlations: tuple[float, ...] = (0.5, 0.9, 1.0)
    models: tuple[str, ...] = MODELS
    runs: int = 8
    steps: int = 5000
    eval_every: int = 100
    batch_size: int = 128
    learning_rates: tuple[float, ...] = (1e-3,)
    test_samples: int = 2048
    sizes: ModelSizes = field(default_factory=ModelSizes)
    scale: float = PLE_SCALE
    num_sines: int = PLE_NUM_SINES
    noise_std: float = NOISE_STD
    seed: int = 0

    def validate(self) -> None:
        """Raise ConfigError naming the first bad setting."""
        positive = {name: getattr(self, name) for name in ("runs", "steps", "eval_every", "batch_size", "test_samples")}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        unknown = sorted(set(self.models) - set(MODELS))
        if unknown or not self.models:
            raise ConfigError(f"models: unknown {unknown or 'empty list'}; choose from {', '.join(MODELS)}")
        if not self.correlations or any(not -1.0 <= p <= 1.0 for p in self.correlations):
            raise ConfigError(f"correlations must be in [-1, 1], got {list(self.correlations)}")
        for name in ("correlations", "learning_rates"):
            values = getattr(self, name)
            if len(set(values)) < len(values):
                raise ConfigError(f"{name}: a value is repeated in {list(values)}")
        if not self.learning_rates or any(lr <= 0 for lr in self.learning_rates):
            raise ConfigError(f"learning rates must be > 0, got {list(self.learning_rates)}")

    def record_steps(self) -> list[int]:
        """Steps at which the held-out loss is recorded: 0, every ``eval_every``, and the last."""
        return sorted({0, *range(self.eval_every, self.steps + 1, self.eval_every), self.steps})


@dataclass
class Curves:
    """Held-out MSE per (model, learning rate, correlation): an array (runs, len(steps)).

    Attributes:
        steps: the recorded steps.
        loss: {(model, lr, correlation): (R, S) held-out loss}.
        train_loss: same keys: mean mini-batch loss over the steps since the previous record (NaN at 0).
        seconds: wall time of the whole experiment.
        cpu_seconds: its CPU time (this process, all threads).
    """

    steps: list[int]
    loss: dict[tuple[str, float, float], np.ndarray] = field(default_factory=dict)
    train_loss: dict[tuple[str, float, float], np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def best_learning_rate(self, model: str, correlation: float) -> float:
        """The learning rate with the lowest final loss averaged over runs (the paper's grid search)."""
        candidates = {
            lr: curves[:, -1].mean() for (m, lr, p), curves in self.loss.items() if (m, p) == (model, correlation)
        }
        return min(candidates, key=lambda lr: (np.nan_to_num(candidates[lr], nan=np.inf), lr))


class _Streams:
    """Per run: the family of ground truths (one per correlation) and its generator of rows.

    Rows are drawn in blocks of ``BLOCK_STEPS`` steps, so the data of (run, p) depend on the seed and
    the batch size only: not on ``eval_every``, nor on which other correlations are run.
    """

    def __init__(self, settings: SyntheticExperiment):
        self.settings = settings
        self.generators = [np.random.default_rng([settings.seed, run]) for run in range(settings.runs)]
        sizes = settings.sizes
        options = (sizes.input_dim, settings.scale, settings.num_sines, settings.noise_std)
        self.families = [draw_task_family(settings.correlations, rng, *options) for rng in self.generators]

    def draw(self, rows: int) -> tuple[torch.Tensor, dict[float, torch.Tensor]]:
        """(R, rows, d) inputs and {correlation: (R, rows, 2) labels}, fresh rows for every run."""
        drawn = [sample_family(family, rows, rng) for family, rng in zip(self.families, self.generators)]
        x = torch.from_numpy(np.stack([x for x, _ in drawn]))
        labels = {
            p: torch.from_numpy(np.stack([ys[index] for _, ys in drawn]))
            for index, p in enumerate(self.settings.correlations)
        }
        return x, labels


def run_experiment(settings: SyntheticExperiment, progress: Callable[[str], None] | None = None) -> Curves:
    """Train every model at every correlation over ``settings.runs`` runs; return the loss curves.

    All (model, learning rate, correlation) ensembles step together on the same rows, one step at a
    time; ``progress`` gets a line about every 10% of the steps.
    """
    settings.validate()
    start, cpu_start = time.perf_counter(), time.process_time()
    curves = Curves(steps=settings.record_steps())
    streams = _Streams(settings)
    test_x, test_y = streams.draw(settings.test_samples)
    keys = [(m, lr, p) for p in settings.correlations for m in settings.models for lr in settings.learning_rates]
    ensembles = {key: _ensemble(settings, key[0]) for key in keys}
    optimizers = {key: torch.optim.Adam(ensembles[key].parameters(), lr=key[1], fused=True) for key in keys}
    for key in keys:
        curves.loss[key] = np.full((settings.runs, len(curves.steps)), np.nan)
        curves.train_loss[key] = np.full((settings.runs, len(curves.steps)), np.nan)
        curves.loss[key][:, 0] = _evaluate(ensembles[key], test_x, test_y[key[2]])
    sums = {key: torch.zeros(settings.runs) for key in keys}
    column, since = 1, 0
    for step in range(settings.steps):
        offset = (step % BLOCK_STEPS) * settings.batch_size
        if offset == 0:
            block_x, block_y = streams.draw(BLOCK_STEPS * settings.batch_size)
        rows = slice(offset, offset + settings.batch_size)
        for key in keys:
            losses = ensembles[key].losses(block_x[:, rows], block_y[key[2]][:, rows])  # (R,)
            optimizers[key].zero_grad(set_to_none=True)
            losses.sum().backward()  # each run's gradient is its own loss's
            optimizers[key].step()
            sums[key] += losses.detach()
        since += 1
        if step + 1 == curves.steps[column]:
            for key in keys:
                curves.train_loss[key][:, column] = (sums[key] / since).numpy()
                curves.loss[key][:, column] = _evaluate(ensembles[key], test_x, test_y[key[2]])
                sums[key].zero_()
            column, since = column + 1, 0
        if progress is not None and (step + 1) % max(1, settings.steps // 10) == 0:
            progress(f"step {step + 1}/{settings.steps}: {time.perf_counter() - start:.0f} s")
    curves.seconds, curves.cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return curves


def _ensemble(settings: SyntheticExperiment, model: str) -> RunEnsemble:
    """R models with independent, seeded initialisations (the same for every learning rate and correlation)."""
    with torch.random.fork_rng(devices=[]):
        members = []
        for run in range(settings.runs):
            torch.manual_seed(
                int(np.random.SeedSequence([settings.seed, run, MODELS.index(model)]).generate_state(1)[0])
            )
            members.append(build_model(model, settings.sizes))
    return RunEnsemble(members)


@torch.no_grad()
def _evaluate(ensemble: RunEnsemble, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(R,) held-out MSE averaged over both tasks."""
    return ensemble.losses(x, y).numpy().astype(np.float64)
