"""``mtlrec reproduce mmoe-synthetic``: parser and handler (torch is imported inside the handler)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from mtlrec.errors import ConfigError

log = logging.getLogger("mtlrec")


def add_mmoe_synthetic_command(papers: argparse._SubParsersAction) -> None:
    """Add ``mmoe-synthetic`` to the ``reproduce`` subcommands; defaults are ``SyntheticExperiment``'s."""
    command = papers.add_parser(
        "mmoe-synthetic", help="synthetic regression tasks of the MMoE paper (Sec. 5, Figure 4): SB, OMoE, MMoE"
    )
    command.add_argument("--output", "-o", default="runs/mmoe_synthetic", help="folder of curves.csv, final.csv, ...")
    command.add_argument("--runs", type=int, help="independent runs (data + initialisation) per model (default: 8)")
    command.add_argument("--steps", type=int, help="Adam steps per run (default: 5000; the paper: 10000)")
    command.add_argument("--correlations", help="task correlations p, comma-separated (default: 0.5,0.9,1.0)")
    command.add_argument(
        "--lr", help="learning rate, or a comma-separated grid: the best mean final loss is reported (default: 1e-3)"
    )
    command.add_argument("--models", help="comma-separated subset of shared_bottom,omoe,mmoe (default: all three)")
    command.add_argument("--batch-size", type=int, help="fresh rows per step (default: 128)")
    command.add_argument("--eval-every", type=int, help="steps between held-out evaluations (default: 100)")
    command.add_argument("--test-samples", type=int, help="held-out rows per run (default: 2048)")
    command.add_argument("--seed", type=int, default=0, help="seed of the data and the initialisations")
    command.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default: 1; on a busy 2-core machine 2 threads ran 5-20x slower)",
    )
    command.set_defaults(handler=_reproduce_mmoe_synthetic)


def _numbers(option: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise ConfigError(f"{option}: expected numbers separated by commas, got {text!r}") from None


def settings_from_args(args: argparse.Namespace) -> Any:
    """The ``SyntheticExperiment`` of the command line (options left out keep their defaults)."""
    from mtlrec.app.experiments.mmoe_synthetic import SyntheticExperiment

    options: dict[str, Any] = {"seed": args.seed}
    for name in ("runs", "steps", "batch_size", "eval_every", "test_samples"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.correlations is not None:
        options["correlations"] = _numbers("--correlations", args.correlations)
    if args.lr is not None:
        options["learning_rates"] = _numbers("--lr", args.lr)
    if args.models is not None:
        options["models"] = tuple(name.strip() for name in args.models.split(",") if name.strip())
    settings = SyntheticExperiment(**options)
    settings.validate()
    return settings


def _reproduce_mmoe_synthetic(args: argparse.Namespace) -> int:
    import torch

    from mtlrec.app.experiments.mmoe_synthetic import run_experiment
    from mtlrec.app.experiments.mmoe_synthetic_output import LABELS, format_checks, ordering_checks, write_outputs

    settings = settings_from_args(args)
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    log.info(
        "mmoe-synthetic: %d runs x %d steps, correlations %s, models %s, learning rates %s",
        settings.runs,
        settings.steps,
        list(settings.correlations),
        list(settings.models),
        list(settings.learning_rates),
    )
    curves = run_experiment(settings, progress=log.info)
    rows = write_outputs(curves, settings, args.output)
    print(f"final held-out MSE after {settings.steps} steps, mean ± std over {settings.runs} runs (paper: Figure 4, ≈)")
    for row in rows:
        print(
            f"  p={row['correlation']:<4g} {LABELS[row['model']]:<14} lr {row['learning_rate']:<7g} "
            f"{row['final_loss_mean']:.4f} ± {row['final_loss_std']:.4f}   paper ≈{row['paper_final_loss']:g}"
        )
    print(format_checks(ordering_checks(curves, settings), settings.runs))
    log.info("wrote %s/{curves.csv,final.csv,figure4.png,settings.json}", args.output)
    return 0
