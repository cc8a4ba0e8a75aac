"""Evaluation of an expression tree over arrays, shared by the numpy and the torch evaluators."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mtlrec.expressions.errors import ExpressionError
from mtlrec.expressions.syntax import COMPARISONS, FUNCTIONS, LOGICAL, Binary, Call, Name, Node, Number, String, Unary


class Parsed(Protocol):
    """What an evaluator reads of a parsed expression (:class:`~mtlrec.expressions.Expression` has it)."""

    text: str
    root: Node

    @property
    def names(self) -> frozenset[str]: ...

    @property
    def is_boolean(self) -> bool: ...

# what every evaluator's ``ops`` table maps to an elementwise function; clip and pow are built from these
OPERATIONS = frozenset({"+", "-", "*", "/", "^", *COMPARISONS, *LOGICAL, "not", "isnan", *FUNCTIONS} - {"clip", "pow"})


class Evaluator:
    """Evaluates one expression over one mapping of values.

    A subclass gives ``ops``, a table from each name in :data:`OPERATIONS` (operators as spelled in
    the language, functions by name, ``"not"`` and ``"isnan"``) to an elementwise function, and the
    hooks :meth:`constant`, :meth:`text`, :meth:`column`, :meth:`is_bool` and :meth:`to_float`.

    Attributes:
        expression: The expression evaluated.
        values: The arrays (or tensors) its names read, by name.
    """

    ops: dict[str, Callable[..., Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if missing := OPERATIONS - set(getattr(cls, "ops", {})):
            raise TypeError(f"{cls.__name__}.ops lacks {sorted(missing)}")

    def __init__(self, expression: Parsed, values: Mapping[str, Any]) -> None:
        self.expression, self.values = expression, values
        self._check_names()

    # hooks
    def constant(self, value: float) -> Any:
        """A number literal as a value."""
        raise NotImplementedError

    def text(self, node: String) -> Any:
        """A string literal as a value."""
        raise NotImplementedError

    def column(self, node: Name) -> Any:
        """The value a name reads: a number, boolean or text array."""
        raise NotImplementedError

    def is_bool(self, value: Any) -> bool:
        """Whether ``value`` holds booleans."""
        raise NotImplementedError

    def to_float(self, value: Any) -> Any:
        """Booleans as 0/1 numbers."""
        raise NotImplementedError

    # evaluation
    def run(self) -> Any:
        """The value of the whole expression: booleans when it is a condition, else numbers."""
        root = self.expression.root
        result = self.evaluate(root)
        return result if self.expression.is_boolean else self.as_number(result, root)

    def error(self, reason: str, pos: int | None, hint: str | None = None) -> ExpressionError:
        """An error about this expression."""
        return ExpressionError(reason, self.expression.text, pos, hint)

    def evaluate(self, node: Node) -> Any:
        """Value of ``node``: a number, boolean or (numpy only) text array."""
        if isinstance(node, Number):
            return self.constant(node.value)
        if isinstance(node, String):
            return self.text(node)
        if isinstance(node, Name):
            return self.column(node)
        if isinstance(node, Call):
            return self.call(node.function, [self.number(arg) for arg in node.args])
        if isinstance(node, Unary):
            return self.ops["not"](self.boolean(node.operand)) if node.op == "not" else -self.number(node.operand)
        if node.op in COMPARISONS:
            return self.compare(node, self.evaluate(node.left), self.evaluate(node.right))
        if node.op in LOGICAL:
            return self.ops[node.op](self.boolean(node.left), self.boolean(node.right))
        return self.ops[node.op](self.number(node.left), self.number(node.right))

    def number(self, node: Node) -> Any:
        """Value of ``node`` as numbers."""
        return self.as_number(self.evaluate(node), node)

    def boolean(self, node: Node) -> Any:
        """Value of ``node`` as a condition: numbers are true when non-zero and not missing."""
        value = self.evaluate(node)
        if self.is_bool(value):
            return value
        value = self.as_number(value, node)
        return self.ops["and"](value != 0, self.ops["not"](self.ops["isnan"](value)))

    def as_number(self, value: Any, node: Node) -> Any:
        """``value`` (computed for ``node``) as numbers: booleans become 0/1, numbers pass."""
        return self.to_float(value) if self.is_bool(value) else value

    def compare(self, node: Binary, left: Any, right: Any) -> Any:
        """The comparison ``node`` of two computed sides; false wherever a side is missing."""
        left, right = self.as_number(left, node.left), self.as_number(right, node.right)
        result = self.ops[node.op](left, right)
        if node.op != "!=":  # every other comparison with NaN is already false
            return result
        missing = self.ops["or"](self.ops["isnan"](left), self.ops["isnan"](right))
        return self.ops["and"](result, self.ops["not"](missing))

    def call(self, function: str, args: list[Any]) -> Any:
        """``function`` applied to its computed arguments."""
        if function in ("min", "max"):
            return functools.reduce(self.ops[function], args)
        if function == "clip":
            return self.ops["min"](self.ops["max"](args[0], args[1]), args[2])
        return self.ops["^" if function == "pow" else function](*args)

    def _check_names(self) -> None:
        """Fail on the first name (in reading order) that ``values`` lacks."""
        expression = self.expression
        missing = expression.names - set(self.values)
        if not missing:
            return
        first = next(node for node in expression.root.walk() if isinstance(node, Name) and node.name in missing)
        known = sorted(self.values)
        available = ", ".join(known[:30]) + (f" and {len(known) - 30} more" if len(known) > 30 else "")
        raise self.error(f"unknown name '{first.name}'", first.pos, f"available: {available or '(none)'}")
