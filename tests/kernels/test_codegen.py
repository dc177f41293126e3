"""The generated U and grad U equal the torch evaluator of the same tree (value and reverse mode) to
1e-12 relative in float64, over every function of the formula language and the non-smooth points."""

import math

import numpy as np
import pytest
import torch

from descent.kernels.cache import load, module_source
from descent.kernels.codegen import literal, value_and_grad_source
from descent.kernels.loop import loop_source
from descent.landscapes.evaluate import value_and_grad
from descent.landscapes.formula import parse_formula

torch.set_num_threads(1)

FORMULA = (
    "sin(x)*cos(y) + tan(x/3) + exp(-x**2) + log(1 + y**2) + sqrt(x**2 + y**2) + abs(x - 0.5)"
    " + tanh(y) + sinh(x/2) + cosh(y/2) + atan(x) + sigmoid(y) + softplus(3*x) + max(x, y)**2"
    " + min(x, 0.25) + (1 + y**2)**x + 2**y + x/(2 + y**2) + (x**2 + 1)**-1.5 + (y**2 + 1)**0.7 - x**5/30"
)


@pytest.fixture(scope="module")
def compiled():
    tree = parse_formula(FORMULA, ("x", "y")).tree
    kernel = load(module_source(value_and_grad_source(tree, 2), loop_source("gd", 2), "float64"))
    return tree, kernel.module.value_and_grad


def test_literals_are_typed():
    assert literal(0.3) == "F(0.3)"
    assert literal(math.inf) == "F(np.inf)" and literal(-math.inf) == "F(-np.inf)"
    assert literal(math.nan) == "F(np.nan)"


def test_every_function_matches_the_evaluator(compiled):
    tree, kernel = compiled
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(200, 2, dtype=torch.float64, generator=gen) * 4 - 2
    points = torch.cat([points, torch.tensor([[0.0, 0.0], [0.5, 0.25], [0.25, 0.25], [-1.0, 1.0]])])
    value, grad = value_and_grad(tree, points)
    for i, (x, y) in enumerate(points.tolist()):
        u, gx, gy = kernel(x, y)
        assert abs(u - float(value[i])) <= 1e-12 * (abs(float(value[i])) + 1), (x, y)
        for got, want in ((gx, float(grad[i, 0])), (gy, float(grad[i, 1]))):
            assert abs(got - want) <= 1e-12 * (abs(want) + 1), (x, y)


def test_sum_mean_and_quadratic_form():
    matrix = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, -0.25], [0.0, -0.25, 3.0]], dtype=torch.float64)
    text = "mean(x[i]**2*x[i+1] for i in range(2)) + sum(cos(x[i]) for i in range(3)) + x @ A @ x"
    tree = parse_formula(text, ("x1", "x2", "x3"), matrices={"A": matrix}).tree
    kernel = load(module_source(value_and_grad_source(tree, 3), loop_source("gd", 3), "float64"))
    points = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    value, grad = value_and_grad(tree, points)
    for i, row in enumerate(points.tolist()):
        out = np.array(kernel.module.value_and_grad(*row))
        want = np.array([float(value[i]), *grad[i].tolist()])
        assert np.all(np.abs(out - want) <= 1e-12 * (np.abs(want) + 1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_squared_thresholds_equal_the_square_root_comparison(dtype):
    from descent.kernels.loop import squared_threshold

    rng = np.random.default_rng(0)
    for tol in (1e-3, 1e-6, 1e-8, 0.5, 3.0, 0.0, -1.0, math.inf):
        t = squared_threshold(tol, dtype)
        near = (np.float64(tol) ** 2 * (1 + rng.uniform(-1e-5, 1e-5, 20000))).astype(dtype)
        a = np.concatenate([near, np.array([0.0, np.inf, np.nan], dtype), [t, np.nextafter(t, dtype(0))]])
        with np.errstate(invalid="ignore"):
            assert np.array_equal(np.sqrt(a) < dtype(tol), a < t), tol
