"""``mtlrec compare`` and ``mtlrec reproduce census``: parsers and handlers (heavy imports inside handlers)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mtlrec.app.experiments.mmoe_synthetic_cli import add_mmoe_synthetic_command

log = logging.getLogger("mtlrec")


def add_experiment_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``compare`` and ``reproduce`` subcommands to the ``mtlrec`` parser."""
    compare = commands.add_parser(
        "compare", help="MTL gain over single-task baselines: both trained over N seeds, with 95%% intervals"
    )
    compare.add_argument("config")
    compare.add_argument("--seeds", type=int, required=True, help="train seeds 0..N-1 (train.seed) for each model")
    compare.add_argument("--output", "-o", required=True, help="directory of the runs (DIR/<model>/seed<k>) and tables")
    compare.add_argument("--baseline", help="single-task config (default: derived from CONFIG, same widths and towers)")
    compare.add_argument("--metric", help="compare only this metric, e.g. auc (default: every metric)")
    compare.add_argument("--split", default="test", choices=["valid", "test"])
    _add_common(compare, "both configs (the baseline: all but model.params.* and model.architecture)")
    compare.set_defaults(handler=_compare)

    reproduce = commands.add_parser("reproduce", help="reproduce a paper's table")
    papers = reproduce.add_subparsers(dest="paper", required=True)
    census = papers.add_parser("census", help="census-income, MMoE paper Sec. 6.3 (Tables 1 and 2)")
    census.add_argument("--group", type=int, choices=[1, 2], default=1, help="task group of the MMoE paper")
    census.add_argument("--seeds", type=int, required=True, help="runs per architecture (train seeds 0..N-1)")
    census.add_argument("--output", "-o", required=True, help="directory of the runs and reproduction.{csv,md,png}")
    census.add_argument(
        "--architectures", help="comma-separated (default: all eight; single_task is always trained as the reference)"
    )
    census.add_argument("--configs", help="folder of <architecture>.yaml (default: configs/census[/group2])")
    _add_common(census, "every architecture's config")
    census.set_defaults(handler=_reproduce_census)
    add_mmoe_synthetic_command(papers)


def _add_common(parser: argparse.ArgumentParser, applies_to: str) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value of {applies_to}, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="log lines instead of progress bars")


def _compare(args: argparse.Namespace) -> int:
    from mtlrec.app import api
    from mtlrec.app.experiments.compare import format_comparison
    from mtlrec.config import load_config

    config = load_config(args.config, args.set)
    baseline = None
    if args.baseline:
        shared = [item for item in args.set if not item.strip().startswith(("model.params", "model.architecture"))]
        baseline = load_config(args.baseline, shared)
    rows = api.compare(
        config,
        args.output,
        args.seeds,
        baseline=baseline,
        metric=args.metric,
        split=args.split,
        show_progress_bar=False if args.no_progress else None,
    )
    print(format_comparison(rows))
    log.info("wrote %s/{runs.csv,comparison.csv,comparison.md}", args.output)
    return 0


def _reproduce_census(args: argparse.Namespace) -> int:
    from mtlrec.app import api

    architectures = None
    if args.architectures:
        architectures = [name.strip() for name in args.architectures.split(",") if name.strip()]
    api.reproduce_census(
        args.group,
        args.seeds,
        args.output,
        architectures=architectures,
        overrides=args.set,
        config_dir=args.configs,
        show_progress_bar=False if args.no_progress else None,
    )
    print(Path(args.output, "reproduction.md").read_text(), end="")  # the table with the label correlation
    log.info("wrote %s/{runs.csv,reproduction.csv,reproduction.md,reproduction.png}", args.output)
    return 0
