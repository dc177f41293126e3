"""The simulation loop: divergence, stops and the labels that follow from them, saving, physics readout."""

import math

import pytest
import torch

from descent import Optimizer, get_landscape, simulate
from descent.dynamics import Events, SaveAt

torch.set_num_threads(1)


def test_divergence_is_an_outcome_not_a_crash():
    land = get_landscape("quadratic", kappa=10.0)  # L = 10: GD diverges for lr > 0.2
    lrs = torch.tensor([0.1, 0.25, 5.0], dtype=torch.float64)
    traj = simulate(land, Optimizer.build("gd", lr=lrs), land.start().expand(3, -1), 2000)
    assert traj.outcomes[0] == "minimum:origin"
    assert traj.outcomes[1:] == ["diverged", "diverged"]
    assert torch.isfinite(traj.positions).all()  # frozen at the last finite position
    assert 0 < int(traj.stop_step[2]) < int(traj.stop_step[1])  # the bigger step blows up sooner
    assert int(traj.outcome_step[1]) == int(traj.stop_step[1]) == int(traj.events["diverged"][1])


def test_gd_is_stable_just_below_the_edge_and_diverges_just_above():
    land = get_landscape("quadratic", kappa=4.0)
    edge = 2 / 4.0
    lrs = torch.tensor([0.99 * edge, 1.01 * edge], dtype=torch.float64)
    traj = simulate(
        land, Optimizer.build("gd", lr=lrs), land.start().expand(2, -1), 20000, save=SaveAt.summary()
    )
    assert traj.outcomes == ["minimum:origin", "diverged"]


def test_a_particle_stopped_as_converged_is_labelled_with_the_same_threshold():
    """The old engine stopped at step 29 with grad_tol 0.05 and called the ball 'moving'."""
    land = get_landscape("quadratic")
    traj = simulate(
        land,
        Optimizer.build("gd", lr=0.1),
        land.start(),
        2000,
        events=Events(grad_tol=0.05, stop_on=("converged",)),
    )
    assert traj.steps_run == int(traj.stop_step[0]) == int(traj.events["converged"][0])
    assert traj.outcomes == ["minimum:origin"]
    assert int(traj.outcome_step[0]) == traj.steps_run
    g = land.gradient(traj.final_position)
    assert float(g.norm()) < 0.05 and float(traj.final_update.norm()) < 0.05


def test_converged_and_target_freeze_only_when_listed_in_stop_on():
    land = get_landscape("quadratic", kappa=10.0)
    opt = Optimizer.build("gd", lr=torch.tensor([0.01, 0.1], dtype=torch.float64))
    starts = land.start().expand(2, -1)
    watched = simulate(land, opt, starts, 3000, events=Events(grad_tol=1e-6, target_loss=1e-3))
    assert watched.steps_run == 3000 and (watched.stop_step == -1).all()
    assert (watched.events["converged"] > 0).all() and (watched.events["target"] > 0).all()
    stopped = simulate(land, opt, starts, 100_000, events=Events(grad_tol=1e-6, stop_on=("converged",)))
    assert stopped.stop_step.tolist() == stopped.events["converged"].tolist()
    assert stopped.stop_step.tolist() == watched.events["converged"].tolist()
    fast, slow = stopped.stop_step.tolist()[::-1]
    assert 0 < fast < slow == stopped.steps_run < 100_000
    target = simulate(land, opt, starts, 100_000, events=Events(target_loss=1e-3, stop_on=("target",)))
    assert (target.final_loss <= 1e-3).all() and (target.final_loss > 1e-3 * 0.5).all()
    assert target.stop_step.tolist() == watched.events["target"].tolist()
    assert set(target.outcomes) == {"target"}  # stopped, but not converged: never "moving"


def test_leaving_the_box_of_an_unbounded_landscape_is_an_escape():
    land = get_landscape("saddle")
    traj = simulate(land, Optimizer.build("gd", lr=0.05), land.start(), 5000)
    assert traj.outcomes == ["escaped"]
    assert int(traj.stop_step[0]) == int(traj.events["left_box"][0]) == int(traj.outcome_step[0]) > 0
    assert not bool(land.inside(traj.final_position)[0])


def test_near_events_record_the_first_visit_of_each_known_point():
    land = get_landscape("double-well")
    traj = simulate(
        land, Optimizer.build("momentum", lr=0.02, momentum=0.9), land.start(), 400, events=Events(near=True)
    )
    first = {name: int(v[0]) for name, v in traj.events.items() if name.startswith("near:")}
    assert first["near:right"] > first["near:barrier"] > 0  # it crossed the barrier to reach the right well
    radius = land.radius()
    k = first["near:right"]
    assert float((traj.positions[k, 0] - torch.tensor(land.point("right").position)).norm()) < radius
    assert float((traj.positions[k - 1, 0] - torch.tensor(land.point("right").position)).norm()) >= radius


def test_saving_every_k_steps_keeps_the_last_step_and_summary_keeps_start_and_end():
    land = get_landscape("double-well")
    traj = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 105, save=SaveAt(every=10))
    assert traj.steps.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 105]
    traj = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 105, save=SaveAt(steps=(3, 50)))
    assert traj.steps.tolist() == [0, 3, 50, 105]
    full = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 105)
    summary = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 105, save=SaveAt.summary())
    assert summary.steps.tolist() == [0, 105]
    assert torch.equal(summary.final_position, full.positions[-1])
    assert torch.equal(summary.min_loss, full.loss.min(dim=0).values)


def test_same_seed_same_noisy_trajectory_other_seed_other_one():
    land = get_landscape("double-well")
    opt = Optimizer.build("langevin", lr=0.01, temperature=0.3)
    starts = land.start().expand(20, -1)
    a = simulate(land, opt, starts, 200, seed=7)
    b = simulate(land, opt, starts, 200, seed=7)
    c = simulate(land, opt, starts, 200, seed=8)
    assert torch.equal(a.positions, b.positions)
    assert not torch.equal(a.positions, c.positions)


def test_an_interrupted_run_keeps_what_it_finished():
    land = get_landscape("double-well")

    def interrupt(k, total):
        if k == 120:
            raise KeyboardInterrupt

    traj = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 1000, progress=interrupt)
    assert traj.interrupted and traj.steps_run == 120 and int(traj.steps[-1]) == 120
    full = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 120)
    assert torch.equal(traj.final_position, full.final_position)


def test_the_trajectory_says_which_backend_ran_and_why_auto_fell_back():
    from descent.dynamics.probes import Probe

    class Height(Probe):  # a custom probe: only the torch loop runs user code at each step
        name = "height"

        def __call__(self, view):
            return {"height": view.x[:, 1]}

    land = get_landscape("double-well")
    opt = Optimizer.build("momentum", lr=0.02, momentum=0.9)
    plain = simulate(land, opt, land.start(), 50)  # simulate's own default stays torch
    assert (plain.backend, plain.fallback) == ("torch", None)
    auto = simulate(land, opt, land.start(), 50, backend="auto")
    assert (auto.backend, auto.fallback) == ("kernel", None)
    fell = simulate(land, opt, land.start(), 50, probes=[Height()], backend="auto")
    assert (
        fell.backend == "torch"
        and fell.fallback.startswith("no kernel supports")
        and "probe" in fell.fallback
    )
    assert fell.summary()["fallback"] == fell.fallback and "\n" not in fell.fallback
    assert torch.equal(fell.positions, plain.positions) and "height" in fell.probes


def test_gd_velocity_is_the_gradient_flow_velocity():
    """GD is Euler on x' = -grad U: the saved velocity u/lr equals -grad U at the previous point."""
    land = get_landscape("double-well")
    traj = simulate(land, Optimizer.build("gd", lr=0.01), land.start().expand(2, -1).clone(), 50)
    torch.testing.assert_close(
        traj.velocity[1:], -land.gradient(traj.positions[:-1].reshape(-1, 2)).reshape(50, 2, 2)
    )
    assert traj.kinetic_energy is None


def test_heavy_ball_energy_decays_at_the_friction_rate():
    """x'' + gamma x' = -x: total energy E = v^2/2 + U decays like exp(-gamma t) over many periods."""
    land = get_landscape("quadratic", kappa=1.0)
    h, gamma = 0.01, 0.1
    opt = Optimizer.build("momentum", lr=h * h, momentum=1 - gamma * h)
    t_end = 60.0
    traj = simulate(land, opt, land.start(), int(t_end / h))
    energy = traj.total_energy[:, 0]
    rate = -math.log(float(energy[-1] / energy[1])) / t_end
    assert rate == pytest.approx(gamma, rel=0.03)
    assert float((energy[1:] - energy[:-1]).max()) < 1e-6


@pytest.mark.parametrize(
    "call, message",
    [
        (dict(steps=-1), "invalid steps=-1"),
        (dict(starts=torch.zeros(2, 3, dtype=torch.float64)), r"invalid starts=\(2, 3\)"),
        (dict(events=dict(grad_tol=-1.0)), "invalid grad_tol=-1.0"),
        (dict(events=dict(stop_on=("moving",))), "invalid stop_on='moving'"),
        (dict(events=dict(stop_on=("target",))), "invalid stop_on='target'"),
        (dict(save=dict(every=0)), "invalid save.every=0"),
    ],
)
def test_bad_arguments_fail_before_any_step_with_a_clear_message(call, message):
    land = get_landscape("double-well")
    kwargs = {"steps": 10, "starts": land.start()}
    kwargs.update(call)
    if isinstance(kwargs.get("events"), dict):
        with pytest.raises(ValueError, match=message):
            Events(**kwargs["events"])
        return
    if isinstance(kwargs.get("save"), dict):
        with pytest.raises(ValueError, match=message):
            SaveAt(**kwargs["save"])
        return
    with pytest.raises(ValueError, match=message):
        simulate(land, Optimizer.build("gd", lr=0.01), kwargs["starts"], kwargs["steps"])
