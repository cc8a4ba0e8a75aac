"""``mtlrec tune CONFIG --output DIR --trials N [--workers K] [--seeds 0,1,2,3,4]``."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator


def add_tune_command(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser(
        "tune",
        help="search hyper-parameters over the config's tune.space (Optuna TPE, pruned on step-level validation)",
    )
    tune.add_argument("config")
    tune.add_argument("--output", "-o", required=True, help="search directory; run again to continue a search")
    tune.add_argument("--trials", type=int, help="trials in the whole search (default: tune.trials)")
    tune.add_argument("--workers", type=int, default=1, help="processes training trials in parallel (default: 1)")
    tune.add_argument("--threads", type=int, help="torch threads per worker (default: the cores shared out)")
    tune.add_argument(
        "--seeds", type=_seeds, default=(), metavar="0,1,2", help="retrain the best config once per seed, mean ± 95%%"
    )
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    tune.add_argument("--overwrite", action="store_true", help="start afresh where another config's search is")
    tune.set_defaults(handler=_tune)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 0,1,2; got {text!r}") from None


def _tune(args: argparse.Namespace) -> int:
    import optuna

    from mtlrec.app.tune.search import tune
    from mtlrec.app.tune.study import search_messages_only
    from mtlrec.errors import ConfigError

    if args.workers < 1 or (args.trials is not None and args.trials < 0):
        raise ConfigError("--workers must be at least 1 and --trials at least 0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with _console_filter(search_messages_only):
        result = tune(
            args.config, args.output, args.set, args.trials, args.workers, args.threads, args.seeds, args.overwrite
        )
    best = result["best"]
    print(f"best: trial {best['trial']}, validation criterion {best['value']:.5f}; config {best['config']}")
    return 0


@contextlib.contextmanager
def _console_filter(keep: logging.Filter) -> Iterator[None]:
    """While a search runs, the console shows its own lines and warnings; each trial logs to its train.log."""
    handlers = [h for h in logging.getLogger("mtlrec").handlers if not isinstance(h, logging.FileHandler)]
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)
