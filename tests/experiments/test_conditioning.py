"""Conditioning at its quick size: measured 1 - rate of GD, heavy ball and Nesterov against the
closed forms, within the experiment's 2 % tolerance, for kappa = 10, 100, 1000."""

import json
import math

import numpy as np
import pytest
import torch

from descent.experiments import conditioning
from descent.theory.rates import optimal_rate

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def result():
    return conditioning.run(conditioning.Config.quick())


def test_verdict_held(result):
    assert result.verdict == "held", result.explanation
    assert len(result.checks) == 9 and all(result.checks.values())


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
@pytest.mark.parametrize("method", conditioning.METHODS)
def test_one_minus_rate_within_two_percent(result, method, kappa):
    key = f"{method} kappa={kappa:g}"
    measured = result.numbers[f"{key}: 1 - rate"]
    theory = 1 - optimal_rate(method, kappa)
    assert result.theory[f"{key}: 1 - rate"] == pytest.approx(theory)
    assert measured == pytest.approx(theory, rel=0.02)
    assert result.numbers[f"{key}: spread of 1 - rate over starts (max |rel dev|)"] < 0.02


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_double_roots_show_in_the_fit(result, kappa):
    """GD decays like rho^k (p = 0), the heavy ball like k*rho^k (p ~ 1); a plain fit is biased."""
    assert abs(result.numbers[f"gd kappa={kappa:g}: fitted exponent p of k^p rho^k"]) < 0.05
    assert result.numbers[f"momentum kappa={kappa:g}: fitted exponent p of k^p rho^k"] == pytest.approx(
        1, abs=0.1
    )
    plain = result.numbers[f"momentum kappa={kappa:g}: 1 - rate, plain fit without log k"]
    assert plain < (1 - optimal_rate("momentum", kappa)) * 0.99
    assert result.numbers[f"nesterov kappa={kappa:g}: stiff-only start, |x_2|/|x_0|"] < 1e-12


def test_momentum_speed_up_scales_like_sqrt_kappa(result):
    for kappa in (10, 100, 1000):
        key = f"kappa={kappa}: speed-up of heavy ball over GD (ratio of 1 - rate)"
        assert result.numbers[key] == pytest.approx(result.theory[key], rel=0.03)
    assert result.theory["kappa=1000: speed-up of heavy ball over GD (ratio of 1 - rate)"] > 30


def test_fit_rate_recovers_a_double_root_exactly():
    k = np.arange(0, 400, dtype=float)
    rho = 0.95
    error = (3.0 + 2.0 * k) * rho**k
    fitted, p = conditioning.fit_rate(k[100:], error[100:])
    assert fitted == pytest.approx(rho, rel=1e-4)
    assert p == pytest.approx(1.0, abs=0.05)
    plain, _ = conditioning.fit_rate(k[100:], error[100:], double_root=False)
    assert 1 - plain < (1 - rho) * 0.95  # the plain fit underestimates 1 - rho


def test_result_is_serialisable_with_a_figure(result, tmp_path):
    paths = result.save(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["verdict"] == "held"
    assert paths["png"].stat().st_size > 10_000
    assert all(math.isfinite(v) for v in result.numbers.values())


def test_the_specs_of_its_runs_are_stored(result, specs_round_trip):
    specs_round_trip(result)
