"""`simulate` equals the readable reference loop bit for bit in float64 (in the spirit of torch's
``test_foreach_matches_forloop``): every rule on four objectives, with Langevin noise, gradient noise,
mini-batches of several sizes and modes, per-particle hyper-parameters, and particles stopping and
diverging mid-run. 16 particles x 300 steps per case at most."""

import pytest
import torch

from descent.dynamics import Batching, Events, simulate
from descent.dynamics.reference import reference_run
from descent.landscapes import get_landscape
from descent.objectives import logistic_risk
from descent.optim import RULES, Optimizer

torch.set_num_threads(1)
N, STEPS = 16, 300
OBJECTIVES = ("double-well", "rosenbrock", "saddle", "logistic-risk")
MODES = ["replacement", "without", "epoch", "replacement"] * 4
SIZES = [1, 4, 4, 16, 32, 100, 569, 8] * 2  # 569 and more: the full data


def objective(name):
    return logistic_risk() if name == "logistic-risk" else get_landscape(name)


def learning_rates(land, rule):
    """16 learning rates from well below the landscape's default to far above it: the top ones
    diverge mid-run on the bounded landscapes."""
    base = land.default_lr if RULES[rule].physics != "adaptive" else 0.0125 * land.span
    return base * torch.logspace(-1, 1.7, N, dtype=torch.float64)


def assert_same(traj, ref):
    """Every saved frame, loss, stop, event and outcome equal; the run ends when every particle has
    stopped, and the reference's particles stay where they stopped."""
    positions = torch.tensor([r.path for r in ref], dtype=torch.float64).transpose(0, 1)
    losses = torch.tensor([r.loss for r in ref], dtype=torch.float64).T
    t = len(traj.steps)
    assert traj.steps.tolist() == list(range(t))
    assert torch.equal(traj.positions, positions[:t])
    assert torch.equal(traj.loss, losses[:t])
    assert torch.equal(positions[t:], positions[t - 1 : t].expand_as(positions[t:]))
    assert traj.stop_step.tolist() == [r.stop_step for r in ref]
    assert traj.outcomes == [r.outcome for r in ref]
    assert traj.outcome_step.tolist() == [r.outcome_step for r in ref]
    for name, steps in traj.events.items():
        assert steps.tolist() == [r.events[name] for r in ref], name
    assert traj.min_loss.tolist() == [r.min_loss for r in ref]


def run_both(land, optimizer, starts, events, batch_size=None, batch_mode="replacement", seed=11):
    batching = None
    if batch_size is not None:
        batching = Batching.build(batch_size, batch_mode, starts.shape[0], land.data_size)
    traj = simulate(land, optimizer, starts, STEPS, events=events, seed=seed, batching=batching)
    ref = reference_run(
        land, optimizer, starts, STEPS, events=events, seed=seed, batch_size=batch_size, batch_mode=batch_mode
    )
    return traj, ref


@pytest.mark.parametrize("name", OBJECTIVES)
@pytest.mark.parametrize("rule", list(RULES))
def test_simulate_equals_the_reference_loop_bit_for_bit(rule, name):
    land = objective(name)
    starts = land.random_starts(N, torch.Generator().manual_seed(3))
    hyper = {"lr": learning_rates(land, rule)}
    if rule in ("momentum", "nesterov"):
        hyper["momentum"] = torch.linspace(0.0, 0.95, N, dtype=torch.float64)
    if rule == "langevin":
        hyper["temperature"] = torch.linspace(0.01, 0.3, N, dtype=torch.float64)
    if rule == "rmsprop":
        hyper.update(momentum=0.5, centered=1)
    noise = torch.linspace(0.0, 0.5, N, dtype=torch.float64) if rule in ("gd", "momentum", "adam") else 0.0
    optimizer = Optimizer.build(
        rule, grad_noise=noise, clip_norm=50.0 if rule == "nesterov" else None, **hyper
    )
    events = Events(grad_tol=0.02, stop_on=("converged",))
    traj, ref = run_both(land, optimizer, starts, events)
    assert_same(traj, ref)
    # the cases cover particles stopping (converged, left the box) and diverging mid-run
    stopped = [0 < r.stop_step < STEPS and r.outcome != "diverged" for r in ref]
    diverged = [0 < r.stop_step < STEPS and r.outcome == "diverged" for r in ref]
    if name in ("double-well", "saddle"):
        assert any(stopped)
    if name == "rosenbrock" and rule in ("gd", "momentum", "langevin"):
        assert any(diverged)


@pytest.mark.parametrize("rule", ["gd", "momentum", "adam"])
def test_mini_batches_of_every_size_and_mode_match_the_reference(rule):
    land = logistic_risk()
    starts = land.random_starts(N, torch.Generator().manual_seed(5))
    hyper = {"lr": torch.linspace(0.2, 3.0, N, dtype=torch.float64)}
    if rule == "adam":
        hyper["lr"] = hyper["lr"] / 10
    optimizer = Optimizer.build(rule, **hyper)
    events = Events(grad_tol=0.05, target_loss=0.3, stop_on=("target",))
    traj, ref = run_both(land, optimizer, starts, events, batch_size=SIZES, batch_mode=MODES)
    assert_same(traj, ref)
    assert any(0 < r.stop_step < STEPS for r in ref)  # some reach the target loss and stop


def test_a_particles_run_does_not_depend_on_its_batch_mates():
    """Mini-batches and noise are keyed by the particle's id: a particle run with others equals the same
    particle run alone with the same id (here: the reference, which runs one particle at a time)."""
    land = logistic_risk()
    starts = land.random_starts(4, torch.Generator().manual_seed(1))
    optimizer = Optimizer.build("langevin", lr=1.0, temperature=0.01)
    traj, ref = run_both(land, optimizer, starts, Events(), batch_size=[8, 8, 64, 64], batch_mode="epoch")
    assert_same(traj, ref)


def test_shared_streams_give_every_particle_particle_zeros_draws():
    """``streams="shared"`` (common random numbers): every particle draws particle 0's noise and
    mini-batches, in the engine and in the reference loop alike."""
    land = logistic_risk()
    starts = land.random_starts(4, torch.Generator().manual_seed(1))
    optimizer = Optimizer.build("langevin", lr=1.0, temperature=0.01)
    batching = Batching.build(8, "epoch", 4, land.data_size)
    traj = simulate(land, optimizer, starts, STEPS, seed=11, batching=batching, streams="shared")
    ref = reference_run(
        land, optimizer, starts, STEPS, seed=11, batch_size=8, batch_mode="epoch", streams="shared"
    )
    assert_same(traj, ref)
    alone = simulate(
        land, optimizer, starts[2:3], STEPS, seed=11, batching=Batching.build(8, "epoch", 1, land.data_size)
    )
    assert torch.equal(alone.positions[:, 0], traj.positions[:, 2])
