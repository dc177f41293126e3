"""Thermal escape over a barrier and the Boltzmann density, in one dimension (REFERENCE.md, Escapes).

Over-damped Langevin dynamics ``dx = -U'(x)/gamma dt + sqrt(2 T/gamma) dW`` (the ``langevin`` rule is
its Euler step with ``lr = dt`` and ``gamma = 1``) has

- the stationary density ``p(x) = exp(-U(x)/T) / Z``, ``Z = int exp(-U/T) dx``;
- the exact mean first-passage time from ``x0`` to ``c > x0`` (reflecting far to the left)
  ``tau = (1/D) int_x0^c exp(U(y)/T) int_-inf^y exp(-U(z)/T) dz dy``, ``D = T/gamma``;
- Kramers' asymptotic rate ``k = sqrt(U''(a) |U''(b)|) / (2 pi gamma) * exp(-dU/T)``, minimum ``a``,
  barrier top ``b``, ``dU = U(b) - U(a)``. ``1/k`` is the mean time to pass *well beyond* the barrier
  (to the other minimum); the time to reach the barrier top itself is about half of it. The formula
  is asymptotic in ``T/dU``: on ``(x^2 - 1)^2`` the exact time exceeds ``1/k`` by ~19 % at
  ``dU/T = 3``, ~11 % at 5, ~4 % at 10.
- With inertia (unit mass, friction ``gamma``: ``x'' + gamma x' = -U' + noise``) Kramers'
  moderate-to-high friction rate ``k = (w_a / (2 pi w_b)) (sqrt(gamma^2/4 + w_b^2) - gamma/2) e^{-dU/T}``
  with ``w_a = sqrt(U''(a))``, ``w_b = sqrt(|U''(b)|)``; it tends to the over-damped rate as gamma grows.

The Euler step at finite ``lr`` is a Markov chain whose stationary density and first-passage times
differ from the continuum ones by O(lr). ``chain_stationary`` and ``chain_mfpt`` compute them for the
chain itself (a fine grid, Gaussian transition kernel), which measures that discretisation bias.

>>> import numpy as np
>>> U = lambda x: (x**2 - 1) ** 2
>>> tau = mfpt(U, -1.0, 1.0, temperature=1 / 3)
>>> k = kramers_rate(8.0, -4.0, 1.0, 1 / 3)
>>> round(tau * k, 2)
1.19
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import integrate, linalg, special

from descent._errors import check_number, invalid

Potential = Callable[[np.ndarray], np.ndarray]

__all__ = [
    "boltzmann_density",
    "boltzmann_normaliser",
    "boltzmann_probabilities",
    "chain_bin_probabilities",
    "chain_mfpt",
    "chain_stationary",
    "kramers_rate",
    "kramers_rate_moderate",
    "mfpt",
    "mfpt_local",
    "reflecting_bound",
    "smoluchowski_propagate",
    "splitting_probability",
    "stationary_share",
]


# --- Kramers ---------------------------------------------------------------------------------
def kramers_rate(
    curvature_min: float, curvature_barrier: float, barrier: float, temperature: float, friction: float = 1.0
) -> float:
    """Over-damped Kramers rate ``sqrt(U''(a) |U''(b)|) / (2 pi gamma) * exp(-dU / T)``.

    >>> round(1 / kramers_rate(8.0, -4.0, 1.0, 0.2), 2)   # (x^2-1)^2 at dU/T = 5
    164.85
    """
    check_number("curvature_min", curvature_min, 0.0, None, low_open=True)
    check_number("temperature", temperature, 0.0, None, low_open=True)
    check_number("friction", friction, 0.0, None, low_open=True)
    prefactor = math.sqrt(curvature_min * abs(curvature_barrier)) / (2 * math.pi * friction)
    return prefactor * math.exp(-barrier / temperature)


def kramers_rate_moderate(
    curvature_min: float, curvature_barrier: float, barrier: float, temperature: float, friction: float
) -> float:
    """Kramers' moderate-friction rate (unit mass):
    ``(w_a / (2 pi w_b)) * (sqrt(gamma^2/4 + w_b^2) - gamma/2) * exp(-dU/T)``.

    For large gamma it tends to the over-damped rate; it is not valid at very small friction
    (energy-diffusion regime, gamma * action / T < 1).

    >>> high = kramers_rate_moderate(8.0, -4.0, 1.0, 0.2, 1e4)
    >>> round(high / kramers_rate(8.0, -4.0, 1.0, 0.2, 1e4), 6)
    1.0
    """
    check_number("curvature_min", curvature_min, 0.0, None, low_open=True)
    check_number("temperature", temperature, 0.0, None, low_open=True)
    check_number("friction", friction, 0.0, None)
    w_a, w_b = math.sqrt(curvature_min), math.sqrt(abs(curvature_barrier))
    # sqrt(g^2/4 + w^2) - g/2 written without cancellation
    reactive = w_b**2 / (math.sqrt(friction**2 / 4 + w_b**2) + friction / 2)
    return w_a / (2 * math.pi * w_b) * reactive * math.exp(-barrier / temperature)


# --- exact one-dimensional quadratures --------------------------------------------------------
def reflecting_bound(
    potential: Potential,
    start: float,
    temperature: float,
    direction: float = -1.0,
    height: float = 60.0,
    step: float = 0.05,
    limit: float = 1e3,
) -> float:
    """A point beyond ``start`` (to the left for ``direction = -1``) where ``U`` exceeds its minimum
    on the way by ``height * T``: a reflecting wall there changes nothing measurable."""
    x, lowest = float(start), float(potential(np.array([start]))[0])
    while abs(x - start) < limit:
        x += direction * step
        u = float(potential(np.array([x]))[0])
        lowest = min(lowest, u)
        if u - lowest > height * temperature:
            return x
        step *= 1.05
    raise invalid("potential", "no confining wall", f"U rising by {height}*T within {limit} of the start")


def mfpt(
    potential: Potential,
    start: float,
    target: float,
    temperature: float,
    friction: float = 1.0,
    lower: float | None = None,
    points: int = 40001,
) -> float:
    """Exact mean first-passage time of over-damped Langevin dynamics from ``start`` to ``target``.

    ``tau = (gamma/T) int_start^target exp(U(y)/T) int_lower^y exp(-U(z)/T) dz dy`` with a reflecting
    wall at ``lower`` (by default far enough beyond ``start`` that it does not matter). Escape to the
    left (``target < start``) is handled by mirroring. Composite Simpson quadrature on ``points``
    nodes, in log-safe form (the exponentials are shifted by the extremes of U).

    >>> round(mfpt(lambda x: 0 * x, 0.0, 1.0, 0.5, lower=0.0), 6)   # free diffusion: c^2 / (2D)
    1.0
    """
    check_number("temperature", temperature, 0.0, None, low_open=True)
    check_number("friction", friction, 0.0, None, low_open=True)
    if target == start:
        return 0.0
    if target < start:
        mirrored = lambda x: potential(-np.asarray(x))  # noqa: E731
        return mfpt(
            mirrored, -start, -target, temperature, friction, None if lower is None else -lower, points
        )
    if lower is None:
        lower = reflecting_bound(potential, start, temperature)
    if lower > start:
        raise invalid("lower", lower, f"a reflecting wall at or below start={start}")
    half = max(points // 2, 50)
    left = np.linspace(lower, start, half + 1) if lower < start else np.array([start])
    right = np.linspace(start, target, 2 * half + 1)
    x = np.concatenate([left[:-1], right])
    u = np.asarray(potential(x), dtype=float)
    u_low = u.min()
    inner = integrate.cumulative_simpson(np.exp(-(u - u_low) / temperature), x=x, initial=0.0)
    outer_u = u[len(left) - 1 :]
    u_high = outer_u.max()
    outer = np.exp((outer_u - u_high) / temperature) * inner[len(left) - 1 :]
    value = integrate.simpson(outer, x=right)
    return float(friction / temperature * value * math.exp((u_high - u_low) / temperature))


# --- position-dependent temperature (e.g. SGD noise whose variance follows the curvature) -----------
def _local(temperature, x: np.ndarray) -> np.ndarray:
    if callable(temperature):
        values = np.asarray(temperature(x), dtype=float)
        return np.broadcast_to(values, x.shape).astype(float)
    check_number("temperature", temperature, 0.0, None, low_open=True)
    return np.full(x.shape, float(temperature))


def _psi(gradient: Potential, temperature, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``psi(x) = int U'(x)/T(x) dx`` on the grid ``x`` (zero at x[0]) and ``T`` on the grid; the
    stationary density of ``dx = -U' dt + sqrt(2 T(x)) dW`` (Ito) is ``exp(-psi) / T``."""
    local = _local(temperature, x)
    if np.any(local <= 0):
        raise invalid("temperature", "a non-positive value", "T(x) > 0 everywhere on the interval")
    drift = np.asarray(gradient(x), dtype=float) / local
    return integrate.cumulative_simpson(drift, x=x, initial=0.0), local


def mfpt_local(
    gradient: Potential,
    temperature,
    start: float,
    target: float,
    lower: float,
    friction: float = 1.0,
    points: int = 40001,
) -> float:
    """Mean first-passage time of ``dx = -U'(x)/gamma dt + sqrt(2 T(x)/gamma) dW`` (Ito) from ``start``
    to ``target``, reflecting at ``lower`` (beyond ``start`` on the other side), for a temperature that
    may depend on position (a callable ``T(x)``):
    ``tau = gamma int_start^target exp(psi(y)) int_lower^y exp(-psi(z)) / T(z) dz dy``,
    ``psi = int U'/T``. For constant T it equals `mfpt`."""
    check_number("friction", friction, 0.0, None, low_open=True)
    if target == start:
        return 0.0
    if target < start:
        mirrored_gradient = lambda x: -np.asarray(gradient(-np.asarray(x)))  # noqa: E731
        mirrored_temperature = (
            (lambda x: temperature(-np.asarray(x))) if callable(temperature) else temperature
        )
        return mfpt_local(mirrored_gradient, mirrored_temperature, -start, -target, -lower, friction, points)
    if not lower <= start:
        raise invalid("lower", lower, f"a reflecting wall at or below start={start}")
    half = max(points // 2, 50)
    left = np.linspace(lower, start, half + 1) if lower < start else np.array([start])
    right = np.linspace(start, target, 2 * half + 1)
    x = np.concatenate([left[:-1], right])
    psi, local = _psi(gradient, temperature, x)
    low = psi.min()
    inner = integrate.cumulative_simpson(np.exp(-(psi - low)) / local, x=x, initial=0.0)
    outer_psi = psi[len(left) - 1 :]
    high = outer_psi.max()
    value = integrate.simpson(np.exp(outer_psi - high) * inner[len(left) - 1 :], x=right)
    return float(friction * value * math.exp(high - low))


def splitting_probability(
    gradient: Potential, temperature, x: np.ndarray, left: float, right: float, points: int = 20001
) -> np.ndarray:
    """Probability of reaching ``left`` before ``right`` from each point of ``x`` (in [left, right]),
    for ``dx = -U' dt + sqrt(2 T(x)) dW``: ``q(x) = int_x^right e^psi / int_left^right e^psi``."""
    grid = np.linspace(left, right, points)
    psi, _ = _psi(gradient, temperature, grid)
    weight = np.exp(psi - psi.max())
    tail = integrate.cumulative_simpson(weight[::-1], x=-grid[::-1], initial=0.0)[::-1]  # int_x^right
    return np.interp(np.asarray(x, dtype=float), grid, tail / tail[0])


def stationary_share(
    gradient: Potential, temperature, split: float, lower: float, upper: float, points: int = 40001
) -> float:
    """Stationary probability of ``x < split`` for ``dx = -U' dt + sqrt(2 T(x)) dW`` on
    ``[lower, upper]``: density ``exp(-psi)/T`` (the Boltzmann density ``exp(-U/T)/Z`` when T is constant)."""
    grid = np.linspace(lower, upper, points)
    psi, local = _psi(gradient, temperature, grid)
    density = np.exp(-(psi - psi.min())) / local
    cumulative = integrate.cumulative_simpson(density, x=grid, initial=0.0)
    return float(np.interp(split, grid, cumulative) / cumulative[-1])


def smoluchowski_propagate(
    gradient: Potential,
    temperature,
    initial: Potential,
    times,
    lower: float,
    upper: float,
    cells: int = 1500,
    max_exponent: float = 600.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact evolution of the density of ``dx = -U' dt + sqrt(2 T(x)) dW`` (Ito, reflecting walls at
    ``lower``/``upper``) from the density ``initial(x)``: ``(edges, P[time, cell])``.

    The Fokker-Planck equation ``p_t = (U' p + (T p)_x)_x = (T e^{-Phi} (e^{Phi} p)_x)_x``,
    ``Phi = psi + log T``, is discretised on ``cells`` cells with the rates
    ``T_{i+1/2}/dx^2 * exp(-+(Phi_{i+1} - Phi_i)/2)`` (exact detailed balance with ``exp(-Phi)``,
    second order in dx), symmetrised and diagonalised (a symmetric tridiagonal matrix). Cells where
    ``Phi`` exceeds its minimum by more than ``max_exponent`` are cut off (the density there is < e^-600).
    """
    edges = np.linspace(lower, upper, cells + 1)
    dx = edges[1] - edges[0]
    centres = 0.5 * (edges[1:] + edges[:-1])
    psi, local = _psi(gradient, temperature, centres)
    phi = psi + np.log(local)
    phi = phi - phi.min()
    keep = np.flatnonzero(phi <= max_exponent)
    lo, hi = keep.min(), keep.max() + 1
    phi, sub = phi[lo:hi], slice(lo, hi)
    half = _local(temperature, edges[lo + 1 : hi]) / dx**2  # T at the inner interfaces / dx^2
    step = np.diff(phi)
    up = half * np.exp(-step / 2)  # rate i -> i+1
    down = half * np.exp(step / 2)  # rate i+1 -> i
    diag = -(np.append(up, 0.0) + np.insert(down, 0, 0.0))
    values, vectors = linalg.eigh_tridiagonal(diag, half)
    p0 = np.clip(np.asarray(initial(centres), dtype=float), 0.0, None)
    p0 = p0 / p0.sum()
    if p0[:lo].sum() + p0[hi:].sum() > 1e-12:
        raise invalid(
            "initial", "mass where exp(-Phi) < e^-600", "an initial density inside the reachable region"
        )
    weights = vectors.T @ (np.exp(phi / 2) * p0[sub])
    times = np.atleast_1d(np.asarray(times, dtype=float))
    out = np.zeros((len(times), cells))
    for k, t in enumerate(times):
        decay = np.exp(np.minimum(values, 0.0) * t)
        out[k, sub] = np.clip(np.exp(-phi / 2) * (vectors @ (decay * weights)), 0.0, None)
    return edges, out


def boltzmann_normaliser(
    potential: Potential, temperature: float, lower: float, upper: float, points: int = 40001
) -> tuple[float, float]:
    """``(Z, U0)`` with ``Z = int_lower^upper exp(-(U - U0)/T) dx`` (Simpson), ``U0`` the minimum of U
    on the grid: the true normaliser is ``Z * exp(-U0/T)``, kept apart so it never overflows."""
    check_number("temperature", temperature, 0.0, None, low_open=True)
    x = np.linspace(lower, upper, points)
    u = np.asarray(potential(x), dtype=float)
    u0 = float(u.min())
    return float(integrate.simpson(np.exp(-(u - u0) / temperature), x=x)), u0


def boltzmann_density(
    potential: Potential, temperature: float, x: np.ndarray, lower: float, upper: float
) -> np.ndarray:
    """``exp(-U(x)/T) / Z`` at the points ``x``, ``Z`` by quadrature over ``[lower, upper]``."""
    z, u0 = boltzmann_normaliser(potential, temperature, lower, upper)
    return np.exp(-(np.asarray(potential(np.asarray(x, dtype=float))) - u0) / temperature) / z


def boltzmann_probabilities(
    potential: Potential, temperature: float, edges: np.ndarray, lower: float, upper: float, per_bin: int = 64
) -> np.ndarray:
    """Probability of each bin ``[edges[i], edges[i+1])`` under ``exp(-U/T)/Z``: exact bin integrals
    (Simpson inside each bin), not densities at centres, so a histogram can be compared bin by bin."""
    z, u0 = boltzmann_normaliser(potential, temperature, lower, upper)
    edges = np.asarray(edges, dtype=float)
    probs = np.empty(len(edges) - 1)
    for i in range(len(edges) - 1):
        x = np.linspace(edges[i], edges[i + 1], 2 * per_bin + 1)
        probs[i] = integrate.simpson(np.exp(-(np.asarray(potential(x)) - u0) / temperature), x=x)
    return probs / z


# --- the Euler-Maruyama chain at finite step ---------------------------------------------------
def _kernel(
    gradient: Potential, lr: float, temperature: float, nodes: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """P[i, j]: probability that one step ``x <- x - lr U'(x) + sqrt(2 lr T) z`` from node i lands in
    cell j (cells between ``edges``)."""
    mean = nodes - lr * np.asarray(gradient(nodes), dtype=float)
    scale = math.sqrt(2 * lr * temperature)
    cdf = special.ndtr((edges[None, :] - mean[:, None]) / scale)
    return np.diff(cdf, axis=1)


def _grid(lower: float, upper: float, lr: float, temperature: float, per_sigma: float) -> np.ndarray:
    spacing = math.sqrt(2 * lr * temperature) / per_sigma
    cells = max(int(math.ceil((upper - lower) / spacing)), 10)
    return np.linspace(lower, upper, cells + 1)


def chain_stationary(
    gradient: Potential, lr: float, temperature: float, lower: float, upper: float, per_sigma: float = 8.0
) -> tuple[np.ndarray, np.ndarray]:
    """Stationary distribution of the Langevin Euler chain at step ``lr``: ``(edges, probabilities)``
    on cells of width ``sqrt(2 lr T) / per_sigma`` over ``[lower, upper]`` (mass that would leave
    is put back in the end cells). As ``lr -> 0`` it tends to ``exp(-U/T)/Z``; on ``h x^2/2`` its
    variance is ``T / (h (1 - lr h / 2))``."""
    check_number("lr", lr, 0.0, None, low_open=True)
    check_number("temperature", temperature, 0.0, None, low_open=True)
    edges = _grid(lower, upper, lr, temperature, per_sigma)
    nodes = 0.5 * (edges[1:] + edges[:-1])
    inner = edges.copy()
    inner[0], inner[-1] = -np.inf, np.inf
    kernel = _kernel(gradient, lr, temperature, nodes, inner)
    n = len(nodes)
    system = kernel.T - np.eye(n)
    system[-1, :] = 1.0
    rhs = np.zeros(n)
    rhs[-1] = 1.0
    probs = linalg.solve(system, rhs)
    return edges, np.clip(probs, 0.0, None) / np.clip(probs, 0.0, None).sum()


def chain_bin_probabilities(
    gradient: Potential,
    lr: float,
    temperature: float,
    edges: np.ndarray,
    lower: float,
    upper: float,
    per_sigma: float = 6.0,
) -> np.ndarray:
    """The Euler chain's stationary probability of each bin ``[edges[i], edges[i+1])``: the cell
    distribution of `chain_stationary` summed into bins, at ``per_sigma`` and ``2 * per_sigma`` cells
    per noise width and Richardson-extrapolated (the grid error is O(cell^2))."""

    def binned(resolution: float) -> np.ndarray:
        cells, probs = chain_stationary(gradient, lr, temperature, lower, upper, resolution)
        cumulative = np.concatenate([[0.0], np.cumsum(probs)])
        return np.diff(np.interp(np.asarray(edges, dtype=float), cells, cumulative))

    coarse, fine = binned(per_sigma), binned(2 * per_sigma)
    return (4 * fine - coarse) / 3


def chain_mfpt(
    gradient: Potential,
    lr: float,
    temperature: float,
    start: float,
    target: float,
    lower: float,
    per_sigma: float = 6.0,
) -> float:
    """Mean first-passage time (in time units, steps * lr) of the Langevin Euler chain
    ``x <- x - lr U'(x) + sqrt(2 lr T) z`` from ``start`` to beyond ``target`` (``x >= target``, or
    ``x <= target`` when ``target < start``), with a reflecting (clamping) wall at ``lower`` on the
    other side. Solves ``(I - P) m = 1`` on cells of width ``sqrt(2 lr T)/per_sigma`` and on cells half
    as wide, then Richardson-extrapolates (the grid error is O(cell^2)).
    """
    check_number("lr", lr, 0.0, None, low_open=True)
    check_number("temperature", temperature, 0.0, None, low_open=True)
    if target < start:
        mirrored = lambda x: -np.asarray(gradient(-np.asarray(x)))  # noqa: E731
        return chain_mfpt(mirrored, lr, temperature, -start, -target, -lower, per_sigma)
    if not lower < start < target:
        raise invalid("start", start, f"a point strictly between the wall {lower} and the target {target}")

    def solve(resolution: float) -> float:
        edges = _grid(lower, target, lr, temperature, resolution)
        nodes = 0.5 * (edges[1:] + edges[:-1])
        inner = edges.copy()
        inner[0] = -np.inf  # mass below the wall stays in the first cell; beyond the target is absorbed
        kernel = _kernel(gradient, lr, temperature, nodes, inner)
        steps = linalg.solve(np.eye(len(nodes)) - kernel, np.ones(len(nodes)))
        return float(lr * np.interp(start, nodes, steps))

    coarse, fine = solve(per_sigma), solve(2 * per_sigma)
    return (4 * fine - coarse) / 3
