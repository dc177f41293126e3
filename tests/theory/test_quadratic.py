"""`descent.theory.quadratic`: stability edges, GD's regimes and the heavy ball on a constant force,
each against a plain per-step reference (a scalar loop), not against the formula itself."""

import math

import pytest

from descent.theory.quadratic import (
    REGIMES,
    edge_by_roots,
    gd_loss_ratio,
    gd_rate,
    gd_regime,
    gd_regime_bounds,
    heavy_ball_constant_force_position,
    heavy_ball_crossing_step,
    stability_edge,
    terminal_speedup,
)


def _scalar_run(method: str, lr: float, beta: float, lam: float, steps: int) -> float:
    """|x_k| after ``steps`` steps of the rule on f = lam x^2/2 from x = 1 (the readable reference)."""
    x, v, b = 1.0, 0.0, 0.0
    for _ in range(steps):
        g = lam * x
        if method == "gd":
            x -= lr * g
        elif method == "momentum":
            v = beta * v - lr * g
            x += v
        else:  # nesterov, torch's form
            b = beta * b + g
            x -= lr * (g + beta * b)
        if not math.isfinite(x) or abs(x) > 1e200:
            return math.inf
    return abs(x)


@pytest.mark.parametrize(
    ("method", "beta", "expected"),
    [
        ("gd", 0.0, 0.2),
        ("momentum", 0.5, 0.3),
        ("momentum", 0.9, 0.38),
        ("nesterov", 0.5, 0.15),
        ("nesterov", 0.9, 2 * 1.9 / (2.8 * 10)),
    ],
)
def test_stability_edges_closed_form_and_roots(method, beta, expected):
    """The closed forms against values worked by hand and against the largest lr whose characteristic
    roots stay in the unit disc (found by bisection on the roots, not by the formula)."""
    assert stability_edge(method, 10.0, beta) == pytest.approx(expected, rel=1e-12)
    assert edge_by_roots(method, 10.0, beta) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("method", "beta"), [("gd", 0.0), ("momentum", 0.9), ("nesterov", 0.9)])
def test_edges_separate_decay_from_growth_in_the_scalar_loop(method, beta):
    edge = stability_edge(method, 4.0, beta)
    assert _scalar_run(method, 0.99 * edge, beta, 4.0, 3000) < 1e-3
    assert _scalar_run(method, 1.01 * edge, beta, 4.0, 3000) > 1e3


def test_stability_edge_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        stability_edge("adam", 1.0)
    with pytest.raises(ValueError, match="lambda_max"):
        stability_edge("gd", 0.0)


def test_gd_rate_and_loss_ratio_match_the_loop():
    for lr in (0.01, 0.1, 0.19, 0.21):
        rate = gd_rate(lr, 1.0, 10.0)
        assert rate == pytest.approx(max(abs(1 - lr), abs(1 - 10 * lr)))
    # loss ratio: both modes, exact
    lr, steps = 0.05, 37
    x_soft, x_stiff = _scalar_run("gd", lr, 0, 1.0, steps), _scalar_run("gd", lr, 0, 10.0, steps)
    shares = (0.3, 0.7)
    assert gd_loss_ratio(lr, [1.0, 10.0], list(shares), steps) == pytest.approx(
        shares[0] * x_soft**2 + shares[1] * x_stiff**2, rel=1e-12
    )


def test_regimes_in_order():
    bounds = gd_regime_bounds(1.0, 10.0, 1000, 1e12)
    assert bounds["small"] < bounds["zigzag"] < bounds["edge"]
    assert bounds["zigzag"] == pytest.approx(2 / 11) and bounds["edge"] == pytest.approx(0.2)
    assert (1 - bounds["small"]) ** 2000 == pytest.approx(1e-12, rel=1e-9)
    lrs = [0.5 * bounds["small"], 0.5 * (bounds["small"] + bounds["zigzag"]), 0.19, 0.21]
    assert [gd_regime(lr, 1.0, 10.0, 1000, 1e12) for lr in lrs] == list(REGIMES)
    # with the modes' shares the budget boundary solves the exact loss ratio
    shares = (0.01, 0.99)
    small = gd_regime_bounds(1.0, 10.0, 500, 1e12, shares)["small"]
    assert gd_loss_ratio(small, [1.0, 10.0], list(shares), 500) == pytest.approx(1e-12, rel=1e-6)
    assert small < gd_regime_bounds(1.0, 10.0, 500, 1e12)["small"]


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_constant_force_position_matches_the_heavy_ball_loop(beta):
    lr, force = 0.1, 0.05
    x, v = 0.0, 0.0
    for k in range(1, 400):
        v = beta * v + lr * force
        x += v
        assert heavy_ball_constant_force_position(k, lr, force, beta) == pytest.approx(x, rel=1e-10)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("length", [0.3, 8.0, 50.0])
def test_crossing_step_is_the_first_step_past_the_length(beta, length):
    lr, force = 0.1, 0.05
    k = heavy_ball_crossing_step(length, lr, force, beta)
    assert heavy_ball_constant_force_position(k, lr, force, beta) >= length
    assert heavy_ball_constant_force_position(k - 1, lr, force, beta) < length


def test_crossing_steps_of_the_seed_plateau_and_terminal_speedup():
    steps = [heavy_ball_crossing_step(8.0, 0.1, 0.05, b) for b in (0.0, 0.5, 0.9, 0.99)]
    assert steps == [1600, 801, 169, 62]
    assert terminal_speedup(0.9) == pytest.approx(10.0)
    # the transient: the lag behind the terminal-velocity line tends to beta/(1 - beta) steps
    k = 5000
    lag = k - heavy_ball_constant_force_position(k, 0.1, 0.05, 0.9) / (0.1 * 0.05 / 0.1)
    assert lag == pytest.approx(9.0)
