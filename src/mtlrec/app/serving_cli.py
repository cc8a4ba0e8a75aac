"""``mtlrec serve`` and ``mtlrec tune-fusion``: parsers and handlers (heavy imports inside handlers)."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger("mtlrec")


def add_serving_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``serve`` and ``tune-fusion`` subcommands to the ``mtlrec`` parser."""
    serve = commands.add_parser("serve", help="HTTP scoring service for an artifact (mtlrec export): POST /v1/predict")
    serve.add_argument("artifact_dir")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--threads", type=int, help="model runtime threads (default: every core)")
    # defaults live in mtlrec.serving.http (not imported here: it loads the model runtime)
    serve.add_argument("--max-candidates", type=int, help="candidates per request; more is a 413 (default 1000)")
    serve.add_argument("--max-body-bytes", type=int, help="request body bytes; more is a 413 (default 4 MiB)")
    serve.add_argument(
        "--ignore-unknown-columns", action="store_true", help="drop request keys that are not inputs (default: 422)"
    )
    serve.add_argument(
        "--max-batch-rows",
        type=int,
        metavar="N",
        help="dynamic batching: score concurrent requests in one model call of up to N candidates; "
        "0 turns batching off (default 1000)",
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        metavar="MS",
        help="how long a batch's first request waits for others; 0 merges only requests already waiting, "
        "adding no latency (default 0)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request (uvicorn's access log)")
    serve.set_defaults(handler=_serve)

    tune = commands.add_parser(
        "tune-fusion", help="sweep fusion weights on labelled data: Pareto front of the tasks' AUC/GAUC, pick one"
    )
    tune.add_argument("run_dir")
    tune.add_argument("--data", required=True, help="labelled file to score on (e.g. the validation split)")
    tune.add_argument(
        "--output", "-o", help="folder for all.csv, pareto.csv, pareto.png, fusion.yaml (default: RUN_DIR/fusion)"
    )
    tune.add_argument("--tasks", help="comma-separated tasks to fuse (default: every binary and regression task)")
    tune.add_argument("--grid", type=int, default=10, metavar="STEPS", help="weights in steps of 1/STEPS (default 10)")
    tune.add_argument(
        "--kind",
        action="append",
        choices=["weighted_sum", "weighted_product"],
        dest="kinds",
        help="fusion kind to sweep (repeatable; default both, products only for positive scores)",
    )
    tune.add_argument("--group-by", help="group column for GAUC, e.g. user_id (default: evaluation.group_by)")
    tune.add_argument("--maximize", help="criterion, e.g. click.gauc (default: the mean of all metrics)")
    tune.add_argument(
        "--constraint",
        action="append",
        default=[],
        dest="constraints",
        metavar="CONDITION",
        help="e.g. 'conversion.auc >= 0.8' (repeatable)",
    )
    tune.set_defaults(handler=_tune_fusion)


def _serve(args: argparse.Namespace) -> int:
    from mtlrec.serving.http import serve

    limits = {
        "max_candidates": args.max_candidates,
        "max_body_bytes": args.max_body_bytes,
        "max_batch_rows": args.max_batch_rows,
        "batch_wait_ms": args.batch_wait_ms,
    }
    serve(
        args.artifact_dir,
        host=args.host,
        port=args.port,
        threads=args.threads,
        ignore_unknown_columns=args.ignore_unknown_columns,
        access_log=args.access_log,
        log_level="warning" if args.quiet else "info",
        **{name: value for name, value in limits.items() if value is not None},
    )
    return 0


def _tune_fusion(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mtlrec.app.fusion_tuning import tune_fusion
    from mtlrec.tuning import fusion_config

    tasks = [task.strip() for task in args.tasks.split(",")] if args.tasks else None
    output = args.output or Path(args.run_dir) / "fusion"
    result = tune_fusion(
        args.run_dir, args.data, output, tasks, args.grid, args.kinds, args.group_by, args.maximize, args.constraints
    )
    summary = {
        "settings": len(result.sweep.fusions),
        "pareto_front": int(result.sweep.front.sum()),
        "files": {name: str(path) for name, path in result.files.items()},
        "choice": result.choice.message,
    }
    if result.choice.index is not None:
        summary["chosen"] = fusion_config(result.sweep.fusions[result.choice.index])
        summary["metrics"] = result.sweep.metrics(result.choice.index)
    print(json.dumps(summary, indent=1))
    if result.choice.index is None:
        log.error("no fusion chosen: %s", result.choice.message)
        return 1
    print("\n# paste into the run's config:\n" + (result.files["fusion"].read_text()))
    return 0
