"""Per-step cost of every weighting strategy against ``equal``, as one JSON line.

The model is the 1M-synthetic benchmark's MMoE (input width 330, 4 experts of [256, 128], towers
[64], 3 binary tasks, batch 1024) fed random data; a training step is forward, task losses,
``strategy.backward`` and an Adam step over the model and strategy parameters. The input is a leaf
that requires grad, standing in for the embedding output, so every backward also computes the
input gradient that real runs send to the embedding tables (the table update itself is left out).

Strategies are timed round-robin (``--rounds`` rounds of ``--steps`` steps each, after
``--warmup`` steps per strategy), so load from other processes spreads over all of them; the figure
is the median step time. Gradient-level strategies are also timed on the shared representation
(``name@representation``: per-task gradients of MMoE's expert outputs, MGDA-UB style). Usage:

    .venv/bin/python benchmarks/weighting_cost.py --rounds 20 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import statistics
import sys
import time

import torch
from torch import nn

from mtlrec.architectures.moe import MMoE
from mtlrec.weighting import WEIGHTINGS, GradientWeighting, WeightingStrategy

TASKS = ["click", "conversion", "like"]


def make_strategy(label: str) -> WeightingStrategy:
    """``name`` or ``name@representation`` (a gradient-level strategy on MMoE's expert outputs)."""
    name, _, target = label.partition("@")
    cls = WEIGHTINGS[name]
    kwargs = {"weights": [1.0] * len(TASKS)} if "weights" in inspect.signature(cls.__init__).parameters else {}
    if target:
        kwargs["on"] = target
    return cls(num_tasks=len(TASKS), **kwargs)


class Runner:
    """One model copy, its strategy and optimizer, and a fixed set of random batches."""

    def __init__(self, model: MMoE, strategy: WeightingStrategy, batches: list[tuple[torch.Tensor, torch.Tensor]]):
        self.model, self.strategy, self.batches = model, strategy, batches
        self.shared = list(model.shared_parameters())
        self.optimizer = torch.optim.Adam([*model.parameters(), *strategy.parameters()], lr=1e-3)
        self.step_index = 0

    def step(self) -> None:
        inputs, labels = self.batches[self.step_index % len(self.batches)]
        self.step_index += 1
        inputs = inputs.detach().requires_grad_(True)
        logits = self.model(inputs)
        losses = torch.stack(
            [nn.functional.binary_cross_entropy_with_logits(logits[t], labels[:, i]) for i, t in enumerate(TASKS)]
        )
        self.optimizer.zero_grad()
        self.strategy.backward(losses, self.shared, representation=self.model.last_representation)
        self.optimizer.step()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=1, help="steps per strategy and round")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--strategies", nargs="*", default=sorted(WEIGHTINGS))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = ["equal"] + [name for name in args.strategies if name != "equal"]
    names += [f"{name}@representation" for name in args.strategies if issubclass(WEIGHTINGS[name], GradientWeighting)]

    torch.manual_seed(0)
    model = MMoE(330, TASKS, num_experts=4, expert_hidden_units=[256, 128], tower_hidden_units=[64])
    generator = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randn(args.batch_size, 330, generator=generator),
            torch.randint(0, 2, (args.batch_size, 3), generator=generator).float(),
        )
        for _ in range(4)
    ]
    runners = {name: Runner(copy.deepcopy(model), make_strategy(name), batches) for name in names}
    for runner in runners.values():
        for _ in range(args.warmup):
            runner.step()
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, runner in runners.items():
            for _ in range(args.steps):
                started = time.perf_counter()
                runner.step()
                times[name].append(time.perf_counter() - started)
    equal = statistics.median(times["equal"])
    result = {
        "model": "MMoE(330, 3 tasks, 4 experts [256, 128], towers [64])",
        "shared_parameters": sum(p.numel() for p in model.shared_parameters()),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "steps_per_strategy": args.rounds * args.steps,
        "ms_per_step": {name: round(1e3 * statistics.median(values), 2) for name, values in times.items()},
        "ratio_to_equal": {name: round(statistics.median(values) / equal, 2) for name, values in times.items()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
