"""Export a trained model as an artifact: build the scoring graph, export, check parity, write atomically."""

from __future__ import annotations

import datetime
import logging
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import mtlrec
from mtlrec.errors import ExportError
from mtlrec.export import quantize
from mtlrec.export.accuracy import LabelledRows, measure_accuracy
from mtlrec.export.artifact import FEATURES, FORMAT_NAME, FORMAT_VERSION, write_artifact_dir
from mtlrec.export.exporters import EXPORTERS, MODEL_FILES
from mtlrec.export.fusion import Fusion
from mtlrec.export.parity import check_parity
from mtlrec.export.runtime import RUNTIMES
from mtlrec.export.scoring import FUSED_OUTPUT, ScoringModel
from mtlrec.features import ClassLabel, FeaturePipeline, RegressionLabel
from mtlrec.io import CsvFormat
from mtlrec.losses import Loss

log = logging.getLogger(__name__)


def scoring_model(
    model: nn.Module,
    losses: dict[str, Loss],
    pipeline: FeaturePipeline,
    fusion: Fusion | None,
    served: list[str] | None = None,
) -> ScoringModel:
    """The model with each task's link (``Loss.predict``) and the fusion (default: the first single-score task).

    ``served``: the tasks the scoring model outputs (default: every task; auxiliary tasks are left out).

    Raises:
        ExportError: the fusion names a task that is unknown or multi-class, or no task gives one score per row.
    """
    output_dims = {spec.task: len(spec.rule.classes) for spec in pipeline.labels if isinstance(spec.rule, ClassLabel)}
    served = list(served) if served is not None else list(pipeline.task_names)
    if fusion is None:
        single = [task for task in served if task not in output_dims]
        if not single:
            raise ExportError("every task is multi-class; a fused score needs a binary or regression task")
        fusion = Fusion.first(single[0])
    links = {task: loss.predict for task, loss in losses.items()}
    input_names = [spec.name for spec in pipeline.inputs()]
    try:
        return ScoringModel(model, links, fusion, input_names, output_dims, served)
    except ValueError as exc:
        raise ExportError(f"cannot export: {exc}") from None


def export_artifact(
    scoring: ScoringModel,
    pipeline: FeaturePipeline,
    inputs: dict[str, np.ndarray],
    target: str | Path,
    model_format: str | None = "onnx",
    csv_format: CsvFormat | None = None,
    run_name: str | None = None,
    overwrite: bool = False,
    quantization: str | None = None,
    holdout: LabelledRows | None = None,
) -> dict[str, Any]:
    """Export ``scoring`` into the artifact directory ``target`` and return its manifest.

    The exported file is loaded back and compared with the fp32 eager model on the encoded rows
    (inputs by name, N rows each; see :mod:`mtlrec.export.parity`), within 1e-5 or, quantized, the
    quantization's declared tolerance (:data:`mtlrec.export.quantize.PARITY_TOLERANCES`); if they
    disagree, nothing is written. With ``holdout``, both models' figures on those rows (its metric of
    each task) go into the manifest's ``accuracy``.

    Args:
        scoring: from :func:`scoring_model`.
        pipeline: the fitted pipeline (saved as ``features.json``).
        inputs: held-out rows for the parity check, encoded (int8 also calibrates its smoothing on them).
        target: the artifact directory (created; replaced only with ``overwrite``).
        model_format: ``onnx`` or ``torchscript``; None: ``torchscript`` for bf16, else ``onnx``.
        csv_format: how the run read CSV files (kept for batch prediction).
        run_name: the run directory's name, for the manifest.
        overwrite: replace an existing artifact.
        quantization: None (fp32), ``int8`` (ONNX) or ``bf16`` (TorchScript); see :mod:`mtlrec.export.quantize`.
        holdout: labelled held-out rows for the accuracy figures (None: not measured).

    Raises:
        ExportError: unknown format or quantization, a quantization the format lacks, no rows, or a
            failed parity check.
        RunDirError: ``target`` exists (without ``overwrite``).
    """
    model_format = quantize.resolve_format(model_format, quantization)
    if model_format not in EXPORTERS:
        raise ExportError(f"unknown export format {model_format!r}; choose one of {', '.join(EXPORTERS)}")
    if len(next(iter(inputs.values()))) == 0:
        raise ExportError("the parity check needs at least one row")
    scoring.eval()
    example = {name: torch.from_numpy(value[:8]) for name, value in inputs.items()}
    features = {encoder.name: [spec.name for spec in encoder.inputs()] for encoder in pipeline.encoders}
    exported = f"{model_format}, {quantization}" if quantization else model_format

    def fill(folder: Path) -> dict[str, Any]:
        model_path = folder / MODEL_FILES[model_format]
        info = quantize.export_model(scoring, example, model_path, model_format, quantization, inputs)
        runtime = RUNTIMES[model_format](model_path, None, scoring.input_names)  # torch threads untouched
        tolerance = quantize.PARITY_TOLERANCES[quantization]
        parity = check_parity(scoring, runtime, inputs, features, tolerance=tolerance)
        log.info(
            "parity (%s, %d rows): max abs diff %.3g, scaled %.3g (tolerance %g)",
            *(exported, parity.rows, parity.max_abs_diff, parity.max_scaled_diff, tolerance),
        )
        if not parity.passed:
            raise ExportError(
                f"parity check failed: the exported {exported} model differs from the fp32 eager model by "
                f"{parity.max_scaled_diff:.3g} (output '{parity.worst_output}', tolerance {parity.tolerance:g}); "
                "nothing was written"
            )
        accuracy = None
        if holdout is not None and holdout.rows:
            accuracy = measure_accuracy(scoring, runtime, holdout)
        pipeline.save(folder / FEATURES)
        measured = {"parity": parity.to_dict(), "quantization": quantization, "accuracy": accuracy}
        return _manifest(scoring, pipeline, model_format, info, measured, csv_format, run_name)

    return write_artifact_dir(target, fill, overwrite)


def _manifest(
    scoring: ScoringModel,
    pipeline: FeaturePipeline,
    model_format: str,
    info: dict[str, Any],
    measured: dict[str, Any],
    csv_format: CsvFormat | None,
    run_name: str | None,
) -> dict[str, Any]:
    """The manifest less ``files``; ``measured``: the parity result, the quantization and the accuracy figures."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run": run_name,
        "versions": _versions(),
        "model": {"format": model_format, "file": MODEL_FILES[model_format], **info},
        "inputs": [spec.to_dict() for spec in pipeline.inputs()],
        "features": [
            {"name": encoder.name, "kind": encoder.kind, "columns": list(encoder.columns())}
            for encoder in pipeline.encoders
        ],
        "columns": {name: str(dtype) for name, dtype in pipeline.column_types(include_labels=False).items()},
        "list_separators": pipeline.separators(),
        "csv": asdict(csv_format or CsvFormat()),
        "outputs": scoring.output_names,
        "tasks": _tasks(scoring, pipeline),
        "fusion": {**scoring.fusion.to_dict(), "output": FUSED_OUTPUT},
        "parity": measured["parity"],
        "quantization": measured["quantization"],
        "accuracy": measured["accuracy"],
    }


_SCORE_UNITS = {"binary": "probability", "regression": "value in the label's unit", "multiclass": "class probabilities"}


def _kind(rule: Any) -> str:
    if isinstance(rule, ClassLabel):
        return "multiclass"
    return "regression" if isinstance(rule, RegressionLabel) else "binary"


def _tasks(scoring: ScoringModel, pipeline: FeaturePipeline) -> list[dict[str, Any]]:
    untrained = scoring.model.untrained_tasks() if hasattr(scoring.model, "untrained_tasks") else frozenset()
    tasks = []
    for spec in pipeline.labels:
        rule = spec.rule
        kind = _kind(rule)
        transformed = isinstance(rule, RegressionLabel) and rule.transformed
        tasks.append(
            {
                "name": spec.task,
                "kind": kind,
                "output": spec.task,
                "score": _SCORE_UNITS[kind],
                "trained": spec.task not in untrained,  # False: evaluation only (ESMM's CVR)
                "classes": rule.classes if isinstance(rule, ClassLabel) else None,
                "label_transform": rule.to_dict() if transformed else None,
            }
        )
    return tasks


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {
        "mtlrec": mtlrec.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    for name in ("onnx", "onnxruntime", "pyarrow"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return versions
