"""The engine on CUDA: the same trajectories and outcomes as on the CPU, seeded noise reproducible,
and at most one host synchronisation per step (the loop's early-exit check).

Runs only where ``torch.cuda.is_available()``; CI has no GPU, a lent device machine runs it.
"""

import warnings

import pytest
import torch

from descent import Optimizer, get_landscape, simulate
from descent.dynamics import Events, SaveAt

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CASES = [
    # (landscape, optimizer, hyper-parameters): float and per-particle tensor hypers, stalls and divergence
    ("double-well", "momentum", {"lr": 0.02, "momentum": 0.9}),
    ("double-well", "adam", {"lr": 0.05}),
    ("rosenbrock", "momentum", {"lr": 1e-3, "momentum": 0.9}),  # some of the swarm diverges
    ("rosenbrock", "adam", {"lr": 0.01}),
    ("saddle", "gd", {"lr": 0.05}),  # unbounded below: escapes
]


def swarm(land, n=257, seed=0):
    """Uniform starts over the box plus the awkward ones: a non-finite start and a far-away one."""
    starts = land.random_starts(n, torch.Generator().manual_seed(seed))
    odd = torch.tensor([[float("nan")] * land.dim, [1e6] * land.dim], dtype=torch.float64)
    return torch.cat([starts, odd])


def assert_same_run(cpu, gpu, atol=1e-10):
    assert gpu.device.startswith("cuda") and cpu.device == "cpu"
    assert gpu.steps_run == cpu.steps_run
    assert torch.equal(gpu.steps, cpu.steps)
    torch.testing.assert_close(gpu.positions, cpu.positions, rtol=0, atol=atol, equal_nan=True)
    torch.testing.assert_close(gpu.displacement, cpu.displacement, rtol=0, atol=atol, equal_nan=True)
    torch.testing.assert_close(gpu.loss, cpu.loss, rtol=1e-10, atol=atol, equal_nan=True)
    assert gpu.outcomes == cpu.outcomes
    assert torch.equal(gpu.outcome_step, cpu.outcome_step)
    assert torch.equal(gpu.stop_step, cpu.stop_step)
    assert gpu.nearest_minimum == cpu.nearest_minimum
    assert gpu.events.keys() == cpu.events.keys()
    for name in cpu.events:
        assert torch.equal(gpu.events[name], cpu.events[name]), name


@pytest.mark.parametrize("land_name, opt_name, hyper", CASES)
def test_cuda_trajectory_equals_cpu_in_float64(land_name, opt_name, hyper):
    land = get_landscape(land_name)
    opt = Optimizer.build(opt_name, **hyper)
    starts = swarm(land)
    cpu = simulate(land, opt, starts, 400, save=SaveAt(every=10))
    gpu = simulate(land, opt, starts.cuda(), 400, save=SaveAt(every=10))
    assert_same_run(cpu, gpu)
    assert len(set(cpu.outcomes)) > 1  # the case exercises more than one outcome


def test_cuda_per_particle_hyperparameters_and_stop_conditions_match_cpu():
    land = get_landscape("double-well")
    starts = swarm(land, n=64)
    lrs = torch.linspace(0.002, 0.6, starts.shape[0], dtype=torch.float64)  # the top ones diverge
    opt = Optimizer.build("momentum", lr=lrs, momentum=0.8)
    for events in (
        Events(grad_tol=1e-6, stop_on=("converged",)),
        Events(target_loss=-0.2, stop_on=("target",), near=True),
    ):
        cpu = simulate(land, opt, starts, 600, save=SaveAt(every=25), events=events)
        gpu = simulate(land, opt, starts.cuda(), 600, save=SaveAt(every=25), events=events)
        assert_same_run(cpu, gpu)
        assert "diverged" in cpu.outcomes


def test_cuda_langevin_runs_and_is_reproducible_with_the_same_seed():
    land = get_landscape("double-well")
    opt = Optimizer.build("langevin", lr=0.01, temperature=0.3)
    starts = land.random_starts(500, torch.Generator().manual_seed(1)).cuda()
    first = simulate(land, opt, starts, 300, save=SaveAt(every=50), seed=7)
    again = simulate(land, opt, starts, 300, save=SaveAt(every=50), seed=7)
    other = simulate(land, opt, starts, 300, save=SaveAt(every=50), seed=8)
    assert first.device.startswith("cuda")
    assert torch.isfinite(first.positions).all()
    assert torch.equal(first.positions, again.positions)
    assert first.outcomes == again.outcomes
    assert torch.equal(first.outcome_step, again.outcome_step)
    assert not torch.equal(first.positions[-1], other.positions[-1])


def test_cuda_float32_runs_and_stays_close_to_float64():
    land = get_landscape("double-well")
    opt = Optimizer.build("momentum", lr=0.02, momentum=0.9)
    starts = land.random_starts(300, torch.Generator().manual_seed(2))
    wide = simulate(land, opt, starts.cuda(), 300, save=SaveAt.summary())
    narrow = simulate(land, opt, starts.float().cuda(), 300, save=SaveAt.summary())
    assert narrow.dtype == "float32"
    agree = sum(a == b for a, b in zip(wide.outcomes, narrow.outcomes, strict=True))
    assert agree >= 0.95 * len(wide.outcomes)


def count_syncs(fn) -> int:
    """Host synchronisations (D2H copies, blocking H2D copies, stream syncs) that ``fn`` triggers."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "opt_name, hyper",
    [
        ("gd", {"lr": 0.01}),
        ("momentum", {"lr": 0.01, "momentum": 0.9}),
        ("momentum", {"lr": torch.full((1000,), 0.01, dtype=torch.float64), "momentum": 0.9}),
        ("adam", {"lr": 0.01}),
        ("langevin", {"lr": 0.01, "temperature": 0.1}),
    ],
    ids=["gd", "momentum", "momentum-per-particle-lr", "adam", "langevin"],
)
def test_cuda_loop_syncs_with_the_host_at_most_once_per_step(opt_name, hyper):
    land = get_landscape("double-well")
    opt = Optimizer.build(opt_name, **hyper)
    starts = land.random_starts(1000, torch.Generator().manual_seed(3)).cuda()
    simulate(land, opt, starts, 5, save=SaveAt.summary())  # warm-up: kernels loaded, caches made
    few = count_syncs(lambda: simulate(land, opt, starts, 20, save=SaveAt.summary()))
    many = count_syncs(lambda: simulate(land, opt, starts, 60, save=SaveAt.summary()))
    per_step = (many - few) / 40
    assert per_step <= 1.0, f"{per_step:.2f} host syncs per step ({few} in 20 steps, {many} in 60)"
