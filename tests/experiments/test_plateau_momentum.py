"""plateau-momentum at its quick size: crossing steps against the exact heavy-ball prediction on a
constant force (2 %), the terminal-velocity speed-up, and the honest beta = 0.99 case."""

import json

import pytest
import torch

from descent.experiments import plateau_momentum as pm
from descent.theory.quadratic import heavy_ball_crossing_step

torch.set_num_threads(1)

CONFIG = pm.Config.quick()


@pytest.fixture(scope="module")
def result():
    return pm.run(CONFIG)


def test_verdict_held(result):
    assert result.verdict == "held", result.explanation
    assert len(result.checks) == 5 and all(result.checks.values()), result.checks


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_crossing_step_matches_the_exact_prediction(result, beta):
    key = f"lr=0.1, beta={beta:g}"
    predicted = heavy_ball_crossing_step(CONFIG.length, 0.1, CONFIG.slope, beta)
    assert result.theory[f"{key}: crossing step"] == predicted
    assert result.numbers[f"{key}: crossing step"] == pytest.approx(predicted, rel=0.02)
    assert result.numbers[f"{key}: settling step in the well"] > result.numbers[f"{key}: crossing step"]


def test_terminal_velocity_speedups(result):
    assert result.numbers["lr=0.1, beta=0.5: crossing speed-up over GD"] == pytest.approx(2.0, rel=0.01)
    assert result.numbers["lr=0.1, beta=0.9: crossing speed-up over GD"] == pytest.approx(10.0, rel=0.06)
    assert result.numbers["lr=0.1, beta=0.9: settling speed-up over GD"] > 3


def test_beta_099_is_dominated_by_the_transient(result):
    key = "lr=0.1, beta=0.99"
    assert result.numbers[f"{key}: crossing speed-up over GD"] < 30  # not 100
    assert result.numbers[f"{key}: transient lag beta/(1 - beta) as a share of the crossing"] > 1
    assert result.numbers[f"{key}: overshoot past the well minimum"] > 1.0
    assert result.numbers[f"{key}: returns onto the plateau"] >= 1
    assert result.numbers[f"{key}: settling speed-up over GD"] < 1.5
    assert result.numbers["lr=0.1, beta=0: returns onto the plateau"] == 0
    assert "transient dominates" in result.explanation


def test_outputs(result, tmp_path):
    json.dumps(result.to_dict())
    assert result.save(tmp_path)["png"].stat().st_size > 10_000


def test_the_specs_of_its_runs_are_stored(result, specs_round_trip):
    specs_round_trip(result)
