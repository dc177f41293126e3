"""double-well-momentum at its quick size: the seed's two settings, the lr bands where they hold, the
(lr, momentum) map, the critical friction gamma_c = (1 - beta)/sqrt(lr) and the basins of four rules."""

import json

import numpy as np
import pytest
import torch

from descent.experiments import double_well_momentum as dwm
from descent.spec import RunSpec, run_spec

torch.set_num_threads(1)

CONFIG = dwm.Config.quick()


@pytest.fixture(scope="module")
def result():
    return dwm.run(CONFIG)


def test_verdict_held(result):
    assert result.verdict == "held", result.explanation
    assert len(result.checks) == 4 and all(result.checks.values()), result.checks


def test_the_seed_settings(result):
    assert result.numbers["seed setting, momentum 0 (lr 0.02): outcome"] == "minimum:left"
    assert result.numbers["seed setting, momentum 0.9 (lr 0.02): outcome"] == "minimum:right"


def test_bands_around_the_seed_lr(result):
    low, high = result.numbers["momentum 0: momentum 0 stays left: lr band around 0.02"]
    assert low <= 0.01 and high >= 0.04
    low, high = result.numbers["momentum 0.9: reaches right: lr band around 0.02"]
    assert 0.004 < low <= 0.01 and 0.04 <= high < 0.08
    # the band's lower edge is where the friction reaches gamma_c: ((1 - beta)/gamma_c)^2
    predicted = result.theory["lower edge of the momentum-0.9 band, ((1 - beta)/gamma_c)^2"]
    spacing = (CONFIG.lr_range[1] / CONFIG.lr_range[0]) ** (1 / (CONFIG.scan_lrs - 1))
    assert predicted / spacing <= low <= predicted * spacing


def test_critical_friction_collapses(result):
    gamma = result.numbers["gamma_c, mean over beta >= 0.9 (the small-lr limit)"]
    assert 1.2 < gamma < 1.35
    tolerance = CONFIG.friction_tolerance + result.numbers["gamma_c resolution of the bisection (relative)"]
    assert result.numbers["gamma_c relative spread over beta >= 0.9"] <= tolerance


def test_map_shares(result):
    keys = ["left", "right", "diverged"]
    shares = [result.numbers[f"map: share of (lr, momentum) cells reaching {k}"]["share"] for k in keys]
    other = result.numbers["map: share still moving / other after the step budget"]
    assert sum(shares) + other == pytest.approx(1.0)
    right = result.numbers["map: share of (lr, momentum) cells reaching right"]
    assert 0.05 < right["share"] < 0.5 and 0 < right["se"] < 0.05


def test_basins(result):
    for rule in dwm.BASIN_RULES:
        assert result.numbers[f"basins, {rule}: columns (same x0) with one outcome"] == 1.0  # separable
        share = result.numbers[f"basins, {rule}: share of starts reaching right (global)"]
        assert 0.3 < share["share"] < 0.8
    # GD never crosses the barrier; momentum crosses it both ways
    assert result.numbers["basins, gd: starts left of the barrier that end right"] == 0.0
    assert result.numbers["basins, gd: starts right of the barrier that end left"] == 0.0
    assert result.numbers["basins, momentum: starts left of the barrier that end right"] > 0.0
    assert result.numbers["basins, momentum: starts right of the barrier that end left"] > 0.0


def test_outputs(result, tmp_path):
    json.dumps(result.to_dict())
    assert result.figure is not None
    paths = result.save(tmp_path)
    assert paths["png"].stat().st_size > 10_000
    assert "gamma_c" in result.explanation


def test_the_specs_of_its_runs_are_stored(result, specs_round_trip):
    specs_round_trip(result)


def test_a_stored_spec_replays_to_the_same_runs(result, tmp_path):
    """The seed's two settings and GD's basins, replayed from the specs in the saved JSON."""
    stored = json.loads(result.save(tmp_path)["json"].read_text())["specs"]
    assert stored == result.specs
    seed = run_spec(RunSpec.from_dict(stored[0]))
    assert seed.outcomes == [
        result.numbers["seed setting, momentum 0 (lr 0.02): outcome"],
        result.numbers["seed setting, momentum 0.9 (lr 0.02): outcome"],
    ]
    numbers = result.numbers
    assert seed.outcome_step.tolist() == numbers["seed setting: settling steps (momentum 0, momentum 0.9)"]
    assert seed.final_position.tolist() == numbers["seed setting: final position (momentum 0, momentum 0.9)"]
    assert seed.final_position[:, 0].tolist() == pytest.approx([-0.9601, 1.0356], abs=1e-3)
    gd = next(s for s in stored if s["optimizer"] == "gd" and s["starts"].startswith("grid"))
    basins = run_spec(RunSpec.from_dict(gd))
    share = result.numbers["basins, gd: share of starts reaching right (global)"]["share"]
    assert np.mean([o == dwm.RIGHT for o in basins.outcomes]) == share
