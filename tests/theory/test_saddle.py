"""`descent.theory.saddle`: escape steps against plain scalar loops, the noisy-exit law against a small
seeded Monte Carlo of the scalar chain, and REFERENCE's formula against the exact first-passage time."""

import math

import numpy as np
import pytest

from descent.theory.saddle import (
    EULER_GAMMA,
    discrete_exit_steps,
    discrete_exit_steps_sd,
    exact_exit_time,
    gd_escape_steps,
    growing_mode_variance,
    heavy_ball_asymptotic_speedup,
    heavy_ball_escape_steps,
    heavy_ball_growth,
    langevin_exit_time,
    langevin_exit_time_sd,
    unstable_curvature,
)


def _loop_escape(eps: float, radius: float, lr: float, lam: float, beta: float, limit: int = 10_000) -> float:
    y, v = eps, 0.0
    for k in range(1, limit):
        v = beta * v + lr * lam * y
        y += v
        if abs(y) >= radius:
            return k
    return math.inf


def test_unstable_curvature_is_twice_c():
    assert unstable_curvature(1.0) == 2.0
    assert unstable_curvature(0.25) == 0.5
    with pytest.raises(ValueError):
        unstable_curvature(0.0)


@pytest.mark.parametrize("eps", [0.5, 1e-3, 1e-8, 1e-15])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_escape_steps_match_the_loop(eps, beta):
    expected = _loop_escape(eps, 2.0, 0.05, 2.0, beta)
    assert heavy_ball_escape_steps(eps, 2.0, 0.05, 2.0, beta) == expected
    if beta == 0.0:
        assert gd_escape_steps(eps, 2.0, 0.05, 2.0) == expected
        assert expected == math.ceil(math.log(2.0 / eps) / math.log(1.1))


def test_on_the_axis_never_and_outside_at_once():
    assert gd_escape_steps(0.0, 1.0, 0.1, 1.0) == math.inf
    assert heavy_ball_escape_steps(0.0, 1.0, 0.1, 1.0, 0.9) == math.inf
    assert gd_escape_steps(3.0, 1.0, 0.1, 1.0) == 0


def test_heavy_ball_grows_faster_at_the_same_lr():
    plus, minus = heavy_ball_growth(0.05, 2.0, 0.9)
    assert plus == pytest.approx((2.0 + math.sqrt(4.0 - 3.6)) / 2.0)
    assert plus * minus == pytest.approx(0.9)
    assert heavy_ball_asymptotic_speedup(0.05, 2.0, 0.9) == pytest.approx(math.log(plus) / math.log(1.1))
    assert heavy_ball_asymptotic_speedup(0.05, 2.0, 0.9) > 2.5


def test_reference_formula_and_exact_first_passage():
    lam, radius = 2.0, 2.0
    for temperature in (1e-2, 1e-3, 1e-4):
        ref = langevin_exit_time(lam, radius, temperature)
        assert ref == pytest.approx(
            (math.log(lam * radius**2 / temperature) + 0.5772 + math.log(2)) / (2 * lam), abs=1e-4
        )
        assert exact_exit_time(lam, radius, temperature) == pytest.approx(ref, rel=3e-4)
    # the asymptotic formula overestimates slightly when lambda R^2/T is small
    assert exact_exit_time(2.0, 1.0, 0.2) < langevin_exit_time(2.0, 1.0, 0.2)
    assert langevin_exit_time_sd(2.0) == pytest.approx(math.pi / math.sqrt(2) / 4)


def test_discrete_chain_tends_to_the_continuous_formula():
    lam, radius, temperature = 2.0, 2.0, 1e-3
    cont = langevin_exit_time(lam, radius, temperature)
    gaps = [
        abs(discrete_exit_steps(lr, lam, radius, temperature) * lr - cont) for lr in (0.02, 0.005, 0.00125)
    ]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.003 * cont


def test_growing_mode_variance_gd_limit_of_the_heavy_ball():
    r0, s0 = growing_mode_variance(0.01, 2.0, 1e-3, 0.0)
    r1, s1 = growing_mode_variance(0.01, 2.0, 1e-3, 1e-12)
    assert r1 == pytest.approx(r0, rel=1e-9)
    assert s1 == pytest.approx(s0, rel=1e-6)
    assert s0 == pytest.approx(2 * 0.01 * 1e-3 / (r0**2 - 1))


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_discrete_exit_law_against_a_scalar_monte_carlo(beta):
    """Vectorised scalar chains (numpy, seeded): mean within 4 SE, sd within 10 %."""
    lr, lam, radius, temperature, n = 0.01, 2.0, 2.0, 1e-3, 4000
    rng = np.random.default_rng(1)
    y, v = np.zeros(n), np.zeros(n)
    exit_step = np.full(n, -1)
    sigma = math.sqrt(2 * (1 - beta) * temperature / lr)
    for k in range(1, 5000):
        v = beta * v + lr * (lam * y - sigma * rng.standard_normal(n))
        y = y + v
        newly = (exit_step < 0) & (np.abs(y) >= radius)
        exit_step[newly] = k
        if (exit_step > 0).all():
            break
    assert (exit_step > 0).all()
    mean, se = exit_step.mean(), exit_step.std(ddof=1) / math.sqrt(n)
    assert abs(mean - discrete_exit_steps(lr, lam, radius, temperature, beta)) < 4 * se
    assert exit_step.std(ddof=1) == pytest.approx(discrete_exit_steps_sd(lr, lam, temperature, beta), rel=0.1)


def test_euler_gamma():
    assert EULER_GAMMA == pytest.approx(0.5772156649)
