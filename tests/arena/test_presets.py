"""The presets replay the seeds' experiments through `run_spec` with the outcomes the seeds describe;
the readouts (Hessian, edges, decomposition, Boltzmann) agree with the engine and with theory."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from descent.arena import readout
from descent.arena.runner import get_landscape, run_state
from descent.arena.state import PRESETS, default_state, normalize, state_specs
from descent.arena.views import _edge_note, build_arrows, build_views
from descent.optim import RULES, Optimizer, stability_edge
from descent.spec import RunSpec, run_spec

torch.set_num_threads(1)


def _run(name: str):
    return run_state(normalize(PRESETS[name][0]))


def test_double_well_presets():
    stuck, escape = _run("Double Well: stuck"), _run("Double Well: escape")
    assert stuck.trajectories[0].outcomes == ["minimum:left"]
    assert escape.trajectories[0].outcomes == ["minimum:right"]
    landscape = stuck.landscape
    text = readout.describe_outcome(landscape, "minimum:left", 50, 2000)
    assert text == "minimum:left (local) at step 50"


def test_plateau_presets_momentum_crosses_faster():
    crawl, fast = _run("Plateau: crawl"), _run("Plateau: momentum")
    assert crawl.trajectories[0].outcomes == fast.trajectories[0].outcomes == ["minimum:well"]
    slow_step, fast_step = (
        int(crawl.trajectories[0].outcome_step[0]),
        int(fast.trajectories[0].outcome_step[0]),
    )
    assert fast_step * 3 < slow_step


def test_saddle_and_too_large_a_step():
    saddle = _run("Saddle")
    gd, momentum = saddle.trajectories
    assert gd.outcomes == momentum.outcomes == ["escaped"]
    assert int(momentum.outcome_step[0]) < int(gd.outcome_step[0])
    big = _run("Too large a step")
    assert big.trajectories[0].outcomes == ["diverged"]
    views = build_views(big, "r1")
    edge = views.theory["edge"][0]
    assert views.theory["lr"] > edge  # the warning comes from the start, before divergence
    assert edge == pytest.approx(0.2, rel=1e-9)  # 2/lambda_max, lambda_max = kappa = 10


def test_arena_runs_are_run_spec_runs():
    state = normalize(default_state())
    run = run_state(state)
    ball = run.trajectories[0]
    spec = RunSpec(
        landscape="double-well", optimizer="momentum", hyper={"lr": 0.02, "momentum": 0.9}, steps=2000
    )
    # the Arena asks for "auto": on the backend that ran the ball, the same run bit for bit ...
    assert torch.equal(ball.positions, run_spec(spec.with_(backend=ball.backend)).positions)
    # ... and on the other one the same up to rounding (the page does not care which one ran)
    other = run_spec(spec.with_(backend="kernel" if ball.backend == "torch" else "torch"))
    torch.testing.assert_close(ball.positions, other.positions, rtol=0, atol=1e-9)
    assert ball.outcomes == other.outcomes and torch.equal(ball.outcome_step, other.outcome_step)


def test_theory_at_the_ball_matches_the_hessian():
    well = get_landscape("double-well")
    points = torch.tensor([[p.position[0], p.position[1]] for p in well.critical_points], dtype=torch.float64)
    eig = readout.hessian_eigenvalues(well, points)
    for (x, _), (low, high) in zip(points.tolist(), eig.tolist()):
        uxx = 12 * x**2 - 4
        assert sorted([uxx, 2.0]) == pytest.approx([low, high], rel=1e-9)
    nesterov = Optimizer.build("nesterov", lr=0.02, momentum=0.9)
    theory = readout.ball_theory(well, nesterov, points)
    assert theory["edge"][0] == pytest.approx(stability_edge("nesterov", theory["lamMax"][0], 0.9))
    assert theory["formula"] == "2(1+β)/((1+2β) λmax)" and theory["state"] is None
    assert theory["lamMin"][2] < 0  # the barrier is a saddle


@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_has_the_rules_own_edge(rule):
    """The edge is the rule's ``edge(H, state, hp)``: for adaptive rules on a fresh state (no probe
    records the running scale), which the page says."""
    well = get_landscape("double-well")
    points = well.start().expand(3, -1).clone()
    optimizer = Optimizer.build(rule, lr=0.05)
    theory = readout.ball_theory(well, optimizer, points)
    expected = RULES[rule].edge(well.hessian(points), RULES[rule].init(points), optimizer.hp)
    assert theory["edge"] == pytest.approx(expected.tolist(), rel=1e-12)
    assert all(e is not None and e > 0 for e in theory["edge"])
    adaptive = RULES[rule].physics == "adaptive"
    assert theory["state"] == ("fresh" if adaptive else None)
    note, level, marker = _edge_note(theory)
    if adaptive:
        assert "fresh" in note and level == "info" and marker == {"display": "none"}
    else:
        assert "stability edge" in note and marker["display"] == "block"


def _ball(rule: str, hyper: dict, steps: int = 300, **changes):
    """The ball's trajectory as the Arena runs it (its spec asks for the update_parts probe)."""
    state = default_state()
    state.update(steps=steps, racers=[{"optimizer": rule, "hyper": hyper}], **changes)
    (spec,) = state_specs(normalize(state), [-1.7, 0.0])
    return run_spec(spec)


@pytest.mark.parametrize(
    ("rule", "hyper"),
    [
        ("gd", {"lr": 0.02}),
        ("momentum", {"momentum": 0.9}),
        ("nesterov", {"momentum": 0.9}),
        ("adam", {"lr": 0.05}),
        ("rmsprop", {"lr": 0.01, "momentum": 0.5}),
    ],
)
def test_arrows_are_the_engines_probe(rule, hyper):
    traj = _ball(rule, hyper)
    parts = readout.update_parts(traj)
    x = traj.positions[:, 0]
    lr = float(traj.optimizer.hp["lr"])
    assert bool(parts["seen"].all())  # the probe saw every saved frame
    assert torch.isnan(parts["force"][0]).all() and not parts["update"][0].any()  # the start: no step
    # at frame k, the step k-1 -> k: from where it started, the force at that point
    assert torch.allclose(parts["update"][1:], x[1:] - x[:-1], atol=1e-12)
    assert torch.allclose(parts["origin"][1:], x[:-1], atol=1e-12)
    assert torch.allclose(parts["force"][1:], -lr * traj.landscape.gradient(x[:-1]), atol=1e-12)
    if rule == "momentum":  # the seeds' form: update = beta*v - lr*g, the coast is beta*v
        assert torch.allclose(parts["coast"][2:], 0.9 * (x[1:-1] - x[:-2]), atol=1e-12)
        assert torch.allclose(parts["update"][1:], parts["coast"][1:] + parts["force"][1:], atol=1e-12)
    if rule == "nesterov":
        assert torch.allclose(parts["lookahead"][1:], parts["origin"][1:] + parts["coast"][1:])
    if rule == "adam":
        ratio = parts["update"][1:] / parts["force"][1:]
        assert torch.allclose(parts["scale"][1:], ratio, equal_nan=True)
    kinds = readout.arrow_kinds(parts)
    assert kinds[0] == "force" and "update" in kinds
    assert ("coast" in kinds) == (rule != "gd") and ("lookahead" in kinds) == (rule == "nesterov")


def test_arrows_are_exact_when_not_every_step_is_saved():
    """5000 steps save every 2nd: the arrows at a saved frame are those of the run that saves all."""
    every_second = _ball("momentum", {"lr": 0.02, "momentum": 0.9}, steps=5000)
    assert every_second.spec["save"] == "every:2"
    parts = readout.update_parts(every_second)
    full = readout.update_parts(_ball("momentum", {"lr": 0.02, "momentum": 0.9}, steps=3000))
    steps = every_second.steps[every_second.steps <= 3000]
    assert len(steps) == 1501
    for name in ("force", "coast", "update", "origin"):
        assert torch.equal(parts[name][: len(steps)][1:], full[name][steps][1:]), name


def test_arrows_are_exact_with_gradient_noise():
    """With gradient noise a replay of the rule on the positions would be wrong; the probe is not."""
    spec = RunSpec(
        optimizer="momentum",
        hyper={"lr": 0.02, "momentum": 0.9},
        transforms=[{"kind": "grad_noise", "sigma": 2.0}],
        steps=200,
        probes=[{"name": "update_parts"}],
    )
    traj = run_spec(spec)
    parts = readout.update_parts(traj)
    x = traj.positions[:, 0]
    assert torch.allclose(parts["update"][1:], x[1:] - x[:-1], atol=1e-12)
    assert torch.allclose(parts["update"][1:], parts["coast"][1:] + parts["force"][1:], atol=1e-12)
    noiseless = -0.02 * traj.landscape.gradient(x[:-1])
    assert not torch.allclose(parts["force"][1:], noiseless, atol=1e-3)  # the noise is in the force


def test_temperature_and_boltzmann():
    assert readout.temperature("gd", {"lr": 0.1}, 2.0) == pytest.approx(0.2)
    assert readout.temperature("momentum", {"lr": 0.1, "momentum": 0.9}, 2.0) == pytest.approx(2.0)
    assert readout.temperature("langevin", {"lr": 0.1, "temperature": 0.3}, 0.0) == 0.3
    assert readout.temperature("adam", {"lr": 0.1}, 1.0) is None
    well = get_landscape("double-well")
    hot, cold = readout.boltzmann(well, 5.0), readout.boltzmann(well, 0.05)
    dx = hot["x"][1] - hot["x"][0]
    assert sum(hot["density"]) * dx == pytest.approx(1.0, rel=1e-6)
    assert cold["globalShare"] > 0.99 > hot["globalShare"] > 0.4
    assert readout.boltzmann(get_landscape("saddle"), 1.0) is None  # unbounded below: no density


def test_views_are_json_and_consistent():
    state = normalize(PRESETS["Saddle"][0])
    run = run_state(state)
    views = build_views(run, "abc")
    for figure in (views.map, views.surface, views.loss, views.energy, views.swarm, views.anim):
        json.dumps(figure)
    meta = views.map["layout"]["meta"]
    assert meta["run"] == "abc" and len(meta["ball"]) == len(meta["trail"]) == 2
    ball = views.map["data"][meta["ball"][1]]
    final = run.trajectories[1].positions[-1, 0].tolist()
    assert [ball["x"][0], ball["y"][0]] == final
    arrows = build_arrows(run, "abc")
    assert arrows["scale"] > 0 and {"origin", "force", "update"} <= set(arrows) and "coast" not in arrows
    assert "update_parts probe" in arrows["note"]
    names = [t["name"] for t in views.map["data"] if t.get("legendgroup") == "arrows"]
    assert names == ["−lr·∇U (force step)", "update taken"]  # the ball is plain GD: no inertia


def test_swarm_views():
    state = default_state()
    state["swarm"].update(on=True, n=80, noise="langevin", level=0.3)
    state["steps"] = 400
    views = build_views(run_state(normalize(state)), "s1")
    swarm = views.anim["swarm"]
    assert swarm["n"] == 80 and len(swarm["share"]) == len(swarm["steps"])
    assert 0 <= swarm["share"][-1] <= 1 and swarm["temperature"] == 0.3
    hist = views.swarm["data"]
    assert hist[0]["type"] == "histogram" and "Boltzmann" in hist[1]["name"]
    assert "80 balls after 400 steps" in str(views.outcome)
    assert math.isfinite(np.mean(swarm["share"]))


def test_the_seeds_plateau_by_hand():
    """Select Plateau (its own lr), momentum 0: a crawl that still arrives within the default budget;
    momentum 0.9: several times sooner."""
    from descent.arena.controls import reduce

    state = reduce(default_state(), "landscape-dropdown", "plateau")
    crawl = run_state(reduce(state, "momentum-input", 0)).trajectories[0]
    fast = run_state(reduce(state, "momentum-input", 0.9)).trajectories[0]
    assert crawl.outcomes == fast.outcomes == ["minimum:well"]
    assert 3 * int(fast.outcome_step[0]) < int(crawl.outcome_step[0]) < state["steps"]


def test_curvature_shape_condition_number_and_lr_ratio_come_from_the_hessian():
    """The theory panel's words read `ball_theory`'s shape, condition number and lr/edge: a bowl has
    κ = λmax/λmin, a flat direction or a negative curvature has none, and lr/edge is the rule's edge."""
    cases = {
        "quadratic": ([[1.0, 1.0]], "bowl"),
        "plateau": ([[0.0, 0.0]], "flat-bowl"),
        "double-well": ([[-0.1, 0.0]], "saddle"),
    }
    for name, (points, shape) in cases.items():
        landscape = get_landscape(name, {"kappa": 10.0} if name == "quadratic" else {})
        optimizer = Optimizer.build("gd", lr=0.05)
        theory = readout.ball_theory(landscape, optimizer, torch.tensor(points, dtype=torch.float64))
        assert theory["shape"] == [shape], (name, theory)
        low, high = theory["lamMin"][0], theory["lamMax"][0]
        if shape == "bowl":
            assert theory["kappa"][0] == pytest.approx(high / low, rel=1e-12) == pytest.approx(10.0)
        else:
            assert theory["kappa"] == [None]
        assert theory["lrRatio"][0] == pytest.approx(0.05 / theory["edge"][0], rel=1e-12)
        assert theory["edge"][0] == pytest.approx(stability_edge("gd", high), rel=1e-12)
    shape, _ = readout.curvature_shape(torch.tensor([-2.0, 0.0, -1.0]), torch.tensor([-1.0, 0.0, 0.0]))
    assert [readout.SHAPES[k] for k in shape.tolist()] == ["hilltop", "flat", "flat-ridge"]
