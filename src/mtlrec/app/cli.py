"""Command line: ``mtlrec train | evaluate | predict | summarize | compare | reproduce | serve | tune-fusion``,
``tune | list | schema | data | convert``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from mtlrec.app.experiments.cli import add_experiment_commands
from mtlrec.app.serving_cli import add_serving_commands
from mtlrec.app.tune.cli import add_tune_command
from mtlrec.errors import MtlrecError

log = logging.getLogger("mtlrec")

#: Packages of the optional extras (pyproject.toml), by the import name a missing one raises.
OPTIONAL_PACKAGES = {
    "onnx": "serve",
    "onnxscript": "serve",
    "onnxruntime": "serve",
    "fastapi": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "orjson": "serve",
    "matplotlib": "report",
    "optuna": "tune",
    "sklearn": "tune",
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.quiet)
    try:
        return args.handler(args)
    except MtlrecError as exc:
        print(f"mtlrec: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL_PACKAGES:
            raise
        extra = OPTIONAL_PACKAGES[exc.name]
        print(
            f"mtlrec: error: `mtlrec {args.command}` needs the package '{exc.name}' of the optional '{extra}' "
            f"extra; install it with: pip install 'mtlrec[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:  # a path that cannot be written or read (a file where a directory goes, no permission)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mtlrec: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mtlrec: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtlrec", description="Multi-task learning for recommender ranking.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train and evaluate a model from a YAML config")
    train.add_argument("config")
    train.add_argument("--output", "-o", required=True, help="run directory")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=3 (repeatable)",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run in --output")
    train.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a run's best model on a labelled file")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--output", help="also write the metrics to this JSON file")
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser(
        "predict", help="score a file with a run's best model or an exported artifact (one column per task)"
    )
    predict.add_argument("run_dir", metavar="PATH", help="a run directory, or an artifact directory (mtlrec export)")
    predict.add_argument("--data", required=True)
    predict.add_argument("--output", "-o", required=True, help=".parquet or .csv")
    predict.add_argument("--threads", type=int, help="model threads (default: every core for an artifact)")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    predict.set_defaults(handler=_predict)

    export = commands.add_parser(
        "export", help="export a run's best model, encoders, tasks and fused score as an artifact (ONNX/TorchScript)"
    )
    export.add_argument("run_dir")
    export.add_argument("--output", "-o", required=True, help="artifact directory to create")
    export.add_argument(
        "--format",
        choices=["onnx", "torchscript"],
        dest="model_format",
        help="model file format (default: onnx; torchscript with --quantize bf16)",
    )
    export.add_argument("--fusion", metavar="FORMULA", help="fused score over task names; overrides serving.fusion")
    export.add_argument("--data", help="rows for the parity check (default: the run's validation split)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing artifact")
    export.add_argument(
        "--quantize",
        choices=["int8", "bf16"],
        help="int8 (ONNX Runtime dynamic quantization, --format onnx) or bf16 (--format torchscript); "
        "checked against the fp32 model within a looser, declared tolerance (default: fp32)",
    )
    export.add_argument(
        "--accuracy-rows",
        type=int,
        default=100_000,
        metavar="N",
        help="held-out rows (test split, else validation) on which the artifact's and the fp32 model's AUC "
        "are recorded in the manifest (default: 100000; 0: skip)",
    )
    export.set_defaults(handler=_export)

    summarize = commands.add_parser("summarize", help="table of several runs' metrics")
    summarize.add_argument("run_dirs", nargs="+")
    summarize.add_argument("--split", default="test", choices=["valid", "test"])
    summarize.add_argument("--metric", action="append", help="only this metric (repeatable); default: all")
    summarize.add_argument("--output", help="also write PREFIX.csv and PREFIX.md")
    summarize.set_defaults(handler=_summarize)

    report = commands.add_parser("report", help="HTML page with plots of a run (learning curves, gates, ...)")
    report.add_argument("run_dir")
    report.add_argument("--baseline", action="append", default=[], metavar="RUN_DIR", help="compare with (repeatable)")
    report.add_argument("--output", "-o", help="the HTML file (default: RUN_DIR/report/index.html); PNGs go beside it")
    report.set_defaults(handler=_report)

    listing = commands.add_parser("list", help="architectures, weightings, losses, metrics, feature kinds, encoders")
    listing.set_defaults(handler=_list)
    commands.add_parser("schema", help="JSON Schema of the config").set_defaults(handler=_schema)
    _add_data_commands(commands)
    _add_convert_command(commands)
    add_experiment_commands(commands)
    add_serving_commands(commands)
    add_tune_command(commands)
    return parser


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    """``mtlrec data synth-cascade``; options left out take the defaults of ``CascadeSettings``."""
    data = commands.add_parser("data", help="make data files (synthetic funnels with a known ground truth)")
    kinds = data.add_subparsers(dest="data_command", required=True)
    synth = kinds.add_parser(
        "synth-cascade", help="click → conversion → ... funnel; oracle metrics go to OUTPUT.meta.json"
    )
    synth.add_argument("--rows", type=int, required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--output", "-o", required=True, help=".csv, .csv.gz, .parquet or .pq")
    synth.add_argument("--stages", help="label names of the funnel stages in order (default: click,conversion)")
    synth.add_argument("--rates", help="target P(stage | previous stage) per stage (default: 0.04,0.1,0.3,0.3...)")
    synth.add_argument("--domains", type=int, dest="num_domains", metavar="K", help="add a domain column (K domains)")
    synth.add_argument("--categorical", type=int, dest="num_categorical", metavar="N", help="id columns (default: 8)")
    synth.add_argument("--numeric", type=int, dest="num_numeric", metavar="N", help="numeric columns (default: 4)")
    synth.add_argument("--max-cardinality", type=int, help="ids of the largest categorical column (default: 100000)")
    synth.add_argument("--stage-correlation", type=float, help="correlation of the stages' effects (default: 0.6)")
    synth.add_argument("--signal", type=float, help="standard deviation of the true logits (default: 1.2)")
    synth.add_argument("--id-type", choices=["int", "str"], help="type of the id columns (default: int)")
    synth.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows generated and written at a time")
    synth.add_argument("--with-probabilities", action="store_true", help="also write the true p_<stage> columns")
    synth.add_argument("--oracle-rows", type=int, default=10_000_000, help="oracle metrics on the first N rows")
    synth.set_defaults(handler=_synth_cascade)


def _add_convert_command(commands: argparse._SubParsersAction) -> None:
    """``mtlrec convert PIPELINE.config --output CONFIG.yaml``: an EasyRec/TorchEasyRec config as mtlrec YAML."""
    convert = commands.add_parser(
        "convert", help="convert an EasyRec or TorchEasyRec pipeline config (*.config) to a YAML config"
    )
    convert.add_argument("pipeline", metavar="PIPELINE.config")
    convert.add_argument("--output", "-o", required=True, help="the YAML config to write")
    convert.add_argument("--dialect", choices=["easyrec", "torcheasyrec"], help="default: told by the fields used")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    convert.set_defaults(handler=_convert)


def _convert(args: argparse.Namespace) -> int:
    """Write the converted config atomically, a comment above every field mapped approximately or ignored."""
    from pathlib import Path

    import yaml

    from mtlrec.config import validate_config
    from mtlrec.config.easyrec_text import easyrec_yaml
    from mtlrec.errors import ConfigError
    from mtlrec.io import atomic_write

    source, output = Path(args.pipeline), Path(args.output)
    if output.exists() and output.resolve() == source.resolve():
        raise ConfigError(f"--output {output} is the input file; write the YAML config to another file")
    if output.exists() and not args.overwrite:
        raise ConfigError(f"{output} exists; pass --overwrite to replace it")
    text, notes = easyrec_yaml(source, args.dialect)
    validate_config(yaml.safe_load(text), source=str(output))
    atomic_write(output, lambda tmp: tmp.write_text(text))
    ignored = sum(note.ignored for note in notes)
    print(f"wrote {output}: {len(notes) - ignored} field(s) mapped approximately, {ignored} ignored (see its comments)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from mtlrec.app import api
    from mtlrec.config import load_config
    from mtlrec.io import strict_json

    config = load_config(args.config, args.set)
    metrics = api.train(
        config,
        args.output,
        resume=args.resume,
        overwrite=args.overwrite,
        show_progress_bar=False if args.no_progress else None,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank returns the metrics; rank 0 prints them
        print(strict_json(metrics)[0])
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mtlrec.app import api
    from mtlrec.app.runs import log_undefined
    from mtlrec.io import atomic_write, strict_json

    metrics = api.evaluate_run(args.run_dir, args.data)
    text, undefined = strict_json(metrics)
    log_undefined(args.data, undefined)
    if args.output:
        atomic_write(args.output, lambda tmp: tmp.write_text(text))
    print(text)
    return 0


def _predict(args: argparse.Namespace) -> int:
    # torch's OpenMP threads spin between batches unless told otherwise, taking the CPU the file reader
    # needs (bf16 TorchScript end to end: 39k rows per CPU-second spinning, 75k passive); set before torch loads
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from mtlrec.app import api

    rows = api.predict_run(args.run_dir, args.data, args.output, args.threads, args.overwrite)
    log.info("wrote %d predictions to %s", rows, args.output)
    return 0


def _export(args: argparse.Namespace) -> int:
    from mtlrec.app import api
    from mtlrec.export.accuracy import describe

    manifest = api.export_run(
        args.run_dir,
        args.output,
        args.model_format,
        args.fusion,
        args.data,
        args.overwrite,
        quantization=args.quantize,
        accuracy_rows=args.accuracy_rows,
    )
    parity, accuracy = manifest["parity"], manifest["accuracy"]
    quantized = f", {manifest['quantization']}" if manifest["quantization"] else ""
    print(
        f"exported {args.run_dir} to {args.output} ({manifest['model']['format']}{quantized}); outputs "
        f"{', '.join(manifest['outputs'])}; parity on {parity['rows']} rows: max abs diff "
        f"{parity['max_abs_diff']:.3g} (scaled {parity['max_scaled_diff']:.3g} <= {parity['tolerance']:g})"
        + (f"; on {accuracy['rows']} held-out rows: {describe(accuracy)}" if accuracy else "")
    )
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from mtlrec.app import api

    rows = api.summarize(args.run_dirs, args.split, args.metric)
    print(api.format_table(rows))
    if args.output:
        api.write_summary(rows, args.output)
    return 0


def _report(args: argparse.Namespace) -> int:
    from mtlrec.app.reporting import write_report

    print(write_report(args.run_dir, args.baseline, args.output))
    return 0


def _list(args: argparse.Namespace) -> int:
    from mtlrec.architectures import ARCHITECTURES
    from mtlrec.evaluation import METRICS
    from mtlrec.features import ENCODERS
    from mtlrec.losses import LOSSES
    from mtlrec.nn import SEQUENCE_ENCODERS
    from mtlrec.weighting import WEIGHTINGS

    for title, registry in (
        ("architectures", ARCHITECTURES),
        ("weightings", WEIGHTINGS),
        ("losses", LOSSES),
        ("metrics", METRICS),
        ("feature kinds", ENCODERS),
        ("sequence encoders", SEQUENCE_ENCODERS),
    ):
        print(f"{title}:")
        for name, entry in registry.items():
            doc = (getattr(entry, "function", entry).__doc__ or "").strip()
            print(f"  {name:<16} {doc.splitlines()[0] if doc else ''}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from mtlrec.config import Config

    print(json.dumps(Config.model_json_schema(), indent=1))
    return 0


def _synth_cascade(args: argparse.Namespace) -> int:
    import time

    from mtlrec.errors import ConfigError
    from mtlrec.synth import meta_path, write_cascade

    names = ("num_domains", "num_categorical", "num_numeric", "max_cardinality", "stage_correlation", "signal")
    options = {name: getattr(args, name) for name in (*names, "id_type") if getattr(args, name) is not None}
    if args.stages is not None:
        options["stages"] = tuple(name.strip() for name in args.stages.split(","))
    if args.rates is not None:
        try:
            options["rates"] = tuple(float(rate) for rate in args.rates.split(","))
        except ValueError:
            raise ConfigError(f"--rates: expected numbers separated by commas, got {args.rates!r}") from None
    start = time.perf_counter()
    options.update(chunk_rows=args.chunk_rows, with_probabilities=args.with_probabilities, oracle_rows=args.oracle_rows)
    meta = write_cascade(args.output, args.rows, args.seed, **options)
    seconds = time.perf_counter() - start
    log.info("wrote %d rows to %s in %.1f s (%.0f rows/s)", args.rows, args.output, seconds, args.rows / seconds)
    summary = {"output": args.output, "meta": str(meta_path(args.output))}
    summary.update({key: meta[key] for key in ("rows", "seed", "columns", "base_rates", "label_correlation", "oracle")})
    print(json.dumps(summary, indent=1))
    return 0


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be replaced, e.g. by pytest)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it in __init__
        pass


def _setup_logging(quiet: bool) -> None:
    logger = logging.getLogger("mtlrec")
    logger.setLevel(logging.INFO)
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
