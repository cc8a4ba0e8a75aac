"""Splitting expression text into tokens."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from mtlrec.expressions.errors import ExpressionError

KEYWORDS = ("and", "or", "not")
_OPERATORS = ("**", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "^", "(", ")", ",")  # longest first
_DIGITS = tuple("0123456789")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HINTS = {
    "=": "use '==' to compare",
    "!": "use 'not', or '!=' to compare",
    "&": "use 'and'",
    "|": "use 'or'",
    ".": "attribute access is not supported",
    "[": "indexing is not supported",
    ":": "lambdas, slices and dicts are not supported",
}


@dataclass(frozen=True)
class Token:
    """One token of the text.

    Attributes:
        kind: ``"number"``, ``"string"``, ``"name"``, ``"op"`` (operators, punctuation, keywords) or ``"end"``.
        text: The characters it was read from.
        pos: 0-based position of its first character.
        value: The float of a number, or the unescaped text of a string.
    """

    kind: str
    text: str
    pos: int
    value: Any = None

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind == "end":
            return "end of expression"
        if self.kind == "op":
            return f"'{self.text}'"
        return f"name '{self.text}'" if self.kind == "name" else f"{self.kind} {self.text}"

    def is_op(self, *texts: str) -> bool:
        """Whether this is one of the operators (or keywords) ``texts``."""
        return self.kind == "op" and self.text in texts


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token.

    Raises:
        ExpressionError: On a character no token starts with, a malformed or too large number, an
            unterminated string or an unsupported escape.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        token = _next_token(text, pos)
        tokens.append(token)
        pos = token.pos + len(token.text)
    return [*tokens, Token("end", "", len(text))]


def _next_token(text: str, pos: int) -> Token:
    char = text[pos]
    if char in _DIGITS or (char == "." and text[pos + 1 : pos + 2] in _DIGITS):
        return _number(text, pos)
    if char in "\"'":
        return _string(text, pos)
    if word := _NAME.match(text, pos):
        return Token("op" if word.group() in KEYWORDS else "name", word.group(), pos)
    if op := next((op for op in _OPERATORS if text.startswith(op, pos)), None):
        return Token("op", op, pos)
    raise ExpressionError(f"unexpected character {char!r}", text, pos, _HINTS.get(char))


def _number(text: str, pos: int) -> Token:
    literal = _NUMBER.match(text, pos).group()
    after = text[pos + len(literal) : pos + len(literal) + 1]
    if after and (after.isalnum() or after in "_."):
        raise ExpressionError("malformed number", text, pos)
    value = float(literal)
    if not math.isfinite(value):
        raise ExpressionError(f"number {literal} is too large", text, pos)
    return Token("number", literal, pos, value)


def _string(text: str, pos: int) -> Token:
    quote, chars, end = text[pos], [], pos + 1
    while end < len(text) and text[end] != quote:
        if text[end] == "\\":
            if text[end + 1 : end + 2] not in ("\\", '"', "'"):
                raise ExpressionError("unsupported escape (only \\\\, \\\" and \\' are)", text, end)
            end += 1
        chars.append(text[end])
        end += 1
    if end >= len(text):
        raise ExpressionError("unterminated string", text, pos)
    return Token("string", text[pos : end + 1], pos, "".join(chars))
