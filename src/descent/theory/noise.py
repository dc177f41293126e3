"""Gradient noise as temperature (REFERENCE.md, Physics dictionary).

A mini-batch of B examples drawn with replacement from N gives the full gradient plus noise of
covariance ``C / B``, where ``C = (1/N) sum_i (g_i - g)(g_i - g)^T`` is the per-example covariance;
drawn without replacement the covariance is multiplied by ``(N - B)/(N - 1)`` (zero for the full batch).
Per coordinate of variance ``s^2`` the update ``w <- w - lr (g + noise)`` is the Euler step of Langevin
dynamics at temperature ``T = lr s^2 / 2`` (``lr s^2 / (2 (1 - beta))`` with heavy-ball momentum beta).

When ``C`` is not a multiple of the identity the noise has no single temperature: near a minimum with
Hessian H, SGD's stationary covariance solves the discrete Lyapunov equation
``S = (I - lr H) S (I - lr H)^T + lr^2 C_B`` (``H S + S H = lr C_B`` as lr -> 0). Equipartition still
defines a scalar ``T_eq = tr(H S)/d`` (mean excess loss ``d T_eq / 2``), and in the small-lr limit
``T_eq = lr tr(C_B)/(2d)``: the formula ``lr s^2/(2B)`` with ``s^2 = tr(C)/d``.

>>> sgd_temperature(0.1, 2.0, batch=4)
0.025
>>> round(without_replacement_factor(100, 10), 4)
0.9091
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from descent._errors import check_number, invalid

__all__ = [
    "discrete_langevin_variance",
    "equipartition_temperature",
    "heavy_ball_stationary_covariance",
    "minibatch_covariance",
    "sgd_stationary_covariance",
    "sgd_temperature",
    "without_replacement_factor",
]


def without_replacement_factor(n: int, batch: int) -> float:
    """``(N - B)/(N - 1)``: the variance of a without-replacement batch mean relative to with replacement."""
    if int(n) != n or n < 2:
        raise invalid("n", n, "an integer >= 2 (the dataset size)")
    if int(batch) != batch or not 1 <= batch <= n:
        raise invalid("batch", batch, f"an integer in [1, {n}]")
    return (n - batch) / (n - 1)


def minibatch_covariance(
    per_example_cov: np.ndarray | float, batch: int, n: int | None = None, replacement: bool = True
) -> np.ndarray | float:
    """Covariance of the mini-batch gradient noise: ``C / B``, times ``(N - B)/(N - 1)`` without
    replacement (then ``n`` is required)."""
    check_number("batch", batch, 1.0, None)
    cov = per_example_cov / batch
    if replacement:
        return cov
    if n is None:
        raise invalid("n", n, "the dataset size when batches are drawn without replacement")
    return cov * without_replacement_factor(n, batch)


def sgd_temperature(
    lr: float,
    sigma2: float,
    batch: int = 1,
    momentum: float = 0.0,
    n: int | None = None,
    replacement: bool = True,
) -> float:
    """``T = lr s^2 / (2 (1 - beta))`` with ``s^2 = sigma2 / B`` (times ``(N - B)/(N - 1)`` without
    replacement): the temperature of per-coordinate gradient-noise variance ``sigma2`` per example."""
    check_number("lr", lr, 0.0, None, low_open=True)
    check_number("sigma2", sigma2, 0.0, None)
    check_number("momentum", momentum, 0.0, 1.0, high_open=True)
    s2 = minibatch_covariance(sigma2, batch, n, replacement)
    return lr * s2 / (2 * (1 - momentum))


def discrete_langevin_variance(curvature: float, lr: float, temperature: float) -> float:
    """Exact stationary variance of ``x <- x - lr h x + sqrt(2 lr T) z`` on ``h x^2/2``:
    ``T / (h (1 - lr h / 2))`` (stable for ``0 < lr h < 2``); ``T/h`` (Boltzmann) as lr -> 0."""
    if not 0 < lr * curvature < 2:
        raise invalid("lr*curvature", lr * curvature, "a number in (0, 2) (a stable step)")
    return temperature / (curvature * (1 - lr * curvature / 2))


def sgd_stationary_covariance(
    hessian: np.ndarray, noise_cov: np.ndarray, lr: float, discrete: bool = True
) -> np.ndarray:
    """Stationary covariance S of linearised SGD ``w <- w - lr (H w + xi)``, ``Cov xi = noise_cov``:
    ``S = A S A^T + lr^2 C`` with ``A = I - lr H`` (``discrete``), or ``H S + S H = lr C`` (the
    continuous-time limit)."""
    hessian = np.atleast_2d(np.asarray(hessian, dtype=float))
    noise_cov = np.atleast_2d(np.asarray(noise_cov, dtype=float))
    if discrete:
        a = np.eye(len(hessian)) - lr * hessian
        if np.max(np.abs(np.linalg.eigvals(a))) >= 1:
            raise invalid("lr", lr, "a step with |1 - lr*lambda| < 1 for every Hessian eigenvalue")
        return linalg.solve_discrete_lyapunov(a, lr**2 * noise_cov)
    return linalg.solve_continuous_lyapunov(hessian, lr * noise_cov)


def heavy_ball_stationary_covariance(
    hessian: np.ndarray, noise_cov: np.ndarray, lr: float, momentum: float
) -> np.ndarray:
    """Stationary position covariance of the noisy heavy ball ``v <- beta v - lr (H w + xi)``,
    ``w <- w + v`` (exact, by the discrete Lyapunov equation on the state ``(w, v)``)."""
    hessian = np.atleast_2d(np.asarray(hessian, dtype=float))
    noise_cov = np.atleast_2d(np.asarray(noise_cov, dtype=float))
    d = len(hessian)
    eye = np.eye(d)
    # (w, v)_{k+1} = M (w, v)_k + (-lr xi, -lr xi)
    m = np.block([[eye - lr * hessian, momentum * eye], [-lr * hessian, momentum * eye]])
    if np.max(np.abs(np.linalg.eigvals(m))) >= 1:
        raise invalid("lr, momentum", (lr, momentum), "a stable heavy ball on this Hessian")
    q = lr**2 * np.block([[noise_cov, noise_cov], [noise_cov, noise_cov]])
    return linalg.solve_discrete_lyapunov(m, q)[:d, :d]


def equipartition_temperature(hessian: np.ndarray, covariance: np.ndarray) -> float:
    """``tr(H S) / d``: the scalar temperature of fluctuations S around a minimum with Hessian H
    (each of the d modes holds ``T/2`` of potential energy)."""
    hessian = np.atleast_2d(np.asarray(hessian, dtype=float))
    return float(np.trace(hessian @ np.atleast_2d(covariance)) / len(hessian))
