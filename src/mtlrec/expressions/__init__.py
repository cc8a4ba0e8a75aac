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
position and the expression. The package deliberately does not import :mod:`mtlrec.errors`, so that
every layer may use it; the config layer re-raises it as ``ConfigError`` with the config path.

Modules: ``errors`` (the error, the limits), ``lexer`` (tokens), ``syntax`` (nodes, the language's
tables, the printer), ``parser`` (text to tree), ``evaluator`` (evaluation shared by the backends),
``numpy_eval`` and ``torch_eval`` (the backends), ``expression`` (:class:`Expression`, :func:`parse_expression`).
"""

from mtlrec.expressions.errors import MAX_DEPTH, MAX_LENGTH, ExpressionError
from mtlrec.expressions.expression import Expression, parse_expression
from mtlrec.expressions.syntax import FUNCTIONS, Binary, Call, Name, Node, Number, String, Unary

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Binary",
    "Call",
    "Expression",
    "ExpressionError",
    "Name",
    "Node",
    "Number",
    "String",
    "Unary",
    "parse_expression",
]
