"""Closed-form optimal rates on quadratics against the spectral radius of the per-eigenvalue
recurrence, and that recurrence against the engine's own update rules.

Tolerances: closed forms vs the root moduli to 1e-6 relative (a double root loses half the digits of
the square root of a discriminant that is zero up to rounding); the engine's one-step linear map
against the characteristic roots to 1e-12.
"""

import math

import pytest
import torch

from descent import DescentError
from descent.optim import Optimizer
from descent.theory import rates

torch.set_num_threads(1)
KAPPAS = (1.5, 10.0, 100.0, 1000.0, 1e4)


@pytest.mark.parametrize("kappa", KAPPAS)
@pytest.mark.parametrize("method", rates.METHODS)
def test_closed_form_is_the_spectral_radius_at_the_optimal_parameters(method, kappa):
    mu, L = 2.0, 2.0 * kappa  # mu != 1 so the scaling is exercised
    hp = rates.optimal_parameters(method, L, mu)
    spectrum = [mu, math.sqrt(mu * L), L]
    radius = rates.spectral_radius(method, spectrum, hp["lr"], hp.get("momentum", 0.0))
    assert radius == pytest.approx(rates.optimal_rate(method, kappa), rel=1e-6)


@pytest.mark.parametrize("kappa", KAPPAS)
def test_double_roots_where_reference_says(kappa):
    mu, L = 1.0, kappa
    lr, beta = rates.heavy_ball_parameters(L, mu)
    assert rates.discriminant("momentum", lr, beta, mu) == pytest.approx(0.0, abs=1e-12)
    assert rates.discriminant("momentum", lr, beta, L) == pytest.approx(0.0, abs=1e-12)
    assert rates.discriminant("momentum", lr, beta, math.sqrt(L * mu)) < 0  # in between: spirals
    lr, beta = rates.nesterov_parameters(L, mu)
    assert rates.discriminant("nesterov", lr, beta, mu) == pytest.approx(0.0, abs=1e-12)
    roots = rates.characteristic_roots("nesterov", lr, beta, L)
    assert max(abs(z) for z in roots) == pytest.approx(0.0, abs=1e-15)  # 1 - lr*L = 0: gone in two steps


@pytest.mark.parametrize("method", ["gd", "momentum"])
@pytest.mark.parametrize("kappa", [10.0, 1000.0])
def test_optimal_parameters_are_optimal(method, kappa):
    mu, L = 1.0, kappa
    hp = rates.optimal_parameters(method, L, mu)
    best = rates.spectral_radius(method, [mu, L], hp["lr"], hp.get("momentum", 0.0))
    for lr_factor in (0.9, 0.97, 1.03, 1.1):
        for beta_factor in (0.98, 1.0, 1.01) if method == "momentum" else (1.0,):
            beta = min(hp.get("momentum", 0.0) * beta_factor, 0.999999)
            assert rates.spectral_radius(method, [mu, L], hp["lr"] * lr_factor, beta) > best - 1e-12


def test_closed_forms_at_kappa_100():
    assert rates.gd_rate(100) == pytest.approx(99 / 101)
    assert rates.heavy_ball_rate(100) == pytest.approx(9 / 11)
    assert rates.nesterov_rate(100) == pytest.approx(0.9)
    assert rates.gd_parameters(100, 1) == pytest.approx(2 / 101)
    assert rates.heavy_ball_parameters(100, 1) == pytest.approx((4 / 121, (9 / 11) ** 2))
    assert rates.nesterov_parameters(100, 1) == pytest.approx((0.01, 9 / 11))
    assert rates.steps_to_shrink(0.5, 8.0) == pytest.approx(3.0)


@pytest.mark.parametrize("method,key", [("momentum", "velocity"), ("nesterov", "buffer")])
@pytest.mark.parametrize("curvature", [0.3, 1.0, 7.0])
def test_recurrence_matches_the_engine_rule(method, key, curvature):
    """The engine's one-step map on U = curvature*w^2/2, (w, state) -> (w', state'), is linear; its
    eigenvalues are the characteristic roots used by the theory."""
    lr, beta = 0.11, 0.7
    opt = Optimizer.build(method, lr=lr, momentum=beta)
    columns = []
    for w0, s0 in ((1.0, 0.0), (0.0, 1.0)):
        w = torch.tensor([[w0]], dtype=torch.float64)
        state = opt.init(w)
        state[key] = torch.tensor([[s0]], dtype=torch.float64)
        updates, new = opt.step(0, w, curvature * w, state)
        columns.append([float(w + updates), float(new[key])])
    matrix = torch.tensor(columns, dtype=torch.float64).T
    engine = sorted(torch.linalg.eigvals(matrix).tolist(), key=lambda z: (z.real, z.imag))
    theory = sorted(rates.characteristic_roots(method, lr, beta, curvature), key=lambda z: (z.real, z.imag))
    for a, b in zip(engine, theory):
        assert abs(a - b) < 1e-12


def test_gd_root():
    assert rates.characteristic_roots("gd", 0.1, 0.0, 3.0) == (complex(0.7),)


@pytest.mark.parametrize(
    "call",
    [
        lambda: rates.gd_rate(0.5),
        lambda: rates.optimal_parameters("adam", 10, 1),
        lambda: rates.optimal_rate("sgd", 10),
        lambda: rates.heavy_ball_parameters(1.0, 2.0),
        lambda: rates.nesterov_parameters(10.0, 0.0),
        lambda: rates.characteristic_roots("adam", 0.1, 0.9, 1.0),
        lambda: rates.discriminant("gd", 0.1, 0.0, 1.0),
        lambda: rates.steps_to_shrink(1.0, 10.0),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(DescentError, match="invalid"):
        call()
