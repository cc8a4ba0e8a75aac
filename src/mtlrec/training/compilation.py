"""Compiled training steps (``train.compile``): the model's dense part through ``torch.compile``.

What is compiled is the architecture (experts, gates, towers: the bulk of a step's arithmetic and of its
many small ops), and the forward of each sequence encoder (target attention, pooling) with dynamic shapes,
since history lengths vary from batch to batch. TorchDynamo traces the forward, AOTAutograd derives the
backward from it and Inductor generates fused kernels for both (C++/OpenMP on the CPU, Triton on CUDA).
The embedding lookups stay eager: their row-sparse gradients (``nn.sparse_lookup``) and the sparse
optimizer have data-dependent shapes that a graph cannot hold, and they are gathers, not arithmetic.

The compiled callables stand beside the model (``CompiledModel``), used by the training step alone: the
model's modules, parameter names, ``state_dict``, checkpoints, evaluation and export are those of the
eager model. A batch of another size than the first compiled one (an epoch's last) runs eagerly rather
than compiling again; so do the steps that sample diagnostics.

``auto`` decides by a probe (:func:`probe_compile`): forward and backward of the model on one training
batch, timed eagerly and compiled (after the compilation itself, which is timed too); it
compiles when the compiled step is at least ``MIN_GAIN`` times as fast. The probe takes no optimizer step and
restores the random state, so a run's numbers do not depend on whether it probed.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger("mtlrec.train")

#: ``auto`` compiles when eager step time / compiled step time is at least this.
MIN_GAIN = 1.05
#: Timed repetitions per variant in the probe (the median counts), after one untimed call.
PROBE_REPEATS = 5


@dataclass
class CompileReport:
    """What ``train.compile`` did.

    Attributes:
        requested: ``true``, ``false`` or ``auto`` as configured.
        compiled: whether the steps run compiled.
        modules: the compiled modules, by attribute path (``architecture``, ``inputs.encoders.hist``).
        compile_seconds: the first compiled forward and backward (tracing and code generation), when
            measured (by the probe, or by the first training step).
        eager_ms: the probe's median eager forward + backward of the architecture (``auto`` only).
        compiled_ms: the same, compiled (``auto`` only).
    """

    requested: str
    compiled: bool = False
    modules: list[str] | None = None
    compile_seconds: float | None = None
    eager_ms: float | None = None
    compiled_ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def compile_for_training(model: nn.Module) -> Any:
    """The model's compiled stand-ins (``model.compile_parts()``, a ``model.compiled.CompiledModel``) for
    training steps, whose backward may run more than once (see below)."""
    _allow_repeated_backward()
    return model.compile_parts()


def probe_compile(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> tuple[CompileReport, Any]:
    """Time the model's training forward and backward on one batch, eager and compiled.

    Args:
        model: a ``MultiTaskModel`` or ``IndependentTaskModels`` in training mode.
        inputs: one training batch's inputs.

    Returns:
        The report, and the compiled model when it was at least ``MIN_GAIN`` times as fast (else None).
        No gradient is left behind and the random state is restored.
    """
    rng = torch.get_rng_state()
    eager = _median_ms(lambda: _forward_backward(model, inputs, None))
    compiled = compile_for_training(model)
    started = time.perf_counter()
    _forward_backward(model, inputs, compiled)
    compile_seconds = time.perf_counter() - started
    compiled_ms = _median_ms(lambda: _forward_backward(model, inputs, compiled))
    for parameter in model.parameters():
        parameter.grad = None
    torch.set_rng_state(rng)
    report = CompileReport("auto", eager_ms=round(eager, 3), compiled_ms=round(compiled_ms, 3))
    report.compile_seconds = round(compile_seconds, 2)
    if eager / compiled_ms < MIN_GAIN:
        return report, None
    report.compiled, report.modules = True, compiled.names()
    return report, compiled


def _allow_repeated_backward() -> None:
    """Let a compiled graph's backward run with ``retain_graph``: the gradient-level weighting strategies
    (GradNorm, PCGrad, ...) and the gradient-cosine diagnostics take several backward passes through one
    forward, which AOTAutograd's donated buffers (reusing saved tensors' memory in the backward) forbid."""
    torch._functorch.config.donated_buffer = False


def _forward_backward(model: nn.Module, inputs: Mapping[str, torch.Tensor], compiled: Any) -> None:
    outputs = model(inputs, compiled=compiled)
    torch.stack([value.float().sum() for value in outputs.values()]).sum().backward()


def _median_ms(step: Callable[[], None]) -> float:
    step()
    times = []
    for _ in range(PROBE_REPEATS):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000
