"""The L2 potential on any landscape: closed-form minima of quadratics (the ridge solution), the value,
gradient and Hessian against autograd of U + lambda/2 |w - c|^2, the minimum moving toward c, a minimum
vanishing where the closed-form fold says, the compiled kernel and the registry."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from descent._errors import DescentError
from descent.dynamics import simulate
from descent.landscapes import formula_landscape, get_landscape, quadratic_matrix
from descent.objectives import sharp_flat_risk
from descent.objectives.regularized import (
    REGULARIZED_BASES,
    RegularizedLandscape,
    regularization_path,
    regularized,
)
from descent.optim import Optimizer

F64 = torch.float64
LAMBDAS = (0.0, 0.1, 1.0, 7.5, 100.0)


def shifted_quadratic(seed: int = 0) -> tuple[formula_landscape, np.ndarray, np.ndarray]:
    """U = (w - w0)^T A (w - w0)/2 as a user formula, A a random symmetric positive definite matrix."""
    rng = np.random.default_rng(seed)
    root = rng.normal(size=(2, 2))
    a = root @ root.T + 0.3 * np.eye(2)
    w0 = rng.uniform(-1.5, 1.5, size=2)
    u, v = f"(x - ({float(w0[0])!r}))", f"(y - ({float(w0[1])!r}))"
    text = f"0.5*({float(a[0, 0])!r}*{u}**2 + {float(2 * a[0, 1])!r}*{u}*{v} + {float(a[1, 1])!r}*{v}**2)"
    return formula_landscape(text, bounds=(-4, 4)), a, w0


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("strength", LAMBDAS)
def test_the_ridge_minimum_of_a_quadratic(seed, strength):
    """(A + lambda I)^-1 A w0 with c = 0, (A + lambda I)^-1 (A w0 + lambda c) with a centre c."""
    landscape, a, w0 = shifted_quadratic(seed)
    ridge = np.linalg.solve(a + strength * np.eye(2), a @ w0)
    (minimum,) = regularized(landscape, strength).minima
    np.testing.assert_allclose(minimum.position, ridge, rtol=0, atol=1e-8)
    c = np.array([0.7, -1.2])
    (moved,) = regularized(landscape, strength, c).minima
    np.testing.assert_allclose(
        moved.position, np.linalg.solve(a + strength * np.eye(2), a @ w0 + strength * c), atol=1e-8
    )


@pytest.mark.parametrize("strength", LAMBDAS)
def test_the_packages_quadratic_moves_to_lambda_over_a_plus_lambda_times_c(strength):
    """The package's bowl w^T A w/2 (w0 = 0) with a centre c: w* = lambda (A + lambda I)^-1 c."""
    bowl = get_landscape("quadratic", kappa=30.0, dim=3)
    a = quadratic_matrix(bowl).numpy()
    c = np.array([0.5, -1.0, 1.5])
    (minimum,) = regularized(bowl, strength, c).minima
    np.testing.assert_allclose(
        minimum.position, strength * np.linalg.solve(a + strength * np.eye(3), c), atol=1e-8
    )
    assert minimum.value == pytest.approx(
        float(0.5 * np.dot(minimum.position, a @ minimum.position))
        + 0.5 * strength * float(np.sum((np.array(minimum.position) - c) ** 2)),
        abs=1e-12,
    )


def test_value_gradient_and_hessian_are_those_of_the_sum():
    base = get_landscape("double-well")
    strength, c = 0.8, (0.5, -0.25)
    reg = regularized(base, strength, c)
    assert isinstance(reg, RegularizedLandscape) and reg._fused is not None  # a formula: the fast path
    x = torch.randn(7, 2, dtype=F64, generator=torch.Generator().manual_seed(3))

    def reference(z):
        return base.value(z) + 0.5 * strength * ((z - torch.tensor(c, dtype=F64)) ** 2).sum(dim=1)

    value, grad = reg.value_and_grad(x)
    torch.testing.assert_close(value, reference(x), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(grad, torch.func.vmap(torch.func.grad(lambda z: reference(z[None])[0]))(x))
    for row, h in zip(x, reg.hessian(x)):
        exact = torch.autograd.functional.hessian(lambda z: reference(z[None])[0], row)
        torch.testing.assert_close(h, exact, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(h - base.hessian(row[None])[0], strength * torch.eye(2, dtype=F64))


def test_the_minimum_moves_toward_the_centre_as_lambda_grows():
    c = (0.4, 0.3)
    lambdas = np.geomspace(1e-3, 1e3, 25)
    path = regularization_path(get_landscape("double-well"), lambdas, c)
    right = path.positions["right"]
    assert not np.isnan(right).any()  # the global minimum survives every lambda
    distance = np.linalg.norm(right - np.array(c), axis=1)
    assert np.all(np.diff(distance) < 0)
    # large lambda: w* - c = -grad U(c)/lambda + O(1/lambda^2)
    grad_c = get_landscape("double-well").gradient(torch.tensor([c], dtype=F64))[0].numpy()
    np.testing.assert_allclose(right[-1] - np.array(c), -grad_c / lambdas[-1], rtol=0.02)
    assert path.global_id[0] == "right"


def test_the_shallow_minimum_vanishes_at_the_closed_form_fold():
    """On (x^2 - 1)^2 - t x + y^2 + lambda x^2/2 the left minimum merges with the barrier where U' = U''
    = 0: x^2 = (4 - lambda)/12, so lambda_fold = 4 - (1.5 sqrt(12) t)^(2/3)."""
    tilt = 0.3
    fold = 4.0 - (1.5 * math.sqrt(12.0) * tilt) ** (2.0 / 3.0)
    path = regularization_path(get_landscape("double-well", tilt=tilt), [fold * 0.99, fold * 1.01, 0.0])
    assert not np.isnan(path.positions["left"][0]).any() and np.isnan(path.positions["left"][1]).all()
    assert not np.isnan(path.positions["right"]).any()
    assert (
        regularized(get_landscape("double-well", tilt=tilt), fold * 1.01).point("right").kind == "global_min"
    )
    with pytest.raises(DescentError):
        regularized(get_landscape("double-well", tilt=tilt), fold * 1.01).point("left")
    assert path.to_dict()["positions"]["left"][1] == [None, None]


def test_the_compiled_kernel_runs_it_as_the_reference_loop_does():
    reg = get_landscape("double-well-l2", l2=0.5)
    starts = torch.tensor([[-1.7, 0.3], [1.5, -0.5], [0.2, 0.1]], dtype=F64)
    opt = Optimizer.build("gd", lr=0.02)
    torch_run = simulate(reg, opt, starts, 400, backend="torch")
    kernel_run = simulate(reg, opt, starts, 400, backend="kernel")
    assert kernel_run.backend == "kernel"
    torch.testing.assert_close(kernel_run.final_position, torch_run.final_position, rtol=1e-10, atol=1e-12)
    assert torch_run.outcomes[0] == "minimum:left" and torch_run.outcomes[1] == "minimum:right"


def test_an_objective_with_data_keeps_its_batches():
    risk = sharp_flat_risk(size=32)
    reg = regularized(risk, 0.3, [0.5])
    assert reg.data_size == 32
    x = torch.tensor([[0.3], [-0.4]], dtype=F64)
    batch = torch.randint(0, 32, (2, 5), generator=torch.Generator().manual_seed(0))
    value, grad = reg.value_and_grad(x, batch)
    base_value, base_grad = risk.value_and_grad(x, batch)
    torch.testing.assert_close(value, base_value + 0.15 * (x[:, 0] - 0.5) ** 2)
    torch.testing.assert_close(grad, base_grad + 0.3 * (x - 0.5))


@pytest.mark.parametrize("name", REGULARIZED_BASES)
def test_registered_and_rebuilt_from_its_recipe(name):
    reg = get_landscape(f"{name}-l2", l2=0.25, center=0.5)
    base = get_landscape(name)
    assert reg.name == f"{name}-l2" and reg.params["l2"] == 0.25
    x = base.random_starts(5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(reg.value(x), base.value(x) + 0.125 * ((x - 0.5) ** 2).sum(dim=1))
    back = pickle.loads(pickle.dumps(reg))
    assert back.formula == reg.formula and back.critical_points == reg.critical_points


def test_a_landscape_that_is_not_a_formula_is_regularised_and_pickles():
    risk = get_landscape("logistic-risk")
    reg = regularized(risk, 0.2, [0.1, -0.1])
    assert reg.data_size == risk.data_size and reg._fused is None
    back = pickle.loads(pickle.dumps(reg))
    x = risk.random_starts(4, torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        back.value_and_grad(x)[1],
        risk.value_and_grad(x)[1] + 0.2 * (x - torch.tensor([0.1, -0.1], dtype=F64)),
    )
    (minimum,) = reg.minima
    assert float(reg.gradient(torch.tensor([minimum.position], dtype=F64)).norm()) < 1e-9


def test_bad_input_is_refused_by_name():
    well = get_landscape("double-well")
    with pytest.raises(DescentError, match=r"invalid l2=-1"):
        regularized(well, -1)
    with pytest.raises(DescentError, match=r"invalid center=\(1.0,\)"):
        regularized(well, 1.0, (1.0,))
    with pytest.raises(DescentError, match=r"invalid lambdas=\[\]"):
        regularization_path(well, [])
    with pytest.raises(DescentError, match="invalid double-well-l2.l2"):
        get_landscape("double-well-l2", l2=float("nan"))
