"""Linear convergence rates on quadratics ``f = x^T A x / 2`` with eigenvalues in ``[mu, L]``,
``kappa = L/mu`` (REFERENCE.md, "Quadratics"; Polyak 1964, Nesterov 1983, Lessard et al. 2016).

Per eigen-direction with curvature ``lambda`` and ``h = lr*lambda`` the error obeys a linear recurrence
whose characteristic polynomial is

- GD:          ``z - (1 - h)``
- heavy ball:  ``z^2 - (1 + beta - h) z + beta``                (``v <- beta v - lr g; w <- w + v``)
- Nesterov:    ``z^2 - (1 + beta)(1 - h) z + beta (1 - h)``    (torch's form, the same polynomial)

and the rate is the largest root modulus over the spectrum. At the optimal parameters:

| method     | parameters                                         | rate                          |
|------------|----------------------------------------------------|-------------------------------|
| GD         | ``lr = 2/(L + mu)``                                | ``(kappa - 1)/(kappa + 1)``   |
| heavy ball | ``lr = 4/(sqrt L + sqrt mu)^2``, ``beta = rate^2`` | ``(sqrt k - 1)/(sqrt k + 1)`` |
| Nesterov   | ``lr = 1/L``, ``beta = (sqrt k - 1)/(sqrt k + 1)`` | ``1 - 1/sqrt(kappa)``         |

Heavy ball at its optimum has a double root at both ends of the spectrum, Nesterov at ``lambda = mu``:
there the error decays like ``k * rate^k``, not ``rate^k`` (fit over a long window, with a ``log k`` term).

>>> round(gd_rate(100.0), 6), round(heavy_ball_rate(100.0), 6), round(nesterov_rate(100.0), 6)
(0.980198, 0.818182, 0.9)
>>> lr, beta = heavy_ball_parameters(L=100.0, mu=1.0)
>>> abs(spectral_radius("momentum", [1.0, 100.0], lr, beta) - heavy_ball_rate(100.0)) < 1e-6
True
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Iterable

from descent._errors import check_number, invalid, listed

METHODS = ("gd", "momentum", "nesterov")


def _kappa(kappa: float) -> float:
    return check_number("kappa", kappa, 1.0, None)


def _curvatures(L: float, mu: float) -> tuple[float, float]:
    mu = check_number("mu", mu, 0.0, None, low_open=True)
    L = check_number("L", L, mu, None)
    return L, mu


# --- closed forms -----------------------------------------------------------------------------
def gd_parameters(L: float, mu: float) -> float:
    """GD's optimal learning rate ``2/(L + mu)``."""
    L, mu = _curvatures(L, mu)
    return 2.0 / (L + mu)


def gd_rate(kappa: float) -> float:
    """GD's rate at its optimal step: ``(kappa - 1)/(kappa + 1)``."""
    kappa = _kappa(kappa)
    return (kappa - 1.0) / (kappa + 1.0)


def heavy_ball_parameters(L: float, mu: float) -> tuple[float, float]:
    """Polyak's optimal heavy ball: ``lr = 4/(sqrt L + sqrt mu)^2``,
    ``beta = ((sqrt k - 1)/(sqrt k + 1))^2``."""
    L, mu = _curvatures(L, mu)
    lr = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    return lr, heavy_ball_rate(L / mu) ** 2


def heavy_ball_rate(kappa: float) -> float:
    """The heavy ball's optimal rate ``(sqrt kappa - 1)/(sqrt kappa + 1)``."""
    s = math.sqrt(_kappa(kappa))
    return (s - 1.0) / (s + 1.0)


def nesterov_parameters(L: float, mu: float) -> tuple[float, float]:
    """Nesterov for strongly convex functions: ``lr = 1/L``, ``beta = (sqrt k - 1)/(sqrt k + 1)``."""
    L, mu = _curvatures(L, mu)
    return 1.0 / L, heavy_ball_rate(L / mu)


def nesterov_rate(kappa: float) -> float:
    """Nesterov's rate on a quadratic at ``lr = 1/L``, ``beta = (sqrt k - 1)/(sqrt k + 1)``:
    ``1 - 1/sqrt kappa``."""
    return 1.0 - 1.0 / math.sqrt(_kappa(kappa))


def optimal_parameters(method: str, L: float, mu: float) -> dict[str, float]:
    """``{"lr": ..., "momentum": ...}`` (momentum 0 for GD), as ``Optimizer.build`` takes them."""
    if method == "gd":
        return {"lr": gd_parameters(L, mu)}
    if method == "momentum":
        lr, beta = heavy_ball_parameters(L, mu)
        return {"lr": lr, "momentum": beta}
    if method == "nesterov":
        lr, beta = nesterov_parameters(L, mu)
        return {"lr": lr, "momentum": beta}
    raise invalid("method", method, f"one of: {listed(METHODS)}")


def optimal_rate(method: str, kappa: float) -> float:
    """The closed-form rate of ``method`` at its optimal parameters (table above)."""
    rates = {"gd": gd_rate, "momentum": heavy_ball_rate, "nesterov": nesterov_rate}
    if method not in rates:
        raise invalid("method", method, f"one of: {listed(METHODS)}")
    return rates[method](kappa)


# --- the general recurrence -------------------------------------------------------------------
def characteristic_roots(method: str, lr: float, beta: float, curvature: float) -> tuple[complex, ...]:
    """Roots of the per-eigen-direction characteristic polynomial (module docstring)."""
    h = lr * curvature
    if method == "gd":
        return (complex(1.0 - h),)
    if method == "momentum":
        b, c = 1.0 + beta - h, beta
    elif method == "nesterov":
        b, c = (1.0 + beta) * (1.0 - h), beta * (1.0 - h)
    else:
        raise invalid("method", method, f"one of: {listed(METHODS)}")
    root = cmath.sqrt(b * b - 4.0 * c)
    return ((b + root) / 2.0, (b - root) / 2.0)


def discriminant(method: str, lr: float, beta: float, curvature: float) -> float:
    """``b^2 - 4c`` of the two-step recurrence: 0 at a double root, < 0 when the roots spiral."""
    h = lr * curvature
    if method == "momentum":
        return (1.0 + beta - h) ** 2 - 4.0 * beta
    if method == "nesterov":
        return ((1.0 + beta) * (1.0 - h)) ** 2 - 4.0 * beta * (1.0 - h)
    raise invalid("method", method, "'momentum' or 'nesterov' (GD has one root)")


def spectral_radius(method: str, curvatures: Iterable[float], lr: float, beta: float = 0.0) -> float:
    """The asymptotic rate: the largest root modulus over the given eigenvalues."""
    return max(abs(z) for lam in curvatures for z in characteristic_roots(method, lr, beta, lam))


def steps_to_shrink(rate: float, factor: float) -> float:
    """Steps for an error decaying like ``rate^k`` to shrink by ``factor`` (> 1): ``ln factor / -ln rate``."""
    check_number("rate", rate, 0.0, 1.0, low_open=True, high_open=True)
    check_number("factor", factor, 1.0, None, low_open=True)
    return math.log(factor) / -math.log(rate)


__all__ = [
    "METHODS",
    "characteristic_roots",
    "discriminant",
    "gd_parameters",
    "gd_rate",
    "heavy_ball_parameters",
    "heavy_ball_rate",
    "nesterov_parameters",
    "nesterov_rate",
    "optimal_parameters",
    "optimal_rate",
    "spectral_radius",
    "steps_to_shrink",
]
