"""The temperature experiment's statistical helpers against independent references: the folded
normal's mean (scipy), weighted least squares (numpy), the jackknife of a linear statistic (the
ordinary standard error), the bound behind the Arrhenius check's bias and the censored exponential
mean."""

import math

import numpy as np
import pytest
from scipy import stats

from descent import DescentError
from descent.experiments import temperature as tp
from descent.experiments.rows import mean_se


def test_expected_abs_is_the_folded_normal_mean():
    bias = np.array([-0.3, 0.0, 0.02, 1.5, 0.4])
    se = np.array([0.1, 0.2, 0.05, 0.3, 0.0])
    expected = [stats.foldnorm(abs(b) / s, scale=s).mean() if s > 0 else abs(b) for b, s in zip(bias, se)]
    assert tp._expected_abs(bias, se) == pytest.approx(expected, rel=1e-12)


def test_weighted_slope_is_numpys_weighted_least_squares():
    rng = np.random.default_rng(0)
    x, w = rng.uniform(1, 9, 6), rng.uniform(10, 400, 6)
    y = 0.7 * x + rng.normal(0, 1 / np.sqrt(w))
    slope, se = tp._weighted_slope(x, y, w)
    (fit, _), cov = np.polyfit(x, y, 1, w=np.sqrt(w), cov="unscaled")
    assert slope == pytest.approx(fit, rel=1e-12)
    assert se == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-9)


def test_a_weighted_slope_lies_within_the_neighbouring_slopes():
    """The Arrhenius check's bias: any positively weighted least-squares slope is an average of the
    slopes between neighbouring points."""
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 5, 5))
    y = np.exp(-x) + x**2
    local = np.diff(y) / np.diff(x)
    for _ in range(20):
        slope, _ = tp._weighted_slope(x, y, rng.uniform(0.01, 10, 5))
        assert local.min() - 1e-12 <= slope <= local.max() + 1e-12


def test_the_jackknife_of_a_linear_tv_is_the_groups_standard_error():
    """Far from the reference every bin's sign is fixed, the TV is linear in the histogram, and the
    jackknife SE is the ordinary SE of the groups' TVs."""
    rng = np.random.default_rng(2)
    reference = np.array([0.4, 0.3, 0.2, 0.1])
    noise = rng.normal(0, 0.01, (12, 4))
    per_group = np.array([0.1, 0.2, 0.3, 0.4]) + noise - noise.mean(axis=1, keepdims=True)
    pooled = per_group.mean(axis=0)
    signs = np.sign(pooled - reference)
    assert all((np.sign(g - reference) == signs).all() for g in per_group)
    _, se = mean_se([tp._tv(g, reference) for g in per_group])
    assert tp._tv_jackknife_se(pooled, per_group, reference) == pytest.approx(se, rel=1e-9)


def test_censored_mean_is_the_exponential_maximum_likelihood():
    tau, se, escapes = tp._censored_mean(np.array([1.0, 2.0, np.nan]), 5.0)
    assert (tau, escapes) == (4.0, 2) and se == pytest.approx(4.0 / math.sqrt(2))
    # a censored exponential sample: the estimate is within a few of its SEs of the true mean
    rng = np.random.default_rng(3)
    times = rng.exponential(10.0, 20000)
    tau, se, escapes = tp._censored_mean(np.where(times < 8.0, times, np.nan), 8.0)
    assert escapes == int((times < 8.0).sum()) and abs(tau - 10.0) < 4 * se


def test_config_validation():
    with pytest.raises(DescentError, match="target_energy"):
        tp.run(tp.Config(target_energy=0.5))
    with pytest.raises(DescentError, match="barriers"):
        tp.Config(barriers=(3.0,), escape_particles=(10,))
    with pytest.raises(DescentError, match="groups"):
        tp.Config(groups=7)
