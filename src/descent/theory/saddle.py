"""Escape from a saddle: closed forms for the linearised dynamics along the unstable direction.

Convention. Along the unstable direction the energy is ``-lambda y^2/2``: ``lambda = |U_yy|`` is the
*curvature* of that direction and the force is ``+lambda y``. For the seed landscape
``U = x^2 - c y^2`` (``saddle``, ``saddle-bounded`` near the origin) that is ``lambda = 2c``
(`unstable_curvature`); REFERENCE.md writes the saddle as ``f = (x^2 - lambda y^2)/2``, the same
``lambda``. The stable direction decouples (its curvature only matters for stability).

Deterministic escape from ``y_0 = eps`` (first step with ``|y_k| >= R``):

- GD: ``y_k = (1 + lr lambda)^k eps``, so ``k = ceil(ln(R/eps)/ln(1 + lr lambda))``; never when ``eps = 0``.
- heavy ball ``v <- beta v + lr lambda y``, ``y <- y + v`` from rest: ``y_k = eps (a r_+^k + (1 - a) r_-^k)``
  with ``r_+- `` the roots of ``z^2 - (1 + beta + lr lambda) z + beta`` and ``a`` fixed by
  ``y_1 = (1 + lr lambda) eps``; asymptotically ``k ~ ln(R/(a eps))/ln r_+``. At equal ``lr`` the
  growth per step ``r_+ > 1 + lr lambda`` whenever ``beta > 0``.

Noisy escape from ``y_0 = 0`` (temperature ``T``). Continuous time, over-damped Langevin
``dy = lambda y dt + sqrt(2T) dW``: ``y(t) ~ e^(lambda t) sqrt(T/lambda) Z`` with ``Z ~ N(0, 1)``, so the
exit time is ``t = (ln(lambda R^2/T) - ln Z^2)/(2 lambda)``; ``E[-ln Z^2] = gamma_E + ln 2`` gives
REFERENCE.md's mean

    E[t] = (ln(lambda R^2/T) + 0.5772 + ln 2)/(2 lambda),    sd[t] = (pi/sqrt 2)/(2 lambda)

(``Var[ln Z^2] = pi^2/2``), asymptotic in ``lambda R^2/T``. The discrete chain (a linear recurrence
with noise ``n_k``) obeys the same law with ``1 + lr lambda`` (GD) or ``r_+`` (heavy ball) as the
growth per step and the growing mode's stationary amplitude variance ``s^2``; the exit step is the
ceiling of a continuous variable, hence ``+1/2`` on average (`discrete_exit_steps`).

>>> unstable_curvature(1.0)
2.0
>>> gd_escape_steps(1e-6, 2.0, 0.05, 2.0)
153
>>> round(langevin_exit_time(2.0, 2.0, 1e-3), 4)
2.5644
"""

from __future__ import annotations

import math

import numpy as np

from descent._errors import check_number
from descent.theory.rates import characteristic_roots

EULER_GAMMA = 0.5772156649015329
MEAN_MINUS_LOG_CHI2 = EULER_GAMMA + math.log(2.0)  # E[-ln Z^2], Z ~ N(0, 1)
SD_LOG_CHI2 = math.pi / math.sqrt(2.0)  # sd[ln Z^2]


def unstable_curvature(c: float) -> float:
    """``lambda = |U_yy| = 2c`` for the seed saddle ``U = x^2 - c y^2``."""
    return 2.0 * check_number("c", c, 0.0, None, low_open=True)


# --- deterministic escape ---------------------------------------------------------------------
def gd_escape_steps(eps: float, radius: float, lr: float, lam: float) -> float:
    """GD's steps to leave ``|y| < radius`` from ``|y_0| = eps``: ``ceil(ln(R/eps)/ln(1 + lr lambda))``.

    ``inf`` for ``eps = 0`` (a particle on the stable axis never leaves it); 0 when already outside.
    """
    eps = abs(eps)
    if eps == 0.0:
        return math.inf
    if eps >= radius:
        return 0
    return math.ceil(math.log(radius / eps) / math.log1p(lr * lam))


def heavy_ball_growth(lr: float, lam: float, beta: float) -> tuple[float, float]:
    """The roots ``(r_+, r_-)`` of ``z^2 - (1 + beta + lr lambda) z + beta`` (both real, ``r_+ > 1``)."""
    roots = characteristic_roots("momentum", lr, beta, -lam)  # a negative curvature
    plus, minus = sorted((z.real for z in roots), reverse=True)
    return plus, minus


def heavy_ball_escape_steps(
    eps: float, radius: float, lr: float, lam: float, beta: float, max_steps: int = 100_000
) -> float:
    """The heavy ball's exact steps to leave ``|y| < radius`` from ``y_0 = eps`` at rest.

    Evaluates the closed form ``y_k = eps (a r_+^k + (1 - a) r_-^k)`` (module docstring).
    ``beta = 0`` is `gd_escape_steps`.
    """
    eps = abs(eps)
    if eps == 0.0:
        return math.inf
    if beta == 0.0:
        return gd_escape_steps(eps, radius, lr, lam)
    plus, minus = heavy_ball_growth(lr, lam, beta)
    a = (1.0 + lr * lam - minus) / (plus - minus)  # in (0, 1]: eps a r_+^k <= y_k <= eps r_+^k
    if eps >= radius:
        return 0
    bound = math.ceil(math.log(radius / (a * eps)) / math.log(plus))
    k = np.arange(min(bound, max_steps) + 1, dtype=np.float64)
    y = eps * (a * plus**k + (1.0 - a) * minus**k)
    out = np.nonzero(np.abs(y) >= radius)[0]
    return int(out[0]) if out.size else math.inf


def heavy_ball_asymptotic_speedup(lr: float, lam: float, beta: float) -> float:
    """``ln r_+ / ln(1 + lr lambda)``: how many times faster the heavy ball leaves a saddle than GD at
    the same ``lr``, far from it (``eps -> 0``)."""
    plus, _ = heavy_ball_growth(lr, lam, beta)
    return math.log(plus) / math.log1p(lr * lam)


# --- noisy escape -----------------------------------------------------------------------------
def langevin_exit_time(lam: float, radius: float, temperature: float) -> float:
    """REFERENCE.md: mean time to leave ``|y| < R`` from the saddle at temperature ``T``,
    ``(ln(lambda R^2/T) + 0.5772 + ln 2)/(2 lambda)`` (``lambda`` = the unstable curvature)."""
    return (math.log(lam * radius**2 / temperature) + MEAN_MINUS_LOG_CHI2) / (2.0 * lam)


def exact_exit_time(lam: float, radius: float, temperature: float) -> float:
    """The exact mean exit time of ``dy = lambda y dt + sqrt(2T) dW`` from ``|y| < R``, started at 0:
    the 1-D mean first-passage time (REFERENCE.md, ``D = T``, reflecting by symmetry at 0)

        tau = (1/T) int_0^R e^(-lambda y^2/(2T)) int_0^y e^(lambda z^2/(2T)) dz dy
            = (1/T) int_0^R F(a y)/a dy,     a = sqrt(lambda/(2T)),  F = Dawson's integral,

    by quadrature: the oracle for the asymptotic `langevin_exit_time` (which it approaches as
    ``lambda R^2/T`` grows; their gap is 2e-4 relative at ``lambda R^2/T = 800``).
    """
    from scipy import integrate, special

    a = math.sqrt(lam / (2.0 * temperature))
    value, _ = integrate.quad(lambda y: special.dawsn(a * y) / a, 0.0, radius, limit=500)
    return value / temperature


def langevin_exit_time_sd(lam: float) -> float:
    """Standard deviation of that exit time: ``(pi/sqrt 2)/(2 lambda)`` (independent of ``R`` and ``T``)."""
    return SD_LOG_CHI2 / (2.0 * lam)


def growing_mode_variance(
    lr: float, lam: float, temperature: float, beta: float = 0.0
) -> tuple[float, float]:
    """``(r, s^2)``: growth per step and stationary variance (in ``y`` units) of the growing mode's
    amplitude for the discrete chain started at the saddle.

    GD / Langevin: ``y <- (1 + lr lambda) y + n``, ``Var n = 2 lr T``, so ``s^2 = 2 lr T/(r^2 - 1)``.
    Heavy ball with gradient noise ``sigma`` (``v <- beta v - lr (g + sigma z)``, ``y <- y + v``) at
    the temperature ``T = lr sigma^2/(2 (1 - beta))`` (REFERENCE.md): with ``M = [[1 + lr lambda, beta],
    [lr lambda, beta]]`` acting on ``(y, v)``, noise ``-lr sigma z (1, 1)``, right/left eigenvectors
    ``w``, ``u`` of ``r_+`` with ``u.w = 1``: ``s^2 = w_y^2 (u.(1, 1))^2 lr^2 sigma^2/(r_+^2 - 1)``.
    """
    if beta == 0.0:
        r = 1.0 + lr * lam
        return r, 2.0 * lr * temperature / (r * r - 1.0)
    sigma2 = 2.0 * (1.0 - beta) * temperature / lr
    matrix = np.array([[1.0 + lr * lam, beta], [lr * lam, beta]])
    values, right = np.linalg.eig(matrix)
    i = int(np.argmax(values.real))
    r = float(values[i].real)
    w = right[:, i].real
    left = np.linalg.inv(right)[i].real  # u with u.w = 1
    s2 = (w[0] * left.sum()) ** 2 * lr**2 * sigma2 / (r * r - 1.0)
    return r, float(s2)


def discrete_exit_steps(lr: float, lam: float, radius: float, temperature: float, beta: float = 0.0) -> float:
    """Mean first step with ``|y_k| >= R`` for the discrete chain from the saddle (see
    `growing_mode_variance`): ``(ln(R^2/s^2) + 0.5772 + ln 2)/(2 ln r) + 1/2``.

    Asymptotic in ``R^2/s^2``; as ``lr -> 0`` it tends to `langevin_exit_time` / ``lr``.
    """
    r, s2 = growing_mode_variance(lr, lam, temperature, beta)
    return (math.log(radius**2 / s2) + MEAN_MINUS_LOG_CHI2) / (2.0 * math.log(r)) + 0.5


def discrete_exit_steps_sd(lr: float, lam: float, temperature: float, beta: float = 0.0) -> float:
    """Standard deviation of the discrete exit step: ``(pi/sqrt 2)/(2 ln r)`` (plus a small rounding part)."""
    r, _ = growing_mode_variance(lr, lam, temperature, beta)
    return math.sqrt((SD_LOG_CHI2 / (2.0 * math.log(r))) ** 2 + 1.0 / 12.0)


__all__ = [
    "EULER_GAMMA",
    "discrete_exit_steps",
    "discrete_exit_steps_sd",
    "exact_exit_time",
    "gd_escape_steps",
    "growing_mode_variance",
    "heavy_ball_asymptotic_speedup",
    "heavy_ball_escape_steps",
    "heavy_ball_growth",
    "langevin_exit_time",
    "langevin_exit_time_sd",
    "unstable_curvature",
]
