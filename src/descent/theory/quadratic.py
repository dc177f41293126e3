"""Closed forms for landscapes of degree at most two: the quadratic bowl ``f = x^T A x / 2`` (stability
edges, GD's learning-rate regimes) and its degenerate case, the constant slope ``U = -s x`` (the
plateau: the heavy ball's terminal velocity and exact crossing step).

Per eigen-direction with curvature ``lambda`` and ``h = lr*lambda`` the error obeys a linear recurrence
(characteristic polynomials in `descent.theory.rates`). It is stable while every root lies inside the
unit circle; the edge is where a root leaves through ``z = -1`` (the iterate flips sign every step):

- GD:          ``1 - h = -1``                               ->  ``lr = 2/lambda``
- heavy ball:  ``1 + (1 + beta - h) + beta = 0``             ->  ``lr = 2(1 + beta)/lambda``
- Nesterov:    ``1 + (1 + beta)(1 - h) + beta(1 - h) = 0``   ->  ``lr = 2(1 + beta)/((1 + 2 beta) lambda)``

GD's learning-rate regimes on eigenvalues ``[mu, L]`` (rate ``max(|1 - lr mu|, |1 - lr L|)``):
``lr > 2/L`` divergent; ``2/(L + mu) < lr <= 2/L`` too large: the slowest mode is the stiff one and it
flips sign every step (the iterate zig-zags across the valley, dying out only for ``lr < 2/L``);
``lr <= 2/(L + mu)`` the slowest mode is the soft one and the descent is monotone at late times: good
when it shrinks the loss by the wanted factor within the step budget, too small when it does not.

Constant force ``F = s`` (``U = -s x``), heavy ball ``v <- beta v + lr F``, ``x <- x + v`` from rest:
``v_k = lr F (1 - beta^k)/(1 - beta)`` (terminal speed ``lr F/(1 - beta)``, reached after a transient of
about ``1/(1 - beta)`` steps) and

    x_k - x_0 = lr F (k/(1 - beta) - beta (1 - beta^k)/(1 - beta)^2).

>>> round(stability_edge("momentum", 10.0, 0.9), 6)
0.38
>>> heavy_ball_crossing_step(8.0, 0.1, 0.05, 0.0), heavy_ball_crossing_step(8.0, 0.1, 0.05, 0.9)
(1600, 169)
"""

from __future__ import annotations

import math

from descent._errors import check_number, invalid, listed
from descent.optim import stability_edge as _optim_stability_edge
from descent.theory.rates import spectral_radius

METHODS = ("gd", "momentum", "nesterov")
REGIMES = ("too small", "good", "too large", "divergent")


# --- stability edges --------------------------------------------------------------------------
def stability_edge(method: str, lambda_max: float, momentum: float = 0.0) -> float:
    """The largest stable learning rate on a quadratic of top curvature ``lambda_max`` (table above).

    The same closed forms as `descent.optim.stability_edge`, which the optimizers' docs use.

    >>> stability_edge("gd", 4.0), round(stability_edge("nesterov", 1.0, 0.5), 6)
    (0.5, 1.5)
    """
    if method not in METHODS:
        raise invalid("method", method, f"one of: {listed(METHODS)}")
    check_number("lambda_max", lambda_max, 0.0, None, low_open=True)
    check_number("momentum", momentum, 0.0, 1.0, high_open=True)
    return _optim_stability_edge(method, lambda_max, momentum)


def edge_by_roots(method: str, lambda_max: float, momentum: float = 0.0, rel_tol: float = 1e-12) -> float:
    """The stability edge found from the roots themselves: bisection on ``lr`` for spectral radius 1.

    An independent check of the closed forms (it only evaluates the characteristic polynomial).

    >>> abs(edge_by_roots("nesterov", 10.0, 0.9) - stability_edge("nesterov", 10.0, 0.9)) < 1e-9
    True
    """
    low, high = 0.0, 1.0 / lambda_max
    while spectral_radius(method, [lambda_max], high, momentum) <= 1.0:
        low, high = high, 2.0 * high
    while high - low > rel_tol * high:
        mid = 0.5 * (low + high)
        if spectral_radius(method, [lambda_max], mid, momentum) <= 1.0:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


# --- GD's learning-rate regimes ---------------------------------------------------------------
def gd_rate(lr: float, mu: float, L: float) -> float:
    """GD's asymptotic rate per step on eigenvalues ``[mu, L]``: ``max(|1 - lr mu|, |1 - lr L|)``."""
    return spectral_radius("gd", [mu, L], lr)


def gd_loss_ratio(lr: float, curvatures: list[float], shares: list[float], steps: int) -> float:
    """Exact ``f(x_k)/f(x_0)`` of GD after ``steps`` steps: ``sum_i share_i (1 - lr lambda_i)^(2 k)``, where
    ``share_i`` is eigen-direction i's share of the initial loss.

    >>> gd_loss_ratio(0.1, [1.0, 10.0], [0.5, 0.5], 1)
    0.405
    """
    return float(sum(w * (1.0 - lr * lam) ** (2 * int(steps)) for lam, w in zip(curvatures, shares)))


def gd_regime_bounds(
    mu: float, L: float, steps: int, shrink: float, shares: tuple[float, float] | None = None
) -> dict[str, float]:
    """The learning rates that separate GD's four regimes on eigenvalues ``[mu, L]``.

    ``small``: below it the loss does not shrink by ``shrink`` within ``steps`` steps. Without
    ``shares`` (the soft and stiff modes' shares of the initial loss) the soft mode alone is assumed,
    ``(1 - lr mu)^(2 steps) = 1/shrink``; with them `gd_loss_ratio` is solved by bisection.
    ``zigzag``: ``2/(L + mu)``, above it the slowest mode is the stiff, sign-flipping one; ``edge``: ``2/L``.

    >>> b = gd_regime_bounds(1.0, 10.0, 1000, 1e12); round(b["zigzag"], 6), b["edge"]
    (0.181818, 0.2)
    """
    mu = check_number("mu", mu, 0.0, None, low_open=True)
    L = check_number("L", L, mu, None)
    check_number("shrink", shrink, 1.0, None, low_open=True)
    zigzag = 2.0 / (L + mu)
    if shares is None:
        small = (1.0 - shrink ** (-1.0 / (2 * int(steps)))) / mu
    else:
        low, high = 0.0, zigzag
        for _ in range(200):
            mid = 0.5 * (low + high)
            if gd_loss_ratio(mid, [mu, L], list(shares), steps) <= 1.0 / shrink:
                high = mid
            else:
                low = mid
        small = high
    return {"small": small, "zigzag": zigzag, "edge": 2.0 / L}


def gd_regime(
    lr: float, mu: float, L: float, steps: int, shrink: float, shares: tuple[float, float] | None = None
) -> str:
    """The regime of ``lr`` (one of `REGIMES`), by `gd_regime_bounds`.

    >>> [gd_regime(lr, 1.0, 10.0, 1000, 1e12) for lr in (0.001, 0.1, 0.19, 0.21)]
    ['too small', 'good', 'too large', 'divergent']
    """
    bounds = gd_regime_bounds(mu, L, steps, shrink, shares)
    if lr > bounds["edge"]:
        return "divergent"
    if lr > bounds["zigzag"]:
        return "too large"
    return "good" if lr >= min(bounds["small"], bounds["zigzag"]) else "too small"


# --- the constant slope (the plateau) ---------------------------------------------------------
def heavy_ball_constant_force_position(k: int, lr: float, force: float, beta: float) -> float:
    """Distance covered after ``k`` heavy-ball steps from rest under a constant force (module docstring).

    ``beta = 0`` is GD: ``lr * force * k``.
    """
    if beta == 0.0:
        return lr * force * k
    return lr * force * (k / (1.0 - beta) - beta * (1.0 - beta**k) / (1.0 - beta) ** 2)


def heavy_ball_crossing_step(length: float, lr: float, force: float, beta: float) -> int:
    """The first step ``k`` at which the ball, from rest, has covered ``length`` under a constant force.

    The distance grows monotonically and lies between ``lr F (k - beta/(1 - beta))/(1 - beta)`` and
    ``lr F k/(1 - beta)``, which brackets ``k``; bisection on the integers finds it exactly.
    """
    check_number("length", length, 0.0, None, low_open=True)
    check_number("lr * force", lr * force, 0.0, None, low_open=True)
    check_number("beta", beta, 0.0, 1.0, high_open=True)
    terminal = lr * force / (1.0 - beta)
    low = max(0, math.floor(length / terminal) - 1)  # x_low < length
    high = math.ceil(length / terminal + beta / (1.0 - beta)) + 1  # x_high >= length
    while high - low > 1:
        mid = (low + high) // 2
        if heavy_ball_constant_force_position(mid, lr, force, beta) >= length:
            high = mid
        else:
            low = mid
    return high


def terminal_speedup(beta: float) -> float:
    """Terminal speed of the heavy ball over GD's on a constant slope: ``1/(1 - beta)``."""
    return 1.0 / (1.0 - beta)


__all__ = [
    "METHODS",
    "REGIMES",
    "edge_by_roots",
    "gd_loss_ratio",
    "gd_rate",
    "gd_regime",
    "gd_regime_bounds",
    "heavy_ball_constant_force_position",
    "heavy_ball_crossing_step",
    "stability_edge",
    "terminal_speedup",
]
