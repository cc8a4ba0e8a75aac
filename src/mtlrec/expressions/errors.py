"""The error every part of the expression language raises, and the limits on what it accepts."""

from __future__ import annotations

from typing import Any

MAX_LENGTH = 1000  # characters of expression text
MAX_DEPTH = 64  # levels of nesting: operators, parentheses and calls


class ExpressionError(ValueError):
    """An expression could not be parsed or evaluated.

    Attributes:
        reason: What went wrong, without position or expression.
        text: The expression (``None`` when built from a message alone).
        position: 0-based character position of the culprit, or ``None``.
        hint: How to fix it, or ``None``.
    """

    def __init__(
        self, reason: str, text: str | None = None, position: int | None = None, hint: str | None = None
    ) -> None:
        self.reason, self.text, self.position, self.hint = reason, text, position, hint
        where = "" if position is None else f" at position {position}"
        shown = "" if text is None else f' in "{text}"' if len(text) <= 200 else f' in "{text[:200]}..."'
        super().__init__(f"{reason}{where}{shown}" + (f"; {hint}" if hint else ""))

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        """Keep the fields through pickling (worker processes re-raise it in the parent)."""
        return type(self), (self.reason, self.text, self.position, self.hint)
