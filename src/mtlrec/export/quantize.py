"""Quantized artifacts: int8 ONNX graphs and bfloat16 TorchScript archives, and the tolerance each is held to.

* ``int8`` (``--format onnx``): ONNX Runtime's dynamic quantization (int8 weights, uint8
  activations quantized per batch), see :mod:`mtlrec.export.onnx_int8`.
* ``bf16`` (``--format torchscript``): every weight and activation of the model in bfloat16 (oneDNN
  runs its GEMMs on AVX512-BF16 / AMX), float32 at the boundary: inputs are cast on entry and the
  logits back to float32 before the links and the fusion, so the archive takes and gives what an
  fp32 one does. ONNX Runtime's CPU provider has no bfloat16 kernels (``MatMul(13)`` on bfloat16
  fails to load in 1.31) and its float16 MatMul is no faster than float32 on this CPU (67 vs 71 ms
  on a 16384×512×256 product), so bf16 is TorchScript only; int8 is ONNX only, since half of an
  MoE's weights are batched-matmul parameters that ``torch.ao`` dynamic quantization (``nn.Linear``
  only) would leave in float32.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtlrec.errors import ExportError
from mtlrec.export.exporters import EXPORTERS, Example
from mtlrec.export.parity import TOLERANCE
from mtlrec.export.scoring import ScoringModel

log = logging.getLogger(__name__)

#: The quantizations ``mtlrec export --quantize`` offers, and the model format each is built for.
QUANTIZED_FORMATS = {"int8": "onnx", "bf16": "torchscript"}
QUANTIZATIONS = tuple(QUANTIZED_FORMATS)

#: The parity bound (max |exported − fp32 eager| / max(1, |eager|) over every output, on the parity
#: rows, batched and one at a time) of each quantization; ``None`` is an fp32 export. Chosen by
#: measurement, 2–3× above the largest difference seen: int8 0.0148 (100k test rows of the 1M-row
#: synthetic MMoE; 0.0062 on its 512 parity rows), 0.0071 (a census PLE), 0.0070 (the export
#: contract's 18 untrained architectures); bf16 0.0019, 0.0027 and 0.0049 on the same.
PARITY_TOLERANCES: dict[str | None, float] = {None: TOLERANCE, "int8": 0.03, "bf16": 0.015}


def resolve_format(model_format: str | None, quantization: str | None) -> str:
    """The model format to export: ``model_format`` if given, else the quantization's (fp32: ``onnx``).

    Raises:
        ExportError: an unknown quantization, or one the format does not support (the message names
            the option and the format that does).
    """
    if quantization is not None and quantization not in QUANTIZED_FORMATS:
        raise ExportError(f"unknown --quantize {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if model_format is None:
        return QUANTIZED_FORMATS.get(quantization, "onnx") if quantization else "onnx"
    if quantization is not None and QUANTIZED_FORMATS[quantization] != model_format:
        raise ExportError(_unsupported(quantization, model_format))
    return model_format


def _unsupported(quantization: str, model_format: str) -> str:
    if quantization == "bf16":
        return (
            f"--quantize bf16 needs --format torchscript, not {model_format}: ONNX Runtime's CPU provider has no "
            "bfloat16 kernels. Use --format torchscript --quantize bf16, or --quantize int8 for an ONNX artifact"
        )
    return (
        f"--quantize {quantization} needs --format {QUANTIZED_FORMATS[quantization]}, not {model_format} "
        "(ONNX Runtime's dynamic quantization); use --format onnx --quantize int8, or --quantize bf16 for "
        "TorchScript"
    )


def export_model(
    scoring: ScoringModel,
    example: Example,
    path: Path,
    model_format: str,
    quantization: str | None,
    calibration: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """Write the model file of an artifact, quantized as asked; returns its manifest entries.

    Args:
        scoring: the fp32 scoring model (left unchanged).
        example: inputs to trace with.
        path: the model file to write.
        model_format: ``onnx`` or ``torchscript`` (checked against ``quantization`` by :func:`resolve_format`).
        quantization: None, ``int8`` or ``bf16``.
        calibration: encoded rows for int8's smoothing (the parity rows).
    """
    if quantization is None:
        return EXPORTERS[model_format](scoring, example, path)
    resolve_format(model_format, quantization)
    if quantization == "bf16":
        return _export_bf16(scoring, example, path)
    return _export_int8(scoring, example, path, calibration)


def _export_int8(
    scoring: ScoringModel, example: Example, path: Path, calibration: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    from mtlrec.export.onnx_int8 import quantize_int8

    with tempfile.TemporaryDirectory(prefix="mtlrec-int8-") as folder:  # not in the artifact's directory
        float_graph = Path(folder) / "model.fp32.onnx"
        info = EXPORTERS["onnx"](scoring, example, float_graph)
        info["quantization"] = quantize_int8(float_graph, path, calibration)
    return info


def _export_bf16(scoring: ScoringModel, example: Example, path: Path) -> dict[str, Any]:
    if not _bf16_accelerated():
        log.warning("this CPU has no AVX512-BF16/AMX: a bf16 artifact will run slower here than an fp32 one")
    try:
        info = EXPORTERS["torchscript"](bf16_scoring(scoring), example, path)
    except RuntimeError as exc:  # an op without a bfloat16 CPU kernel
        raise ExportError(f"cannot export in bf16: {str(exc).splitlines()[0]}") from None
    info["quantization"] = {
        "method": "torch bfloat16 weights and activations (float32 inputs, logits cast back to float32)",
        "weights": "bfloat16",
        "activations": "bfloat16",
    }
    return info


def _bf16_accelerated() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Bfloat16Model(nn.Module):
    """A multi-task model run in bfloat16 behind a float32 interface.

    Floating inputs are cast to bfloat16 on entry and each task's logits back to float32, so the
    links and the fusion (and every output) stay float32.

    Args:
        model: the fp32 model; a copy is converted (the original is left as it is).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(model).to(torch.bfloat16).eval()
        self.task_names: list[str] = list(model.task_names)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cast = {name: value.to(torch.bfloat16) if value.is_floating_point() else value
                for name, value in inputs.items()}
        return {task: logits.float() for task, logits in self.inner(cast).items()}

    def untrained_tasks(self) -> frozenset[str]:
        inner = self.inner
        return inner.untrained_tasks() if hasattr(inner, "untrained_tasks") else frozenset()


def bf16_scoring(scoring: ScoringModel) -> ScoringModel:
    """``scoring`` with its model in bfloat16 (:class:`Bfloat16Model`): same inputs, outputs and fusion."""
    model = Bfloat16Model(scoring.model)
    return ScoringModel(
        model, scoring.links, scoring.fusion, scoring.input_names, scoring.output_dims, scoring.task_names
    ).eval()
