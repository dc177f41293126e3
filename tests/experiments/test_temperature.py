"""temperature at its quick size: the Langevin histogram against exp(-U/T)/Z with the Euler chain's
known bias, escape times against the exact MFPT, the Euler chain's own MFPT and Kramers, the Arrhenius
slope, and the heavy ball against Kramers' moderate-friction rate.

Tolerances are what the quick sample allows: 4 standard errors plus the chain's exact discretisation
bias (computed, not assumed)."""

import json

import pytest
import torch

from descent import DescentError
from descent.experiments import get_experiment
from descent.experiments import temperature as tp
from descent.theory.escape import kramers_rate, mfpt

torch.set_num_threads(1)
CONFIG = tp.Config.quick()


@pytest.fixture(scope="module")
def result():
    return tp.run(CONFIG)


def test_verdict_held(result):
    assert result.verdict == "held", result.explanation
    assert len(result.checks) == 7 and all(result.checks.values()), result.checks


def test_histogram_is_boltzmann_up_to_the_known_bias(result):
    n, th = result.numbers, result.theory
    tv, floor = n["TV histogram vs Boltzmann (small lr)"], n["TV noise floor (small lr)"]
    assert tv <= th["TV bias of the Euler chain at small lr (exact)"] + 4 * floor
    # at the large lr the bias dominates and is predicted
    big = n["TV histogram vs Boltzmann (large lr)"]
    assert big == pytest.approx(
        th["TV expected (bias + noise), large lr"], abs=4 * n["TV standard error (large lr)"]
    )
    assert (
        th["TV bias of the Euler chain at large lr (exact)"]
        > 3 * th["TV bias of the Euler chain at small lr (exact)"]
    )
    share, se = n["left-well share (small lr)"], n["left-well share SE (small lr)"]
    assert abs(share - th["left-well share (Boltzmann)"]) <= 4 * se


def test_escape_times(result):
    for row in result.numbers["escapes"]:
        tau, se = row["tau"], row["tau_se"]
        assert abs(tau - row["tau_chain"]) <= 4 * se
        assert abs(tau - row["tau_mfpt"]) <= 4 * se + abs(row["tau_chain"] - row["tau_mfpt"])
        assert -0.03 < row["chain_bias"] < 0  # the Euler chain escapes a little early at lr = 0.02
        assert 0.05 < row["kramers_correction"] < 0.2  # Kramers' 1/k is short by the known correction
        assert row["escaped"] > 0.6 * row["particles"]


def test_theory_numbers_are_the_closed_forms(result):
    geo = result.theory
    c = geo["escape target c"]
    a, b = geo["minimum a, barrier top b"]
    dU = result.numbers["barrier dU"]
    u = lambda x: (x**2 - 1) ** 2 - CONFIG.tilt * x  # noqa: E731
    assert u(c) == pytest.approx(CONFIG.target_energy, abs=1e-10)
    assert dU == pytest.approx(u(b) - u(a))
    row = result.numbers["escapes"][0]
    temp = dU / row["barrier_over_T"]
    assert row["tau_mfpt"] == pytest.approx(mfpt(u, a, c, temp), rel=1e-9)
    curv = geo["U''(a), U''(b)"]
    assert row["tau_kramers"] == pytest.approx(1 / kramers_rate(curv[0], curv[1], dU, temp))


def test_arrhenius_slope_is_the_barrier(result):
    n = result.numbers
    assert (
        abs(n["Arrhenius slope"] - result.theory["Arrhenius slope of the exact MFPTs"])
        <= 4 * n["Arrhenius slope SE"]
    )
    assert n["Arrhenius slope / barrier"] == pytest.approx(1.0, abs=0.15)


def test_momentum_against_moderate_friction_kramers(result):
    (row,) = result.numbers["momentum escapes"]
    assert row["beta"] == pytest.approx(1 - row["gamma"] * CONFIG.momentum_h)
    # the documented mapping: T = lr s^2 / (2 (1 - beta)) with lr = h^2
    temperature = CONFIG.momentum_h**2 * row["grad_noise"] ** 2 / (2 * (1 - row["beta"]))
    assert temperature == pytest.approx(result.theory["momentum T"])
    assert abs(row["ratio_kramers_moderate"] - 1) <= 0.3
    assert row["tau"] > row["tau_kramers_moderate"]  # asymptotic formula: the exact time is longer


def test_result_files(result, tmp_path):
    paths = result.save(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["name"] == "temperature" and data["verdict"] == "held"
    assert paths["png"].stat().st_size > 10_000
    assert get_experiment("temperature") is tp


def test_config_sizes_and_validation():
    full, quick = tp.Config(), tp.Config.quick()
    assert full.hist_particles > quick.hist_particles and len(full.barriers) > len(quick.barriers)
    assert min(full.barriers) == 3 and max(full.barriers) == 6 and full.tv_tolerance == 0.01
    assert full.mfpt_tolerance == 0.05 and full.slope_tolerance == 0.05
    with pytest.raises(DescentError, match="target_energy"):
        tp.run(tp.Config(target_energy=0.5))
    with pytest.raises(DescentError, match="barriers"):
        tp.Config(barriers=(3.0,), escape_particles=(10,))


def test_the_specs_of_its_runs_are_stored(result, specs_round_trip):
    specs_round_trip(result)
