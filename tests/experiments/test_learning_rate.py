"""learning-rate at its quick size: the four regimes with their measured behaviour, and the stability
edges by batched bisection within 1 % of 2/L, 2(1 + beta)/L and 2(1 + beta)/((1 + 2 beta) L)."""

import json

import pytest
import torch

from descent.experiments import learning_rate as lr_exp
from descent.theory.quadratic import stability_edge

torch.set_num_threads(1)

CONFIG = lr_exp.Config.quick()


@pytest.fixture(scope="module")
def result():
    return lr_exp.run(CONFIG)


def test_verdict_held(result):
    assert result.verdict == "held", result.explanation
    assert len(result.checks) == 9 and all(result.checks.values()), result.checks


def _rep(result, name, what):
    key = f"{name} (lr = {lr_exp.REPRESENTATIVE[name]:g}/L = {lr_exp.REPRESENTATIVE[name] / 10:.4g})"
    matches = [k for k in result.numbers if k.startswith(f"{key}: {what}")]
    assert len(matches) == 1, (key, what)
    return result.numbers[matches[0]]


def test_the_four_regimes(result):
    assert _rep(result, "too small", "loss ratio") > 1e-6
    assert _rep(result, "too small", "loss never increases") is True
    assert _rep(result, "good", "steps to shrink") < 150
    assert _rep(result, "good", "share of late steps reversing") == 0.0
    assert _rep(result, "too large", "share of late steps reversing") == 1.0
    assert _rep(result, "too large", "loss ratio") < 1e-40
    assert _rep(result, "divergent", "loss ratio") > 1e3
    for name, rate in (("too small", 0.998), ("good", 0.9), ("too large", 0.9), ("divergent", 1.1)):
        assert _rep(result, name, "rate per step") == pytest.approx(rate, abs=1e-9)
        assert _rep(result, name, "measured regime") == name


def test_sweep_agrees_with_theory(result):
    assert result.numbers["sweep: share of lrs whose measured regime equals theory's"] >= 0.95
    assert result.numbers["sweep: max |measured rate - theory| / |1 - theory rate|"] < 0.01
    low, high = result.numbers["sweep: measured lr band, divergent"]
    assert 0.2 < low and high == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("label", "method", "beta"),
    [
        ("GD", "gd", 0.0),
        ("heavy ball beta=0.5", "momentum", 0.5),
        ("heavy ball beta=0.9", "momentum", 0.9),
        ("Nesterov beta=0.5", "nesterov", 0.5),
        ("Nesterov beta=0.9", "nesterov", 0.9),
    ],
)
def test_stability_edges_within_one_percent(result, label, method, beta):
    predicted = stability_edge(method, 10.0, beta)
    assert result.theory[f"stability edge, {label}"] == pytest.approx(predicted)
    assert result.numbers[f"stability edge, {label}"] == pytest.approx(predicted, rel=0.01)
    assert (
        abs(result.numbers[f"stability edge, {label}: relative error"])
        <= 2 * result.numbers["stability edges: bisection resolution (relative)"]
    )


def test_outputs(result, tmp_path):
    json.dumps(result.to_dict())
    assert result.save(tmp_path)["png"].stat().st_size > 10_000


def test_the_specs_of_its_runs_are_stored(result, specs_round_trip):
    specs_round_trip(result)
