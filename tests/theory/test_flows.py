"""The continuous-time references against their closed forms on U = h x^2 / 2."""

import math

import numpy as np
import pytest

from descent.theory.flows import damped_newton, flow_path, gradient_flow

H, X0 = 1.7, 0.8


def grad(x):
    return H * x


def hvp(x, v):
    return H * v


def test_gradient_flow_and_its_euler_error_coefficient():
    """x(t) = x0 e^{-ht}; E' = -h E - h^2 x / 2 gives E(t) = -(h^2 x0 t / 2) e^{-ht}."""
    t = 2.0
    x, e = gradient_flow(grad, hvp, np.array([X0]), t)
    assert x[0] == pytest.approx(X0 * math.exp(-H * t), rel=1e-11)
    assert e[0] == pytest.approx(-(H**2) * X0 * t / 2 * math.exp(-H * t), rel=1e-9)


def test_newton_with_friction_is_the_damped_oscillator():
    """x'' + g x' + h x = 0 from rest: x = x0 e^{-gt/2} (cos wt + (g/2w) sin wt), w^2 = h - g^2/4."""
    gamma, t = 0.6, 3.0
    w = math.sqrt(H - gamma**2 / 4)
    exact = X0 * math.exp(-gamma * t / 2) * (math.cos(w * t) + gamma / (2 * w) * math.sin(w * t))
    assert damped_newton(grad, np.array([X0]), t, gamma)[0] == pytest.approx(exact, rel=1e-10)
    path = flow_path(grad, np.array([X0]), t, 50, gamma=gamma)
    assert path.shape == (1, 50) and path[0, -1] == pytest.approx(exact, rel=1e-7)
    assert flow_path(grad, np.array([X0]), t, 5)[0, -1] == pytest.approx(X0 * math.exp(-H * t), rel=1e-7)
