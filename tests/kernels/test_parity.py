"""The kernel backend equals the reference loop and the torch backend.

- Steps: from the same starts, every saved position of a short run agrees with
  ``reference_run`` to |dx| <= 1e-12 (|x| + 1) in float64, for gd, momentum and nesterov, with
  per-particle lr and momentum, on the seeds' landscapes, three classic ones and a user formula;
  the same for adam (amsgrad and adamw on three of them) with per-particle lr, beta1, beta2, eps and
  weight decay over a few more steps (Adam's first steps are sign-like: only later ones test the
  moments and the bias corrections).
- Whole runs: identical outcomes, outcome steps, stop steps, event steps and saved steps on runs
  that are not chaotic, with particles stopping (converged, target, left the box) and diverging.
- Float32 (kernel) agrees with float64 (kernel) on the double well: the same outcome for every
  particle of a grid, final positions within 1e-3 (the convergence tolerance grad_tol = 1e-3 over a
  curvature of about 2-8), outcome steps within 2 %.

Each (landscape, rule, dtype) kernel is compiled once per process (and cached on disk).
"""

import numpy as np
import pytest
import torch

from descent._errors import DescentError
from descent.dynamics import Events, simulate
from descent.dynamics.events import known_points
from descent.dynamics.reference import reference_run
from descent.dynamics.save import SaveAt
from descent.landscapes import formula_landscape, get_landscape
from descent.optim import Optimizer

torch.set_num_threads(1)
RULES = ("gd", "momentum", "nesterov")
ADAMS = ("adam", "amsgrad", "adamw")
LANDSCAPES = ("double-well", "plateau", "saddle", "rosenbrock", "himmelblau", "rastrigin", "formula")
N = 12


def build(name):
    if name == "rastrigin":
        return get_landscape("rastrigin", dim=3)
    if name == "formula":
        return formula_landscape("sin(x)*y**2 + x**4/4")
    return get_landscape(name)


@pytest.fixture(scope="module")
def landscapes():
    return {name: build(name) for name in LANDSCAPES}


def starts_in(land, n=N, seed=0, shrink=0.9):
    gen = torch.Generator().manual_seed(seed)
    low = torch.tensor([lo for lo, _ in land.bounds], dtype=torch.float64)
    high = torch.tensor([hi for _, hi in land.bounds], dtype=torch.float64)
    mid, half = (low + high) / 2, (high - low) / 2 * shrink
    return mid + (torch.rand(n, land.dim, dtype=torch.float64, generator=gen) * 2 - 1) * half


def optimizer(land, rule, n=N):
    """Per-particle learning rates from 0.2 to 1 times the default, per-particle momentum (Adam:
    per-particle betas, eps and weight decay, lr from 0.02 to 0.1)."""
    line = lambda a, b: torch.linspace(a, b, n, dtype=torch.float64)  # noqa: E731
    if rule in ADAMS:
        hp = dict(lr=line(0.02, 0.1), beta1=line(0.5, 0.95), beta2=line(0.9, 0.999), eps=line(1e-8, 1e-3))
        return Optimizer.build(rule, **hp, **({"weight_decay": line(0.0, 0.1)} if rule == "adamw" else {}))
    lr = land.default_lr * line(0.2, 1.0)
    if rule == "gd":
        return Optimizer.build(rule, lr=lr)
    return Optimizer.build(rule, lr=lr, momentum=torch.linspace(0.5, 0.9, n, dtype=torch.float64))


# adam on every landscape; amsgrad and adamw (a few lines more than adam) on three, to keep the number
# of kernels a cold cache compiles modest
CASES = [(name, rule) for rule in (*RULES, "adam") for name in LANDSCAPES] + [
    (name, rule) for rule in ("amsgrad", "adamw") for name in ("double-well", "rosenbrock", "formula")
]


@pytest.mark.parametrize("name, rule", CASES)
def test_steps_match_the_reference(landscapes, name, rule):
    land = landscapes[name]
    opt, starts = optimizer(land, rule), starts_in(land)
    steps = 12 if rule in ADAMS else 5
    traj = simulate(land, opt, starts, steps, save=SaveAt(every=1), backend="kernel")
    ref = reference_run(land, opt, starts, steps)
    assert traj.backend == "kernel" and traj.steps.tolist() == list(range(steps + 1))
    path = torch.tensor([r.path for r in ref], dtype=torch.float64).transpose(0, 1)
    loss = torch.tensor([r.loss for r in ref], dtype=torch.float64).T
    assert torch.all((traj.positions - path).abs() <= 1e-12 * (path.abs() + 1))
    assert torch.all((traj.loss - loss).abs() <= 1e-12 * (loss.abs() + 1))


def assert_same_run(kernel, torch_run):
    assert kernel.outcomes == torch_run.outcomes
    assert kernel.outcome_step.tolist() == torch_run.outcome_step.tolist()
    assert kernel.stop_step.tolist() == torch_run.stop_step.tolist()
    assert kernel.steps_run == torch_run.steps_run
    assert kernel.steps.tolist() == torch_run.steps.tolist()
    assert list(kernel.events) == list(torch_run.events)
    for name, steps in torch_run.events.items():
        assert kernel.events[name].tolist() == steps.tolist(), name
    assert kernel.nearest_minimum == torch_run.nearest_minimum
    scale = torch_run.positions.abs() + 1
    assert torch.all((kernel.positions - torch_run.positions).abs() <= 1e-9 * scale)


def both(land, opt, starts, steps, **kw):
    return (
        simulate(land, opt, starts, steps, backend="kernel", **kw),
        simulate(land, opt, starts, steps, backend="torch", **kw),
    )


@pytest.mark.parametrize("rule", RULES)
def test_double_well_runs_match_torch(landscapes, rule):
    land = landscapes["double-well"]
    starts = starts_in(land, 64, seed=1)
    opt = Optimizer.build(rule, lr=0.02, **({} if rule == "gd" else {"momentum": 0.8}))
    kernel, reference = both(land, opt, starts, 1500, save=SaveAt(every=50))
    assert_same_run(kernel, reference)
    assert set(kernel.outcomes) <= {"minimum:left", "minimum:right"}
    assert torch.allclose(kernel.min_loss, reference.min_loss, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rule", ADAMS)
def test_double_well_adam_runs_match_torch(landscapes, rule):
    """Adam's family with a small lr and float hyper-parameters (the defaults), stopping when converged."""
    land = landscapes["double-well"]
    starts = starts_in(land, 64, seed=5)
    opt = Optimizer.build(rule, lr=0.005)
    events = Events(grad_tol=1e-2, step_tol=1e-3, stop_on=("converged",))
    kernel, reference = both(land, opt, starts, 2000, events=events, save=SaveAt(every=50))
    assert_same_run(kernel, reference)
    assert set(kernel.outcomes) <= {"minimum:left", "minimum:right"}
    assert (kernel.events["converged"] >= 0).any()
    assert torch.allclose(kernel.min_loss, reference.min_loss, rtol=1e-12, atol=1e-12)


def test_stopping_events_match_torch(landscapes):
    """stop_on converged and target, target steps, the summary save and an early end of the run."""
    land = landscapes["himmelblau"]
    starts = starts_in(land, 32, seed=2)
    opt = optimizer(land, "momentum", 32)
    events = Events(grad_tol=1e-2, target_loss=1.0, stop_on=("converged",))
    kernel, reference = both(land, opt, starts, 3000, events=events, save=SaveAt(every=7))
    assert_same_run(kernel, reference)
    assert kernel.steps_run < 3000 and (kernel.events["target"] >= 0).any()
    events = Events(target_loss=0.5, stop_on=("target",))
    kernel, reference = both(land, opt, starts, 3000, events=events, save=SaveAt.summary())
    assert_same_run(kernel, reference)
    assert kernel.steps.tolist() == [0, kernel.steps_run]


def test_left_box_matches_torch(landscapes):
    land = landscapes["saddle"]
    starts = starts_in(land, 32, seed=3)
    kernel, reference = both(land, optimizer(land, "nesterov", 32), starts, 400, save=SaveAt(every=1))
    assert_same_run(kernel, reference)
    assert "escaped" in kernel.outcomes and (kernel.events["left_box"] >= 0).any()


def test_divergence_beyond_the_box_matches_torch(landscapes):
    land = landscapes["double-well"]
    starts = starts_in(land, 16, seed=4)
    lr = 0.02 * torch.logspace(0, 1.5, 16, dtype=torch.float64)
    kernel, reference = both(land, Optimizer.build("momentum", lr=lr, momentum=0.9), starts, 500)
    assert_same_run(kernel, reference)
    assert "diverged" in kernel.outcomes


def test_overflow_to_inf_is_detected_at_its_step(landscapes):
    """With the box check out of the way, x**4 overflows to inf mid-run: diverged at that step, the
    particle frozen at its last finite state."""
    land = landscapes["double-well"]
    events = Events(diverge_spans=1e300)
    starts = torch.tensor([[-1.9, 1.0], [1.9, 0.5], [1.7, 0.2]], dtype=torch.float64)
    kernel, reference = both(land, Optimizer.build("gd", lr=0.3), starts, 100, events=events)
    assert_same_run(kernel, reference)
    step = kernel.events["diverged"]
    assert (step > 2).all()
    assert torch.isfinite(kernel.final_loss).all() and torch.isfinite(kernel.final_position).all()
    ref = reference_run(land, Optimizer.build("gd", lr=0.3), starts, 100, events=events)
    assert step.tolist() == [r.events["diverged"] for r in ref]


def test_nan_is_detected_at_its_step():
    """A learning rate so large that x = y = -5e164 after one step: x**2 - 2xy + y**2 is inf - inf, NaN."""
    land = formula_landscape("x**2 - 2*x*y + y**2 + x**4 + y**4")
    events = Events(diverge_spans=1e300)
    starts = torch.tensor([[1.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    opt = Optimizer.build("gd", lr=torch.tensor([1e-2, 1e165], dtype=torch.float64))
    kernel, reference = both(land, opt, starts, 50, events=events)
    assert_same_run(kernel, reference)
    assert kernel.events["diverged"].tolist()[1] == 1
    x = -1e165 * 4 * 0.5**3 + 0.5
    assert torch.isnan(land.value(torch.tensor([[x, x]], dtype=torch.float64))).all()


@pytest.mark.parametrize("rule", ("momentum", "adam"))
def test_float32_agrees_with_float64_on_the_double_well(landscapes, rule):
    land = landscapes["double-well"]
    xs = torch.linspace(-1.8, 1.8, 8, dtype=torch.float64)
    ys = torch.linspace(-1.2, 1.2, 8, dtype=torch.float64)
    starts = torch.cartesian_prod(xs, ys)
    opt = Optimizer.build(rule, lr=0.02, **({"momentum": 0.9} if rule == "momentum" else {}))
    run64 = simulate(land, opt, starts, 3000, save=SaveAt.summary(), backend="kernel")
    run32 = simulate(land, opt, starts.float(), 3000, save=SaveAt.summary(), backend="kernel")
    torch32 = simulate(land, opt, starts.float(), 3000, save=SaveAt.summary(), backend="torch")
    assert run32.dtype == "float32" and run32.final_position.dtype == torch.float32
    assert run32.outcomes == run64.outcomes == torch32.outcomes
    assert torch.all((run32.final_position.double() - run64.final_position).abs() <= 1e-3)
    steps32, steps64 = run32.outcome_step.double(), run64.outcome_step.double()
    assert torch.all((steps32 - steps64).abs() <= 0.02 * steps64)
    # the float32 kernel flushes subnormals to zero inside its blocks only: this thread still has them
    assert np.float32(1e-38) / np.float32(10) != 0


def test_auto_and_refusals(landscapes, monkeypatch):
    """Every rule, transform, schedule, save and event of a formula landscape runs on the kernel;
    ``auto`` falls back to torch for what it does not run, ``kernel`` names it."""
    from descent.kernels import backend

    land = landscapes["double-well"]
    starts = land.start()
    for rule in ("gd", "langevin", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "amsgrad", "adamw"):
        opt = Optimizer.build(rule, lr=0.01)
        assert simulate(land, opt, starts, 10, backend="auto").backend == "kernel", rule
    gd = Optimizer.build("gd", lr=0.01)
    monkeypatch.setitem(backend.MAX_POINTS, "float64", 2)  # the double well has 3 known points
    refused = {
        "near events with more than 2 known points": dict(events=Events(near=True)),
    }
    for words, change in refused.items():
        with pytest.raises(DescentError, match=f"invalid backend='kernel'.*{words}"):
            simulate(land, gd, starts, 10, backend="kernel", **change)
    sphere = get_landscape("sphere", dim=backend.MAX_DIM + 1)
    assert simulate(sphere, gd, sphere.start(), 10, backend="auto").backend == "torch"
    with pytest.raises(DescentError, match=f"more than {backend.MAX_DIM} dimensions"):
        simulate(sphere, gd, sphere.start(), 10, backend="kernel")
    risk = get_landscape("logistic-risk")
    with pytest.raises(DescentError, match="objectives with data"):
        simulate(risk, gd, risk.start(), 10, backend="kernel")
    with pytest.raises(DescentError, match="invalid backend='numba'"):
        simulate(land, gd, starts, 10, backend="numba")


@pytest.mark.parametrize("name", ["double-well", "himmelblau", "saddle"])
def test_near_events_and_chosen_frames_match_torch(landscapes, name):
    """Near events (the first step within the capture radius of each known point) and SaveAt(steps)
    frames, with particles stopping as converged part-way."""
    land = landscapes[name]
    starts = starts_in(land, 64, seed=6)
    opt = Optimizer.build("momentum", lr=land.default_lr, momentum=0.8)
    events = Events(near=True, grad_tol=1e-5, stop_on=("converged",))
    kernel, reference = both(
        land, opt, starts, 1500, events=events, save=SaveAt(every=200, steps=(3, 17, 999))
    )
    assert_same_run(kernel, reference)
    near = [event for event in kernel.events if event.startswith("near:")]
    assert near == [f"near:{p.id}" for p in known_points(land)]
    visits = sum(int((kernel.events[event] >= 0).sum()) for event in near)
    assert visits > 0 or name == "saddle"  # the saddle's one point is seldom visited
    assert {3, 17}.issubset(kernel.steps.tolist())


def test_run_spec_takes_the_kernel_backend():
    from descent.spec import RunSpec, run_spec

    spec = RunSpec(landscape="double-well", optimizer="momentum", backend="kernel", save="summary")
    traj = run_spec(spec)
    assert traj.backend == "kernel" and traj.outcomes == run_spec(RunSpec(save="summary")).outcomes
    assert traj.compile_seconds is not None and traj.compile_seconds >= 0
