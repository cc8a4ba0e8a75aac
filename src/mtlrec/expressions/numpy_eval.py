"""Evaluation with numpy: float64 numbers, bool conditions, and text columns compared with ``==``/``!=``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mtlrec.expressions.evaluator import Evaluator, Parsed
from mtlrec.expressions.syntax import Binary, Name, Node, String


def evaluate_numpy(expression: Parsed, values: Mapping[str, np.ndarray | float | str]) -> np.ndarray:
    """Evaluate ``expression`` elementwise with numpy broadcasting (see :meth:`Expression.evaluate`)."""
    evaluator = NumpyEvaluator(expression, values)
    with np.errstate(all="ignore"):
        return np.asarray(evaluator.run())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + exp(-x)) without overflow or cancellation


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class NumpyEvaluator(Evaluator):
    """Columns become float64 arrays, bool arrays, or text (unicode or object arrays)."""

    ops = {
        "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
        "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
        "and": np.logical_and, "or": np.logical_or, "not": np.logical_not, "isnan": np.isnan,
        "abs": np.abs, "exp": np.exp, "log": np.log, "log1p": np.log1p, "sigmoid": _sigmoid, "sqrt": np.sqrt,
        "min": np.minimum, "max": np.maximum,
    }  # fmt: skip

    def constant(self, value: float) -> Any:
        """A float64 scalar."""
        return np.float64(value)

    def text(self, node: String) -> Any:
        """A numpy unicode scalar."""
        return np.str_(node.value)

    def column(self, node: Name) -> Any:
        """Numbers as float64, bytes decoded as UTF-8; bool, unicode and object arrays as they are."""
        array = np.asarray(self.values[node.name])
        if array.dtype.kind in "iuf":
            return array.astype(np.float64, copy=False)
        if array.dtype.kind == "S":
            return np.char.decode(array, "utf-8")
        if array.dtype.kind not in "bUO":
            raise self.error(f"column '{node.name}' has unsupported dtype {array.dtype}", node.pos)
        return array

    def is_bool(self, value: Any) -> bool:
        """Whether ``value`` is a bool array."""
        return value.dtype.kind == "b"

    def to_float(self, value: Any) -> Any:
        """As float64."""
        return value.astype(np.float64)

    def as_number(self, value: Any, node: Node) -> Any:
        """As numbers; object arrays of numbers (``None`` for missing) become float64, text is an error."""
        if value.dtype.kind == "O" and (numbers := _object_numbers(value)) is not None:
            return numbers
        if value.dtype.kind in "UO":
            what = f"column '{node.name}'" if isinstance(node, Name) else "the expression"
            held = "strings, which only support == and !=" if value.dtype.kind == "U" else "non-numeric values"
            raise self.error(f"{what} holds {held}", node.pos)
        return super().as_number(value, node)

    def compare(self, node: Binary, left: Any, right: Any) -> Any:
        """Numbers as in :class:`Evaluator`; text only by ``==``/``!=``, false where a side is missing."""
        kinds = (left.dtype.kind, right.dtype.kind)
        if "U" not in kinds and kinds != ("O", "O"):
            return super().compare(node, left, right)
        if node.op not in ("==", "!="):
            raise self.error(f"strings only support == and !=, not '{node.op}'", node.pos)
        if not set(kinds) <= {"U", "O"}:
            raise self.error("cannot compare numbers with strings", node.pos)
        present = np.logical_not(np.logical_or(_missing(left), _missing(right)))
        equal = np.asarray(left == right, dtype=bool)
        return np.logical_and(equal if node.op == "==" else np.logical_not(equal), present)


def _object_numbers(value: np.ndarray) -> np.ndarray | None:
    """An object array of numbers (``None`` for missing) as float64, or ``None`` if it holds anything else."""
    flat = value.ravel()
    if any(isinstance(item, str) for item in flat):
        return None
    try:
        return np.array([np.nan if item is None else item for item in flat], np.float64).reshape(value.shape)
    except (TypeError, ValueError):
        return None


def _missing(value: np.ndarray) -> np.ndarray:
    """Where ``value`` is missing: ``None`` or NaN in an object array; nowhere in any other."""
    if value.dtype.kind != "O":
        return np.zeros(value.shape, dtype=bool)
    return np.asarray(np.frompyfunc(_is_missing, 1, 1)(value), dtype=bool)
