"""Recursive-descent parser (precedence climbing for the binary operators) from tokens to a tree of nodes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mtlrec.expressions.errors import MAX_DEPTH, ExpressionError
from mtlrec.expressions.lexer import Token, tokenize
from mtlrec.expressions.syntax import (
    BINARY_PRECEDENCE,
    COMPARISONS,
    FUNCTIONS,
    Binary,
    Call,
    Name,
    Node,
    Number,
    Precedence,
    String,
    Unary,
    to_text,
)


def parse(text: str) -> Node:
    """Parse ``text`` into the root of its tree.

    Raises:
        ExpressionError: If the text is not a valid expression or nests more than ``MAX_DEPTH`` levels.
    """
    return _Parser(text).parse()


class _Parser:
    """One pass over the tokens of ``text``; ``nesting`` counts the prefix operators, parentheses and calls open."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.nesting = 0

    def parse(self) -> Node:
        if self.tokens[0].kind == "end":
            raise ExpressionError("empty expression", self.text)
        node = self._expression()
        if (token := self._peek()).kind != "end":
            raise self._unexpected(token, "expected an operator")
        self._require_operand(node)
        return node

    # helpers
    def _peek(self) -> Token:
        return self.tokens[self.index]

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _error(self, reason: str, pos: int | None, hint: str | None = None) -> ExpressionError:
        return ExpressionError(reason, self.text, pos, hint)

    def _unexpected(self, token: Token, hint: str | None = None) -> ExpressionError:
        return self._error(f"unexpected {token.describe()}", token.pos, hint)

    def _too_deep(self, pos: int) -> ExpressionError:
        return self._error(f"expression nests more than {MAX_DEPTH} levels deep", pos)

    @contextmanager
    def _nested(self, pos: int) -> Iterator[None]:
        """One more level open (at ``pos``) while the body parses; fails early past ``MAX_DEPTH``."""
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self._too_deep(pos)
        try:
            yield
        finally:
            self.nesting -= 1

    def _build(self, node: Node) -> Node:
        """Check a freshly made ``node`` (its depth, and where strings may stand) and return it."""
        if node.depth > MAX_DEPTH:
            raise self._too_deep(node.pos)
        if isinstance(node, Binary) and node.op in COMPARISONS:
            self._check_comparison(node)
        else:
            for child in node.children():
                self._require_operand(child)
        return node

    def _require_operand(self, node: Node) -> None:
        if isinstance(node, String):
            raise self._error(f"string {to_text(node)} can only be compared with == or !=", node.pos)

    def _check_comparison(self, node: Binary) -> None:
        sides = (node.left, node.right)
        strings = [side for side in sides if isinstance(side, String)]
        if strings and node.op not in ("==", "!="):
            raise self._error(f"strings only support == and !=, not '{node.op}'", node.pos)
        if strings and not all(isinstance(side, (String, Name)) for side in sides):
            raise self._error(f"cannot compare a number with string {to_text(strings[0])}", node.pos)

    # grammar: precedence climbing over BINARY_PRECEDENCE; prefix operators and atoms below
    def _expression(self, minimum: int = Precedence.OR) -> Node:
        """The longest expression whose binary operators bind at least as tightly as ``minimum``."""
        node, compared = self._prefix(minimum), False
        while (token := self._peek()).kind == "op" and BINARY_PRECEDENCE.get(token.text, 0) >= minimum:
            op = "^" if token.text == "**" else token.text
            if op in COMPARISONS and compared:
                raise self._error("comparisons cannot be chained", token.pos, "join them with 'and'")
            self._advance()
            if op == "^":  # right-associative, and its exponent may carry a sign: 2^-1
                with self._nested(token.pos):
                    right = self._expression(Precedence.UNARY)
            else:
                right = self._expression(BINARY_PRECEDENCE[op] + 1)
            node = self._build(Binary(op, node, right, pos=token.pos))
            compared = op in COMPARISONS
        return node

    def _prefix(self, minimum: int) -> Node:
        token = self._peek()
        if not ((token.is_op("not") and minimum <= Precedence.NOT) or token.is_op("-", "+")):
            return self._atom()
        self._advance()
        with self._nested(token.pos):
            operand = self._expression(Precedence.NOT if token.text == "not" else Precedence.UNARY)
        self._require_operand(operand)
        return operand if token.text == "+" else self._build(Unary(token.text, operand, pos=token.pos))

    def _atom(self) -> Node:
        token = self._advance()
        if token.kind == "number":
            return Number(token.value, pos=token.pos)
        if token.kind == "string":
            return String(token.value, pos=token.pos)
        if token.kind == "name":
            return self._call(token) if self._peek().is_op("(") else Name(token.text, pos=token.pos)
        if token.is_op("("):
            with self._nested(token.pos):
                node = self._expression()
                self._close(token, "expected ')'")
            return node
        raise self._unexpected(token, "expected a number, name, string, function call or '('")

    def _close(self, opening: Token, hint: str) -> None:
        token = self._advance()
        if token.kind == "end":
            raise self._error("unclosed '('", opening.pos)
        if not token.is_op(")"):
            raise self._unexpected(token, hint)

    def _call(self, name: Token) -> Node:
        if name.text not in FUNCTIONS:
            raise self._error(f"unknown function '{name.text}'", name.pos, "choose one of " + ", ".join(FUNCTIONS))
        opening = self._advance()
        with self._nested(opening.pos):
            args = [] if self._peek().is_op(")") else [self._expression()]
            while self._peek().is_op(","):
                self._advance()
                args.append(self._expression())
            self._close(opening, "expected ',' or ')'")
        fewest, most = FUNCTIONS[name.text]
        if not fewest <= len(args) <= (most or len(args)):
            wanted = f"at least {fewest}" if most is None else str(fewest)
            plural = "" if wanted == "1" else "s"
            raise self._error(f"{name.text}() takes {wanted} argument{plural}, got {len(args)}", name.pos)
        return self._build(Call(name.text, tuple(args), pos=name.pos))
