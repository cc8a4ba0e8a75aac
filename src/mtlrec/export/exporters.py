"""Write a ``ScoringModel`` as an ONNX graph or a TorchScript archive (``EXPORTERS``).

ONNX uses ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based exporter, on purpose: on
torch 2.13 both it and the ``torch.export``-based exporter (``dynamo=True``) give the same outputs
(within 1e-7) for every architecture here, but the TorchScript-based one takes 0.02–0.2 s per model
instead of 1.5–3.5 s and does not need onnxscript, which keeps ``mtlrec export`` (and the contract
tests, which export every architecture) fast. torch marks it deprecated; the parity check guards
every export, and switching is one argument. It has no ``expm1`` (the inverse of a ``log1p`` label
transform), so one is registered as ``Exp(x) − 1``: about 1e-7 off (absolute) in float32 near 0, and
within float32 rounding of ``expm1`` beyond.

The graph has one input per model input, named as in the manifest (``user_id``, ``tags``,
``tags.length``, ...). The first axis of every input is dynamic on its own, so any input may come
with one row (shared by every candidate of a request) or with the candidates' B rows; the outputs
have B rows. Every exporter runs the model in eval mode without autograd, so embedding lookups are
the plain ``embedding`` op rather than the training path's sparse-gradient function.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mtlrec.export.scoring import ScoringModel

ONNX_OPSET = 17
#: The model file of each format inside an artifact.
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}

Example = dict[str, torch.Tensor]


def export_onnx(model: ScoringModel, example: Example, path: Path) -> dict[str, Any]:
    """Write ``model`` as ONNX to ``path``; returns {"opset": ..., "exporter": ...} for the manifest.

    Args:
        model: the module to export.
        example: inputs to trace with, by name (every input with the same rows).
        path: the ``.onnx`` file to write.
    """
    import onnx  # the `serve` extra

    _register_expm1()
    axes = {name: {0: f"rows_{index}"} for index, name in enumerate(model.input_names)}
    axes.update({name: {0: "batch"} for name in model.output_names})
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on constants; numerics are checked by the parity test
        torch.onnx.export(
            model,
            model.positional(example),
            str(path),
            input_names=model.input_names,
            output_names=model.output_names,
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    opsets = {
        entry.domain or "ai.onnx": entry.version
        for entry in onnx.load(str(path), load_external_data=False).opset_import
    }
    return {"exporter": "torch.onnx.export (TorchScript-based)", "opset": opsets.get("ai.onnx", ONNX_OPSET)}


def _register_expm1() -> None:
    """Give the TorchScript-based ONNX exporter an ``aten::expm1``: ``Exp(x) - 1`` (idempotent)."""

    def expm1(graph: Any, x: Any) -> Any:
        one = graph.op("Constant", value_t=torch.tensor(1.0, dtype=torch.float32))
        return graph.op("Sub", graph.op("Exp", x), one)

    torch.onnx.register_custom_op_symbolic("aten::expm1", expm1, ONNX_OPSET)


def export_torchscript(model: ScoringModel, example: Example, path: Path) -> dict[str, Any]:
    """Trace ``model`` with ``torch.jit.trace`` and save the archive to ``path``.

    Args:
        model: the module to export.
        example: inputs to trace with, by name.
        path: the ``.pt`` archive to write (read back by ``torch.jit.load``; positional inputs in
            ``model.input_names`` order).
    """
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is marked deprecated in torch 2.13 but works
        traced = torch.jit.trace(model, model.positional(example), check_trace=False)
        torch.jit.save(traced, str(path))
    return {"exporter": "torch.jit.trace"}


EXPORTERS: dict[str, Callable[[ScoringModel, Example, Path], dict[str, Any]]] = {
    "onnx": export_onnx,
    "torchscript": export_torchscript,
}
