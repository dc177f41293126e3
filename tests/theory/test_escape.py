"""Escape-time and Boltzmann theory against closed forms and independent quadratures.

Tolerances: quadratures against closed forms to 1e-8 relative (Simpson on 4e4 nodes); the Kramers /
MFPT ratios of REFERENCE.md to their quoted two digits; the Euler chain's grid solutions against their
exact finite-lr anchors to 0.2 %.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from descent import DescentError
from descent.theory import escape

torch.set_num_threads(1)


def quartic(x):
    return (np.asarray(x) ** 2 - 1) ** 2


def quartic_gradient(x):
    x = np.asarray(x)
    return 4 * x * (x**2 - 1)


# --- the exact mean first-passage time ------------------------------------------------------------
@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("friction", [1.0, 3.0])
def test_mfpt_of_free_diffusion_with_a_reflecting_wall(temperature, friction):
    # U = 0 on [0, c], reflecting at 0: tau(x0) = (c^2 - x0^2) / (2 D), D = T / gamma
    diffusion = temperature / friction
    for x0, c in [(0.0, 1.0), (0.3, 2.0)]:
        tau = escape.mfpt(lambda x: 0 * np.asarray(x), x0, c, temperature, friction, lower=0.0)
        assert tau == pytest.approx((c**2 - x0**2) / (2 * diffusion), rel=1e-9)


@pytest.mark.parametrize("force, temperature", [(1.0, 0.5), (2.0, 0.25), (-1.0, 1.0)])
def test_mfpt_up_a_linear_slope(force, temperature):
    # U = F x, reflecting at 0, from 0 to L: tau = (T/(F D)) [(T/F)(e^{F L/T} - 1) - L]
    length, diffusion = 1.5, temperature
    expected = (
        temperature
        / (force * diffusion)
        * (temperature / force * math.expm1(force * length / temperature) - length)
    )
    tau = escape.mfpt(lambda x: force * np.asarray(x), 0.0, length, temperature, lower=0.0)
    assert tau == pytest.approx(expected, rel=1e-8)


def test_mfpt_agrees_with_nested_adaptive_quadrature_and_mirrors():
    tilt, temperature = 0.3, 0.25

    def u(x):
        return (x**2 - 1) ** 2 - tilt * x

    def inner(y):
        return integrate.quad(lambda z: math.exp(-(u(z) - u(-1.0)) / temperature), -3.0, y, limit=200)[0]

    outer = integrate.quad(
        lambda y: math.exp((u(y) - u(-1.0)) / temperature) * inner(y), -0.96, 0.8, limit=200
    )[0]
    expected = outer / temperature
    assert escape.mfpt(u, -0.96, 0.8, temperature, lower=-3.0) == pytest.approx(expected, rel=1e-7)
    # escaping to the left on the mirrored landscape is the same problem
    mirrored = escape.mfpt(lambda x: u(-np.asarray(x)), 0.96, -0.8, temperature, lower=3.0)
    assert mirrored == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("ratio, correction", [(3, 1.19), (5, 1.11), (10, 1.04)])
def test_kramers_underestimates_the_exact_time_by_the_known_correction(ratio, correction):
    """REFERENCE.md: on (x^2 - 1)^2 the exact mean time to the other minimum exceeds 1/k by ~19 %, 11 %,
    4 % at dU/T = 3, 5, 10; the time to the barrier top is about half of it."""
    temperature = 1.0 / ratio
    rate = escape.kramers_rate(8.0, -4.0, 1.0, temperature)
    to_other_minimum = escape.mfpt(quartic, -1.0, 1.0, temperature)
    assert to_other_minimum * rate == pytest.approx(correction, abs=0.006)
    to_top = escape.mfpt(quartic, -1.0, 0.0, temperature)
    assert 0.45 < to_top / to_other_minimum < 0.5  # 'about half', a little less


def test_kramers_rate_scaling_and_moderate_friction_limits():
    base = escape.kramers_rate(8.0, -4.0, 1.0, 0.2)
    assert escape.kramers_rate(8.0, -4.0, 1.0, 0.2, friction=4.0) == pytest.approx(base / 4)
    assert escape.kramers_rate(8.0, -4.0, 1.0, 0.1) / base == pytest.approx(math.exp(-5), rel=1e-12)
    # large friction: the over-damped rate; zero friction: transition-state theory w_a/(2 pi) e^{-dU/T}
    big = 1e6
    assert escape.kramers_rate_moderate(8.0, -4.0, 1.0, 0.2, big) == pytest.approx(
        escape.kramers_rate(8.0, -4.0, 1.0, 0.2, big), rel=1e-9
    )
    tst = math.sqrt(8.0) / (2 * math.pi) * math.exp(-5)
    assert escape.kramers_rate_moderate(8.0, -4.0, 1.0, 0.2, 0.0) == pytest.approx(tst, rel=1e-12)
    rates = [escape.kramers_rate_moderate(8.0, -4.0, 1.0, 0.2, g) for g in (0.5, 1, 2, 4, 8)]
    assert all(a > b for a, b in zip(rates, rates[1:]))  # friction slows the crossing
    with pytest.raises(DescentError, match="temperature"):
        escape.kramers_rate(8.0, -4.0, 1.0, 0.0)


def test_position_dependent_temperature_reduces_to_the_constant_case_and_to_quadrature():
    tilt = 0.3

    def gradient(x):
        return 4 * np.asarray(x) * (np.asarray(x) ** 2 - 1) - tilt

    def u(x):
        return (np.asarray(x) ** 2 - 1) ** 2 - tilt * np.asarray(x)

    constant = escape.mfpt_local(gradient, 0.2, -0.96, 0.7, lower=-2.5)
    assert constant == pytest.approx(escape.mfpt(u, -0.96, 0.7, 0.2, lower=-2.5), rel=1e-9)
    # free diffusion with T(x) = 1 + x on [0, 1]: tau = int_0^1 int_0^y dz / (1 + z) dy = 2 ln 2 - 1
    tau = escape.mfpt_local(lambda x: 0 * np.asarray(x), lambda x: 1 + np.asarray(x), 0.0, 1.0, lower=0.0)
    assert tau == pytest.approx(2 * math.log(2) - 1, rel=1e-9)


def test_splitting_probability_and_stationary_share():
    # free diffusion: the probability of reaching 0 before 1 is 1 - x
    x = np.linspace(0, 1, 11)
    q = escape.splitting_probability(lambda z: 0 * np.asarray(z), 0.7, x, 0.0, 1.0)
    assert np.allclose(q, 1 - x, atol=1e-9)
    # symmetric well: one half each side; constant T: the Boltzmann share
    assert escape.stationary_share(quartic_gradient, 0.3, 0.0, -2.5, 2.5) == pytest.approx(0.5, abs=1e-9)
    tilt = 0.3
    share = escape.stationary_share(lambda z: quartic_gradient(z) - tilt, 0.4, 0.0, -2.5, 2.5)
    probs = escape.boltzmann_probabilities(
        lambda z: quartic(z) - tilt * np.asarray(z), 0.4, np.array([-2.5, 0.0, 2.5]), -2.5, 2.5, per_bin=4000
    )
    assert share == pytest.approx(probs[0], rel=1e-7)


# --- the Boltzmann density ---------------------------------------------------------------------
def test_boltzmann_bins_of_a_harmonic_well_are_gaussian():
    h, temperature = 3.0, 0.2
    edges = np.linspace(-1.5, 1.5, 31)
    probs = escape.boltzmann_probabilities(lambda x: h * np.asarray(x) ** 2 / 2, temperature, edges, -4, 4)
    sd = math.sqrt(temperature / h)
    from scipy.stats import norm

    assert np.allclose(probs, np.diff(norm.cdf(edges / sd)), atol=1e-10)
    density = escape.boltzmann_density(lambda x: h * np.asarray(x) ** 2 / 2, temperature, [0.0], -4, 4)
    assert density[0] == pytest.approx(1 / (sd * math.sqrt(2 * math.pi)), rel=1e-9)


# --- the Euler chain at finite lr ----------------------------------------------------------------
@pytest.mark.parametrize("lr", [0.05, 0.2, 0.5])
def test_chain_stationary_variance_on_a_quadratic_is_the_exact_discrete_one(lr):
    """REFERENCE.md: on h x^2/2 the Langevin step's stationary variance is T / (h (1 - lr h / 2))."""
    h, temperature = 3.0, 0.2
    cells, probs = escape.chain_stationary(
        lambda x: h * np.asarray(x), lr, temperature, -2.0, 2.0, per_sigma=16
    )
    centres = 0.5 * (cells[1:] + cells[:-1])
    variance = float((probs * centres**2).sum())
    assert variance == pytest.approx(temperature / (h * (1 - lr * h / 2)), rel=2e-3)


def test_chain_converges_to_the_continuum_at_order_lr():
    tilt, temperature = 0.3, 0.5

    def u(x):
        return (np.asarray(x) ** 2 - 1) ** 2 - tilt * np.asarray(x)

    def du(x):
        return quartic_gradient(x) - tilt

    edges = np.linspace(-2, 2, 41)
    boltzmann = escape.boltzmann_probabilities(u, temperature, edges, -3, 3)
    tv = [
        0.5 * np.abs(escape.chain_bin_probabilities(du, lr, temperature, edges, -2.6, 2.6) - boltzmann).sum()
        for lr in (0.02, 0.01, 0.005)
    ]
    assert tv[0] / tv[1] == pytest.approx(2, rel=0.1) and tv[1] / tv[2] == pytest.approx(2, rel=0.1)
    assert tv[2] < 0.01
    exact = escape.mfpt(u, -0.96, 0.73, 0.2)
    bias = [escape.chain_mfpt(du, lr, 0.2, -0.96, 0.73, lower=-2.0) / exact - 1 for lr in (0.02, 0.01)]
    assert abs(bias[1]) < 0.01 and bias[0] / bias[1] == pytest.approx(2, rel=0.25)
    with pytest.raises(DescentError, match="start"):
        escape.chain_mfpt(du, 0.01, 0.2, -2.5, 0.73, lower=-2.0)


def test_smoluchowski_propagation_conserves_mass_and_relaxes():
    # Ornstein-Uhlenbeck from a narrow start: the mean decays like x0 e^{-h t}, then Boltzmann
    h, temperature, x0 = 2.0, 0.1, 1.0

    def start(x):
        return (np.abs(np.asarray(x) - x0) < 0.01).astype(float)

    edges, probs = escape.smoluchowski_propagate(
        lambda x: h * np.asarray(x), temperature, start, [0.0, 0.3, 20.0], -3.0, 3.0, cells=1200
    )
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert float(probs[1] @ centres) == pytest.approx(x0 * math.exp(-h * 0.3), rel=2e-3)
    assert float(probs[2] @ centres**2) == pytest.approx(temperature / h, rel=2e-3)
