"""overdamped at its quick size: GD converges to gradient flow at order 1 in lr with the Euler error
constant; the heavy ball converges to x'' + gamma x' = -grad U at order 1/2 in lr under the documented
mapping (h = sqrt(lr), gamma = (1 - beta)/h) and at order 1 with the centred mapping plus a half
first step."""

import json

import numpy as np
import pytest
import torch

from descent.experiments import overdamped as od

torch.set_num_threads(1)
CONFIG = od.Config.quick()


@pytest.fixture(scope="module")
def result():
    return od.run(CONFIG)


def test_verdict_held(result):
    assert result.verdict == "held", result.explanation
    assert len(result.checks) == 5 and all(result.checks.values()), result.checks


def test_gd_is_euler(result):
    n = result.numbers
    assert n["GD order in lr"] == pytest.approx(1.0, abs=0.02)
    assert n["GD error / (lr |E(t)|) at the smallest lr"] == pytest.approx(1.0, abs=0.01)
    assert n["GD error direction cosine with E(t)"] > 0.999
    err = np.asarray(n["GD RMS error at t"])
    assert np.all(np.diff(err) < 0)  # the error falls with every halving of lr
    assert np.allclose(err[1:] / err[:-1], 0.5, atol=0.02)


def test_heavy_ball_orders(result):
    n = result.numbers
    assert n["heavy ball [documented] order in lr"] == pytest.approx(0.5, abs=0.06)
    assert n["heavy ball [documented] order in h"] == pytest.approx(1.0, abs=0.1)
    assert n["heavy ball [centred + half first step] order in lr"] == pytest.approx(1.0, abs=0.03)
    for single in ("centred mapping", "half first step"):
        assert n[f"heavy ball [{single}] order in lr"] == pytest.approx(0.5, abs=0.1)
    # the last local order (smallest lr) is the asymptotic one
    assert n["heavy ball [documented] local orders in lr"][-1] == pytest.approx(0.5, abs=0.03)
    # at fixed gamma the documented mapping has beta = 1 - gamma sqrt(lr)
    lr = np.asarray(n["heavy ball [documented] lr ladder"])
    beta = np.asarray(n["heavy ball [documented] beta ladder"])
    assert np.allclose(beta, 1 - CONFIG.friction * np.sqrt(lr))


def test_result_files(result, tmp_path):
    paths = result.save(tmp_path)
    assert json.loads(paths["json"].read_text())["verdict"] == "held"
    assert paths["png"].stat().st_size > 10_000
    assert len(od.Config().gd_steps) > len(CONFIG.gd_steps)


def test_the_specs_of_its_runs_are_stored(result, specs_round_trip):
    specs_round_trip(result)
