"""Quantized export contract over every entry of ``ARCHITECTURES``: the int8 ONNX graph and the bf16
TorchScript archive of the export contract's models (every input kind, a log1p regression task, a
multi-class head, a formula fusion) load, and stay within their declared parity tolerance of the fp32
eager ``ScoringModel`` (batched, one row at a time, and with half the features given once)."""

from __future__ import annotations

import pytest
import torch
from tests.contract.test_export_contract import FEATURES, rows, scoring

from mtlrec.architectures import ARCHITECTURES
from mtlrec.export import PARITY_TOLERANCES, QUANTIZED_FORMATS, RUNTIMES, check_parity
from mtlrec.export.exporters import MODEL_FILES
from mtlrec.export.quantize import export_model


@pytest.mark.parametrize("quantization", sorted(QUANTIZED_FORMATS))
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_quantized_model_stays_within_its_tolerance(name, quantization, tmp_path):
    model = scoring(name)
    inputs = rows(300, seed=1)
    model_format = QUANTIZED_FORMATS[quantization]
    path = tmp_path / MODEL_FILES[model_format]
    example = {key: torch.from_numpy(value[:8]) for key, value in inputs.items()}
    info = export_model(model, example, path, model_format, quantization, inputs)
    assert info["quantization"]["weights"].startswith(quantization.replace("bf16", "bfloat16"))
    exported = RUNTIMES[model_format](path, threads=1, input_names=model.input_names)
    result = check_parity(model, exported, inputs, FEATURES, single_rows=5, tolerance=PARITY_TOLERANCES[quantization])
    assert result.passed and result.shared_runs == 2, result
