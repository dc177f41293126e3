"""saddle-escape at its quick size: GD's escape step ceil(ln(R/eps)/ln(1 + lr lambda)) over 14 decades,
no escape from the axis, noisy exit times against REFERENCE (lambda = |U_yy| = 2c) with standard
errors, and momentum's speed-up."""

import json
import math

import pytest
import torch

from descent.experiments import saddle_escape as se
from descent.theory.saddle import heavy_ball_asymptotic_speedup, langevin_exit_time

torch.set_num_threads(1)

CONFIG = se.Config.quick()


@pytest.fixture(scope="module")
def result():
    return se.run(CONFIG)


def test_verdict_held(result):
    assert result.verdict == "held", result.explanation
    assert len(result.checks) == 7 and all(result.checks.values()), result.checks


def test_gd_escape_is_logarithmic(result):
    assert result.numbers["GD: max |escape step - theory| over eps > 0 (steps)"] == 0
    assert result.numbers["heavy ball: max |escape step - theory| over eps > 0 (steps)"] == 0
    slope = result.numbers["GD: slope of escape step vs ln(R/eps)"]
    assert slope == pytest.approx(1 / math.log(1 + CONFIG.lr * 2.0), rel=0.01)


def test_the_axis_never_escapes(result):
    assert result.numbers["eps = 0: outcome (GD, heavy ball)"] == ["saddle:origin", "saddle:origin"]
    assert result.numbers["eps = 0: final |y| (GD, heavy ball)"] == [0.0, 0.0]


@pytest.mark.parametrize("temperature", CONFIG.temperatures)
@pytest.mark.parametrize("kind", ["langevin", "gradient noise"])
def test_noisy_exit_time_against_reference(result, kind, temperature):
    key = f"{kind}, T={temperature:g}"
    mean, se_ = (
        result.numbers[f"{key}: mean exit time (t = steps*lr)"],
        result.numbers[f"{key}: standard error"],
    )
    ref = langevin_exit_time(2.0, 2.0, temperature)
    assert result.theory[f"{key}: REFERENCE mean exit time, lambda = 2c"] == pytest.approx(ref)
    bias = result.theory[f"{key}: discrete-chain mean exit time"] - ref  # known time-step bias, ~0.7 %
    assert 0 < bias < 0.01 * ref
    assert abs(mean - ref) <= 3.5 * se_ + bias
    assert abs(result.numbers[f"{key}: z vs discrete chain"]) <= 3.5
    assert abs(result.numbers[f"{key}: z vs REFERENCE (lambda = c)"]) > 10
    assert result.numbers[f"{key}: sd of exit time"] == pytest.approx(
        result.theory[f"{key}: sd of exit time"], rel=0.15
    )


def test_momentum_speeds_up_escape(result):
    speedup = result.numbers["heavy ball over GD at the same lr: speed-up (smallest eps)"]
    assert speedup == pytest.approx(heavy_ball_asymptotic_speedup(CONFIG.lr, 2.0, CONFIG.momentum), rel=0.05)
    for temperature in CONFIG.temperatures:
        key = f"heavy ball over GD with noise at T={temperature:g} (same lr and T): speed-up"
        assert result.numbers[key] == pytest.approx(result.theory[key], rel=0.05)
        assert (
            abs(result.numbers[f"heavy ball + gradient noise, T={temperature:g}: z vs discrete chain"]) <= 3.5
        )
    # but GD at the heavy ball's effective step lr/(1 - beta) is faster still
    assert result.numbers["heavy ball steps / GD-at-effective-lr steps (smallest eps)"] > 1.5


def test_bounded_saddle_runs_end(result):
    eps = ", ".join(f"{e:g}" for e in (*CONFIG.bounded_eps, 0.0))
    for kind in ("GD", "heavy ball"):
        outcomes = result.numbers[f"bounded saddle, {kind}: outcomes (eps = {eps})"]
        assert all(o.startswith("minimum:") for o in outcomes[:-1]) and outcomes[-1] == "saddle:origin"


def test_outputs(result, tmp_path):
    json.dumps(result.to_dict())
    assert result.save(tmp_path)["png"].stat().st_size > 10_000


def test_the_specs_of_its_runs_are_stored(result, specs_round_trip):
    specs_round_trip(result)
