"""The expression tree and its evaluation: constant folding and sharing, reverse mode against torch's
autograd, the conventions at non-smooth points, and results that do not depend on the batch."""

import math

import numpy as np
import pytest
import torch

from descent.landscapes.evaluate import Program, value, value_and_grad
from descent.landscapes.expr import Binary, Builder, Call, Column, Const, Fold, Power, walk
from descent.landscapes.formula import FUNCTIONS, FormulaError, parse_formula
from descent.landscapes.functions import integer_power

torch.set_num_threads(1)
F64 = torch.float64


def points(
    n: int, dim: int = 2, low: float = -2.0, high: float = 2.0, seed: int = 0, dtype=F64
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (low + (high - low) * torch.rand((n, dim), generator=generator, dtype=F64)).to(dtype)


def autograd(formula, x: torch.Tensor) -> torch.Tensor:
    xg = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(formula(xg).sum(), xg)
    return grad


# --- the tree ------------------------------------------------------------------------------------
def test_constants_are_folded_with_torch_arithmetic():
    """Constant subtrees become one number, computed as torch would at run time (no Python errors)."""
    assert isinstance(parse_formula("2**3**2 - sin(pi/2)").tree, Const)
    assert parse_formula("2**3**2 - sin(pi/2)").tree.value == 511.0
    b = Builder()
    assert b.binary("/", b.const(1.0), b.const(0.0)).value == math.inf  # Python: ZeroDivisionError
    assert math.isnan(b.power(b.const(-8.0), 1 / 3).value)  # Python would give a complex number
    # the parser refuses a constant that is not finite, naming it (see test_formula)
    for text in ("1/0", "(-8)**(1/3)"):
        with pytest.raises(FormulaError, match="is not finite"):
            parse_formula(text)
    tree = parse_formula("x * (2*3) + 10*d").tree
    assert isinstance(tree, Binary) and tree.right.value == 20.0  # d = 2 for x, y
    assert tree.left.right.value == 6.0
    assert isinstance(parse_formula("x**0").tree, Const)  # x**0 = 1, as torch.pow
    assert parse_formula("sum(3 for i in range(d))", ("a", "b", "c", "d4")).tree.value == 12.0


def test_a_repeated_subexpression_is_one_node():
    tree = parse_formula("sin(x + y)**2 + cos(x + y)*exp(-(x + y))").tree
    sums = [n for n in walk(tree) if isinstance(n, Binary) and n.op == "+" and isinstance(n.left, Column)]
    assert len(sums) == 1  # x + y, once
    sin = next(n for n in walk(tree) if isinstance(n, Call) and n.name == "sin")
    cos = next(n for n in walk(tree) if isinstance(n, Call) and n.name == "cos")
    assert sin.arg is cos.arg
    nodes = list(walk(tree))
    assert len(nodes) == len({id(n) for n in nodes})
    # children come before their parents
    order = {id(n): k for k, n in enumerate(nodes)}
    assert all(order[id(c)] < order[id(n)] for n in nodes for c in n.children())


def test_builder_shares_equal_nodes_but_keeps_the_sign_of_zero():
    b = Builder()
    assert b.power(b.column(0), 2.0) is b.power(b.column(0), 2)
    assert b.const(0.0) is not b.const(-0.0)
    assert b.fold(b.block(0, 3), 3) is b.fold(b.block(0, 3), 3)
    assert b.fold(b.block(0, 3), 3) is not b.fold(b.block(0, 3), 3, mean=True)
    assert isinstance(b.power(b.column(1), 3.0), Power)
    assert b.power(b.column(1), 1.0) is b.column(1)
    assert isinstance(b.fold(b.call("sin", b.block(0, 2)), 2), Fold)
    with pytest.raises(ValueError):
        b.binary("%", b.column(0), b.column(1))


# --- reverse mode against autograd ---------------------------------------------------------------
SMOOTH = [
    "(x**2 - 1)**2 - 0.3*x + y**2",
    "x",
    "3 + 0*x",
    "x*y - x/y + y/3 - 2/x",
    "sin(x)*cos(y) + tan(x/4) + exp(-x*y) + log(1 + x**2)",
    "sqrt(1 + x**2) + abs(x - 3*y) + tanh(x*y) + sinh(y/2) - cosh(x/3)",
    "atan(2*x) + arctan(y) + sigmoid(x - y) + softplus(3*y)",
    "min(x, y**2) + max(x**3, 2*y) + clip(x*y, -0.5, 0.5) + max(x, 1) + min(0.5, y)",
    "x**4 - x**5/7 + y**6/9 + x**-3 + y**-2 + abs(x)**1.5 + abs(y)**0.5 + abs(x*y)**-0.5",
    "2**x + (1 + x**2)**y + e**(x*y)",
    "-(x - y)**2 - -x",
    "(x + y)**2 * exp(-(x + y)**2)",
]


@pytest.mark.parametrize("text", SMOOTH)
def test_reverse_mode_equals_autograd(text):
    """value_and_grad (forward and backward sweeps, no autograd) against torch's autograd of value()."""
    formula = parse_formula(text)
    x = points(200, low=0.3, high=1.7, seed=1)  # away from 0, where x**-3 and 2/x are tame
    x[::2] *= -1  # and negative coordinates too
    value_rm, grad_rm = formula.value_and_grad(x)
    torch.testing.assert_close(value_rm, formula(x), rtol=0, atol=0)  # the same forward sweep
    torch.testing.assert_close(grad_rm, autograd(formula, x), rtol=1e-12, atol=1e-12)


SUMS = [
    ("sum(x[i]**2 for i in range(d))", 5),
    ("sum(100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i in range(d - 1))", 6),
    ("mean(cos(2*pi*x[i]) for i in range(d)) * sqrt(mean(x[i]**2 for i in range(d)))", 4),
    ("sum(x[i - 1]*x[i]*x[1 + i] for i in range(1, d - 1)) + x1*x3", 5),
    ("exp(-sum(x[i]**2 for i in range(d))) + sum(sin(x[i]) for i in range(2, d))", 3),
    ("sum(x[i] for i in range(d))**2", 1),
]


@pytest.mark.parametrize(("text", "dim"), SUMS)
def test_sums_reverse_mode_equals_autograd_and_a_loop(text, dim):
    """Sums over the coordinates: gradient against autograd, value against the sum written out as a loop."""
    names = tuple(f"x{i}" for i in range(1, dim + 1))
    formula = parse_formula(text, names)
    x = points(100, dim, seed=dim)
    value_rm, grad_rm = formula.value_and_grad(x)
    torch.testing.assert_close(grad_rm, autograd(formula, x), rtol=1e-12, atol=1e-12)
    namespace = {"__builtins__": {}, "sum": sum, "range": range, "d": dim, "x": list(x.T), "pi": math.pi}
    namespace.update({"cos": torch.cos, "sin": torch.sin, "exp": torch.exp, "sqrt": torch.sqrt})
    namespace["mean"] = lambda terms: (lambda t: sum(t) / len(t))(list(terms))
    namespace.update({name: x[:, i] for i, name in enumerate(names)})
    reference = eval(text, namespace)  # our own strings, no builtins
    torch.testing.assert_close(value_rm, reference, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dim", [1, 2, 3, 6])
def test_quadratic_form_value_and_gradient(dim):
    generator = torch.Generator().manual_seed(dim)
    m = torch.randn(dim, dim, generator=generator, dtype=F64)
    a = m + m.T
    names = tuple(f"x{i}" for i in range(1, dim + 1))
    formula = parse_formula("x @ A @ x / 2 + 1", names, matrices={"A": a})
    x = points(50, dim, seed=dim)
    value_rm, grad_rm = formula.value_and_grad(x)
    torch.testing.assert_close(
        value_rm, 0.5 * torch.einsum("ni,ij,nj->n", x, a, x) + 1, rtol=1e-13, atol=1e-13
    )
    torch.testing.assert_close(grad_rm, x @ a, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(grad_rm, autograd(formula, x), rtol=1e-13, atol=1e-13)
    hessian = torch.autograd.functional.hessian(lambda v: formula(v.unsqueeze(0))[0], x[0])
    torch.testing.assert_close(hessian, a, rtol=0, atol=1e-14)


def test_value_is_twice_differentiable_by_autograd():
    """value() is plain torch: Hessians by double backward (here of a sum with an offset column)."""
    formula = parse_formula("sum(x[i]**2*x[i+1] for i in range(d - 1))", ("x1", "x2", "x3"))
    x = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    hessian = torch.autograd.functional.hessian(lambda v: formula(v.unsqueeze(0))[0], x)
    # U = x1^2 x2 + x2^2 x3
    expected = torch.tensor([[2 * 2.0, 2 * 1.0, 0], [2 * 1.0, 2 * 3.0, 2 * 2.0], [0, 2 * 2.0, 0]], dtype=F64)
    torch.testing.assert_close(hessian, expected, rtol=0, atol=1e-14)


def test_free_functions_on_a_tree():
    tree = parse_formula("x**2 + 3*y").tree
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=F64)
    assert value(tree, x).tolist() == [7.0, 2.5]
    v, g = value_and_grad(tree, x)
    assert v.tolist() == [7.0, 2.5] and g.tolist() == [[2.0, 3.0], [-2.0, 3.0]]
    assert isinstance(Program(tree).nodes[-1], Binary)


# --- conventions at non-smooth points --------------------------------------------------------------
def test_sqrt_and_abs_have_derivative_zero_at_zero():
    """sqrt'(0) = 0 and abs'(0) = 0 (a cusp's subgradient), by reverse mode and by autograd alike."""
    formula = parse_formula("sqrt(x**2 + y**2) + abs(x) + sqrt(abs(y))")
    origin = torch.zeros(1, 2, dtype=F64)
    _, grad = formula.value_and_grad(origin)
    assert grad.tolist() == [[0.0, 0.0]]
    assert autograd(formula, origin).tolist() == [[0.0, 0.0]]
    away = torch.tensor([[3.0, 4.0]], dtype=F64)
    torch.testing.assert_close(formula.gradient(away), autograd(formula, away), rtol=1e-14, atol=0)
    # a negative argument still gives NaN (the guard is only at 0)
    assert math.isnan(float(parse_formula("sqrt(x)")(torch.tensor([[-1.0, 0.0]], dtype=F64))[0]))


def test_max_min_and_clip_send_the_derivative_to_one_branch():
    """At a tie the first argument takes the whole derivative; elsewhere the one picked does."""
    x = torch.tensor([[1.0, 1.0], [2.0, 1.0], [0.0, 1.0]], dtype=F64)
    _, grad = parse_formula("max(x, y)").value_and_grad(x)
    assert grad.tolist() == [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    _, grad = parse_formula("min(y, x)").value_and_grad(x)
    assert grad.tolist() == [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    _, grad = parse_formula("max(2*x, 2)").value_and_grad(x)  # tie at x = 1: the first argument
    assert grad[:, 0].tolist() == [2.0, 2.0, 0.0]
    clip = parse_formula("clip(x, -0.5, 0.5)")
    x = torch.tensor([[-1.0, 0.0], [-0.5, 0.0], [0.2, 0.0], [0.5, 0.0], [3.0, 0.0]], dtype=F64)
    value_rm, grad = clip.value_and_grad(x)
    assert value_rm.tolist() == [-0.5, -0.5, 0.2, 0.5, 0.5]
    assert grad[:, 0].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_powers():
    """Integer powers are products (u*u*u for 3), equal to torch.pow to rounding; p = 2 is exact."""
    u = points(1000, 1, low=-3, high=3, seed=5)[:, 0]
    assert torch.equal(integer_power(u, 2), u * u)
    assert torch.equal(integer_power(u, 3), (u * u) * u)
    assert torch.equal(integer_power(u, 4), (u * u) * (u * u))
    assert torch.equal(integer_power(u, -2), 1 / (u * u))
    for n in (4, 5, 6, 7, 12, -3):
        torch.testing.assert_close(integer_power(u, n), torch.pow(u, n), rtol=1e-14, atol=0)
    x = torch.tensor([[0.0, 4.0], [2.0, 9.0]], dtype=F64)
    assert parse_formula("x**0 + y**0.5")(x).tolist() == [3.0, 4.0]


# --- results that do not depend on the batch ---------------------------------------------------------
# (each function applied to a computed, contiguous column: torch's vectorised kernels run on those)
INVARIANCE = [f"{name}(1.5*x) + {name}(-3*y)" for name, (arity, _) in FUNCTIONS.items() if arity == 1] + [
    "max(x, y) + min(x, 2*y) + clip(x*y, -1, 1)",
    "(1*x)**4 + (1*y)**5 + (x*y)**7 + abs(x)**1.5 + abs(y)**2.5 + (1*x)**-3",
    "2**x + abs(x)**(1*y) + 3**(x*y)",
    "sum((x[i] + 1)**4 + cos(2*x[i]) for i in range(d))",
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("text", INVARIANCE)
def test_a_particle_gets_the_same_bits_whatever_the_batch(text, dtype):
    """Every function and power: 256 points in one batch and each point alone give identical bits
    (torch's own sigmoid, sinh, cosh and pow differ in the last bit for a few percent of the points)."""
    formula = parse_formula(text)
    x = points(256, low=-3, high=3, seed=7, dtype=dtype)
    value_all, grad_all = formula.value_and_grad(x)
    for i in range(len(x)):
        value_one, grad_one = formula.value_and_grad(x[i : i + 1].clone())
        assert torch.equal(value_one, value_all[i : i + 1]) or bool(value_one.isnan().all()), (i, text)
        assert torch.equal(grad_one.nan_to_num(), grad_all[i : i + 1].nan_to_num()), (i, text)


def test_numpy_reference_for_the_rewritten_functions():
    """The functions computed in a batch-independent way still agree with numpy's."""
    x = points(64, low=-4, high=4, seed=3)
    u, v = x[:, 0].numpy(), x[:, 1].numpy()
    cases = {
        "sigmoid(x)": 1 / (1 + np.exp(-u)),
        "softplus(8*y)": torch.nn.functional.softplus(8 * x[:, 1]).numpy(),  # u itself beyond u = 20
        "sinh(x) + cosh(y)": np.sinh(u) + np.cosh(v),
        "sinh(1e-9*x)": np.sinh(1e-9 * u),
        "abs(x)**1.5 + 2**y": np.abs(u) ** 1.5 + 2.0**v,
    }
    for text, expected in cases.items():
        np.testing.assert_allclose(parse_formula(text)(x).numpy(), expected, rtol=1e-14, atol=0, err_msg=text)
