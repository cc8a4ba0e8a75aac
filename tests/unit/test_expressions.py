"""The expression language: numpy oracles, torch parity and tracing, round trips, errors."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

from mtlrec.expressions import MAX_DEPTH, MAX_LENGTH, Expression, ExpressionError, parse_expression

RNG = np.random.default_rng(0)
N = 64
DATA = {
    "a": RNG.uniform(0.1, 3.0, N),
    "b": RNG.uniform(0.1, 3.0, N),
    "c": RNG.uniform(0.1, 3.0, N),
    "n": RNG.normal(size=N),
    "i": RNG.integers(0, 4, N),
    "flag": RNG.random(N) < 0.5,
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# (expression, the same formula written in numpy)
CASES = [
    ("a + b * c", lambda d: d["a"] + d["b"] * d["c"]),
    ("(a + b) * c", lambda d: (d["a"] + d["b"]) * d["c"]),
    ("a - b - c", lambda d: (d["a"] - d["b"]) - d["c"]),
    ("a / b / c", lambda d: (d["a"] / d["b"]) / d["c"]),
    ("a / (b / c)", lambda d: d["a"] / (d["b"] / d["c"])),
    ("a - -b", lambda d: d["a"] + d["b"]),
    ("-a ^ 2", lambda d: -(d["a"] ** 2)),
    ("-2 ^ 2", lambda d: -4.0),
    ("2 ^ -1", lambda d: 0.5),
    ("2 ** 3 ** 2", lambda d: 512.0),
    ("a ^ b ^ c", lambda d: d["a"] ** (d["b"] ** d["c"])),
    ("(a ^ b) ^ c", lambda d: (d["a"] ** d["b"]) ** d["c"]),
    ("a ** 0.5 * b", lambda d: np.sqrt(d["a"]) * d["b"]),
    ("(-n) ^ 2", lambda d: d["n"] ** 2),
    ("a * -b ^ 2", lambda d: d["a"] * -(d["b"] ** 2)),
    ("- a * b + +c", lambda d: -d["a"] * d["b"] + d["c"]),
    (
        "log(a) + log1p(b) - exp(-c) + sqrt(a) + abs(n)",
        lambda d: np.log(d["a"]) + np.log1p(d["b"]) - np.exp(-d["c"]) + np.sqrt(d["a"]) + np.abs(d["n"]),
    ),
    ("sigmoid(2*n - 1)", lambda d: _sigmoid(2 * d["n"] - 1)),
    ("min(a, b, c)", lambda d: np.minimum(np.minimum(d["a"], d["b"]), d["c"])),
    ("max(a, 1)", lambda d: np.maximum(d["a"], 1.0)),
    ("min(a / 3, 1)", lambda d: np.minimum(d["a"] / 3, 1.0)),
    ("pow(a, b)", lambda d: d["a"] ** d["b"]),
    ("clip(n, -0.5, 0.5)", lambda d: np.clip(d["n"], -0.5, 0.5)),
    ("1 + 2*i + 5*flag", lambda d: 1 + 2 * d["i"] + 5 * d["flag"]),
    ("1 + 4*(n > 0)", lambda d: 1 + 4 * (d["n"] > 0)),
    ("(a > b) + (b >= c) * 2", lambda d: (d["a"] > d["b"]) + (d["b"] >= d["c"]) * 2.0),
    ("1e-3 * a + .5 + 2.5E1", lambda d: 1e-3 * d["a"] + 0.5 + 25.0),
    ("ctr_2", lambda d: d["a"]),
    ("3", lambda d: 3.0),
    ("i == 2", lambda d: d["i"] == 2),
    ("i != 2", lambda d: d["i"] != 2),
    ("a < b", lambda d: d["a"] < d["b"]),
    ("a <= 1", lambda d: d["a"] <= 1),
    ("a > b * c - 1", lambda d: d["a"] > d["b"] * d["c"] - 1),
    ("a >= b", lambda d: d["a"] >= d["b"]),
    ("(a < b) < c", lambda d: (d["a"] < d["b"]) < d["c"]),
    ("n > 0 and i == 1", lambda d: (d["n"] > 0) & (d["i"] == 1)),
    ("n > 0 or i == 1", lambda d: (d["n"] > 0) | (d["i"] == 1)),
    ("not n > 0", lambda d: ~(d["n"] > 0)),
    ("not n > 0 and i >= 2 or a < 1", lambda d: (~(d["n"] > 0) & (d["i"] >= 2)) | (d["a"] < 1)),
    ("not (n > 0 and i >= 2)", lambda d: ~((d["n"] > 0) & (d["i"] >= 2))),
    ("n > 0 or i == 1 and a < 1", lambda d: (d["n"] > 0) | ((d["i"] == 1) & (d["a"] < 1))),
    ("flag and a > 1", lambda d: d["flag"] & (d["a"] > 1)),
    ("not flag", lambda d: ~d["flag"]),
    ("i and n", lambda d: (d["i"] != 0) & (d["n"] != 0)),
]
IDS = [text for text, _ in CASES]


def _values(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**data, "ctr_2": data["a"]}


@pytest.mark.parametrize(("text", "oracle"), CASES, ids=IDS)
def test_evaluate_matches_numpy(text, oracle):
    expression = parse_expression(text)
    result = expression.evaluate(_values(DATA))
    expected = np.asarray(oracle(DATA))
    assert result.dtype == (bool if expected.dtype == bool else np.float64)
    assert expression.is_boolean == (result.dtype == bool)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


@pytest.mark.parametrize("text", IDS)
def test_evaluate_torch_equals_evaluate(text):
    expression = parse_expression(text)
    tensors = {name: torch.from_numpy(value) for name, value in _values(DATA).items()}
    result = expression.evaluate_torch(tensors)
    expected = expression.evaluate(_values(DATA))
    floating = any(tensors[name].is_floating_point() for name in expression.names)
    number_dtype = torch.float64 if floating else torch.get_default_dtype()  # ints, bools and constants
    assert result.dtype == (torch.bool if expected.dtype == bool else number_dtype)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-12 if floating else 1e-6)


@pytest.mark.parametrize("text", IDS)
def test_str_round_trips(text):
    expression = parse_expression(text)
    again = parse_expression(str(expression))
    assert again == expression and str(again) == str(expression)
    np.testing.assert_array_equal(again.evaluate(_values(DATA)), expression.evaluate(_values(DATA)))


def test_round_trip_keeps_strings_and_small_numbers():
    expression = parse_expression("country == 'it\\'s \"x\"' and w > 1e-7 and w < 1e20")
    assert parse_expression(str(expression)) == expression
    assert parse_expression("a+b") == parse_expression("(a) + (b)") != parse_expression("b + a")


def test_traced_module_reproduces_eager_results_on_new_inputs():
    expression = parse_expression("sigmoid(2*ctr - 1) * log1p(dur) ^ 0.5 + min(ctr, cvr, 0.3) * (cvr > 0.1)")

    class Fusion(torch.nn.Module):
        def forward(self, ctr: torch.Tensor, cvr: torch.Tensor, dur: torch.Tensor) -> torch.Tensor:
            return expression.evaluate_torch({"ctr": ctr, "cvr": cvr, "dur": dur})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated in recent torch
        traced = torch.jit.trace(Fusion(), (torch.rand(8), torch.rand(8), torch.rand(8) * 100))
    inputs = (torch.rand(32), torch.rand(32), torch.rand(32) * 100)
    torch.testing.assert_close(traced(*inputs), Fusion()(*inputs))
    numpy_inputs = {name: x.double().numpy() for name, x in zip(("ctr", "cvr", "dur"), inputs)}
    np.testing.assert_allclose(traced(*inputs).numpy(), expression.evaluate(numpy_inputs), rtol=1e-5)


def test_torch_dtype_follows_the_inputs():
    expression = parse_expression("x / 2 + 1")
    assert expression.evaluate_torch({"x": torch.ones(3)}).dtype == torch.float32
    assert expression.evaluate_torch({"x": torch.ones(3, dtype=torch.int64)}).dtype == torch.get_default_dtype()
    mixed = parse_expression("x + y").evaluate_torch({"x": torch.ones(2), "y": torch.ones(2, dtype=torch.float64)})
    assert mixed.dtype == torch.float64
    assert parse_expression("x > 0").evaluate_torch({"x": torch.ones(2)}).dtype == torch.bool


def test_names_are_collected():
    expression = parse_expression('click == 1 and country != "US" or log1p(watch_time) > min(click, 2)')
    assert expression.names == frozenset({"click", "country", "watch_time"})
    assert parse_expression("log(2) + 1").names == frozenset()
    assert parse_expression("log + 1").names == frozenset({"log"})  # a function name without a call is a column


def test_is_boolean():
    assert parse_expression("click == 1").is_boolean
    assert parse_expression("not a").is_boolean
    assert parse_expression("a or b").is_boolean
    assert not parse_expression("1 + 4*(share > 0)").is_boolean
    assert not parse_expression("click").is_boolean


def test_missing_values_propagate_and_fail_comparisons():
    x = np.array([1.0, np.nan, 3.0])
    values = {"x": x}
    np.testing.assert_array_equal(parse_expression("x + 1").evaluate(values), [2.0, np.nan, 4.0])
    for text, expected in [
        ("x == 1", [True, False, False]),
        ("x != 1", [False, False, True]),
        ("x < 2", [True, False, False]),
        ("not (x == 1)", [False, True, True]),
        ("x and 1", [True, False, True]),
    ]:
        np.testing.assert_array_equal(parse_expression(text).evaluate(values), expected, err_msg=text)
        torch_result = parse_expression(text).evaluate_torch({"x": torch.from_numpy(x)})
        np.testing.assert_array_equal(torch_result.numpy(), expected, err_msg=text)


def test_string_columns_support_equality():
    for column in (
        np.array(["US", "FR", None, "US"], dtype=object),  # None is missing: false under != as well as ==
        np.array(["US", "FR", "", "US"]),
        np.array([b"US", b"FR", b"", b"US"]),
    ):
        values = {"country": column, "click": np.array([1, 1, 1, 0])}
        result = parse_expression('click == 1 and country != "US"').evaluate(values)
        np.testing.assert_array_equal(result, [False, True, column.dtype != object, False])
        np.testing.assert_array_equal(parse_expression("country == 'US'").evaluate(values), [True, False, False, True])
    other = {"a": np.array(["x", "y", None], dtype=object), "b": np.array(["x", "z", None], dtype=object)}
    np.testing.assert_array_equal(parse_expression("a == b").evaluate(other), [True, False, False])
    numbers = {"a": np.array([1, None, 3], dtype=object)}
    np.testing.assert_array_equal(parse_expression("a * 2").evaluate(numbers), [2.0, np.nan, 6.0])


def test_ieee_results_are_not_hidden_and_do_not_warn():
    x = np.array([0.0, -1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logs = parse_expression("log(x)").evaluate({"x": x})
        ratios = parse_expression("x / 0").evaluate({"x": x})
        roots = parse_expression("sqrt(x)").evaluate({"x": x})
    np.testing.assert_array_equal(logs, [-np.inf, np.nan, 0.0])
    np.testing.assert_array_equal(ratios, [np.nan, -np.inf, np.inf])
    np.testing.assert_array_equal(roots, [0.0, np.nan, 1.0])
    torch_logs = parse_expression("log(x)").evaluate_torch({"x": torch.from_numpy(x)})
    np.testing.assert_array_equal(torch_logs.numpy(), logs)


def test_sigmoid_is_stable_in_the_tails():
    result = parse_expression("sigmoid(x)").evaluate({"x": np.array([-1000.0, -30.0, 0.0, 1000.0])})
    np.testing.assert_allclose(result, [0.0, np.exp(-30.0) / (1 + np.exp(-30.0)), 0.5, 1.0], rtol=1e-12)


def test_broadcasting_and_scalars():
    result = parse_expression("a + b").evaluate({"a": np.zeros((3, 1)), "b": np.arange(4)})
    assert result.shape == (3, 4)
    assert parse_expression("a * 2").evaluate({"a": 1.5}) == 3.0
    assert parse_expression("2 > 1").evaluate({}).dtype == bool


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "empty expression", None),
        ("   ", "empty expression", None),
        ("click ==)", "unexpected ')'", 8),
        ("(a + b", "unclosed '('", 0),
        ("min(a, b", "unclosed '('", 3),
        ("a + b)", "unexpected ')'", 5),
        ("a b", "unexpected name 'b'", 2),
        ("a ==", "unexpected end of expression", 4),
        ("foo(x)", "unknown function 'foo'", 0),
        ("clip(x, 1)", "clip() takes 3 arguments, got 2", 0),
        ("log(a, b)", "log() takes 1 argument, got 2", 0),
        ("min(a)", "min() takes at least 2 arguments, got 1", 0),
        ("a < b < c", "comparisons cannot be chained", 6),
        ("a == b != c", "comparisons cannot be chained", 7),
        ("__import__('os')", "unknown function '__import__'", 0),
        ("eval('1')", "unknown function 'eval'", 0),
        ("a.b", "unexpected character '.'", 1),
        ("lambda x: x", "unexpected character ':'", 8),
        ("lambda: 1", "unexpected character ':'", 6),
        ("a if b else c", "unexpected name 'if'", 2),
        ("a[0]", "unexpected character '['", 1),
        ("(a)(b)", "unexpected '('", 3),
        ("click = 1", "use '=='", 6),
        ("a && b", "use 'and'", 2),
        ("a == not b", "unexpected 'not'", 5),
        ("'US'", 'string "US" can only be compared', 0),
        ("x < 'US'", "strings only support == and !=", 2),
        ("1 == 'US'", "cannot compare a number with string", 2),
        ("log('US')", 'string "US" can only be compared', 4),
        ("'abc", "unterminated string", 0),
        ("2x", "malformed number", 0),
        ("1e999", "too large", 0),
        ("x" * (MAX_LENGTH + 1), "the limit is", None),
        ("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1), "nests more than", MAX_DEPTH),
        ("-" * (MAX_DEPTH + 1) + "x", "nests more than", MAX_DEPTH),
        ("+".join(["a"] * (MAX_DEPTH + 2)), "nests more than", 2 * MAX_DEPTH + 1),
    ],
)
def test_parse_errors_name_the_reason_and_position(text, message, position):
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert message in str(caught.value)
    assert caught.value.position == position
    if position is not None:
        assert f"at position {position}" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_unknown_function_lists_the_allowed_ones():
    with pytest.raises(ExpressionError, match="choose one of abs, clip, exp, log, log1p, max, min, pow, sigmoid, sqrt"):
        parse_expression("exp(1) + logg(x)")


def test_limits_allow_what_they_promise():
    depth = MAX_DEPTH
    parse_expression("(" * depth + "x" + ")" * depth)
    parse_expression("-" * depth + "x")
    parse_expression("+".join(["a"] * (depth + 1)))
    parse_expression("2^" * depth + "2")
    parse_expression("min(" * depth + "x" + ", 1)" * depth)
    with pytest.raises(ExpressionError, match="must be text"):
        parse_expression(3)  # type: ignore[arg-type]


def test_evaluation_errors():
    with pytest.raises(ExpressionError, match=r"unknown name 'clik' at position 0 .*available: click, like"):
        parse_expression("clik == 1").evaluate({"click": np.ones(2), "like": np.ones(2)})
    strings = {"country": np.array(["US", "FR"])}
    with pytest.raises(ExpressionError, match="column 'country' holds strings"):
        parse_expression("country + 1").evaluate(strings)
    with pytest.raises(ExpressionError, match="strings only support == and !=, not '<'"):
        parse_expression("country < 'US'").evaluate(strings)
    with pytest.raises(ExpressionError, match="cannot compare numbers with strings"):
        parse_expression("x == 'US'").evaluate({"x": np.ones(2)})
    with pytest.raises(ExpressionError, match="strings are not supported by evaluate_torch"):
        parse_expression("x == 'US'").evaluate_torch({"x": torch.ones(2)})
    with pytest.raises(ExpressionError, match="needs tensors, but 'x' is a float"):
        parse_expression("x + 1").evaluate_torch({"x": 1.0})  # type: ignore[dict-item]
    with pytest.raises(ExpressionError, match="unknown name 'y'"):
        parse_expression("y").evaluate_torch({})


def test_expressions_are_immutable_values():
    expression = parse_expression("a + 1")
    assert isinstance(expression, Expression) and expression.text == "a + 1"
    assert hash(expression) == hash(parse_expression("a+1"))
    with pytest.raises(AttributeError):
        expression.text = "b"  # type: ignore[misc]


def test_result_dtype_follows_is_boolean():
    flags = {"flag": np.array([True, False])}
    lone = parse_expression("flag")
    assert not lone.is_boolean
    np.testing.assert_array_equal(lone.evaluate(flags), [1.0, 0.0])
    assert lone.evaluate_torch({"flag": torch.tensor([True, False])}).dtype == torch.get_default_dtype()
    assert parse_expression("not flag").evaluate(flags).dtype == bool


def test_errors_and_expressions_survive_pickling():
    expression = parse_expression("clip(a, 0, 1) > 0.5 or b == 'x'")
    assert pickle.loads(pickle.dumps(expression)) == expression
    with pytest.raises(ExpressionError) as caught:
        parse_expression("a +")
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and again.position == caught.value.position == 3
