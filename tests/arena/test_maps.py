"""The Arena's maps of outcomes (`descent.arena.maps`): each cell against its own separate run, the
double well's basins against the barrier in closed form, the stability edge on a quadratic against
2(1 + beta)/lambda, the click's state, and the size checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from descent._errors import DescentError
from descent.arena import maps
from descent.arena.maps import (
    MAX_N,
    MAX_WORK,
    PHASE_AXES,
    BasinMap,
    PhaseMap,
    basin_map,
    cell_to_state,
    phase_map,
)
from descent.arena.state import LR_LOG_RANGE, default_state, normalize, state_specs
from descent.spec import RunSpec, run_spec


def _state(landscape="double-well", optimizer="momentum", steps=300, start=None, params=None, **hyper):
    state = default_state()
    state.update(
        landscape=landscape,
        params=dict(params or {}),
        racers=[{"optimizer": optimizer, "hyper": hyper}],
        steps=steps,
        start=start,
    )
    return normalize(state)


def _single(state: dict, start: list[float], hyper: dict) -> tuple[str, int]:
    """One particle's own run with those settings: its outcome and outcome step."""
    spec = RunSpec(
        landscape=state["landscape"],
        landscape_params=state["params"],
        optimizer=state["racers"][0]["optimizer"],
        hyper=hyper,
        starts=[start],
        steps=state["steps"],
        seed=state["seed"],
        save="summary",
    )
    run = run_spec(spec)
    return run.outcomes[0], int(run.outcome_step[0])


def _cells(m) -> list[tuple[str, int]]:
    rows, columns = m.shape
    return [(m.label(i, j), int(m.settle[i, j])) for i in range(rows) for j in range(columns)]


# --- every cell is its own run ------------------------------------------------------------------------
BASINS = [
    ("double-well", "momentum", {"lr": 0.02, "momentum": 0.9}),
    ("himmelblau", "adam", {"lr": 0.05}),
    ("six-hump-camel", "nesterov", {"lr": 0.01, "momentum": 0.8}),
]


@pytest.mark.parametrize(("landscape", "optimizer", "hyper"), BASINS)
def test_each_basin_cell_equals_its_own_run(landscape, optimizer, hyper):
    state = _state(landscape, optimizer, 300, **hyper)
    m = basin_map(state, 12)
    assert isinstance(m, BasinMap) and m.shape == (12, 12) and m.backend == "kernel"
    (x0, x1), (y0, y1) = m.spec.build_landscape().bounds
    assert np.allclose(m.x, x0 + (np.arange(12) + 0.5) * (x1 - x0) / 12)
    assert np.allclose(m.y, y0 + (np.arange(12) + 0.5) * (y1 - y0) / 12)
    expected = [_single(state, [float(m.x[j]), float(m.y[i])], hyper) for i in range(12) for j in range(12)]
    assert _cells(m) == expected
    assert len(set(expected)) > 1  # a map, not one colour


PHASES = [
    ("double-well", "momentum", {"lr": 0.02, "momentum": 0.9}, "momentum"),
    ("double-well", "nesterov", {"lr": 0.02, "momentum": 0.5}, "momentum"),
    ("himmelblau", "adam", {"lr": 0.05, "beta2": 0.99}, "beta1"),
    ("himmelblau", "rmsprop", {"lr": 0.01}, "momentum"),
    ("double-well", "gd", {"lr": 0.02}, None),
]


@pytest.mark.parametrize(("landscape", "optimizer", "hyper", "second"), PHASES)
def test_each_phase_cell_equals_its_own_run(landscape, optimizer, hyper, second):
    state = _state(landscape, optimizer, 300, start=None, **hyper)
    m = phase_map(state, 12)
    rows = 12 if second else 1
    assert isinstance(m, PhaseMap) and m.second_name == second and m.shape == (rows, 12)
    assert m.backend == "kernel"
    expected = []
    for i in range(rows):
        for j in range(12):
            cell = {**hyper, "lr": float(m.lr[j])}
            if second:
                cell[second] = float(m.second[i])
            expected.append(_single(state, list(m.start), cell))
    assert _cells(m) == expected
    assert len(set(expected)) > 1


def test_the_axes_are_log_lr_by_the_rules_second_hyper_parameter():
    assert PHASE_AXES["momentum"] == PHASE_AXES["nesterov"] == "momentum"
    assert PHASE_AXES["adam"] == PHASE_AXES["adamw"] == PHASE_AXES["amsgrad"] == "beta1"
    assert PHASE_AXES["langevin"] == "temperature" and PHASE_AXES["gd"] is None
    m = phase_map(_state(lr=0.02, momentum=0.9), 10)
    ratios = m.lr[1:] / m.lr[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 1
    low, high = 10 ** LR_LOG_RANGE[0], 10 ** LR_LOG_RANGE[1]
    assert low <= m.lr[0] <= 0.02 / 2 and 2 * 0.02 <= m.lr[-1] <= high
    assert m.second[0] == 0.0 and m.second[-1] == 0.999 and np.allclose(np.diff(m.second), 0.999 / 9)
    # the lr axis reaches past the largest edge it draws, so the diverged side shows
    assert m.lr[-1] >= 1.25 * max(float(e.lr.max()) for e in m.edges)
    langevin = phase_map(_state(optimizer="langevin", lr=0.01, temperature=0.2), 6)
    assert langevin.second_name == "temperature" and np.allclose(langevin.second, np.linspace(0, 0.4, 6))


def test_every_langevin_cell_is_the_balls_own_noisy_run():
    """The map shares the ball's random stream among its cells (common random numbers): each noisy
    cell, every temperature, is exactly the run the ball makes with that cell's settings."""
    state = _state(optimizer="langevin", steps=300, lr=0.02, temperature=0.3)
    m = phase_map(state, 8)
    assert m.spec.streams == "shared" and m.backend == "kernel" and m.second[0] == 0.0
    expected = [
        _single(state, list(m.start), {"lr": float(m.lr[j]), "temperature": float(m.second[i])})
        for i in range(8)
        for j in range(8)
    ]
    assert _cells(m) == expected
    assert len(set(expected)) > 1
    basins = basin_map(state, 8)
    starts = [[float(basins.x[j]), float(basins.y[i])] for i in range(8) for j in range(8)]
    assert _cells(basins) == [_single(state, start, {"lr": 0.02, "temperature": 0.3}) for start in starts]


def test_a_map_replays_from_its_spec():
    m = phase_map(_state(lr=0.02, momentum=0.9), 10)
    again = run_spec(RunSpec.from_json(m.spec.to_json()))
    assert again.outcomes == [m.labels[k] for k in m.outcome.ravel()]
    assert np.array_equal(again.outcome_step.numpy(), m.settle.ravel())
    assert m.spec.save == "summary" and m.spec.backend == "auto"


# --- closed forms -------------------------------------------------------------------------------------
@pytest.mark.parametrize("tilt", [0.3, 1.0])
def test_double_well_basins_split_at_the_barrier(tilt):
    """U = (x^2 - 1)^2 - tilt x + y^2 is separable: with momentum 0 (GD) x moves by itself, under
    x -> x - lr U'(x), which is increasing in x for lr < 1/max U'' = 1/44 on the box, so it never
    crosses the barrier x_s (U'(x_s) = 0 between the minima): left of it ends in the left minimum,
    right of it in the right one."""
    roots = np.roots([4.0, 0.0, -4.0, -tilt])
    barrier = sorted(r.real for r in roots if abs(r.imag) < 1e-12)[1]
    m = basin_map(_state(steps=800, params={"tilt": tilt}, lr=0.02, momentum=0.0), 40)
    left = np.broadcast_to(m.x < barrier, m.shape)
    expected = np.where(left, m.labels.index("minimum:left"), m.labels.index("minimum:right"))
    assert np.array_equal(m.outcome, expected)
    assert left.any() and (~left).any() and (m.settle > 0).all()


@pytest.mark.parametrize(
    ("optimizer", "edge"),
    [
        ("momentum", lambda beta, lam: 2 * (1 + beta) / lam),
        ("gd", lambda beta, lam: 2 / lam + 0 * beta),
        ("nesterov", lambda beta, lam: 2 * (1 + beta) / ((1 + 2 * beta) * lam)),
    ],
)
def test_the_edge_on_a_quadratic_is_the_closed_form_and_beyond_it_diverges(optimizer, edge):
    lam = 10.0  # the quadratic's largest curvature (kappa 10, mu 1)
    hyper = {"lr": 0.05, **({"momentum": 0.5} if optimizer != "gd" else {})}
    m = phase_map(_state("quadratic", optimizer, 300, params={"kappa": 10.0}, **hyper), 24)
    (curve,) = m.edges
    assert curve.minimum == "origin" and math.isclose(curve.lambda_max, lam, rel_tol=1e-12)
    beta = m.second if m.second_name else np.zeros(1)
    assert np.allclose(curve.lr, edge(beta, lam), rtol=1e-12, atol=0)
    ratio = m.lr[None, :] / curve.lr[:, None]  # lr over the row's edge
    diverged = m.outcome == m.labels.index("diverged")
    assert diverged[ratio > 1.1].all() and ratio[ratio > 1.1].size > (10 if m.second_name else 2)
    assert not diverged[ratio < 0.9].any()
    assert m.edge_math == {"momentum": "2(1+beta)/lambda_max", "gd": "2/lambda_max"}.get(
        optimizer, m.edge_math
    )


def test_adaptive_rules_draw_no_edge():
    m = phase_map(_state("quadratic", "adam", 200, lr=0.05), 6)
    assert m.edges == () and m.edge_math == ""


def test_every_known_minimum_has_its_edge():
    m = phase_map(_state(lr=0.02, momentum=0.9), 6)
    assert sorted(e.minimum for e in m.edges) == ["left", "right"]
    for curve in m.edges:
        assert curve.lr.shape == (6,) and np.all(np.diff(curve.lr) > 0)  # 2(1+beta)/lambda grows


# --- a click ------------------------------------------------------------------------------------------
def _ball_run(state: dict) -> tuple[str, int]:
    spec = state_specs(state, [0.0, 0.0])[0].with_(save="summary", probes=[])
    run = run_spec(spec)
    return run.outcomes[0], int(run.outcome_step[0])


def test_a_basin_click_drops_the_ball_at_the_cells_start():
    state = _state(steps=400, lr=0.02, momentum=0.9)
    m = basin_map(state, 10)
    clicked = cell_to_state(m, 3, 7, state)
    assert clicked["start"] == [float(m.x[7]), float(m.y[3])]
    assert clicked["racers"] == state["racers"] and normalize(clicked) == clicked
    assert _ball_run(clicked) == (m.label(3, 7), int(m.settle[3, 7]))


def test_a_phase_click_sets_the_sliders():
    state = _state(steps=400, start=[-1.2, 0.4], lr=0.02, momentum=0.9)
    state["racers"].append({"optimizer": "gd", "hyper": {"lr": 0.01}})
    m = phase_map(state, 10)
    clicked = cell_to_state(m, 6, 2, state)
    hyper = clicked["racers"][0]["hyper"]  # the cell's setting as its tooltip writes it (%{x:.4g})
    assert hyper == {"lr": float(f"{m.lr[2]:.4g}"), "momentum": float(f"{m.second[6]:.4g}")}
    assert len(repr(hyper["lr"])) <= 8 and len(repr(hyper["momentum"])) <= 8  # a box shows it whole
    assert hyper["lr"] == pytest.approx(float(m.lr[2]), rel=5e-4)
    assert clicked["racers"][1] == state["racers"][1] and clicked["start"] == [-1.2, 0.4]
    assert _ball_run(clicked) == (m.label(6, 2), int(m.settle[6, 2]))


def test_a_click_on_a_map_made_before_the_page_changed_means_what_it_shows():
    state = _state(steps=400, lr=0.02, momentum=0.9)
    m = phase_map(state, 6)
    moved = {**state, "start": [1.5, 1.0], "steps": 900}
    clicked = cell_to_state(m, 1, 4, moved)
    assert clicked["start"] is None and clicked["steps"] == 400
    assert _ball_run(clicked) == (m.label(1, 4), int(m.settle[1, 4]))


@pytest.mark.parametrize(("i", "j", "name"), [(10, 0, "cell row i"), (0, -1, "cell column j"), (0.5, 0, "i")])
def test_a_click_outside_the_map_is_one_line(i, j, name):
    state = _state(lr=0.02, momentum=0.9)
    m = basin_map(state, 10, steps=10)
    with pytest.raises(DescentError) as error:
        cell_to_state(m, i, j, state)
    assert "\n" not in str(error.value) and name in str(error.value)


# --- sizes --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [MAX_N + 1, 1, 0, -5, 2.5, "big", None, True, 1e9])
@pytest.mark.parametrize("make", [basin_map, phase_map])
def test_a_bad_n_is_one_line_naming_it(make, n):
    with pytest.raises(DescentError) as error:
        make(_state(lr=0.02, momentum=0.9), n)
    message = str(error.value)
    assert message.startswith("invalid n=") and "\n" not in message and str(MAX_N) in message


@pytest.mark.parametrize("make", [basin_map, phase_map])
def test_too_much_work_is_refused_before_anything_runs(make, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("built or ran before the size check")

    monkeypatch.setattr(maps, "get_landscape", forbidden)
    monkeypatch.setattr(maps, "run_spec", forbidden)
    state = _state(steps=10_000, lr=0.02, momentum=0.9)
    assert 200 * 200 * 10_000 > MAX_WORK
    with pytest.raises(DescentError) as error:
        make(state, 200)
    message = str(error.value)
    assert message.startswith("invalid steps=10000") and "\n" not in message and f"{MAX_WORK:,}" in message
    with pytest.raises(DescentError, match=r"^invalid n=401"):
        make(state, 401)


def test_a_gd_strip_counts_one_row_of_work():
    state = _state(optimizer="gd", steps=10_000, lr=0.02)
    assert phase_map(state, 400, steps=50).shape == (1, 400)
    with pytest.raises(DescentError, match="^invalid steps="):
        basin_map(state, 400, steps=1000)


def test_a_run_the_kernel_does_not_take_has_a_smaller_budget():
    state = _state("logistic-risk", "gd", 10_000, lr=0.5)  # data: the torch loop
    with pytest.raises(DescentError) as error:
        basin_map(state, 25)
    message = str(error.value)
    assert message.startswith("invalid steps=10000") and "\n" not in message
    assert "torch" in message and "objectives with data" in message
    with pytest.raises(DescentError, match=r"^invalid n=100: .* examples\)$"):
        basin_map(state, 100, steps=10)
    small = basin_map(state, 6, steps=50)
    assert small.backend == "torch" and small.fallback and small.shape == (6, 6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr_range": [0.1]}, "lr_range"),
        ({"lr_range": [0.0, 0.1]}, "lr_range"),
        ({"lr_range": [0.2, 0.1]}, "lr_range"),
        ({"second_range": [0.0, 1.0]}, "momentum"),
        ({"second": "beta1"}, "second"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_axes_are_one_line_naming_them(kwargs, name):
    with pytest.raises(DescentError) as error:
        phase_map(_state(lr=0.02, momentum=0.9), 8, **kwargs)
    assert "\n" not in str(error.value) and name in str(error.value)


def test_a_chosen_second_axis_and_ranges():
    m = phase_map(
        _state("double-well", "adam", 100, lr=0.05),
        5,
        second="beta2",
        lr_range=[0.01, 0.1],
        second_range=[0.5, 0.9],
    )
    assert m.second_name == "beta2" and np.allclose(m.second, np.linspace(0.5, 0.9, 5))
    assert np.isclose(m.lr[0], 0.01) and np.isclose(m.lr[-1], 0.1)
    assert m.spec.hyper["beta2"][:6] == [0.5] * 5 + [0.6]
