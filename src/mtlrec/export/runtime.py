"""Run an exported model file: ONNX Runtime for ``.onnx``, ``torch.jit.load`` for TorchScript (``RUNTIMES``).

Both take the model's inputs as numpy arrays keyed by input name (each with 1 or N rows) and return
the outputs as numpy arrays in the graph's output order. Neither unpickles anything: an ONNX file is a protobuf, and a
TorchScript archive holds code and tensors read by TorchScript's own loader.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mtlrec.errors import RunDirError


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxRuntimeModel:
    """An ONNX graph in an ``onnxruntime.InferenceSession`` on the CPU.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: every available core).
        input_names: unused (the graph names its inputs).
    """

    def __init__(self, path: str | Path, threads: int | None = None, input_names: list[str] | None = None):
        import onnxruntime  # the `serve` extra

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning: on a few cores the spinning steals CPU from the
        # reading/encoding thread of batch prediction (or a web server's event loop)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise RunDirError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {exc})") from None
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_names = [node.name for node in self.session.get_outputs()]

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in ``output_names`` order (inputs the graph dropped as unused are not fed)."""
        return self.session.run(None, {name: inputs[name] for name in self.input_names})


class TorchScriptModel:
    """A TorchScript archive loaded with ``torch.jit.load``.

    Args:
        path: the ``.pt`` archive.
        threads: torch intra-op threads; set process-wide with ``torch.set_num_threads`` when given.
        input_names: the traced module's positional inputs, in order (the manifest's inputs).
    """

    def __init__(self, path: str | Path, threads: int | None = None, input_names: list[str] | None = None):
        if threads:
            torch.set_num_threads(threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 marks torch.jit deprecated; it works
            try:
                self.module = torch.jit.load(str(path), map_location="cpu")
            except (RuntimeError, ValueError) as exc:
                raise RunDirError(f"{path}: not a TorchScript archive ({str(exc).splitlines()[0]})") from None
        self.module.eval()
        self.input_names = list(input_names or [])

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in the traced module's order."""
        with torch.inference_mode():
            outputs = self.module(*(torch.from_numpy(inputs[name]) for name in self.input_names))
        return [output.numpy() for output in outputs]


RUNTIMES: dict[str, type[OnnxRuntimeModel] | type[TorchScriptModel]] = {
    "onnx": OnnxRuntimeModel,
    "torchscript": TorchScriptModel,
}
