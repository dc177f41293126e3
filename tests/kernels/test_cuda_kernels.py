"""The CUDA kernels (``descent.kernels.cuda``) equal the reference loop and the CPU kernel.

- Simulator: Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the generated CUDA kernels as
  Python on the CPU. It runs in one subprocess for the whole module (the variable must be set before
  numba is imported, and must not reach the other tests), which runs every case of ``CASES`` with
  ``run_cuda`` and saves what the tests compare:
  - steps: every saved position and loss of a 12-step run agrees with ``reference_run`` to
    |d| <= 1e-12 (|x| + 1) in float64, for every rule, per-particle hyper-parameters, Langevin's and
    the gradient noise's counter-based draws, the gradient transforms and a schedule;
  - whole runs: the same outcomes, outcome steps, stop steps, event steps, saved steps and probe
    records as the CPU kernel, positions within 1e-9 (|x| + 1): divergence beyond the box, inf and NaN
    planted mid-run (in U, and in grad U alone), stop_on converged and target, left_box, near events,
    chosen saved steps, runs in several launches, and float32 (the CPU kernel's float32 flushes
    subnormals, the GPU does not: positions within 1e-5).
- Device: where torch sees a CUDA device, the same cases run on it in this process and are compared
  with the CPU kernel (libdevice's exp, log, sin, ... are within a few ULP of the C library's: steps to
  1e-12 (|x| + 1), whole runs as above), with Langevin's exact discrete stationary variance and a run
  of a million particles. They are skipped only where no CUDA device is present.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from descent.dynamics import Events, simulate
from descent.dynamics.probes import PROBES, Probe
from descent.dynamics.reference import reference_run
from descent.dynamics.save import SaveAt
from descent.landscapes import formula_landscape, get_landscape
from descent.optim import Optimizer
from descent.optim.schedules import parse_schedule

torch.set_num_threads(1)
N = 12
STEPS = 12
SEED = 7
LANDSCAPES = {
    "double-well": lambda: get_landscape("double-well"),
    "rosenbrock": lambda: get_landscape("rosenbrock"),
    "himmelblau": lambda: get_landscape("himmelblau"),
    "saddle": lambda: get_landscape("saddle"),
    "rastrigin": lambda: get_landscape("rastrigin", dim=3),
    "formula": lambda: formula_landscape("sin(x)*y**2 + x**4/4 + 0.1*y**4"),
    "cancel": lambda: formula_landscape("x**2 - 2*x*y + y**2 + x**4 + y**4"),
    "cusp": lambda: formula_landscape("abs(x)**0.5 + y**2"),
}


def line(a, b, n=N):
    return torch.linspace(a, b, n, dtype=torch.float64)


def starts_in(land, n=N, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    low = torch.tensor([lo for lo, _ in land.bounds], dtype=torch.float64)
    high = torch.tensor([hi for _, hi in land.bounds], dtype=torch.float64)
    starts = low + (high - low) * (0.05 + 0.9 * torch.rand(n, land.dim, dtype=torch.float64, generator=gen))
    return starts.to(dtype)


# --- the cases: (landscape, optimizer, starts, steps, keyword arguments of run_cuda / simulate) ---------
def step_case(where, build):
    def case():
        land = LANDSCAPES[where]()
        return land, build(), starts_in(land), STEPS, {"save": SaveAt(every=1), "seed": SEED}

    return case


ADAM = dict(lr=line(0.02, 0.1), beta1=line(0.5, 0.95), beta2=line(0.9, 0.999), eps=line(1e-8, 1e-3))
STEP_CASES = {
    "gd": step_case("double-well", lambda: Optimizer.build("gd", lr=line(0.004, 0.02))),
    "momentum": step_case(
        "rosenbrock", lambda: Optimizer.build("momentum", lr=line(2e-4, 1e-3), momentum=line(0.5, 0.9))
    ),
    "nesterov": step_case(
        "rastrigin", lambda: Optimizer.build("nesterov", lr=0.002, momentum=line(0.5, 0.9))
    ),
    "adam": step_case("formula", lambda: Optimizer.build("adam", **ADAM)),
    "adam-shared": step_case("double-well", lambda: Optimizer.build("adam", lr=0.05)),
    "amsgrad": step_case("rosenbrock", lambda: Optimizer.build("amsgrad", **ADAM)),
    "adamw": step_case("himmelblau", lambda: Optimizer.build("adamw", **ADAM, weight_decay=line(0.0, 0.1))),
    "adagrad": step_case(
        "formula", lambda: Optimizer.build("adagrad", lr=line(0.05, 0.2), lr_decay=line(0.0, 0.1))
    ),
    "rmsprop": step_case("double-well", lambda: Optimizer.build("rmsprop", lr=line(0.005, 0.02))),
    "rmsprop-centered-momentum": step_case(
        "formula", lambda: Optimizer.build("rmsprop", lr=0.01, momentum=line(0.0, 0.9), centered=True)
    ),
    "langevin": step_case(
        "formula", lambda: Optimizer.build("langevin", lr=line(0.005, 0.02), temperature=line(0.05, 0.5))
    ),
    "momentum+transforms+schedule": step_case(
        "double-well",
        lambda: Optimizer.build(
            "momentum",
            lr=0.02,
            momentum=line(0.5, 0.9),
            clip_norm=1.5,
            grad_noise=line(0.0, 0.5),
            l2=line(0.0, 0.2),
            schedule=parse_schedule("warmup:steps=4>cosine:total=20"),
        ),
    ),
}


def probes_for():
    return [cls(every=1 if name == "energy_ledger" else 3) for name, cls in PROBES.items()]


def run_case(where, build, n, steps, seed=0, dtype=torch.float64, starts=None, **kw):
    def case():
        land = LANDSCAPES[where]()
        x0 = starts_in(land, n, seed, dtype) if starts is None else starts.to(dtype)
        return land, build(n), x0, steps, {"seed": SEED, **kw}

    return case


RUN_CASES = {
    "divergence": run_case(
        "double-well",
        lambda n: Optimizer.build(
            "momentum", lr=0.02 * torch.logspace(0, 1.5, n, dtype=torch.float64), momentum=0.9
        ),
        24,
        300,
        seed=4,
        save=SaveAt(every=25),
    ),
    "overflow": run_case(
        "double-well",
        lambda n: Optimizer.build("gd", lr=0.3),
        3,
        100,
        starts=torch.tensor([[-1.9, 1.0], [1.9, 0.5], [1.7, 0.2]], dtype=torch.float64),
        events=Events(diverge_spans=1e300),
    ),
    "nan": run_case(
        "cancel",
        lambda n: Optimizer.build("gd", lr=torch.tensor([1e-2, 1e165], dtype=torch.float64)),
        2,
        50,
        starts=torch.tensor([[1.0, 1.0], [0.5, 0.5]], dtype=torch.float64),
        events=Events(diverge_spans=1e300),
    ),
    # x = 0.25 - 0.25 * 1 = 0 exactly at step 1: U = 0.0625 is finite, dU/dx = inf * 0 is NaN
    "nan-gradient": run_case(
        "cusp",
        lambda n: Optimizer.build("gd", lr=0.25),
        2,
        10,
        starts=torch.tensor([[0.25, 0.5], [0.5, 0.5]], dtype=torch.float64),
    ),
    "stops": run_case(
        "himmelblau",
        lambda n: Optimizer.build("momentum", lr=line(0.002, 0.01, n), momentum=line(0.5, 0.9, n)),
        16,
        600,
        seed=2,
        events=Events(grad_tol=1e-2, target_loss=1.0, stop_on=("converged",)),
        save=SaveAt(steps=(0, 3, 40, 200, 599)),
    ),
    "target-in-chunks": run_case(
        "himmelblau",
        lambda n: Optimizer.build("momentum", lr=line(0.002, 0.01, n), momentum=line(0.5, 0.9, n)),
        16,
        400,
        seed=2,
        events=Events(target_loss=0.5, stop_on=("target",)),
        save=SaveAt(every=9),
        chunk_steps=7,
    ),
    "left-box": run_case(
        "saddle",
        lambda n: Optimizer.build("nesterov", lr=line(0.01, 0.05, n), momentum=line(0.5, 0.9, n)),
        16,
        200,
        seed=3,
        save=SaveAt(every=10),
    ),
    "near": run_case(
        "himmelblau",
        lambda n: Optimizer.build("momentum", lr=0.01, momentum=0.8),
        16,
        400,
        seed=5,
        events=Events(near=True, grad_tol=1e-5, stop_on=("converged",)),
        save=SaveAt(every=200, steps=(3, 17, 399)),
    ),
    "probes": run_case(
        "double-well",
        lambda n: Optimizer.build("momentum", lr=0.02, momentum=line(0.5, 0.9, n)),
        16,
        120,
        seed=6,
        events=Events(grad_tol=1e-4, stop_on=("converged",)),
        save=SaveAt(every=25),
        probes=probes_for(),
    ),
    "float32": run_case(
        "double-well",
        lambda n: Optimizer.build("momentum", lr=line(0.01, 0.03, n), momentum=0.9),
        24,
        300,
        seed=8,
        dtype=torch.float32,
        save=SaveAt(every=50),
    ),
    "langevin-run": run_case(
        "double-well",
        lambda n: Optimizer.build("langevin", lr=0.01, temperature=line(0.05, 0.3, n)),
        16,
        200,
        seed=9,
        save=SaveAt(every=20),
    ),
}
CASES = {**STEP_CASES, **RUN_CASES}


class Custom(Probe):
    name = "custom"

    def __call__(self, view):
        return {"x": view.x}


FIELDS = (
    "steps", "positions", "loss", "displacement", "outcomes", "outcome_step", "stop_step", "steps_run",
    "events", "nearest_minimum", "final_position", "final_loss", "final_update", "min_loss",
    "min_loss_step", "probes", "backend", "device", "interrupted",
)  # fmt: skip


def run_cases(run_cuda, names, device=None) -> dict:
    """Each case run with ``run_cuda`` (starts moved to ``device``): the trajectory's fields, with the
    progress reports."""
    from descent.kernels import cuda as module

    out = {}
    for name in names:
        land, opt, starts, steps, kw = CASES[name]()
        kw = dict(kw)
        chunk = kw.pop("chunk_steps", None)
        module.CHUNK_WORK = chunk * starts.shape[0] if chunk else 1e11
        reports = []
        traj = run_cuda(
            land,
            opt,
            starts if device is None else starts.to(device),
            steps,
            kw.pop("save", SaveAt()),
            kw.pop("events", Events()),
            progress=lambda done, total, reports=reports: reports.append(done),
            **kw,
        )
        out[name] = {field: getattr(traj, field) for field in FIELDS} | {"progress": reports}
    module.CHUNK_WORK = 1e11
    return out


CHILD = """
import importlib.util, sys, warnings
warnings.simplefilter("ignore")
import torch
spec = importlib.util.spec_from_file_location("cuda_cases", sys.argv[2])
cases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cases)
from descent.kernels.cuda import cuda_unsupported, run_cuda, simulated
from descent.dynamics import Events
from descent.dynamics.save import SaveAt
assert simulated()
out = cases.run_cases(run_cuda, list(cases.CASES))
land, opt, starts, steps, kw = cases.CASES["gd"]()
refusals = {
    "custom": cuda_unsupported(land, opt, starts, SaveAt(), Events(), [cases.Custom()], None, 10),
    "meta": cuda_unsupported(land, opt, starts.to("meta"), SaveAt(), Events(), [], None, 10),
    "long": cuda_unsupported(land, opt, starts.float(), SaveAt(), Events(), [], None, 2**24),
    "none": cuda_unsupported(land, opt, starts, SaveAt(), Events(), [], None, 10),
}
try:
    run_cuda(land, opt, starts, 10, SaveAt(), Events(), probes=[cases.Custom()])
    refusals["raised"] = None
except ValueError as error:
    refusals["raised"] = str(error)
out["refusals"] = refusals
torch.save(out, sys.argv[1])
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Every case run on Numba's CUDA simulator, in a subprocess."""
    path = tmp_path_factory.mktemp("cudasim") / "runs.pt"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), __file__],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(path, weights_only=False)


# --- the expected results -------------------------------------------------------------------------
def close(got, expected, tol):
    """|got - expected| <= tol (|expected| + 1), NaN where NaN."""
    assert got.shape == expected.shape
    assert torch.equal(torch.isnan(got), torch.isnan(expected))
    both = ~torch.isnan(expected)
    error = (got[both] - expected[both]).abs() / (expected[both].abs() + 1)
    assert error.numel() == 0 or float(error.max()) <= tol, float(error.max())


def check_steps(got, name, tol=1e-12):
    """Every saved position and loss against the reference loop."""
    land, opt, starts, steps, kw = CASES[name]()
    ref = reference_run(land, opt, starts, steps, seed=kw["seed"])
    assert got["steps"].tolist() == list(range(steps + 1))
    path = torch.tensor([r.path for r in ref], dtype=torch.float64).transpose(0, 1)
    loss = torch.tensor([r.loss for r in ref], dtype=torch.float64).T
    close(got["positions"], path, tol)
    close(got["loss"], loss, tol)
    moved = (got["positions"][-1] - got["positions"][0]).abs().amax(dim=1)
    assert bool((moved > 1e-4).all())  # every particle moved: the comparison saw real steps


#: the cases compared with the torch engine instead (a CPU kernel no other test compiles)
ON_TORCH = {"nan-gradient"}


def cpu_kernel(name):
    """The case on the CPU kernel (on the torch engine for ``ON_TORCH``: the same run, checked equal by
    test_parity, and nothing to compile on a cold kernel cache)."""
    land, opt, starts, steps, kw = CASES[name]()
    kw = dict(kw)
    kw.pop("chunk_steps", None)
    backend = "torch" if name in ON_TORCH else "kernel"
    return simulate(land, opt, starts, steps, backend=backend, **kw)


def check_run(got, expected, tol=1e-9):
    """The same run as the CPU kernel's: outcomes and every step number equal, states within ``tol``."""
    assert got["backend"] == "kernel" and not got["interrupted"]
    assert got["outcomes"] == expected.outcomes
    assert got["outcome_step"].tolist() == expected.outcome_step.tolist()
    assert got["stop_step"].tolist() == expected.stop_step.tolist()
    assert got["steps_run"] == expected.steps_run
    assert got["steps"].tolist() == expected.steps.tolist()
    assert list(got["events"]) == list(expected.events)
    for event, steps in expected.events.items():
        assert got["events"][event].tolist() == steps.tolist(), event
    assert got["nearest_minimum"] == expected.nearest_minimum
    if tol <= 1e-9:  # on a float32 plateau, rounding decides which step had the lowest loss
        assert got["min_loss_step"].tolist() == expected.min_loss_step.tolist()
    for field in ("positions", "loss", "displacement", "final_position", "final_update", "min_loss"):
        close(got[field].double(), getattr(expected, field).double(), tol)
    assert list(got["probes"]) == list(expected.probes)
    for probe, record in expected.probes.items():
        assert list(got["probes"][probe]) == list(record), probe
        for key, value in record.items():
            mine = got["probes"][probe][key]
            if not value.dtype.is_floating_point:
                assert torch.equal(mine, value), (probe, key)
            elif key == "scale":  # u / (-lr g), a ratio of two small numbers: compared times the force
                force = record["force"]
                close(mine * force, value * force, tol)
            else:
                close(mine, value, tol)


RUN_TOLERANCE = {"float32": 1e-5}


# --- on the simulator -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(STEP_CASES))
def test_simulated_steps_match_the_reference(simulated, name):
    check_steps(simulated[name], name)


@pytest.mark.parametrize("name", list(RUN_CASES))
def test_simulated_runs_match_the_cpu_kernel(simulated, name):
    check_run(simulated[name], cpu_kernel(name), RUN_TOLERANCE.get(name, 1e-9))


def test_simulated_runs_have_their_events(simulated):
    """The whole-run cases see what they are meant to test (so a case that lost its point fails)."""
    runs = simulated
    assert "diverged" in runs["divergence"]["outcomes"] and "minimum:left" in runs["divergence"]["outcomes"]
    assert (runs["overflow"]["events"]["diverged"] > 2).all()
    assert torch.isfinite(runs["overflow"]["final_loss"]).all()
    assert runs["nan"]["events"]["diverged"].tolist() == [-1, 1]
    assert runs["nan-gradient"]["events"]["diverged"].tolist() == [1, -1]
    assert runs["stops"]["steps_run"] < 600 and (runs["stops"]["events"]["target"] >= 0).any()
    assert runs["stops"]["steps"].tolist() == [0, 3, 40, runs["stops"]["steps_run"]]
    assert (runs["target-in-chunks"]["events"]["target"] >= 0).all()
    assert runs["target-in-chunks"]["progress"][:3] == [7, 14, 21]  # launches of 7 steps
    assert "escaped" in runs["left-box"]["outcomes"]
    near = [name for name in runs["near"]["events"] if name.startswith("near:")]
    assert near and any((runs["near"]["events"][name] >= 0).any() for name in near)
    assert {3, 17}.issubset(runs["near"]["steps"].tolist())
    assert runs["probes"]["probes"] and (runs["probes"]["stop_step"] >= 0).any()
    assert runs["float32"]["positions"].dtype == torch.float32
    assert runs["langevin-run"]["device"] == "cpu"


def test_simulated_refusals(simulated):
    refusals = simulated["refusals"]
    assert refusals["custom"] == "custom probes (Custom)"
    assert "under the CUDA simulator" in refusals["meta"]
    assert "2^24" in refusals["long"] or "16777215" in refusals["long"]
    assert refusals["none"] is None
    assert refusals["raised"] == "no CUDA kernel supports custom probes (Custom)"


# --- without the simulator, in this process -------------------------------------------------------
def test_a_cpu_process_refuses_cpu_starts():
    from descent.kernels.cuda import cuda_unsupported

    land, opt, starts, steps, kw = CASES["gd"]()
    reason = cuda_unsupported(land, opt, starts, SaveAt(), Events(), [], None, steps)
    if torch.cuda.is_available():
        assert reason == "starts on the device 'cpu' (a CUDA run takes them on a CUDA device)"
    else:
        assert reason == "runs without a CUDA device (torch sees none)"


def test_the_source_reuses_the_cpu_kernels_pieces():
    """The rule's lines, the transforms and the events come from descent.kernels.loop, unchanged."""
    from descent.kernels.cuda import cuda_kernel_for, cuda_source, flops_per_step
    from descent.kernels.loop import RULES

    for rule in RULES:
        source = cuda_source(rule, 2, unbounded=True, transforms=("clip_norm", "grad_noise", "l2"), points=2)
        compile(source, rule, "exec")
        assert "[p]" not in source and "value_and_grad(y0, y1)" in source
    source = cuda_source("momentum", 2)
    assert "mn0 = beta * m0 - lr * g0" in source and "settled = (G0 * G0 + G1 * G1 < grad_tol)" in source
    well = get_landscape("double-well")
    for dtype in (torch.float32, torch.float64):  # importing the module compiles nothing
        assert cuda_kernel_for(well, "momentum", dtype).module.F is getattr(np, str(dtype)[6:])
    counts = flops_per_step(well, "momentum")
    assert counts == {"gradient": 15, "rule": 8, "events": 11}  # 4 per coordinate of the update; d = 2


# --- on a CUDA device -----------------------------------------------------------------------------
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def on_device():
    from descent.kernels.cuda import run_cuda

    return run_cases(run_cuda, list(CASES), device="cuda")


@needs_cuda
@pytest.mark.parametrize("name", list(STEP_CASES))
def test_device_steps_match_the_reference(on_device, name):
    check_steps(on_device[name], name)


@needs_cuda
@pytest.mark.parametrize("name", list(RUN_CASES))
def test_device_runs_match_the_cpu_kernel(on_device, name):
    assert on_device[name]["device"].startswith("cuda")
    check_run(on_device[name], cpu_kernel(name), RUN_TOLERANCE.get(name, 1e-9))


@needs_cuda
def test_device_langevin_meets_the_exact_discrete_stationary_variance():
    """x_{k+1} = (1 - lr h) x_k + sqrt(2 lr T) z: Var = T / (h (1 - lr h / 2)), within 3 standard
    errors over 2e6 coordinate samples after 300 steps."""
    from descent.kernels.cuda import run_cuda

    h, lr, temperature, n = 1.5, 0.2, 0.1, 1_000_000
    land = formula_landscape("1.5*(x**2 + y**2)/2")
    opt = Optimizer.build("langevin", lr=lr, temperature=temperature)
    starts = torch.zeros(n, 2, dtype=torch.float64, device="cuda")
    traj = run_cuda(land, opt, starts, 300, SaveAt.summary(), Events(), seed=11)
    x = traj.final_position.reshape(-1)
    exact = temperature / (h * (1 - lr * h / 2))
    assert abs(float(x.var()) - exact) < 3 * exact * math.sqrt(2 / (x.numel() - 1))
    assert abs(float(x.mean())) < 3 * math.sqrt(exact / x.numel())


@needs_cuda
def test_device_a_million_particles_match_the_cpu_kernel():
    """The double well in float32 with momentum, 1e6 particles, 500 steps: the CPU kernel's outcome for
    every particle but a handful (one ULP of a contracted multiply-add can move a particle lying on a
    basin's edge, or one whose |grad U| ends at the convergence threshold), final positions of the
    others within 1e-3."""
    from descent.kernels.cuda import run_cuda

    land = get_landscape("double-well")
    starts = starts_in(land, 1_000_000, seed=1, dtype=torch.float32)
    opt = Optimizer.build("momentum", lr=0.01, momentum=0.9)
    gpu = run_cuda(land, opt, starts.cuda(), 500, SaveAt.summary(), Events())
    cpu = simulate(land, opt, starts, 500, save=SaveAt.summary(), backend="kernel")
    same = torch.tensor([a == b for a, b in zip(gpu.outcomes, cpu.outcomes)])
    assert int((~same).sum()) <= 10 and len(set(cpu.outcomes)) > 1
    assert float((gpu.final_position - cpu.final_position)[same].abs().max()) < 1e-3


@needs_cuda
def test_simulate_sends_cuda_starts_to_the_cuda_kernels():
    """``simulate`` with starts on a CUDA device and backend ``kernel`` (or ``auto``) runs the CUDA
    kernels; the result equals the CPU kernel's to 1e-9."""
    well = get_landscape("double-well")
    starts = well.random_starts(256, torch.Generator().manual_seed(2))
    opt = Optimizer.build("momentum", lr=0.02, momentum=0.8)
    gpu = simulate(well, opt, starts.cuda(), 500, save=SaveAt(every=50), backend="auto")
    cpu = simulate(well, opt, starts, 500, save=SaveAt(every=50), backend="kernel")
    assert gpu.backend == "kernel" and gpu.device.startswith("cuda")
    assert gpu.outcomes == cpu.outcomes
    assert torch.allclose(gpu.positions, cpu.positions, rtol=0, atol=1e-9)
