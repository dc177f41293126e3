"""Mean-field signal propagation against scipy's adaptive quadrature, the closed forms and the maps'
own definitions (the fixed point is fixed, chi is 1 on the edge of chaos)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from descent._errors import DescentError
from descent.theory.signal import (
    ACTIVATIONS,
    HERMITE_MAX_Q,
    activation_derivative,
    activation_function,
    chi,
    chi_at_fixed_point,
    critical_sigma_w2,
    fixed_point,
    gaussian_expectation,
    variance_map,
    variance_sequence,
)

SMOOTH = ("sigmoid", "tanh")
QS = (1e-4, 0.3, HERMITE_MAX_Q, 1.7, 12.0, 150.0)  # both sides of the switch to the trapezoidal rule


def scipy_expectation(f, q: float) -> float:
    """E[f(x)], x ~ N(0, q), by QUADPACK's adaptive rule on the whole line (an independent method)."""

    def integrand(x: float) -> float:
        return float(f(np.asarray(x))) * math.exp(-0.5 * x * x / q) / math.sqrt(2.0 * math.pi * q)

    value, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-15, epsrel=1e-13, limit=500)
    return value


@pytest.mark.parametrize("activation", SMOOTH)
@pytest.mark.parametrize("q", QS)
def test_expectations_match_adaptive_quadrature(activation, q):
    phi, dphi = activation_function(activation), activation_derivative(activation)
    sigma_w2, sigma_b2 = 1.7, 0.3
    second = scipy_expectation(lambda x: phi(x) ** 2, q)
    slope = scipy_expectation(lambda x: dphi(x) ** 2, q)
    assert variance_map(q, sigma_w2, sigma_b2, activation) == pytest.approx(
        sigma_w2 * second + sigma_b2, rel=1e-11, abs=1e-14
    )
    assert chi(q, sigma_w2, activation) == pytest.approx(sigma_w2 * slope, rel=1e-11, abs=1e-14)


def test_relu_closed_forms_match_adaptive_quadrature():
    for q in (0.2, 5.0):
        assert variance_map(q, 3.0, 0.1, "relu") == pytest.approx(
            3.0 * scipy_expectation(lambda x: np.maximum(x, 0.0) ** 2, q) + 0.1, rel=1e-10
        )
        assert chi(q, 3.0, "relu") == pytest.approx(
            3.0 * scipy_expectation(lambda x: (x > 0).astype(float), q), rel=1e-10
        )
    assert chi(7.0, 2.0, "relu") == 1.0 and fixed_point(1.0, 0.5, "relu") == pytest.approx(1.0)
    assert math.isinf(fixed_point(3.0, 0.0, "relu")) and fixed_point(2.0, 0.0, "relu", q0=4.0) == 4.0


def test_linear_regime_closed_forms():
    """Small q: tanh is x, so chi -> sigma_w^2; sigmoid's slope at 0 is 1/4, so chi -> sigma_w^2/16."""
    assert chi(1e-10, 1.3, "tanh") == pytest.approx(1.3, rel=1e-8)
    assert chi(1e-10, 1.3, "sigmoid") == pytest.approx(1.3 / 16, rel=1e-8)
    assert gaussian_expectation(lambda x: x**6, 0.8) == pytest.approx(15 * 0.8**3, rel=1e-12)
    assert gaussian_expectation(lambda x: x**4, 30.0) == pytest.approx(3 * 30.0**2, rel=1e-12)


@pytest.mark.parametrize("activation", SMOOTH)
@pytest.mark.parametrize("sigma_w2, sigma_b2", [(0.5, 0.1), (1.5, 0.0), (4.0, 0.05), (150.0, 0.0)])
def test_the_fixed_point_is_fixed_and_attracts(activation, sigma_w2, sigma_b2):
    q = fixed_point(sigma_w2, sigma_b2, activation)
    assert q > 0
    assert variance_map(q, sigma_w2, sigma_b2, activation) == pytest.approx(q, rel=1e-12)
    iterated = variance_sequence(2.0 * q + 1.0, 400, sigma_w2, sigma_b2, activation)[-1]
    assert iterated == pytest.approx(q, rel=1e-6)
    assert chi_at_fixed_point(sigma_w2, sigma_b2, activation) == chi(q, sigma_w2, activation)


def test_ordered_tanh_without_bias_collapses_to_zero():
    assert fixed_point(0.8, 0.0, "tanh") == 0.0
    assert chi_at_fixed_point(0.8, 0.0, "tanh") == pytest.approx(0.8, rel=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sigma_b2", [0.0, 0.05])
def test_chi_is_one_on_the_edge_of_chaos(activation, sigma_b2):
    edge = critical_sigma_w2(activation, sigma_b2)
    assert chi_at_fixed_point(edge, sigma_b2, activation) == pytest.approx(1.0, abs=1e-9)
    assert (
        chi_at_fixed_point(0.5 * edge, sigma_b2, activation)
        < 1
        < chi_at_fixed_point(4.0 * edge, sigma_b2, activation)
    )


def test_bad_input_is_refused_by_name():
    with pytest.raises(DescentError, match="invalid activation='gelu'"):
        chi(1.0, 1.0, "gelu")
    with pytest.raises(DescentError, match="invalid sigma_w2=-1"):
        variance_map(1.0, -1, 0.0, "tanh")
    with pytest.raises(DescentError, match="invalid q=nan"):
        chi(float("nan"), 1.0, "tanh")
    with pytest.raises(DescentError, match="invalid depth=0"):
        variance_sequence(1.0, 0, 1.0, 0.0, "tanh")
