"""A server never waits for a compilation: with `defer_compiling`, an "auto" run whose kernel is not
built yet runs on torch at once (saying why) while the kernel compiles on a thread; the next run uses
the kernel, and both agree."""

import uuid

import torch

from descent.dynamics import simulate
from descent.kernels.backend import wait_for_compiles
from descent.optim import Optimizer
from descent.spec import resolve_landscape

torch.set_num_threads(1)


def fresh_formula() -> str:
    """A formula no kernel was compiled for: a coefficient nobody used before (not even on disk)."""
    coefficient = 1 + int(uuid.uuid4().hex[:6], 16) / 2**24
    return f"x**2 + {coefficient!r}*y**2 + 0.1*x*y"


def test_an_auto_run_does_not_wait_for_its_kernel_and_the_next_one_uses_it(deferring):
    land = resolve_landscape(fresh_formula())
    opt = Optimizer.build("momentum", lr=0.05, momentum=0.9)
    starts = torch.tensor([[1.0, -0.5], [0.3, 0.7]], dtype=torch.float64)
    first = simulate(land, opt, starts, 200, backend="auto")
    assert first.backend == "torch" and "built in the background" in first.fallback
    assert wait_for_compiles(timeout=300)
    second = simulate(land, opt, starts, 200, backend="auto")
    assert second.backend == "kernel" and second.fallback is None
    torch.testing.assert_close(second.final_position, first.final_position, rtol=1e-12, atol=1e-12)
    assert second.outcomes == first.outcomes


def test_an_explicit_kernel_run_still_waits_for_its_compilation(deferring):
    land = resolve_landscape(fresh_formula())
    traj = simulate(land, Optimizer.build("gd", lr=0.1), land.start(), 50, backend="kernel")
    assert traj.backend == "kernel"
