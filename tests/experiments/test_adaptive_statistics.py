"""The adaptive experiment's helpers against independent references: quantiles of times with
failures, the paired ratio estimator's SE, and GD's exact steps to target on a quadratic."""

import math

import numpy as np
import pytest
import torch

from descent import DescentError
from descent.experiments import adaptive


def test_quantile_matches_numpy_and_counts_failures_as_infinite():
    rng = np.random.default_rng(1)
    times = rng.integers(1, 500, 37).astype(float)
    for q in (0.25, 0.5, 0.75):
        assert adaptive.quantile(times, q) == pytest.approx(np.quantile(times, q))
    assert adaptive.quantile(np.array([1.0, 2.0, 3.0, math.inf]), 0.5) == 2.5
    assert adaptive.quantile(np.array([1.0, math.inf, math.inf]), 0.5) == math.inf


def test_censored_times_count_failures_at_the_budget():
    assert adaptive.censored(np.array([3.0, math.inf]), 100).tolist() == [3.0, 100.0]


def test_ratio_of_means_se_matches_the_delta_method_and_its_spread_over_samples():
    rng = np.random.default_rng(2)
    n, ratios, ses = 200, [], []
    for _ in range(2000):
        b = rng.exponential(50.0, n) + 10.0
        a = 0.3 * b + rng.normal(0.0, 5.0, n)  # paired, correlated
        ratio, se = adaptive.ratio_of_means(a, b)
        ratios.append(ratio)
        ses.append(se)
        cov = np.cov(a, b)
        delta = math.sqrt((cov[0, 0] + ratio**2 * cov[1, 1] - 2 * ratio * cov[0, 1]) / n) / b.mean()
        assert se == pytest.approx(delta, rel=1e-9)
    assert np.mean(ses) == pytest.approx(np.std(ratios), rel=0.1)


def test_gd_exact_steps_match_iterating_gd():
    angle = math.pi / 6
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rotation @ np.diag([100.0, 1.0]) @ rotation.T
    starts = np.array([[1.5, -0.7], [-2.0, 2.0], [0.1, 0.05]])
    lr, target, budget = 0.0178, 1e-6, 3000
    exact = adaptive.gd_exact_steps(torch.tensor(matrix), torch.tensor(starts), lr, target, budget)
    for start, steps in zip(starts, exact):
        x, k = start.copy(), 0
        while 0.5 * x @ matrix @ x > target:
            x = x - lr * matrix @ x
            k += 1
        assert steps == k
    assert adaptive.gd_exact_steps(torch.tensor(matrix), torch.tensor(starts), lr, target, 5)[0] == math.inf
    assert adaptive.gd_rate(torch.tensor(matrix), lr) == pytest.approx(1 - lr)


def test_unknown_race_raises():
    with pytest.raises(DescentError, match="invalid race"):
        adaptive.race_setup("everest", 4, 0)
