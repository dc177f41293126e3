"""Invariants of the engine, checked on random inputs with Hypothesis."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from descent import Optimizer, get_landscape, simulate
from descent.dynamics import outcome_labels
from descent.optim import RULES

torch.set_num_threads(1)
DETERMINISTIC = [name for name in RULES if name != "langevin"]
coordinate = st.floats(-1.8, 1.8, allow_nan=False)
point = st.tuples(coordinate, st.floats(-1.4, 1.4, allow_nan=False))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=st.sampled_from(DETERMINISTIC),
    lr=st.floats(1e-3, 0.05),
    points=st.lists(point, min_size=2, max_size=4),
)
def test_particles_do_not_interact_a_batch_equals_separate_runs(rule, lr, points):
    land = get_landscape("double-well")
    opt = Optimizer.build(rule, lr=lr)
    starts = torch.tensor(points, dtype=torch.float64)
    batch = simulate(land, opt, starts, 60)
    for i in range(len(points)):
        alone = simulate(land, opt, starts[i : i + 1], 60)
        torch.testing.assert_close(batch.positions[:, i], alone.positions[:, 0], rtol=1e-12, atol=1e-12)
        assert batch.outcomes[i] == alone.outcomes[0]


@settings(max_examples=30, deadline=None)
@given(kappa=st.floats(1.0, 100.0), angle=st.floats(0, 3.2), fraction=st.floats(0.01, 1.0), start=point)
def test_gd_never_increases_the_loss_below_lr_one_over_l(kappa, angle, fraction, start):
    """Descent lemma: for lr <= 1/L, U(w - lr g) <= U(w) - lr |g|^2 / 2."""
    land = get_landscape("quadratic", kappa=kappa, angle=angle)
    traj = simulate(
        land, Optimizer.build("gd", lr=fraction / kappa), torch.tensor([start], dtype=torch.float64), 200
    )
    loss = traj.loss[:, 0]
    assert bool((loss[1:] <= loss[:-1] + 1e-15).all())


@settings(max_examples=30, deadline=None)
@given(rule=st.sampled_from(list(RULES)), lr=st.floats(1e-4, 10.0), seed=st.integers(0, 2**31 - 1))
def test_every_particle_ends_with_a_known_outcome_and_finite_recorded_positions(rule, lr, seed):
    land = get_landscape("double-well")
    starts = land.random_starts(8, torch.Generator().manual_seed(seed))
    traj = simulate(land, Optimizer.build(rule, lr=lr), starts, 100, seed=seed)
    labels = set(outcome_labels(land))
    assert set(traj.outcomes) <= labels
    assert bool(torch.isfinite(traj.positions).all())
    moving = torch.tensor([o == "moving" for o in traj.outcomes])
    assert bool(((traj.outcome_step >= 0) & (traj.outcome_step <= traj.steps_run) | moving).all())
    assert bool((traj.outcome_step[moving] == -1).all())
