"""The tree an expression parses to, the language's tables, and the printer that turns a tree back into text."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

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
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
LOGICAL = ("and", "or")


class Precedence(enum.IntEnum):
    """Binding strength, loosest first; the parser climbs it and the printer parenthesizes by it."""

    OR = 1
    AND = 2
    NOT = 3
    CMP = 4
    ADD = 5
    MUL = 6
    UNARY = 7
    POW = 8
    ATOM = 9


BINARY_PRECEDENCE: dict[str, Precedence] = {
    "or": Precedence.OR,
    "and": Precedence.AND,
    **dict.fromkeys(COMPARISONS, Precedence.CMP),
    **dict.fromkeys(("+", "-"), Precedence.ADD),
    **dict.fromkeys(("*", "/"), Precedence.MUL),
    **dict.fromkeys(("^", "**"), Precedence.POW),
}


@dataclass(frozen=True)
class Node:
    """A node of the expression tree.

    Attributes:
        pos: Where the node (or its operator) starts in the text; not part of equality.
        depth: Levels of operators below and including this node; a leaf has 0.
    """

    pos: int = field(default=-1, compare=False, repr=False, kw_only=True)
    depth: int = field(default=0, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", 1 + max((child.depth for child in self.children()), default=-1))

    def children(self) -> tuple[Node, ...]:
        """The operands of this node, left to right."""
        return ()

    def walk(self) -> Iterator[Node]:
        """This node and all below it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True)
class Number(Node):
    """A numeric literal."""

    value: float


@dataclass(frozen=True)
class String(Node):
    """A string literal (only ever an operand of ``==``/``!=``)."""

    value: str


@dataclass(frozen=True)
class Name(Node):
    """A column (or task score) read from the values evaluated over."""

    name: str


@dataclass(frozen=True)
class Call(Node):
    """A call of one of :data:`FUNCTIONS`."""

    function: str
    args: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        """The arguments."""
        return self.args


@dataclass(frozen=True)
class Unary(Node):
    """A prefix operator: ``-`` or ``not``."""

    op: str
    operand: Node

    def children(self) -> tuple[Node, ...]:
        """The operand."""
        return (self.operand,)


@dataclass(frozen=True)
class Binary(Node):
    """An arithmetic (``+ - * / ^``), comparison (``== != < <= > >=``) or logical (``and or``) operator."""

    op: str
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        """The two operands."""
        return (self.left, self.right)


def precedence(node: Node) -> Precedence:
    """How tightly ``node``'s own operator binds (atoms bind tightest)."""
    if isinstance(node, Binary):
        return BINARY_PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return Precedence.NOT if node.op == "not" else Precedence.UNARY
    return Precedence.ATOM


def is_boolean(node: Node) -> bool:
    """Whether ``node`` yields a condition (comparison, ``and``, ``or``, ``not``) rather than a number."""
    if isinstance(node, Unary):
        return node.op == "not"
    return isinstance(node, Binary) and node.op in (*COMPARISONS, *LOGICAL)


def to_text(node: Node, minimum: int = 0) -> str:
    """Text of ``node`` with the fewest parentheses that keep its tree.

    Args:
        node: The tree to print.
        minimum: The binding strength its context needs; a looser ``node`` is wrapped in parentheses.

    Returns:
        Text that parses back to an equal tree.
    """
    if isinstance(node, Number):
        value = node.value
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(node, String):
        text = '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(node, Name):
        text = node.name
    elif isinstance(node, Call):
        text = f"{node.function}({', '.join(to_text(arg) for arg in node.args)})"
    elif isinstance(node, Unary):
        text = ("not " if node.op == "not" else "-") + to_text(node.operand, precedence(node))
    elif node.op == "^":  # right-associative, and a unary minus on its left would bind looser
        text = f"{to_text(node.left, Precedence.POW + 1)} ^ {to_text(node.right, Precedence.UNARY)}"
    else:  # left-associative; comparisons do not chain, so both sides bind tighter
        own = precedence(node)
        text = f"{to_text(node.left, own + (own == Precedence.CMP))} {node.op} {to_text(node.right, own + 1)}"
    return f"({text})" if precedence(node) < minimum else text
