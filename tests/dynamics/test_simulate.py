"""The simulation loop: batched == per-particle reference, divergence, stops, recording, physics."""

import json
import math

import pytest
import torch

from descent import Optimizer, RunSpec, get_landscape, run_spec, simulate
from descent.dynamics import SCHEMA

torch.set_num_threads(1)


def reference_momentum(landscape, start, lr, beta, steps):
    """Readable per-particle loop of the seeds' rule: v <- beta*v - lr*g; w <- w + v."""
    w = start.clone()
    v = torch.zeros_like(w)
    path = [w.clone()]
    for _ in range(steps):
        g = landscape.gradient(w.unsqueeze(0))[0]
        v = beta * v - lr * g
        w = w + v
        path.append(w.clone())
    return torch.stack(path)


def test_batched_run_with_per_particle_hyperparameters_equals_the_per_particle_reference():
    land = get_landscape("double-well")
    lrs = torch.tensor([0.005, 0.02, 0.04], dtype=torch.float64)
    betas = torch.tensor([0.0, 0.5, 0.9], dtype=torch.float64)
    starts = torch.tensor([[-1.7, 0.3], [0.5, -1.0], [1.9, 1.2]], dtype=torch.float64)
    traj = simulate(land, Optimizer.build("momentum", lr=lrs, momentum=betas), starts, 300)
    for i in range(3):
        expected = reference_momentum(land, starts[i], float(lrs[i]), float(betas[i]), 300)
        torch.testing.assert_close(traj.positions[:, i], expected, rtol=1e-13, atol=1e-13)


def test_divergence_is_an_outcome_not_a_crash():
    land = get_landscape("quadratic", kappa=10.0)  # L = 10: GD diverges for lr > 0.2
    lrs = torch.tensor([0.1, 0.25, 5.0], dtype=torch.float64)
    traj = simulate(land, Optimizer.build("gd", lr=lrs), land.start().expand(3, -1), 2000)
    assert traj.outcomes[0] == "minimum:origin"
    assert traj.outcomes[1:] == ["diverged", "diverged"]
    assert torch.isfinite(traj.positions).all()  # frozen at the last finite position
    assert 0 < int(traj.stop_step[2]) < int(traj.stop_step[1])  # the bigger step blows up sooner
    assert int(traj.outcome_step[1]) == int(traj.stop_step[1])


def test_gd_is_stable_just_below_the_edge_and_diverges_just_above():
    land = get_landscape("quadratic", kappa=4.0)
    edge = 2 / 4.0
    traj = simulate(
        land,
        Optimizer.build("gd", lr=torch.tensor([0.99 * edge, 1.01 * edge])),
        land.start().expand(2, -1),
        20000,
    )
    assert traj.outcomes == ["minimum:origin", "diverged"]


def test_stop_conditions_freeze_each_particle_and_end_the_run():
    land = get_landscape("quadratic", kappa=10.0)
    opt = Optimizer.build("gd", lr=torch.tensor([0.01, 0.1], dtype=torch.float64))
    traj = simulate(land, opt, land.start().expand(2, -1), 100_000, grad_tol=1e-6)
    fast, slow = int(traj.stop_step[1]), int(traj.stop_step[0])
    assert 0 < fast < slow == traj.steps_run < 100_000
    grad = land.gradient(traj.final_position)
    assert (grad.norm(dim=1) < 1e-6).all()
    traj = simulate(land, opt, land.start().expand(2, -1), 100_000, target_loss=1e-3)
    assert (traj.final_loss <= 1e-3).all() and (traj.final_loss > 1e-3 * 0.5).all()


def test_recording_every_k_steps_keeps_the_last_step():
    land = get_landscape("double-well")
    traj = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 105, record_every=10)
    assert traj.steps.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 105]
    traj = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 105, record_every=0)
    assert traj.steps.tolist() == [0, 105]


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
        if k == 123:
            raise KeyboardInterrupt

    traj = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 1000, progress=interrupt)
    assert traj.interrupted and traj.steps_run == 123 and int(traj.steps[-1]) == 123
    full = simulate(land, Optimizer.build("gd", lr=0.02), land.start(), 123)
    torch.testing.assert_close(traj.final_position, full.final_position)


def test_gd_velocity_is_the_gradient_flow_velocity():
    """GD is Euler on x' = -grad U: the recorded velocity u/lr equals -grad U at the previous point."""
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
    # never gains energy by more than the discretisation allows
    assert float((energy[1:] - energy[:-1]).max()) < 1e-6


def test_spec_round_trips_through_json_and_reproduces_the_run(tmp_path):
    spec = RunSpec(
        landscape="double-well",
        optimizer="adam",
        hyper={"lr": 0.05},
        starts="random:5",
        steps=300,
        seed=3,
        schedule={"kind": "cosine", "total": 300, "final": 0.1},
        clip_norm=2.0,
    )
    traj = run_spec(spec)
    path = traj.write_json(tmp_path / "trajectory.json")
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA
    again = run_spec(RunSpec.from_dict(data["spec"]))
    assert torch.equal(again.positions, traj.positions)
    assert len(data["particles"]) == 5 and data["particles"][0]["outcome"] == traj.outcomes[0]
    assert len(data["positions"]) == len(data["steps"]) == 301
    csv_path = traj.write_csv(tmp_path / "trajectory.csv")
    assert len(csv_path.read_text().strip().splitlines()) == 1 + 301 * 5


def test_large_swarms_are_decimated_in_json_but_keep_every_outcome(tmp_path):
    traj = run_spec(RunSpec(starts="random:2000", steps=50, optimizer="gd"))
    data = traj.to_dict(max_particles=100, max_frames=10)
    assert len(data["particles"]) == 2000
    assert len(data["positions"]) == 10 and len(data["positions"][0]) == 100
    assert data["steps"][0] == 0 and data["steps"][-1] == 50


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"steps": -1}, "invalid steps=-1"),
        ({"dtype": "float16"}, "invalid dtype='float16'"),
        ({"starts": "random:x"}, "invalid starts='random:x'"),
        ({"starts": [[0.0, float("nan")]]}, "invalid starts="),
        ({"hyper": {"lr": [0.1, 0.2], "momentum": [0.1, 0.2, 0.3]}}, "invalid hyper="),
        ({"optimizer": "sgdd"}, "invalid optimizer='sgdd'"),
        (
            {"hyper": {"momentum": 1.0}},
            r"invalid momentum.momentum=1.0: expected a finite number in \[0.0, 1.0\)",
        ),
    ],
)
def test_bad_specs_fail_before_any_step_with_a_clear_message(bad, message):
    with pytest.raises(ValueError, match=message):
        run_spec(RunSpec(**bad))
