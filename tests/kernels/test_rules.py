"""Kernels for AdaGrad, RMSprop (plain, centred, with momentum), Langevin, the gradient transforms and
learning-rate schedules equal the reference loop and the torch backend.

- Steps: every saved position of a short run agrees with ``reference_run`` to |dx| <= 1e-12 (|x| + 1)
  in float64, with per-particle hyper-parameters where the rule has them.
- Langevin and gradient noise use engine v2's counter-based stream: a seeded run is the same on both
  backends up to rounding (the kernel's normals use the C library's log1p and cos, torch's SLEEF's,
  a few ULP apart).
- Langevin on U = h |x|^2 / 2 has the exact discrete stationary variance T / (h (1 - lr h / 2)) per
  coordinate: met within 3 standard errors on both backends.
"""

import math

import pytest
import torch

from descent.dynamics import simulate
from descent.dynamics.reference import reference_run
from descent.dynamics.save import SaveAt
from descent.landscapes import formula_landscape, get_landscape
from descent.optim import Optimizer
from descent.optim.schedules import parse_schedule

torch.set_num_threads(1)
N = 12


def line(a, b, n=N):
    return torch.linspace(a, b, n, dtype=torch.float64)


def starts_in(land, n=N, seed=0):
    gen = torch.Generator().manual_seed(seed)
    low = torch.tensor([lo for lo, _ in land.bounds], dtype=torch.float64)
    high = torch.tensor([hi for _, hi in land.bounds], dtype=torch.float64)
    return low + (high - low) * (0.05 + 0.9 * torch.rand(n, land.dim, dtype=torch.float64, generator=gen))


OPTIMIZERS = {
    "adagrad": lambda: Optimizer.build(
        "adagrad", lr=line(0.05, 0.2), lr_decay=line(0.0, 0.1), eps=line(1e-10, 1e-3)
    ),
    "rmsprop": lambda: Optimizer.build(
        "rmsprop", lr=line(0.005, 0.02), alpha=line(0.9, 0.99), eps=line(1e-8, 1e-3)
    ),
    "rmsprop-centered": lambda: Optimizer.build("rmsprop", lr=line(0.005, 0.02), centered=True),
    "rmsprop-momentum": lambda: Optimizer.build("rmsprop", lr=0.01, momentum=line(0.0, 0.9)),
    "rmsprop-centered-momentum": lambda: Optimizer.build("rmsprop", lr=0.01, momentum=0.5, centered=True),
    "langevin": lambda: Optimizer.build("langevin", lr=line(0.005, 0.02), temperature=line(0.05, 0.5)),
    "momentum+transforms": lambda: Optimizer.build(
        "momentum",
        lr=0.02,
        momentum=line(0.5, 0.9),
        clip_norm=1.5,
        grad_noise=line(0.0, 0.5),
        l2=line(0.0, 0.2),
    ),
    "adam+l2": lambda: Optimizer.build("adam", lr=line(0.02, 0.1), l2=0.05),
    "momentum+schedule": lambda: Optimizer.build(
        "momentum",
        lr=line(0.01, 0.03),
        momentum=0.8,
        schedule=parse_schedule("warmup:steps=4>cosine:total=20"),
    ),
    "adam+schedule": lambda: Optimizer.build(
        "adam", lr=0.05, schedule=parse_schedule("step:every=3,gamma=0.5")
    ),
}
LANDSCAPES = {
    "double-well": lambda: get_landscape("double-well"),
    "formula": lambda: formula_landscape("sin(x)*y**2 + x**4/4 + 0.1*y**4"),
}
CASES = [(name, "double-well") for name in OPTIMIZERS] + [
    (name, "formula") for name in ("adagrad", "rmsprop-centered-momentum", "langevin")
]


@pytest.mark.parametrize("name, where", CASES)
def test_steps_match_the_reference(name, where):
    land, opt = LANDSCAPES[where](), OPTIMIZERS[name]()
    starts = starts_in(land)
    steps = 12
    traj = simulate(land, opt, starts, steps, save=SaveAt(every=1), seed=7, backend="kernel")
    ref = reference_run(land, opt, starts, steps, seed=7)
    assert traj.backend == "kernel" and traj.steps.tolist() == list(range(steps + 1))
    path = torch.tensor([r.path for r in ref], dtype=torch.float64).transpose(0, 1)
    loss = torch.tensor([r.loss for r in ref], dtype=torch.float64).T
    assert torch.all((traj.positions - path).abs() <= 1e-12 * (path.abs() + 1))
    assert torch.all((traj.loss - loss).abs() <= 1e-12 * (loss.abs() + 1))
    moved = (traj.positions[-1] - traj.positions[0]).abs().amax(dim=1)
    assert bool((moved > 1e-3).all())  # every particle moved: the comparison saw real steps


@pytest.mark.parametrize("backend", ["kernel", "torch"])
def test_langevin_meets_the_exact_discrete_stationary_variance(backend):
    """x_{k+1} = (1 - lr h) x_k + sqrt(2 lr T) z: Var = 2 lr T / (1 - (1 - lr h)^2) = T / (h (1 - lr h / 2)).
    20000 coordinate samples after 300 steps (relaxation factor (1 - lr h)^600 ~ 1e-40); the
    standard error of a sample variance of normals is Var sqrt(2 / (n - 1))."""
    h, lr, temperature, n = 1.5, 0.2, 0.1, 10000
    land = formula_landscape("1.5*(x**2 + y**2)/2")
    opt = Optimizer.build("langevin", lr=lr, temperature=temperature)
    traj = simulate(
        land,
        opt,
        torch.zeros(n, 2, dtype=torch.float64),
        300,
        save=SaveAt.summary(),
        seed=11,
        backend=backend,
    )
    assert traj.backend == backend
    x = traj.final_position.reshape(-1)
    exact = temperature / (h * (1 - lr * h / 2))
    error = exact * math.sqrt(2 / (x.numel() - 1))
    assert abs(float(x.var()) - exact) < 3 * error
    assert abs(float(x.mean())) < 3 * math.sqrt(exact / x.numel())


def test_a_seeded_noisy_run_is_the_same_on_both_backends():
    """Langevin and gradient noise on a landscape where nearby paths do not separate (a quadratic bowl):
    final positions agree to 1e-12, and a different seed gives a different run."""
    land = formula_landscape("(x**2 + 2*y**2)/2")
    opt = Optimizer.build("langevin", lr=0.05, temperature=line(0.01, 0.2, 64), grad_noise=0.3)
    starts = starts_in(land, 64, seed=3)
    kernel = simulate(land, opt, starts, 500, save=SaveAt.summary(), seed=5, backend="kernel")
    torch_run = simulate(land, opt, starts, 500, save=SaveAt.summary(), seed=5, backend="torch")
    assert torch.allclose(kernel.final_position, torch_run.final_position, rtol=0, atol=1e-12)
    other = simulate(land, opt, starts, 500, save=SaveAt.summary(), seed=6, backend="kernel")
    assert (other.final_position - kernel.final_position).abs().max() > 1e-2


def test_shared_streams_give_every_particle_particle_zeros_noise_on_both_backends():
    """``streams="shared"``: the kernel draws a step's normals once for all particles; every particle's
    run equals its own one-particle run (particle 0's stream), and the two backends agree to 1e-12."""
    land = formula_landscape("(x**2 + 2*y**2)/2")
    opt = Optimizer.build("langevin", lr=0.05, temperature=line(0.01, 0.2, 64), grad_noise=0.3)
    starts = starts_in(land, 64, seed=3)
    kernel = simulate(
        land, opt, starts, 500, save=SaveAt.summary(), seed=5, backend="kernel", streams="shared"
    )
    torch_run = simulate(
        land, opt, starts, 500, save=SaveAt.summary(), seed=5, backend="torch", streams="shared"
    )
    assert torch.allclose(kernel.final_position, torch_run.final_position, rtol=0, atol=1e-12)
    for i in (0, 17, 63):
        alone = simulate(
            land, opt.select(i), starts[i : i + 1], 500, save=SaveAt.summary(), seed=5, backend="kernel"
        )
        assert torch.equal(alone.final_position[0], kernel.final_position[i])
    own = simulate(land, opt, starts, 500, save=SaveAt.summary(), seed=5, backend="kernel")
    assert (own.final_position - kernel.final_position)[1:].abs().max() > 1e-2  # others' streams differ
