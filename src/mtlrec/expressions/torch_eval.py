"""Evaluation with torch ops only, so that ``torch.jit.trace`` and ``torch.export`` record it."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch

from mtlrec.expressions.evaluator import Evaluator, Parsed
from mtlrec.expressions.syntax import Name, String


def evaluate_torch(expression: Parsed, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Evaluate ``expression`` elementwise with torch ops (see :meth:`Expression.evaluate_torch`)."""
    return TorchEvaluator(expression, values).run()


class TorchEvaluator(Evaluator):
    """Numbers in the promoted floating dtype of the inputs, on their device; no strings.

    Attributes:
        dtype: The floating dtype numbers are computed in.
        device: Where constants are made: the device of the tensors read (CPU when none are).
    """

    ops = {
        "+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "^": torch.pow,
        "==": torch.eq, "!=": torch.ne, "<": torch.lt, "<=": torch.le, ">": torch.gt, ">=": torch.ge,
        "and": torch.logical_and, "or": torch.logical_or, "not": torch.logical_not, "isnan": torch.isnan,
        "abs": torch.abs, "exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "sigmoid": torch.sigmoid,
        "sqrt": torch.sqrt, "min": torch.minimum, "max": torch.maximum,
    }  # fmt: skip

    def __init__(self, expression: Parsed, values: Mapping[str, torch.Tensor]) -> None:
        super().__init__(expression, values)
        for node in expression.root.walk():  # strings and non-tensors fail before anything is traced
            if isinstance(node, String):
                raise self.error("strings are not supported by evaluate_torch", node.pos)
            if isinstance(node, Name) and not isinstance(values[node.name], torch.Tensor):
                kind = type(values[node.name]).__name__
                raise self.error(f"evaluate_torch needs tensors, but '{node.name}' is a {kind}", node.pos)
        tensors = [values[name] for name in sorted(expression.names)]
        floats = sorted({tensor.dtype for tensor in tensors if tensor.is_floating_point()}, key=str)
        # a single dtype is taken as is, so that torch.export records no (dead) promote_types calls
        self.dtype = functools.reduce(torch.promote_types, floats) if floats else torch.get_default_dtype()
        self.device = tensors[0].device if tensors else torch.device("cpu")

    def constant(self, value: float) -> Any:
        """A 0-d tensor made by an op (so tracing records it rather than baking a tensor in)."""
        return torch.full((), value, dtype=self.dtype, device=self.device)

    def column(self, node: Name) -> Any:
        """Bool tensors as they are; any other in :attr:`dtype`."""
        tensor = self.values[node.name]
        if tensor.dtype == torch.bool:
            return tensor
        if tensor.is_complex():
            raise self.error(f"column '{node.name}' has unsupported dtype {tensor.dtype}", node.pos)
        return tensor if tensor.dtype == self.dtype else tensor.to(self.dtype)

    def is_bool(self, value: Any) -> bool:
        """Whether ``value`` is a bool tensor."""
        return value.dtype == torch.bool

    def to_float(self, value: Any) -> Any:
        """In :attr:`dtype`."""
        return value.to(self.dtype)
