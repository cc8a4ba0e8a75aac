"""The public face of the language: :func:`parse_expression` and the :class:`Expression` it returns."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from mtlrec.expressions import numpy_eval, torch_eval
from mtlrec.expressions.errors import MAX_LENGTH, ExpressionError
from mtlrec.expressions.parser import parse
from mtlrec.expressions.syntax import Name, Node, is_boolean, to_text


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed expression; build it with :func:`parse_expression`.

    Two expressions are equal when their trees are, whatever their spacing and parentheses.

    Attributes:
        text: The text it was parsed from.
        root: The top node of its tree.
    """

    text: str
    root: Node

    def __str__(self) -> str:
        """Canonical text (fewest parentheses, ``^`` for powers) that parses to the same tree."""
        return to_text(self.root)

    def __repr__(self) -> str:
        return f"parse_expression({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and self.root == other.root

    def __hash__(self) -> int:
        return hash(self.root)

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """The names (columns, or task scores) the expression reads."""
        return frozenset(node.name for node in self.root.walk() if isinstance(node, Name))

    @property
    def is_boolean(self) -> bool:
        """Whether the result is a condition (comparison, ``and``, ``or``, ``not``) rather than a number."""
        return is_boolean(self.root)

    def evaluate(self, values: Mapping[str, np.ndarray | float | str]) -> np.ndarray:
        """Evaluate elementwise with numpy broadcasting.

        Args:
            values: An array (or scalar) for each name; extra entries are ignored.

        Returns:
            A bool array when :attr:`is_boolean`, else float64 (a lone bool column gives 0/1), in the
            broadcast shape of the values read (0-d for an expression without names).

        Raises:
            ExpressionError: If a name has no value, or a value does not suit its use (text in arithmetic).
        """
        return numpy_eval.evaluate_numpy(self, values)

    def evaluate_torch(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Evaluate elementwise with torch ops only, so ``torch.jit.trace``/``torch.export`` record it.

        Args:
            values: A tensor for each name; extra entries are ignored. Strings are not supported.

        Returns:
            A bool tensor when :attr:`is_boolean`, else the promoted floating dtype of the tensors read
            (the default dtype when none is floating), on their device, in their broadcast shape.

        Raises:
            ExpressionError: If a name has no tensor, or the expression holds a string.
        """
        return torch_eval.evaluate_torch(self, values)


def parse_expression(text: str) -> Expression:
    """Parse ``text`` (see :mod:`mtlrec.expressions` for the grammar).

    Raises:
        ExpressionError: If the text is not a valid expression, or is over ``MAX_LENGTH``
            characters or ``MAX_DEPTH`` levels of nesting.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}", repr(text))
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}", text)
    return Expression(text, parse(text))
