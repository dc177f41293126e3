"""User formulas: safe parsing (AST whitelist), values, gradients, errors, minima and name resolution."""

import ast
import builtins
import math
import pickle
import re
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from descent._errors import DescentError
from descent.landscapes import (
    FormulaError,
    Landscape,
    formula_landscape,
    get_landscape,
    parse_formula,
    resolve_landscape,
)
from descent.landscapes.formula import FUNCTIONS, MAX_LENGTH

torch.set_num_threads(1)

RNG = np.random.default_rng(0)
POINTS = RNG.uniform(-2.0, 2.0, size=(64, 2))


def evaluate(text: str, points: np.ndarray = POINTS, **kwargs) -> np.ndarray:
    formula = parse_formula(text, **kwargs)
    out = formula(torch.tensor(points, dtype=torch.float64))
    assert out.shape == (points.shape[0],)
    assert out.dtype == torch.float64
    return out.numpy()


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


REFERENCES = [
    ("x**2 + y**2", lambda x, y: x**2 + y**2),
    ("(x**2 - 1)**2 - 0.3*x + y**2", lambda x, y: (x**2 - 1) ** 2 - 0.3 * x + y**2),
    ("sin(x)*cos(y) + tan(x/4)", lambda x, y: np.sin(x) * np.cos(y) + np.tan(x / 4)),
    ("exp(-x**2 - y**2) + log(1 + x**2)", lambda x, y: np.exp(-(x**2) - y**2) + np.log(1 + x**2)),
    ("sqrt(x**2 + y**2 + 1) + abs(x - y)", lambda x, y: np.sqrt(x**2 + y**2 + 1) + np.abs(x - y)),
    ("tanh(x) + sinh(y/2) - cosh(x/3)", lambda x, y: np.tanh(x) + np.sinh(y / 2) - np.cosh(x / 3)),
    ("atan(x) + arctan(2*y)", lambda x, y: np.arctan(x) + np.arctan(2 * y)),
    ("sigmoid(x) + softplus(y)", lambda x, y: sigmoid(x) + np.log1p(np.exp(y))),
    ("min(x, y) + max(x, 2*y)", lambda x, y: np.minimum(x, y) + np.maximum(x, 2 * y)),
    ("clip(x, -0.5, 0.5) * y", lambda x, y: np.clip(x, -0.5, 0.5) * y),
    ("pi*x + e*y", lambda x, y: np.pi * x + np.e * y),
    ("2**x - 3/(1 + y**2)", lambda x, y: 2.0**x - 3 / (1 + y**2)),
    ("-x + +y - -3", lambda x, y: -x + y + 3),
    ("x / 2 / 4", lambda x, y: x / 8),
    ("-2**2 + 0*x", lambda x, y: -4.0 + 0 * x),
    ("2**3**2", lambda x, y: np.full_like(x, 512.0)),
    ("x^2 + y^3", lambda x, y: x**2 + y**3),
    ("x**-2 + y**0.5", lambda x, y: x**-2.0 + np.sqrt(np.abs(y)) * np.where(y >= 0, 1, np.nan)),
    ("3", lambda x, y: np.full_like(x, 3.0)),
    ("1e-3*x + 0x10 + 1_000", lambda x, y: 1e-3 * x + 16 + 1000),
    ("  x +\n  y\t", lambda x, y: x + y),
]


@pytest.mark.parametrize(("text", "reference"), REFERENCES, ids=[t for t, _ in REFERENCES])
def test_values_match_reference(text, reference):
    expected = reference(POINTS[:, 0], POINTS[:, 1])
    np.testing.assert_allclose(evaluate(text), expected, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_caret_is_power():
    np.testing.assert_allclose(evaluate("x^2 - y^4"), evaluate("x**2 - y**4"), rtol=0, atol=0)
    assert "column 7" in str(pytest.raises(FormulaError, parse_formula, "x^2 + foo(y)").value)


def test_custom_variables_and_shapes():
    points = RNG.normal(size=(5, 3))
    out = evaluate("a*b - c^2", points, variables=("a", "b", "c"))
    np.testing.assert_allclose(out, points[:, 0] * points[:, 1] - points[:, 2] ** 2)
    f = parse_formula("x**2")
    assert f.used == ("x",) and f.variables == ("x", "y") and f.dim == 2
    with pytest.raises(DescentError, match=r"shape \[N, 2\]"):
        f(torch.zeros(3, 3))
    with pytest.raises(DescentError, match="variables"):
        parse_formula("x", variables=("x", "x"))
    with pytest.raises(DescentError, match="variables"):
        parse_formula("x", variables=("x", "sin"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_preserved_and_constants_broadcast(dtype):
    x = torch.zeros(7, 2, dtype=dtype)
    for text in ("3", "pi", "x + 1", "min(1, 2)"):
        out = parse_formula(text)(x)
        assert out.shape == (7,) and out.dtype == dtype


GRADIENT_FORMULAS = [
    "(x**2 - 1)**2 - 0.3*x + y**2",
    "sin(3*x)*cos(2*y) + exp(-x**2)",
    "log(2 + x**2) * sqrt(1 + y**2) + atan(x*y)",
    "sigmoid(x - y) + softplus(2*y) + tanh(x)^3",
    "2**x + x**y/(3 + cosh(y))",
]


@pytest.mark.parametrize("text", GRADIENT_FORMULAS)
def test_autograd_gradient_matches_finite_differences(text):
    landscape = formula_landscape(text)
    assert landscape.grad_fn == landscape.energy.gradient  # the formula's own (reverse-mode) gradient
    x = torch.tensor(RNG.uniform(0.2, 1.8, size=(16, 2)), dtype=torch.float64)
    grad = landscape.gradient(x)
    h = 1e-6
    fd = torch.stack(
        [
            (
                landscape.value(x + h * torch.eye(2, dtype=x.dtype)[i])
                - landscape.value(x - h * torch.eye(2)[i])
            )
            / (2 * h)
            for i in range(2)
        ],
        dim=1,
    )
    np.testing.assert_allclose(grad.numpy(), fd.numpy(), rtol=1e-6, atol=1e-6)


def test_constant_formula_has_zero_gradient_and_hessian():
    landscape = formula_landscape("3")
    x = torch.zeros(4, 2, dtype=torch.float64)
    assert torch.equal(landscape.gradient(x), torch.zeros(4, 2, dtype=torch.float64))
    assert torch.equal(landscape.hessian(x), torch.zeros(4, 2, 2, dtype=torch.float64))


# --- rejected input ------------------------------------------------------------------------------

REJECTED = [
    ("x.__class__", "attribute access", 2),
    ("__import__('os')", "unknown function '__import__'", 1),
    ("lambda: x", "lambda", 1),
    ("x[0]", "subscripts", 2),
    ("x + 'a'", "string literals", 5),
    ("x + b'a'", "string literals", 5),
    ("sin(x, k=1)", "keyword arguments", 8),
    ("sin(*x)", "starred", 5),
    ("x < y", "comparison '<'", 3),
    ("x and y", "'and'", 3),
    ("not x", "'not'", 1),
    ("x % 2", "operator '%'", 3),
    ("x // 2", "operator '//'", 3),
    ("x @ y", "operator '@'", 3),
    ("x**2 + z", "unknown variable 'z'", 8),
    ("x**2 + foo(y)", "unknown function 'foo'", 8),
    ("x**2 + sin", "'sin' must be called", 8),
    ("min(x)", "takes 2 arguments", 1),
    ("sin(x)(y)", "only named functions", 1),
    ("x**101", "exponent 101 is too large", 4),
    ("x**-1000", "exponent -1000 is too large", 4),
    ("x^1000", "exponent 1000 is too large", 3),
    ("x**(50*3)", "exponent 150 is too large", 5),
    ("y**-(10**3)", "exponent -1000 is too large", 4),
    ("1e999 * x", "the constant '1e999' is not finite (it evaluates to inf)", 1),
    ("x + 10**400", "the constant '10**400' is not finite (it evaluates to inf)", 5),
    ("x + 10^400", "the constant '10^400' is not finite (it evaluates to inf)", 5),
    ("9**9**9", "the constant '9**9**9' is not finite (it evaluates to inf)", 1),
    ("y*(1e308 + 1e308)", "the constant '1e308 + 1e308' is not finite", 4),
    ("x + log(-1)", "the constant 'log(-1)' is not finite (it evaluates to nan)", 5),
    ("x*exp(1000)", "the constant 'exp(1000)' is not finite (it evaluates to inf)", 3),
    ("0/0", "the constant '0/0' is not finite (it evaluates to nan)", 1),
    ("x/0", "division by zero", 2),
    ("min(y, x/(1 - 1))", "division by zero ('1 - 1' is 0)", 9),
    ("1j * x", "complex numbers", 1),
    ("True + x", "True is not allowed", 1),
    ("x if y else 1", "conditional", 1),
    ("(x := 1)", "assignment", 2),
    ("[x for x in (1, 2)]", "list comprehensions", 1),
    ("{'a': x}", "dicts", 1),
    ("(x, y)", "tuples", 1),
    ("f'{x}'", "f-strings", 1),
    ("x +", "syntax error", 4),
    ("x + * y", "syntax error", 5),
    ("(x", "syntax error", 1),
    ("1 2", "syntax error", 3),
    ("x = 1", "syntax error", 3),
    ("import os", "syntax error", 1),
    ("x + é", "unexpected character", 5),
    ("x" * (MAX_LENGTH + 1), "too long", MAX_LENGTH + 1),
    ("-" * 60 + "x", "nested too deeply", 51),
    ("sin(" * 60 + "x" + ")" * 60, "nested too deeply", 201),
]


@pytest.mark.parametrize(("text", "problem", "column"), REJECTED, ids=[t[:30] for t, _, _ in REJECTED])
def test_disallowed_constructs_raise_with_column(text, problem, column):
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    message = str(info.value)
    assert message.startswith("invalid landscape formula ")
    assert problem in message
    assert f"at column {column}" in message
    assert isinstance(info.value, DescentError) and isinstance(info.value, ValueError)


def test_a_constant_that_is_not_finite_is_refused_alike_however_written():
    """1e999 and 10**400 (and 9**9**9, 0/0, log(0)) are one kind of error: a constant that is not
    finite, named as written, in one line."""
    for text, part, value in [
        ("1e999", "1e999", "inf"),
        ("10**400", "10**400", "inf"),
        ("10^400", "10^400", "inf"),
        ("9**9**9", "9**9**9", "inf"),
        ("-1e999", "1e999", "inf"),
        ("x + 1" + "0" * 400, "1" + "0" * 36 + "...", "inf"),
        ("log(0) + y", "log(0)", "-inf"),
        ("sum(1e308 for i in range(d)) + x", "sum(1e308 for i in range(d))", "inf"),
    ]:
        message = str(pytest.raises(FormulaError, parse_formula, text).value)
        assert f"the constant {part!r} is not finite (it evaluates to {value}) at column" in message
        assert message.startswith(f"invalid landscape formula {text[:77]!r}"[:40]) and "\n" not in message
    # a large but finite constant is fine whatever the exponent (it is folded exactly)
    assert parse_formula("2**200 + x").tree.left.value == 2.0**200
    assert parse_formula("10**300 * 1e-300 + 0*x").tree.left.value == pytest.approx(1.0)


def test_flat_sums_and_products_of_many_terms_are_not_nested():
    """A long flat chain a + b - c ... (what Python parses as left-nested) is not "nested too deeply"."""
    terms = 240
    text = " + ".join(["x"] * (terms // 2) + ["y"] * (terms // 2))[:MAX_LENGTH]
    text = text[: text.rfind(" +")] if len(text) == MAX_LENGTH else text
    count = text.count("x") + text.count("y")
    assert count > 100
    formula = parse_formula(text)
    value, grad = formula.value_and_grad(torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    nx, ny = text.count("x"), text.count("y")
    assert float(value[0]) == nx + 2 * ny and grad.tolist() == [[float(nx), float(ny)]]
    product = "*".join(["x"] * 200)
    assert float(parse_formula(product)(torch.tensor([[1.0, 0.0]]))[0]) == 1.0
    mixed = "1" + "".join(f" {op} x" for op in "+-*/" * 30)  # ((1 + x) - x) * x / x ...: 120 terms
    assert parse_formula(mixed)(torch.tensor([[2.0, 0.0]], dtype=torch.float64)).shape == (1,)
    landscape = formula_landscape(" + ".join(["x**2"] * 60) + " + y**2")
    assert landscape.minima and landscape.minima[0].position == pytest.approx((0.0, 0.0), abs=1e-6)
    # real nesting still has its limit
    for nested in ("-" * 60 + "x", "sin(" * 60 + "x" + ")" * 60, "x**" * 60 + "x"):
        with pytest.raises(FormulaError, match="nested too deeply"):
            parse_formula(nested)


def test_messages_list_what_is_allowed():
    unknown_name = str(pytest.raises(FormulaError, parse_formula, "x + q").value)
    assert "allowed names: x, y, pi, e" in unknown_name
    unknown_fn = str(pytest.raises(FormulaError, parse_formula, "x**2 + foo(y)").value)
    assert unknown_fn.startswith(
        "invalid landscape formula 'x**2 + foo(y)': unknown function 'foo' at column 8"
    )
    assert "allowed functions: " + ", ".join(FUNCTIONS) in unknown_fn
    for empty in ("", "   ", "\n"):
        assert "empty" in str(pytest.raises(FormulaError, parse_formula, empty).value)
    assert "expected a string" in str(pytest.raises(FormulaError, parse_formula, 3).value)


def test_no_code_is_ever_executed(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(builtins, "boom", lambda *args: calls.append(args) or 1.0, raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec must never be used")

    real_compile = builtins.compile

    def parse_only(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & ast.PyCF_ONLY_AST, "compile() may only be used to build an AST"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", parse_only)
    marker = tmp_path / "pwned"
    attacks = [
        "boom()",
        "boom",
        "x + boom(1)",
        "sin(boom())",
        "(lambda: boom())()",
        "[boom() for _ in (1,)][0]",
        "{'a': boom()}['a']",
        "x if boom() else y",
        "boom() < 1",
        "(boom := 1)",
        "x.__class__.__init__.__globals__['boom']()",
        "__import__('builtins').boom()",
        "(1).__class__.__bases__[0].__subclasses__()",
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        "eval('boom()')",
        "exec('boom()')",
        "getattr(x, 'boom')()",
        "sin.__globals__",
        "x ^ boom()",
    ]
    for text in attacks:
        with pytest.raises(FormulaError):
            parse_formula(text)
    assert calls == []
    assert not marker.exists()
    # a valid formula parses and evaluates with eval/exec gone and compile limited to parsing
    value = parse_formula("sin(x) + y^2")(torch.tensor([[0.0, 2.0]], dtype=torch.float64))
    assert float(value[0]) == 4.0


# --- landscapes and their minima -----------------------------------------------------------------


def test_formula_landscape_fields():
    text = "(x**2-1)**2 + y**2"
    landscape = formula_landscape(text)
    assert isinstance(landscape, Landscape)
    assert landscape.name == "formula" and landscape.dim == 2
    assert landscape.bounds == ((-3.0, 3.0), (-3.0, 3.0))
    assert landscape.description == text and landscape.formula == text
    assert landscape.grad_fn == landscape.energy.gradient and landscape.bounded_below
    assert formula_landscape("x**2").dim == 2
    assert formula_landscape("x1**2 + x2**2 + (x3 - 1)**2").dim == 3
    custom = formula_landscape("x**2 + y**2", bounds=(-1, 2), start=(0.5, 0.5), lr=0.05)
    assert custom.bounds == ((-1.0, 2.0), (-1.0, 2.0))
    assert custom.default_start == (0.5, 0.5) and custom.default_lr == 0.05
    per_axis = formula_landscape("x**2 + y**2", bounds=[(-1, 1), (-2, 2)])
    assert per_axis.bounds == ((-1.0, 1.0), (-2.0, 2.0))
    for bad in ({"bounds": (1, -1)}, {"bounds": "abc"}, {"start": (0.0,)}, {"lr": -1}):
        with pytest.raises(DescentError):
            formula_landscape("x**2 + y**2", **bad)


def test_minima_of_symmetric_double_well():
    landscape = formula_landscape("(x**2-1)**2 + y**2")
    minima = landscape.minima
    assert len(minima) == 2 and all(p.kind == "global_min" for p in minima)
    positions = sorted(p.position for p in minima)
    np.testing.assert_allclose(positions, [(-1.0, 0.0), (1.0, 0.0)], atol=1e-8)
    assert all(abs(p.value) < 1e-12 for p in minima)
    saddles = landscape.saddles
    assert len(saddles) == 1
    np.testing.assert_allclose(saddles[0].position, (0.0, 0.0), atol=1e-8)


def test_minima_of_tilted_double_well_match_the_seed():
    landscape = formula_landscape("(x**2 - 1)**2 - 0.3*x + y**2")
    seed = get_landscape("double-well")
    (right,) = landscape.global_minima
    (left,) = [p for p in landscape.minima if p.kind == "local_min"]
    np.testing.assert_allclose(right.position, seed.point("right").position, atol=1e-8)
    np.testing.assert_allclose(left.position, seed.point("left").position, atol=1e-8)
    assert right.position[0] > 0 > left.position[0]
    assert 0.005 < landscape.default_lr <= 0.1


def test_unbounded_and_degenerate_formulas():
    saddle = formula_landscape("x**2 - y**2")
    assert not saddle.bounded_below and saddle.minima == ()
    assert len(saddle.saddles) == 1
    assert not formula_landscape("exp(x) + y**2").bounded_below
    valley = formula_landscape("x**2")  # a line of minima: bounded, but no isolated minimum
    assert valley.bounded_below and valley.minima == ()
    cusp = formula_landscape("abs(x) + abs(y - 1)")
    (point,) = cusp.minima
    np.testing.assert_allclose(point.position, (0.0, 1.0), atol=1e-6)
    assert not point.smooth
    quartic = formula_landscape("x**4 + (y - 0.5)**4")
    np.testing.assert_allclose(quartic.minima[0].position, (0.0, 0.5), atol=1e-4)


@pytest.mark.parametrize(
    ("text", "bounds", "what"),
    [
        ("log(-1 - x**2)", None, "U is not finite anywhere in the box [-3, 3] x [-3, 3]"),
        ("sqrt(-1 - y**2) + x", None, "U is not finite anywhere"),
        ("log(0*x)", None, "U is not finite anywhere"),
        ("x1**2 + log(-1 - x3**2)", None, "U is not finite anywhere in the box [-3, 3] x [-3, 3] x [-3, 3]"),
        ("log(x) + y", (-3, -1), "U is not finite anywhere in the box [-3, -1] x [-3, -1]"),
        ("abs(x - x)**0.5", None, "the gradient of U is not finite anywhere"),
    ],
)
def test_a_formula_finite_nowhere_in_its_box_is_refused_before_any_work(text, bounds, what, monkeypatch):
    def no_search(*args, **kwargs):
        raise AssertionError("the minima search must not start")

    monkeypatch.setattr("descent.landscapes.formula.find_critical_points", no_search)
    with pytest.raises(FormulaError) as info:
        resolve_landscape(text, **({} if bounds is None else {"bounds": bounds}))
    message = str(info.value)
    assert message.startswith(f"invalid landscape formula {text!r}: {what}")
    assert "points checked, e.g. " in message and "\n" not in message


def test_a_constant_or_partly_finite_formula_is_a_landscape():
    for text in ("e", "0*x", "3", "2**1000 + 0*y"):  # flat: zero gradient, no minimum found
        flat = formula_landscape(text)
        assert flat.minima == () and torch.equal(flat.gradient(torch.ones(3, 2)), torch.zeros(3, 2))
    assert formula_landscape("log(x) + y**2").dim == 2  # finite on half the box
    assert formula_landscape("x*sqrt(-abs(y))").dim == 2  # finite on the line y = 0 only
    assert formula_landscape("x**2 + y**2", bounds=(-1e308, 1e308)).dim == 2  # the box's width overflows


def test_minima_search_is_fast():
    formula_landscape("x**2 + y**2")  # warm-up
    for text in ("(x**2 - 1)**2 - 0.3*x + y**2", "x**2 + 3*sin(y)", "(1 - x)**2 + 10*(y - x**2)**2"):
        start = time.perf_counter()
        formula_landscape(text)
        assert time.perf_counter() - start < 1.0, text


def test_resolve_landscape():
    well = resolve_landscape("double-well")
    assert well.name == "double-well" and well.grad_fn is not None
    assert resolve_landscape("double-well", tilt=0.2).params["tilt"] == 0.2
    formula = resolve_landscape("x**2 + 3*sin(y)")
    assert formula.name == "formula" and formula.formula == "x**2 + 3*sin(y)"
    (minimum,) = formula.minima
    np.testing.assert_allclose(minimum.position, (0.0, -math.pi / 2), atol=1e-8)
    assert resolve_landscape("x**2 + y**2", bounds=(-1, 1)).bounds == ((-1.0, 1.0), (-1.0, 1.0))
    with pytest.raises(DescentError, match="formula parameter"):
        resolve_landscape("x**2", tilt=0.3)


def test_resolve_unknown_name_lists_names_and_formula_error():
    with pytest.raises(FormulaError) as info:
        resolve_landscape("double-wel")
    message = str(info.value)
    assert "'double-wel'" in message and "not a valid formula" in message
    assert "did you mean 'double-well'" in message
    for name in ("double-well", "plateau", "saddle"):
        assert f" {name}," in message or f" {name} " in message
    with pytest.raises(FormulaError, match="unknown function 'foo' at column 8"):
        resolve_landscape("x**2 + foo(y)")


# --- property tests ------------------------------------------------------------------------------

ONE_ARG = sorted(name for name, (arity, _) in FUNCTIONS.items() if arity == 1)
LEAVES = st.one_of(
    st.sampled_from(["x", "y", "pi", "e"]),
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(repr),
)


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(["-", "+"]), children).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**", "^"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(st.sampled_from(ONE_ARG), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(children, children, children).map(lambda t: f"clip({t[0]}, {t[1]}, {t[2]})"),
    )


EXPRESSIONS = st.recursive(LEAVES, _extend, max_leaves=16)
X = torch.tensor(RNG.uniform(-3, 3, size=(5, 2)), dtype=torch.float64)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_evaluates(formula):
    xg = X.clone().requires_grad_(True)
    out = formula(xg)
    assert isinstance(out, torch.Tensor) and out.shape == (5,) and out.dtype == torch.float64
    (grad,) = torch.autograd.grad(out.sum(), xg)
    assert grad.shape == (5, 2)


@PROPERTY
@given(EXPRESSIONS)
def test_whitelisted_expressions_parse_and_evaluate(text):
    try:
        formula = parse_formula(text)
    except FormulaError as error:  # only the documented limits may refuse a grammatical formula
        limits = r"exponent .* too large|too long|nested too deeply|is not finite|division by zero"
        assert re.search(limits, str(error)), str(error)
        return
    _check_evaluates(formula)


TOKENS = st.sampled_from(
    ["x", "y", "pi", "e", "1", "2.5", "1e3", "(", ")", "+", "-", "*", "/", "**", "^", ",", ".", "[", "]",
     "sin", "min", "clip", "lambda", ":", "'", "=", "<", "_", "__class__", "if", "else", " ", "j", "%"]
)  # fmt: skip


@PROPERTY
@given(
    st.one_of(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        st.lists(TOKENS, max_size=25).map("".join),
        st.text(max_size=30),
    )
)
def test_garbage_only_raises_formula_error(text):
    try:
        formula = parse_formula(text)
    except FormulaError:
        return
    _check_evaluates(formula)


# --- sums over the coordinates and the quadratic form ----------------------------------------------

POINTS_4D = RNG.uniform(-2.0, 2.0, size=(32, 4))
X4 = ("x1", "x2", "x3", "x4")
SUM_REFERENCES = [
    ("sum(x[i]**2 for i in range(d))", lambda p: (p**2).sum(1)),
    ("mean(cos(2*pi*x[i]) for i in range(d))", lambda p: np.cos(2 * np.pi * p).mean(1)),
    ("sum(100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i in range(d - 1))",
     lambda p: (100 * (p[:, 1:] - p[:, :-1] ** 2) ** 2 + (1 - p[:, :-1]) ** 2).sum(1)),
    ("sum(x[i - 1] - x[i] for i in range(1, d))", lambda p: p[:, 0] - p[:, -1]),
    ("sum(x[1 + i]*x[i] for i in range(d - 1))", lambda p: (p[:, 1:] * p[:, :-1]).sum(1)),
    ("x1 + x4**2 + 10*d + sum(1 for j in range(d))", lambda p: p[:, 0] + p[:, 3] ** 2 + 44),
    ("sum(x[i] for i in range(0)) + mean(x[i] for i in range(2, 3))", lambda p: p[:, 2]),
    ("sqrt(sum(x[i]^2 for i in range(d)))", lambda p: np.sqrt((p**2).sum(1))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "reference"), SUM_REFERENCES, ids=[t for t, _ in SUM_REFERENCES])
def test_sums_over_the_coordinates_match_numpy(text, reference):
    np.testing.assert_allclose(
        evaluate(text, POINTS_4D, variables=X4), reference(POINTS_4D), rtol=1e-12, atol=1e-12
    )


def test_sums_in_two_dimensional_formulas_use_d_equal_2():
    np.testing.assert_allclose(
        evaluate("y + sum(x[i]**2 for i in range(d))"), POINTS[:, 1] + (POINTS**2).sum(1), rtol=1e-14
    )
    assert parse_formula("sum(x[i]**2 for i in range(d))").used == ("x", "y")
    assert parse_formula("sum(x[i] for i in range(1, d))", X4).used == ("x2", "x3", "x4")


REJECTED_SUMS = [
    ("sum(x[i] for i in range(d + 1))", "x[i] reaches column 4", 5),
    ("sum(x[i+1] for i in range(d))", "x[i + 1] reaches column 4", 5),
    ("sum(x[i - 1] for i in range(d))", "x[i - 1] reaches column -1", 5),
    ("sum(x[0] for i in range(d))", "only x[i], x[i + k] or x[i - k]", 7),
    ("sum(x[i*2] for i in range(d))", "this subscript is not allowed", 7),
    ("sum(x[i + 0.5] for i in range(d))", "this subscript is not allowed", 7),
    ("sum(x[i:2] for i in range(d))", "this subscript is not allowed", 7),
    ("sum(y[i] for i in range(d))", "subscripts are not allowed here", 5),
    ("sum(x2*x[i] for i in range(d))", "the variable 'x2' cannot be used inside sum", 5),
    ("sum(i*x[i] for i in range(d))", "the index 'i' can only be a subscript", 5),
    ("sum(x[i] for i in range(d) if i)", "'if' is not allowed", 31),
    ("sum(x[i] for i in range(d) for j in range(d))", "one 'for' clause", 32),
    ("sum(x[i] for i in [1, 2])", "range(stop) or range(start, stop)", 19),
    ("sum(x[i] for i in range(0, d, 1))", "range(stop) or range(start, stop)", 19),
    ("sum(x[i] for i in range(x1))", "whole numbers made of d and integers", 25),
    ("sum(x[i] for i in range(d/3))", "whole numbers made of d and integers", 25),
    ("sum(x[i] for i in range(1e400))", "the constant '1e400' is not finite", 25),
    ("sum(1 for i in range(10**15))", "range() has 1000000000000000 terms, at most 100000", 16),
    ("x1 + mean(2 for i in range(-10**12, 10**12))", "range() has 2000000000000 terms", 22),
    ("sum(sum(x[i] for i in range(d)) for j in range(d))", "sums cannot be nested", 5),
    ("sum(x[i] for x in range(d))", "the index 'x' is already a name", 14),
    ("sum(x[i] for (i, j) in range(d))", "a plain name", 14),
    ("1 + sum(x)", "sum() takes one generator", 5),
    ("mean(x1, x2)", "mean() takes one generator", 1),
    ("2*sum", "the function 'sum' must be called", 3),
    ("mean(x[i] for i in range(0))", "mean() over an empty range", 20),
    ("x[i]", "subscripts '[...]' are not allowed", 2),
    ("(x[i] for i in range(d))", "generator expressions are not allowed", 1),
    ("range(d)", "unknown function 'range'", 1),
]


@pytest.mark.parametrize(
    ("text", "problem", "column"), REJECTED_SUMS, ids=[t[:40] for t, _, _ in REJECTED_SUMS]
)
def test_sums_outside_the_narrow_form_raise_with_column(text, problem, column):
    with pytest.raises(FormulaError) as info:
        parse_formula(text, X4)
    message = str(info.value)
    assert message.startswith("invalid landscape formula ")
    assert problem in message
    assert f"at column {column}" in message


def test_quadratic_form_of_a_given_matrix():
    a = [[2.0, 0.5], [0.5, 1.0]]
    formula = parse_formula("x @ A @ x / 2 + 1", ("a", "b"), matrices={"A": a})
    expected = 0.5 * np.einsum("ni,ij,nj->n", POINTS, np.array(a), POINTS) + 1
    np.testing.assert_allclose(formula(torch.tensor(POINTS)).numpy(), expected, rtol=1e-14)
    _, grad = formula.value_and_grad(torch.tensor(POINTS))
    np.testing.assert_allclose(grad.numpy(), POINTS @ np.array(a), rtol=1e-14)
    matrices = {"A": a}
    for text, problem, column in [
        ("x @ A", "operator '@' is not allowed here", 3),
        ("x @ A @ y", "operator '@' is not allowed here", 7),
        ("a + A", "the matrix 'A' can only be used as x @ A @ x", 5),
        ("sum(x @ A @ x for i in range(d))", "cannot be used inside sum", 5),
    ]:
        with pytest.raises(FormulaError, match=re.escape(problem) + f".* at column {column}"):
            parse_formula(text, ("a", "b"), matrices=matrices)
    with pytest.raises(FormulaError, match="operator '@' is not allowed at column 7"):
        parse_formula("x @ A @ x")  # no matrix given
    for bad in ([[1.0, 2.0], [0.0, 1.0]], [[1.0]], [[1.0, float("nan")], [float("nan"), 1.0]]):
        with pytest.raises(DescentError, match="symmetric 2 x 2 matrix"):
            parse_formula("x @ A @ x", ("a", "b"), matrices={"A": bad})
    with pytest.raises(DescentError, match="matrix name"):
        parse_formula("x @ pi @ x", ("a", "b"), matrices={"pi": a})


def test_formula_landscapes_have_the_formula_gradient_and_pickle():
    landscape = formula_landscape("sin(x)*y**2 + mean(x[i]**4 for i in range(d))")
    x = torch.tensor(POINTS, dtype=torch.float64)
    value, grad = landscape.value_and_grad(x)
    torch.testing.assert_close(grad, landscape.autograd_gradient(x), rtol=1e-12, atol=1e-12)
    back = pickle.loads(pickle.dumps(landscape))
    assert torch.equal(back.value_and_grad(x)[1], grad) and back.minima == landscape.minima


def _finite_rows(*tensors: torch.Tensor) -> torch.Tensor:
    rows = torch.ones(tensors[0].shape[0], dtype=torch.bool)
    for t in tensors:
        rows &= torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)
    return rows


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_reverse_mode_gradient_equals_autograd_for_any_formula(text):
    """For any whitelisted formula: value_and_grad's value is value()'s, bit for bit, and its gradient is
    torch's autograd of value() wherever both are finite (tolerance relative to the gradient's size)."""
    try:
        formula = parse_formula(text)
    except FormulaError:
        return
    value, grad = formula.value_and_grad(X)
    torch.testing.assert_close(value, formula(X), rtol=0, atol=0, equal_nan=True)
    xg = X.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(formula(xg).sum(), xg)
    rows = _finite_rows(value, grad, reference)
    scale = 1 + reference[rows].abs().max() if rows.any() else 1.0
    torch.testing.assert_close(grad[rows], reference[rows], rtol=1e-9, atol=1e-9 * float(scale))
