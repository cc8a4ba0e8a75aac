"""A small, safe expression language over named columns (numpy) or tensors (torch).

Used for task sample spaces (``click == 1 and country != "US"``), per-sample loss weights
(``1 + 2*like + 5*share``, ``min(dwell / 30, 1)``) and score fusion (``ctr^0.5 * cvr``). Text is
read by a hand-written tokenizer and recursive-descent parser into an immutable tree of dataclass
nodes; nothing is ever handed to Python's ``eval``, ``exec``, ``compile`` or ``ast``.

Precedence, loosest first (all binary operators are left-associative unless noted)::

    or                 a or b
    and                a and b
    not                not a                      prefix
    comparison         == != < <= > >=            non-chaining: ``a < b < c`` is an error
    additive           a + b, a - b
    multiplicative     a * b, a / b
    unary              -a, +a                     prefix
    power              a ^ b, a ** b              right-associative; ``-2^2 == -4``, ``2^-1 == 0.5``
    atom               1, 2.5, 1e-3, "text", 'text', name, f(a, ...), (a)

Functions: ``abs exp log log1p sigmoid sqrt`` (one argument), ``pow(a, b)``, ``clip(x, lo, hi)``,
``min(a, b, ...)`` and ``max(a, b, ...)`` (two or more). Names are ASCII identifiers; ``and``,
``or`` and ``not`` are reserved.

Semantics (the same in :meth:`Expression.evaluate` and :meth:`Expression.evaluate_torch`):

* Arithmetic is floating point: float64 in numpy; in torch the promoted floating dtype of the
  tensors referenced (the default dtype when none is floating). Booleans count as 0/1.
* ``and``/``or``/``not`` take booleans; a number there is true when non-zero and not NaN.
* Missing values (NaN; ``None`` or NaN in object columns) propagate through arithmetic as NaN and
  make every comparison false, ``!=`` included. So for a missing ``x``, ``x != 1`` is false while
  ``not (x == 1)`` is true.
* IEEE arithmetic, nothing hidden or warned about: ``log(0) = -inf``, ``log(-1) = nan``,
  ``1/0 = inf``. Callers validate results (a weight must be finite, for instance).
* A string literal may only be an operand of ``==``/``!=``. Columns holding strings (numpy
  unicode, bytes or object arrays) support only ``==``/``!=``. ``evaluate_torch`` has no strings.

Errors are :class:`ExpressionError`, a ``ValueError`` naming the reason, the 0-based character
position and the expression. It deliberately does not import :mod:`mtlrec.errors`, so that every
layer may use this module; the config layer re-raises it as ``ConfigError`` with the config path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

MAX_LENGTH = 1000
MAX_DEPTH = 64

# function name -> (fewest, most) arguments; ``None`` means no upper bound
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "clip": (3, 3),
    "exp": (1, 1),
    "log": (1, 1),
    "log1p": (1, 1),
    "max": (2, None),
    "min": (2, None),
    "pow": (2, 2),
    "sigmoid": (1, 1),
    "sqrt": (1, 1),
}
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_KEYWORDS = ("and", "or", "not")
_OPERATORS = ("**", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "^", "(", ")", ",")
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
# binding strength, used to print the fewest parentheses that keep the tree unchanged
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _UNARY, _POW, _ATOM = range(1, 10)
_BINARY_PRECEDENCE = {"or": _OR, "and": _AND, **dict.fromkeys(_COMPARISONS, _CMP), "+": _ADD, "-": _ADD}
_BINARY_PRECEDENCE.update({"*": _MUL, "/": _MUL, "^": _POW, "**": _POW})


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

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:  # keeps the fields through pickling (worker processes)
        return type(self), (self.reason, self.text, self.position, self.hint)


# --------------------------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "string", "name", "op" (operators, punctuation, keywords) or "end"
    text: str
    pos: int
    value: Any = None

    def describe(self) -> str:
        if self.kind == "end":
            return "end of expression"
        if self.kind == "op":
            return f"'{self.text}'"
        return f"{self.kind} {self.text}" if self.kind != "name" else f"name '{self.text}'"

    def is_op(self, *texts: str) -> bool:
        return self.kind == "op" and self.text in texts


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens, ending with an ``end`` token."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        token = _next_token(text, pos)
        tokens.append(token)
        pos = token.pos + len(token.text)
    return [*tokens, _Token("end", "", len(text))]


def _next_token(text: str, pos: int) -> _Token:
    char = text[pos]
    if char in "0123456789" or (char == "." and text[pos + 1 : pos + 2] in tuple("0123456789")):
        return _number(text, pos)
    if char in "\"'":
        return _string(text, pos)
    if word := _NAME.match(text, pos):
        return _Token("op" if word.group() in _KEYWORDS else "name", word.group(), pos)
    if op := next((op for op in _OPERATORS if text.startswith(op, pos)), None):
        return _Token("op", op, pos)
    raise ExpressionError(f"unexpected character {char!r}", text, pos, _HINTS.get(char))


def _number(text: str, pos: int) -> _Token:
    literal = _NUMBER.match(text, pos).group()
    after = text[pos + len(literal) : pos + len(literal) + 1]
    if after and (after.isalnum() or after in "_."):
        raise ExpressionError("malformed number", text, pos)
    value = float(literal)
    if not np.isfinite(value):
        raise ExpressionError(f"number {literal} is too large", text, pos)
    return _Token("number", literal, pos, value)


def _string(text: str, pos: int) -> _Token:
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
    return _Token("string", text[pos : end + 1], pos, "".join(chars))


# ---------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Node:
    """A node of the expression tree; ``pos`` is where it (or its operator) starts in the text."""

    pos: int = field(default=-1, compare=False, repr=False, kw_only=True)
    depth: int = field(default=0, init=False, compare=False, repr=False)  # operator levels; a leaf has 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", 1 + max((child.depth for child in self.children()), default=-1))

    def children(self) -> tuple[Node, ...]:
        return ()

    def walk(self) -> Iterator[Node]:
        """This node and all below it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True)
class Number(Node):
    value: float


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.args


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Binary(Node):
    op: str  # arithmetic (+ - * / ^), comparison (== != < <= > >=) or logical (and, or)
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


def _precedence(node: Node) -> int:
    if isinstance(node, Binary):
        return _BINARY_PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return _NOT if node.op == "not" else _UNARY
    return _ATOM


def _format(node: Node, minimum: int = 0) -> str:
    """Text of ``node`` with the fewest parentheses that keep the tree, wrapped if it binds looser than ``minimum``."""
    if isinstance(node, Number):
        value = node.value
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(node, String):
        text = '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(node, Name):
        text = node.name
    elif isinstance(node, Call):
        text = f"{node.function}({', '.join(_format(arg) for arg in node.args)})"
    elif isinstance(node, Unary):
        text = ("not " if node.op == "not" else "-") + _format(node.operand, _precedence(node))
    elif node.op == "^":  # right-associative, and a unary minus on its left would bind looser
        text = f"{_format(node.left, _POW + 1)} ^ {_format(node.right, _UNARY)}"
    else:  # left-associative; comparisons do not chain, so both sides bind tighter
        own = _precedence(node)
        text = f"{_format(node.left, own + (own == _CMP))} {node.op} {_format(node.right, own + 1)}"
    return f"({text})" if _precedence(node) < minimum else text


def _is_boolean(node: Node) -> bool:
    return (isinstance(node, Unary) and node.op == "not") or (
        isinstance(node, Binary) and node.op in (*_COMPARISONS, "and", "or")
    )


# --------------------------------------------------------------------------------------------- parser
class _Parser:
    """Recursive descent with precedence climbing for the binary operators."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
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
    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _error(self, reason: str, pos: int | None, hint: str | None = None) -> ExpressionError:
        return ExpressionError(reason, self.text, pos, hint)

    def _unexpected(self, token: _Token, hint: str | None = None) -> ExpressionError:
        return self._error(f"unexpected {token.describe()}", token.pos, hint)

    def _enter(self, pos: int) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self._error(f"expression nests more than {MAX_DEPTH} levels deep", pos)

    def _build(self, node: Node) -> Node:
        if node.depth > MAX_DEPTH:
            raise self._error(f"expression nests more than {MAX_DEPTH} levels deep", node.pos)
        if isinstance(node, Binary) and node.op in _COMPARISONS:
            self._check_comparison(node)
        else:
            for child in node.children():
                self._require_operand(child)
        return node

    def _require_operand(self, node: Node) -> None:
        if isinstance(node, String):
            raise self._error(f"string {_format(node)} can only be compared with == or !=", node.pos)

    # grammar: precedence climbing over _BINARY_PRECEDENCE; prefix operators and atoms below
    def _expression(self, minimum: int = _OR) -> Node:
        """The longest expression whose binary operators bind at least as tightly as ``minimum``."""
        node, compared = self._prefix(minimum), False
        while (token := self._peek()).kind == "op" and _BINARY_PRECEDENCE.get(token.text, 0) >= minimum:
            op = "^" if token.text == "**" else token.text
            if op in _COMPARISONS and compared:
                raise self._error("comparisons cannot be chained", token.pos, "join them with 'and'")
            self._advance()
            own = _BINARY_PRECEDENCE[op]
            if op == "^":  # right-associative, and its exponent may carry a sign: 2^-1
                self._enter(token.pos)
                right = self._expression(_UNARY)
                self.nesting -= 1
            else:
                right = self._expression(own + 1)
            node = self._build(Binary(op, node, right, pos=token.pos))
            compared = op in _COMPARISONS
        return node

    def _prefix(self, minimum: int) -> Node:
        token = self._peek()
        if (token.is_op("not") and minimum <= _NOT) or token.is_op("-", "+"):
            self._advance()
            self._enter(token.pos)
            operand = self._expression(_NOT if token.text == "not" else _UNARY)
            self.nesting -= 1
            self._require_operand(operand)
            return operand if token.text == "+" else self._build(Unary(token.text, operand, pos=token.pos))
        return self._atom()

    def _check_comparison(self, node: Binary) -> None:
        sides = (node.left, node.right)
        strings = [side for side in sides if isinstance(side, String)]
        if strings and node.op not in ("==", "!="):
            raise self._error(f"strings only support == and !=, not '{node.op}'", node.pos)
        if strings and not all(isinstance(side, (String, Name)) for side in sides):
            raise self._error(f"cannot compare a number with string {_format(strings[0])}", node.pos)

    def _atom(self) -> Node:
        token = self._advance()
        if token.kind == "number":
            return Number(token.value, pos=token.pos)
        if token.kind == "string":
            return String(token.value, pos=token.pos)
        if token.kind == "name" and self._peek().is_op("("):
            return self._call(token)
        if token.kind == "name":
            return Name(token.text, pos=token.pos)
        if token.is_op("("):
            self._enter(token.pos)
            node = self._expression()
            self._close(token, "expected ')'")
            self.nesting -= 1
            return node
        raise self._unexpected(token, "expected a number, name, string, function call or '('")

    def _close(self, opening: _Token, hint: str) -> None:
        token = self._advance()
        if token.kind == "end":
            raise self._error("unclosed '('", opening.pos)
        if not token.is_op(")"):
            raise self._unexpected(token, hint)

    def _call(self, name: _Token) -> Node:
        if name.text not in FUNCTIONS:
            raise self._error(f"unknown function '{name.text}'", name.pos, "choose one of " + ", ".join(FUNCTIONS))
        opening = self._advance()
        self._enter(opening.pos)
        args = [] if self._peek().is_op(")") else [self._expression()]
        while self._peek().is_op(","):
            self._advance()
            args.append(self._expression())
        self._close(opening, "expected ',' or ')'")
        self.nesting -= 1
        fewest, most = FUNCTIONS[name.text]
        if not fewest <= len(args) <= (most or len(args)):
            wanted = f"at least {fewest}" if most is None else str(fewest)
            plural = "" if wanted == "1" else "s"
            raise self._error(f"{name.text}() takes {wanted} argument{plural}, got {len(args)}", name.pos)
        return self._build(Call(name.text, tuple(args), pos=name.pos))


# ------------------------------------------------------------------------------------------- backends
class _Backend:
    """Evaluation over arrays, shared by numpy and torch.

    Subclasses provide the operator tables and ``constant(value)``, ``text(node)``, ``column(node)``,
    ``is_bool(value)``, ``to_float(value)``, ``isnan(value)`` and ``logical_not(value)``.
    """

    arithmetic: dict[str, Callable[[Any, Any], Any]]
    comparisons: dict[str, Callable[[Any, Any], Any]]
    logical: dict[str, Callable[[Any, Any], Any]]
    unary: dict[str, Callable[[Any], Any]]
    constant: Callable[[float], Any]
    text: Callable[[String], Any]
    column: Callable[[Name], Any]
    is_bool: Callable[[Any], bool]
    to_float: Callable[[Any], Any]
    isnan: Callable[[Any], Any]
    logical_not: Callable[[Any], Any]

    def __init__(self, expression: Expression, values: Mapping[str, Any]) -> None:
        self.expression, self.values = expression, values

    def error(self, reason: str, pos: int | None, hint: str | None = None) -> ExpressionError:
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
            return self.logical_not(self.boolean(node.operand)) if node.op == "not" else -self.number(node.operand)
        if node.op in _COMPARISONS:
            return self.compare(node, self.evaluate(node.left), self.evaluate(node.right))
        if node.op in self.logical:
            return self.logical[node.op](self.boolean(node.left), self.boolean(node.right))
        return self.arithmetic[node.op](self.number(node.left), self.number(node.right))

    def number(self, node: Node) -> Any:
        return self.as_number(self.evaluate(node), node)

    def boolean(self, node: Node) -> Any:
        """Value of ``node`` as a condition: numbers are true when non-zero and not missing."""
        value = self.evaluate(node)
        if self.is_bool(value):
            return value
        value = self.as_number(value, node)
        return self.logical["and"](value != 0, self.logical_not(self.isnan(value)))

    def as_number(self, value: Any, node: Node) -> Any:
        """Booleans become 0/1; numbers pass."""
        return self.to_float(value) if self.is_bool(value) else value

    def compare(self, node: Binary, left: Any, right: Any) -> Any:
        left, right = self.as_number(left, node.left), self.as_number(right, node.right)
        result = self.comparisons[node.op](left, right)
        if node.op != "!=":  # every other comparison with NaN is already false
            return result
        return self.logical["and"](result, self.logical_not(self.logical["or"](self.isnan(left), self.isnan(right))))

    def call(self, function: str, args: list[Any]) -> Any:
        if function in ("min", "max"):
            return functools.reduce(self.arithmetic[function], args)
        if function == "clip":
            return self.arithmetic["min"](self.arithmetic["max"](args[0], args[1]), args[2])
        if function == "pow":
            return self.arithmetic["^"](*args)
        return self.unary[function](args[0])


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + exp(-x)) without overflow or cancellation


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class _NumpyBackend(_Backend):
    """Columns become float64 arrays, bool arrays, or text (unicode or object arrays)."""

    arithmetic = {
        "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
        "min": np.minimum, "max": np.maximum,
    }  # fmt: skip
    comparisons = {
        "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal
    }  # fmt: skip
    logical = {"and": np.logical_and, "or": np.logical_or}
    unary = {"abs": np.abs, "exp": np.exp, "log": np.log, "log1p": np.log1p, "sigmoid": _np_sigmoid, "sqrt": np.sqrt}

    def constant(self, value: float) -> Any:
        return np.float64(value)

    def text(self, node: String) -> Any:
        return np.str_(node.value)

    def column(self, node: Name) -> Any:
        array = np.asarray(self.values[node.name])
        if array.dtype.kind in "iuf":
            return array.astype(np.float64, copy=False)
        if array.dtype.kind == "S":
            return np.char.decode(array, "utf-8")
        if array.dtype.kind not in "bUO":
            raise self.error(f"column '{node.name}' has unsupported dtype {array.dtype}", node.pos)
        return array

    def is_bool(self, value: Any) -> bool:
        return value.dtype.kind == "b"

    def to_float(self, value: Any) -> Any:
        return value.astype(np.float64)

    def isnan(self, value: Any) -> Any:
        return np.isnan(value)

    def logical_not(self, value: Any) -> Any:
        return np.logical_not(value)

    def as_number(self, value: Any, node: Node) -> Any:
        if value.dtype.kind == "O":
            flat = value.ravel()
            if not any(isinstance(item, str) for item in flat):  # numbers with None for missing
                try:
                    return np.array([np.nan if item is None else item for item in flat], np.float64).reshape(
                        value.shape
                    )
                except (TypeError, ValueError):
                    pass
        if value.dtype.kind in "UO":
            what = f"column '{node.name}'" if isinstance(node, Name) else "the expression"
            held = "strings, which only support == and !=" if value.dtype.kind == "U" else "non-numeric values"
            raise self.error(f"{what} holds {held}", node.pos)
        return super().as_number(value, node)

    def compare(self, node: Binary, left: Any, right: Any) -> Any:
        kinds = (left.dtype.kind, right.dtype.kind)
        if "U" not in kinds and kinds != ("O", "O"):
            return super().compare(node, left, right)
        if node.op not in ("==", "!="):
            raise self.error(f"strings only support == and !=, not '{node.op}'", node.pos)
        if not set(kinds) <= {"U", "O"}:
            raise self.error("cannot compare numbers with strings", node.pos)
        present = np.logical_not(np.logical_or(self._missing(left), self._missing(right)))
        equal = np.asarray(left == right, dtype=bool)
        return np.logical_and(equal if node.op == "==" else np.logical_not(equal), present)

    @staticmethod
    def _missing(value: np.ndarray) -> np.ndarray:
        if value.dtype.kind != "O":
            return np.zeros(value.shape, dtype=bool)
        return np.asarray(np.frompyfunc(_is_missing, 1, 1)(value), dtype=bool)


class _TorchBackend(_Backend):
    """Numbers in the promoted floating dtype of the inputs; torch ops only, so it traces."""

    arithmetic = {
        "+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "^": torch.pow,
        "min": torch.minimum, "max": torch.maximum,
    }  # fmt: skip
    comparisons = {"==": torch.eq, "!=": torch.ne, "<": torch.lt, "<=": torch.le, ">": torch.gt, ">=": torch.ge}
    logical = {"and": torch.logical_and, "or": torch.logical_or}
    unary = {
        "abs": torch.abs, "exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "sigmoid": torch.sigmoid,
        "sqrt": torch.sqrt,
    }  # fmt: skip

    def __init__(self, expression: Expression, values: Mapping[str, torch.Tensor]) -> None:
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
        return torch.full((), value, dtype=self.dtype, device=self.device)  # an op, not a baked tensor

    def column(self, node: Name) -> Any:
        tensor = self.values[node.name]
        if tensor.dtype == torch.bool:
            return tensor
        if tensor.is_complex():
            raise self.error(f"column '{node.name}' has unsupported dtype {tensor.dtype}", node.pos)
        return tensor if tensor.dtype == self.dtype else tensor.to(self.dtype)

    def is_bool(self, value: Any) -> bool:
        return value.dtype == torch.bool

    def to_float(self, value: Any) -> Any:
        return value.to(self.dtype)

    def isnan(self, value: Any) -> Any:
        return torch.isnan(value)

    def logical_not(self, value: Any) -> Any:
        return torch.logical_not(value)


# ------------------------------------------------------------------------------------------ interface
@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed expression; build it with :func:`parse_expression`.

    Attributes:
        text: The text it was parsed from.
        root: The top node of its tree.
    """

    text: str
    root: Node

    def __str__(self) -> str:
        """Canonical text (fewest parentheses, ``^`` for powers) that parses to the same tree."""
        return _format(self.root)

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
        return _is_boolean(self.root)

    def evaluate(self, values: Mapping[str, np.ndarray | float | str]) -> np.ndarray:
        """Evaluate elementwise with numpy broadcasting.

        Args:
            values: An array (or scalar) for each name; extra entries are ignored.

        Returns:
            A bool array when :attr:`is_boolean`, else float64 (a lone bool column gives 0/1), in the
            broadcast shape of the values read (0-d for an expression without names).
        """
        self._check_names(values)
        backend = _NumpyBackend(self, values)
        with np.errstate(all="ignore"):
            result = backend.evaluate(self.root)
            if not self.is_boolean:
                result = backend.as_number(result, self.root)
        return np.asarray(result)

    def evaluate_torch(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Evaluate elementwise with torch ops only, so ``torch.jit.trace``/``torch.export`` record it.

        Args:
            values: A tensor for each name; extra entries are ignored. Strings are not supported.

        Returns:
            A bool tensor when :attr:`is_boolean`, else the promoted floating dtype of the tensors read
            (the default dtype when none is floating), on their device, in their broadcast shape.
        """
        self._check_names(values)
        backend = _TorchBackend(self, values)
        result = backend.evaluate(self.root)
        return result if self.is_boolean else backend.as_number(result, self.root)

    def _check_names(self, values: Mapping[str, Any]) -> None:
        missing = self.names - set(values)
        if missing:
            first = next(node for node in self.root.walk() if isinstance(node, Name) and node.name in missing)
            known = sorted(values)
            available = ", ".join(known[:30]) + (f" and {len(known) - 30} more" if len(known) > 30 else "")
            hint = f"available: {available or '(none)'}"
            raise ExpressionError(f"unknown name '{first.name}'", self.text, first.pos, hint)


def parse_expression(text: str) -> Expression:
    """Parse ``text`` (see the module docstring for the grammar).

    Raises:
        ExpressionError: If the text is not a valid expression, or is over ``MAX_LENGTH``
            characters or ``MAX_DEPTH`` levels of nesting.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}", repr(text))
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}", text)
    return Expression(text, _Parser(text).parse())
