"""The continuous-time limits the discrete optimizers approximate, integrated to tight tolerance
(scipy's DOP853): the references against which the engine's iterates are measured.

- gradient flow            x' = -grad U(x)                  (GD is its explicit Euler scheme, t = k lr)
- its Euler error equation E' = -H E - H grad U / 2, E(0) = 0 (GD's global error is lr E(t) + O(lr^2))
- Newton with friction     x'' + gamma x' = -grad U(x)      (the heavy ball, h = sqrt(lr), unit mass)

``grad(x)`` and ``hvp(x, v)`` are functions of one point (numpy arrays) supplied by the caller: the
objective's own gradient and Hessian-vector product; nothing here knows the engine.

>>> import numpy as np
>>> x, _ = gradient_flow(lambda x: x, lambda x, v: v, np.array([1.0]), 1.0)
>>> round(float(x[0]), 10) == round(float(np.exp(-1.0)), 10)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

Field = Callable[[np.ndarray], np.ndarray]
RTOL = 1e-12


def gradient_flow(
    grad: Field, hvp: Callable[[np.ndarray, np.ndarray], np.ndarray], x0: np.ndarray, t: float, rtol=RTOL
) -> tuple[np.ndarray, np.ndarray]:
    """x(t) of x' = -grad U and the Euler error coefficient E(t): E' = -H E - H grad U / 2."""
    d = len(x0)

    def rhs(_t, state):
        x, e = state[:d], state[d:]
        g = grad(x)
        return np.concatenate([-g, -hvp(x, e + g / 2)])

    sol = solve_ivp(rhs, (0.0, t), np.concatenate([x0, np.zeros(d)]), method="DOP853", rtol=rtol, atol=rtol)
    return sol.y[:d, -1], sol.y[d:, -1]


def damped_newton(grad: Field, x0: np.ndarray, t: float, gamma: float, rtol=RTOL) -> np.ndarray:
    """x(t) of x'' + gamma x' = -grad U, x(0) = x0, x'(0) = 0."""
    d = len(x0)

    def rhs(_t, state):
        return np.concatenate([state[d:], -gamma * state[d:] - grad(state[:d])])

    sol = solve_ivp(rhs, (0.0, t), np.concatenate([x0, np.zeros(d)]), method="DOP853", rtol=rtol, atol=rtol)
    return sol.y[:d, -1]


def flow_path(grad: Field, x0: np.ndarray, t: float, points: int, gamma: float | None = None) -> np.ndarray:
    """The path ``[d, points]`` of gradient flow (``gamma`` None) or of Newton with friction ``gamma``
    from rest at x0, sampled at ``points`` even times in [0, t] (for figures; rtol 1e-10)."""
    d = len(x0)
    times = np.linspace(0.0, t, points)
    if gamma is None:
        sol = solve_ivp(lambda _t, y: -grad(y), (0.0, t), x0, t_eval=times, rtol=1e-10, atol=1e-10)
        return sol.y
    start = np.concatenate([x0, np.zeros(d)])
    sol = solve_ivp(
        lambda _t, y: np.concatenate([y[d:], -gamma * y[d:] - grad(y[:d])]),
        (0.0, t),
        start,
        t_eval=times,
        rtol=1e-10,
        atol=1e-10,
    )
    return sol.y[:d]
