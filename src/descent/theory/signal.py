"""Mean-field signal propagation through a deep random network (Poole et al. 2016, "Exponential
expressivity in deep neural networks through transient chaos"; Schoenholz et al. 2017, "Deep
information propagation").

A fully connected network with pre-activations ``h^l = W^l phi(h^(l-1)) + b^l``, weights
``W_ij ~ N(0, sigma_w^2 / N)`` and biases ``b_i ~ N(0, sigma_b^2)``, in the limit of infinite width N.
The pre-activations of a layer are then Gaussian with variance ``q^l`` given by the *variance map*

    q^l = sigma_w^2 E[phi(sqrt(q^(l-1)) z)^2] + sigma_b^2,        z ~ N(0, 1),

whose attracting fixed point is ``q*``. Backpropagation (with the "gradient independence"
assumption: the transposed weights of the backward pass are treated as independent of the forward
pass) multiplies the mean squared gradient with respect to the pre-activations, per layer, by

    chi = sigma_w^2 E[phi'(sqrt(q) z)^2]

(for equal widths): ``E|dL/dh^l|^2 = chi(q^l) E|dL/dh^(l+1)|^2``, so ``chi < 1`` makes gradients
vanish with depth (the ordered phase), ``chi > 1`` explode (the chaotic phase), and at the fixed point
``chi_1 = chi(q*)`` is also the ratio of successive layers' weight-gradient norms. The expectations
are by Gauss-Hermite quadrature (``GAUSS_NODES`` probabilists' nodes) for sigmoid and tanh while
``q <= HERMITE_MAX_Q`` (1e-14 there; beyond, its nodes grow too sparse for phi's scale of 1: at q = 100
it errs by 2e-2), by the trapezoidal rule in ``x = sqrt(q) z`` with spacing ``TRAPEZOID_STEP`` over
12 standard deviations for larger q (exponentially accurate for integrands analytic in a strip,
Trefethen and Weideman, SIAM Review 2014: 1e-13 here), and in closed form for relu
(``E[relu(sqrt(q) z)^2] = q/2``, ``E[relu'^2] = 1/2``, so ``chi = sigma_w^2 / 2``).

>>> round(chi(1.0, 2.0, "relu"), 12)
1.0
>>> q = fixed_point(1.5, 0.05, "tanh")
>>> abs(variance_map(q, 1.5, 0.05, "tanh") - q) < 1e-12
True
>>> round(critical_sigma_w2("tanh"), 9), round(critical_sigma_w2("relu"), 9)
(1.0, 2.0)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize

from descent._errors import check_number, invalid, listed

__all__ = [
    "ACTIVATIONS",
    "GAUSS_NODES",
    "HERMITE_MAX_Q",
    "activation_derivative",
    "activation_function",
    "chi",
    "chi_at_fixed_point",
    "critical_sigma_w2",
    "fixed_point",
    "gaussian_expectation",
    "variance_map",
    "variance_sequence",
]

ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "relu")
GAUSS_NODES = 201  # Gauss-Hermite nodes: sigmoid and tanh expectations to ~1e-14 for q <= 1
HERMITE_MAX_Q = 1.0
TRAPEZOID_STEP = 0.02  # in x = sqrt(q) z, for q > HERMITE_MAX_Q (phi varies on a scale of 1)
TRAPEZOID_SPAN = 12.0  # standard deviations each side: the Gaussian's tail beyond is exp(-72)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # exact and overflow-free


def activation_function(activation: str):
    """phi as a numpy function of an array."""
    _check_activation(activation)
    return {"sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}[activation]


def activation_derivative(activation: str):
    """phi' as a numpy function (relu' = 1 for x > 0, else 0)."""
    _check_activation(activation)
    if activation == "sigmoid":
        return lambda x: _sigmoid(x) * (1.0 - _sigmoid(x))
    if activation == "tanh":
        return lambda x: 1.0 / np.cosh(np.minimum(np.abs(x), 350.0)) ** 2  # 0 to the last bit beyond
    return lambda x: (np.asarray(x) > 0).astype(float)


def _check_activation(activation: object) -> None:
    if activation not in ACTIVATIONS:
        raise invalid("activation", activation, f"one of: {listed(ACTIVATIONS)}")


@lru_cache(maxsize=4)
def _nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights normalised to the standard normal density."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / math.sqrt(2.0 * math.pi)


def gaussian_expectation(f, q: float) -> float:
    """``E[f(sqrt(q) z)]``, z ~ N(0, 1): Gauss-Hermite quadrature with ``GAUSS_NODES`` nodes for
    ``q <= HERMITE_MAX_Q`` (exact for polynomials of degree < 2 GAUSS_NODES), else the trapezoidal rule
    in x with step ``TRAPEZOID_STEP`` against the N(0, q) density (module docstring).

    >>> round(gaussian_expectation(lambda x: x**4, 0.5), 12)  # 3 q^2
    0.75
    >>> round(gaussian_expectation(lambda x: x**2, 9.0), 10)
    9.0
    """
    q = check_number("q", q, 0.0)
    if q <= HERMITE_MAX_Q:
        z, w = _nodes(GAUSS_NODES)
        return float(np.dot(w, f(math.sqrt(q) * z)))
    s = math.sqrt(q)
    half = math.ceil(TRAPEZOID_SPAN * s / TRAPEZOID_STEP)
    x = TRAPEZOID_STEP * np.arange(-half, half + 1, dtype=float)
    density = np.exp(-0.5 * x * x / q) / math.sqrt(2.0 * math.pi * q)
    return float(TRAPEZOID_STEP * np.dot(density, f(x)))


def _second_moment(q: float, activation: str) -> float:
    """``E[phi(sqrt(q) z)^2]``."""
    if activation == "relu":
        return q / 2.0
    phi = activation_function(activation)
    return gaussian_expectation(lambda x: phi(x) ** 2, q)


def variance_map(q: float, sigma_w2: float, sigma_b2: float, activation: str) -> float:
    """``sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2``: the next layer's pre-activation variance."""
    _check_activation(activation)
    q = check_number("q", q, 0.0)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    return sigma_w2 * _second_moment(q, activation) + sigma_b2


def variance_sequence(
    q0: float, depth: int, sigma_w2: float, sigma_b2: float, activation: str
) -> list[float]:
    """``[q^1, ..., q^depth]`` with ``q^1 = q0``: the variance map iterated (finite width: the mean)."""
    if isinstance(depth, bool) or int(depth) != depth or depth < 1:
        raise invalid("depth", depth, "an integer >= 1")
    out = [check_number("q0", q0, 0.0)]
    for _ in range(int(depth) - 1):
        out.append(variance_map(out[-1], sigma_w2, sigma_b2, activation))
    return out


def chi(q: float, sigma_w2: float, activation: str) -> float:
    """``sigma_w^2 E[phi'(sqrt(q) z)^2]``: the factor by which a layer with pre-activation variance q
    multiplies the mean squared backpropagated gradient (relu: ``sigma_w^2 / 2`` for every q > 0)."""
    _check_activation(activation)
    q = check_number("q", q, 0.0)
    sigma_w2, _ = _check_variances(sigma_w2, 0.0)
    if activation == "relu":
        return sigma_w2 / 2.0
    dphi = activation_derivative(activation)
    return sigma_w2 * gaussian_expectation(lambda x: dphi(x) ** 2, q)


def fixed_point(sigma_w2: float, sigma_b2: float, activation: str, q0: float = 1.0) -> float:
    """``q*``: the fixed point of the variance map that iterating it from ``q0`` approaches.

    relu: ``sigma_b^2 / (1 - sigma_w^2/2)`` for ``sigma_w^2 < 2``, ``q0`` at ``sigma_w^2 = 2, sigma_b = 0``
    (every q is fixed), else ``inf`` (the variance grows without bound). tanh with ``sigma_b = 0``
    and ``sigma_w^2 <= 1``: 0. Otherwise the map is bounded (phi is), positive at 0 and below the
    diagonal for large q: the root of ``map(q) - q`` on ``(0, sigma_w^2 + sigma_b^2 + 1]`` by Brent's
    method (for tanh without bias, the root away from the unstable q = 0).
    """
    _check_activation(activation)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    q0 = check_number("q0", q0, 0.0)
    if activation == "relu":
        if sigma_w2 < 2.0:
            return sigma_b2 / (1.0 - sigma_w2 / 2.0)
        if sigma_w2 == 2.0 and sigma_b2 == 0.0:
            return q0
        return math.inf
    if activation == "tanh" and sigma_b2 == 0.0 and (sigma_w2 <= 1.0 or q0 == 0.0):
        return 0.0
    if sigma_w2 == 0.0:
        return sigma_b2

    def gap(q: float) -> float:
        return variance_map(q, sigma_w2, sigma_b2, activation) - q

    low = 0.0
    if gap(0.0) <= 0.0:  # tanh without bias: q = 0 is an (unstable) root; start just above it
        low = 1e-12
        while gap(low) <= 0.0:
            low *= 10.0
    high = sigma_w2 + sigma_b2 + 1.0
    return float(optimize.brentq(gap, low, high, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def chi_at_fixed_point(sigma_w2: float, sigma_b2: float, activation: str) -> float:
    """``chi_1 = chi(q*)``: the per-layer gradient factor deep in the network (relu: ``sigma_w^2/2``)."""
    q = fixed_point(sigma_w2, sigma_b2, activation)
    if math.isinf(q):
        return chi(1.0, sigma_w2, activation)  # relu: chi does not depend on q
    return chi(q, sigma_w2, activation)


def critical_sigma_w2(activation: str, sigma_b2: float = 0.0) -> float:
    """The weight variance on the edge of chaos, ``chi_1(sigma_w^2, sigma_b^2) = 1``: tanh without bias
    1, relu 2 (any bias: the variance diverges beyond it, chi is sigma_w^2/2), sigmoid by Brent's
    method on ``chi_1 - 1`` (chi_1 rises with sigma_w^2 through 1)."""
    _check_activation(activation)
    _, sigma_b2 = _check_variances(1.0, sigma_b2)
    if activation == "relu":
        return 2.0
    if activation == "tanh" and sigma_b2 == 0.0:
        return 1.0

    def excess(sigma_w2: float) -> float:
        return chi_at_fixed_point(sigma_w2, sigma_b2, activation) - 1.0

    high = 2.0
    while excess(high) <= 0.0:
        high *= 2.0
        if high > 1e6:
            raise invalid("sigma_b2", sigma_b2, "a bias variance with an edge of chaos below sigma_w^2 = 1e6")
    return float(optimize.brentq(excess, 1e-6, high, xtol=1e-13, rtol=4 * np.finfo(float).eps))


def _check_variances(sigma_w2: float, sigma_b2: float) -> tuple[float, float]:
    return check_number("sigma_w2", sigma_w2, 0.0), check_number("sigma_b2", sigma_b2, 0.0)
