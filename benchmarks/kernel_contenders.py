"""The contenders of ``bench_kernels.py``: the shared problem, every contender, and the workers that
time them. ``bench_kernels.py`` runs each measurement as ``python kernel_contenders.py --worker NAME
--case JSON`` in its own subprocess; the worker prints one JSON line with its timings.

The problem: seeded uniform starts in the landscape's box (drawn in float64 and cast: the same for
everyone), momentum in the seeds' form (``v <- beta*v - lr*g, w <- w + v``) or Adam (torch's form),
``steps`` steps, the final state kept. Contenders (``RUNNERS``):

``jax``             ``jax.jit`` of ``lax.scan`` (default unroll) over steps of ``jax.vmap(jax.grad(U))``;
                    ``jax_enable_x64`` for float64; "not installed" without jax
``numba``           a hand-written kernel: ``numba.njit(parallel=True, fastmath={"contract"})``, blocks
                    of 256 particles in local arrays, the step loop inside, typed constants; no events,
                    nothing done about subnormals (the ceiling)
``numba-guard``     the same kernel flushing |state| < 2^-100 to zero every step, branch-free
``numba-ftz``       the same kernel with the FTZ and DAZ bits of MXCSR set on each worker thread around
                    each block, restored after (x86)
``numba-formula``   a hand-written kernel of ``FORMULA`` with value, gradient and a divergence check
                    every step (figure 2)
``torch-optim``     ``torch.optim.SGD(momentum)`` / ``torch.optim.Adam`` over one ``nn.Parameter [N, 2]``,
                    ``U(p).sum().backward()`` every step
``simulate-torch``  ``descent.simulate(..., save=SaveAt.summary(), backend="torch")``
``simulate-kernel`` ``descent.simulate(..., save=SaveAt.summary(), backend="kernel")``, events on

and three special workers (``WORKERS``): ``steps`` (one swarm at several step counts), ``arena`` (one
ball, every step saved: import, first and warm calls) and ``memory`` (one large summary run, peak RSS).
"""

from __future__ import annotations

import json
import math
import platform
import resource
import sys
import time

import numpy as np

FORMULA = "sin(x)*cos(y) + 0.1*(x^2 + y^2)"  # not a built-in; descent's formula syntax (^ is power)
FORMULA_C = 0.1
BOXES = {
    "double-well": ((-2.0, 2.0), (-1.5, 1.5)),
    "rosenbrock": ((-2.048, 2.048), (-2.048, 2.048)),
    "formula": ((-3.0, 3.0), (-3.0, 3.0)),  # formula_landscape's default box
}
# Rates at which no particle of a uniform swarm over the box diverges (Rosenbrock's wall curvature
# reaches ~6e3; heavy ball is stable for lr < 2(1 + beta)/6e3), so every step does full work.
HYPER = {
    ("double-well", "momentum"): {"lr": 0.01, "beta": 0.9},
    ("double-well", "adam"): {"lr": 0.01},
    ("rosenbrock", "momentum"): {"lr": 1e-4, "beta": 0.9},
    ("rosenbrock", "adam"): {"lr": 1e-3},
    ("formula", "momentum"): {"lr": 0.01, "beta": 0.9},
}
TILT = 0.3
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
BLOCK = 256
FLUSH_BELOW = 2.0**-100  # float32 guard: 7.9e-31, eight decades above the subnormal range
TOL = {"float64": 1e-10, "float32": 1e-3}
SAMPLES = 16
MAX_RUNS = 15  # timed runs at most
MAX_SECONDS = 20.0  # past this many seconds of timed runs, two runs are enough


# --- the shared problem --------------------------------------------------------------------------
def starts(landscape: str, n: int, dtype: str, seed: int) -> np.ndarray:
    """Uniform starts in the box, drawn in float64 and cast: the same for every contender."""
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = BOXES[landscape]
    pos = np.empty((n, 2))
    pos[:, 0] = rng.uniform(x0, x1, n)
    pos[:, 1] = rng.uniform(y0, y1, n)
    return np.ascontiguousarray(pos.astype(dtype))


def adam_coefficients(steps: int, lr: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Per step t = 1..steps: lr / (1 - b1^t) and 1 / sqrt(1 - b2^t) (computed in float64)."""
    t = np.arange(1, steps + 1, dtype=np.float64)
    c1 = lr / (1 - ADAM_B1**t)
    c2 = 1 / np.sqrt(1 - ADAM_B2**t)
    return c1.astype(dtype), c2.astype(dtype)


def sample_rows(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, SAMPLES).astype(np.int64))


class NotAvailable(Exception):
    """A contender that cannot run here (reported as a row, never fatal)."""


class NotInstalled(NotAvailable):
    """A contender whose package is missing."""


# --- contenders (each runs in a worker process) ---------------------------------------------------
class Runner:
    """``compile()`` once (timed as warm-up; ``compile_s`` the compilation alone where known), then
    ``run()`` -> final positions [N, 2] (float64 NumPy) and the number of particles still active."""

    compile_s: float | None = None

    def __init__(self, case: dict):
        self.case = case
        self.landscape, self.optimizer = case["landscape"], case["optimizer"]
        self.dtype, self.n, self.steps = case["dtype"], case["n"], case["steps"]
        self.hyper = HYPER[(self.landscape, self.optimizer)]
        self.x0 = starts(self.landscape, self.n, self.dtype, case["seed"])

    def compile(self) -> None:
        raise NotImplementedError

    def run(self) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def info(self) -> dict:
        return {}


class JaxRunner(Runner):
    def compile(self) -> None:
        try:
            import jax
        except ImportError:
            raise NotInstalled(
                "jax is not installed (the bench extra: pip install 'descent[bench]')"
            ) from None

        jax.config.update("jax_enable_x64", self.dtype == "float64")
        import jax.numpy as jnp
        from jax import lax

        def u_well(p):
            x, y = p[0], p[1]
            a = x * x - 1
            return a * a - TILT * x + y * y

        def u_rosen(p):
            x, y = p[0], p[1]
            t = y - x * x
            o = 1 - x
            return 100 * t * t + o * o

        grad = jax.vmap(jax.grad(u_well if self.landscape == "double-well" else u_rosen))
        lr = self.hyper["lr"]
        dt = jnp.float64 if self.dtype == "float64" else jnp.float32
        if self.optimizer == "momentum":
            beta = self.hyper["beta"]

            def body(carry, _):
                w, v = carry
                v = beta * v - lr * grad(w)
                return (w + v, v), None

            def run(w0):
                (w, _), _ = lax.scan(body, (w0, jnp.zeros_like(w0)), None, length=self.steps)
                return w

            args = ()
        else:
            c1, c2 = adam_coefficients(self.steps, lr, self.dtype)

            def body(carry, coef):
                w, m, s = carry
                a1, a2 = coef
                g = grad(w)
                m = ADAM_B1 * m + (1 - ADAM_B1) * g
                s = ADAM_B2 * s + (1 - ADAM_B2) * g * g
                w = w - a1 * m / (jnp.sqrt(s) * a2 + ADAM_EPS)
                return (w, m, s), None

            def run(w0, c1, c2):
                z = jnp.zeros_like(w0)
                (w, _, _), _ = lax.scan(body, (w0, z, z), (c1, c2))
                return w

            args = (jnp.asarray(c1, dt), jnp.asarray(c2, dt))
        w0 = jnp.asarray(self.x0, dt)
        t0 = time.perf_counter()
        self._compiled = jax.jit(run).lower(w0, *args).compile()
        self.compile_s = time.perf_counter() - t0
        self._args = (w0, *args)
        self._compiled(*self._args).block_until_ready()  # first run (allocations) counted as warm-up

    def run(self) -> tuple[np.ndarray, int]:
        w = np.asarray(self._compiled(*self._args).block_until_ready(), dtype=np.float64)
        return w, int(np.isfinite(w).all(axis=1).sum())

    def info(self) -> dict:
        import jax
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "jax_devices": str(jax.devices())}


def _swap_mxcsr():
    """A Numba intrinsic ``swap_mxcsr(new) -> old`` for the x86 SSE control register (FTZ/DAZ bits)."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def swap_mxcsr(typingctx, val):
        sig = types.uint32(types.uint32)

        def codegen(context, builder, signature, args):
            i32, i8p = ir.IntType(32), ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i8p])
            stmxcsr = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.stmxcsr")
            ldmxcsr = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.ldmxcsr")
            slot = cgutils.alloca_once(builder, i32)
            ptr = builder.bitcast(slot, i8p)
            builder.call(stmxcsr, [ptr])
            old = builder.load(slot)
            builder.store(args[0], slot)
            builder.call(ldmxcsr, [ptr])
            return old

        return sig, codegen

    return swap_mxcsr


FTZ_DAZ = 0x8040  # MXCSR bits: flush-to-zero (15) and denormals-are-zero (6)
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _numba_kernels(landscape: str, optimizer: str, dtype: str, mode: str):
    """Build the blocked kernel for one (landscape, optimizer, dtype, subnormal mode).

    ``mode``: "none"; "guard" (flush |state| < FLUSH_BELOW to zero every step, branch-free);
    "ftz" (set the FTZ and DAZ bits of MXCSR on each worker thread for the block, restore after).
    """
    import numba
    from numba import prange

    guard = mode == "guard"
    ftz = mode == "ftz"
    swap_mxcsr = _swap_mxcsr() if ftz else None
    FTZ_BITS = np.uint32(FTZ_DAZ)
    MXCSR_FTZ = np.uint32(0x1F80 | FTZ_DAZ)

    nt = np.float32 if dtype == "float32" else np.float64
    flags = {"contract"}

    # Typed constants: a float64 literal in a float32 kernel would promote the arithmetic.
    ONE, TWO, FOUR, HUNDRED, ZERO = nt(1), nt(2), nt(4), nt(100), nt(0)
    TILT_T = nt(TILT)
    FLUSH = nt(FLUSH_BELOW)

    if landscape == "double-well":

        @numba.njit(inline="always", fastmath=flags)
        def grad(x, y):
            return FOUR * x * (x * x - ONE) - TILT_T, TWO * y

    else:

        @numba.njit(inline="always", fastmath=flags)
        def grad(x, y):
            t = y - x * x
            return -FOUR * HUNDRED * x * t - TWO * (ONE - x), TWO * HUNDRED * t

    @numba.njit(inline="always", fastmath=flags)
    def flush(a):
        return a if abs(a) >= FLUSH else ZERO

    if optimizer == "momentum":

        @numba.njit(parallel=True, fastmath=flags)
        def kernel(pos, steps, lr, beta):
            n = pos.shape[0]
            nblocks = (n + BLOCK - 1) // BLOCK
            for b in prange(nblocks):
                start = b * BLOCK
                m = min(BLOCK, n - start)
                if ftz:
                    saved = swap_mxcsr(MXCSR_FTZ)  # default masks + FTZ/DAZ, then keep the old rest
                    saved = swap_mxcsr(saved | FTZ_BITS)
                x = np.empty(BLOCK, nt)
                y = np.empty(BLOCK, nt)
                vx = np.zeros(BLOCK, nt)
                vy = np.zeros(BLOCK, nt)
                for i in range(m):
                    x[i] = pos[start + i, 0]
                    y[i] = pos[start + i, 1]
                for _ in range(steps):
                    for i in range(m):
                        gx, gy = grad(x[i], y[i])
                        ux = beta * vx[i] - lr * gx
                        uy = beta * vy[i] - lr * gy
                        if guard:
                            ux = flush(ux)
                            uy = flush(uy)
                            x[i] = flush(x[i] + ux)
                            y[i] = flush(y[i] + uy)
                        else:
                            x[i] = x[i] + ux
                            y[i] = y[i] + uy
                        vx[i] = ux
                        vy[i] = uy
                for i in range(m):
                    pos[start + i, 0] = x[i]
                    pos[start + i, 1] = y[i]
                if ftz:
                    swap_mxcsr(saved)

    else:
        B1, B2, EPS = nt(ADAM_B1), nt(ADAM_B2), nt(ADAM_EPS)
        OMB1, OMB2 = nt(1 - ADAM_B1), nt(1 - ADAM_B2)

        @numba.njit(parallel=True, fastmath=flags)
        def kernel(pos, steps, c1, c2):
            n = pos.shape[0]
            nblocks = (n + BLOCK - 1) // BLOCK
            for b in prange(nblocks):
                start = b * BLOCK
                m = min(BLOCK, n - start)
                if ftz:
                    saved = swap_mxcsr(MXCSR_FTZ)  # default masks + FTZ/DAZ, then keep the old rest
                    saved = swap_mxcsr(saved | FTZ_BITS)
                x = np.empty(BLOCK, nt)
                y = np.empty(BLOCK, nt)
                mx = np.zeros(BLOCK, nt)
                my = np.zeros(BLOCK, nt)
                sx = np.zeros(BLOCK, nt)
                sy = np.zeros(BLOCK, nt)
                for i in range(m):
                    x[i] = pos[start + i, 0]
                    y[i] = pos[start + i, 1]
                for k in range(steps):
                    a1 = c1[k]
                    a2 = c2[k]
                    for i in range(m):
                        gx, gy = grad(x[i], y[i])
                        mxi = B1 * mx[i] + OMB1 * gx
                        myi = B1 * my[i] + OMB1 * gy
                        sxi = B2 * sx[i] + OMB2 * gx * gx
                        syi = B2 * sy[i] + OMB2 * gy * gy
                        if guard:
                            mxi = flush(mxi)
                            myi = flush(myi)
                            sxi = flush(sxi)
                            syi = flush(syi)
                        x[i] = x[i] - a1 * mxi / (np.sqrt(sxi) * a2 + EPS)
                        y[i] = y[i] - a1 * myi / (np.sqrt(syi) * a2 + EPS)
                        mx[i] = mxi
                        my[i] = myi
                        sx[i] = sxi
                        sy[i] = syi
                for i in range(m):
                    pos[start + i, 0] = x[i]
                    pos[start + i, 1] = y[i]
                if ftz:
                    swap_mxcsr(saved)

    return kernel


def _numba_formula_kernel(dtype: str, ftz: bool):
    """A hand-written momentum kernel for ``FORMULA``: value and gradient every step, and a
    divergence check every step (a particle whose U or new position is not finite keeps its last
    finite state and is stopped; the step is recorded in ``stop``, -1 while running). Float32 with
    FTZ/DAZ around each block, as descent's float32 kernels run."""
    import numba
    from numba import prange

    swap_mxcsr = _swap_mxcsr() if ftz else None
    FTZ_BITS = np.uint32(FTZ_DAZ)
    MXCSR_FTZ = np.uint32(0x1F80 | FTZ_DAZ)
    nt = np.float32 if dtype == "float32" else np.float64
    flags = {"contract"}
    C, TWO_C, ZERO, MINUS_ONE = nt(FORMULA_C), nt(2 * FORMULA_C), nt(0), nt(-1)

    @numba.njit(inline="always", fastmath=flags)
    def value_and_grad(x, y):
        sx, cx, sy, cy = math.sin(x), math.cos(x), math.sin(y), math.cos(y)
        return sx * cy + C * (x * x + y * y), cx * cy + TWO_C * x, TWO_C * y - sx * sy

    @numba.njit(parallel=True, fastmath=flags)
    def kernel(pos, steps, lr, beta, stop):
        n = pos.shape[0]
        nblocks = (n + BLOCK - 1) // BLOCK
        for b in prange(nblocks):
            start = b * BLOCK
            m = min(BLOCK, n - start)
            if ftz:
                saved = swap_mxcsr(MXCSR_FTZ)
                saved = swap_mxcsr(saved | FTZ_BITS)
            x = np.empty(BLOCK, nt)
            y = np.empty(BLOCK, nt)
            vx = np.zeros(BLOCK, nt)
            vy = np.zeros(BLOCK, nt)
            st = np.full(BLOCK, MINUS_ONE, nt)  # the stop step, as a float of the kernel's type
            for i in range(m):
                x[i] = pos[start + i, 0]
                y[i] = pos[start + i, 1]
            for k in range(steps):
                kf = nt(k)
                for i in range(m):
                    u, gx, gy = value_and_grad(x[i], y[i])
                    ux = beta * vx[i] - lr * gx
                    uy = beta * vy[i] - lr * gy
                    nx = x[i] + ux
                    ny = y[i] + uy
                    running = st[i] < ZERO
                    ok = running & math.isfinite(u) & math.isfinite(nx) & math.isfinite(ny)
                    x[i] = nx if ok else x[i]
                    y[i] = ny if ok else y[i]
                    vx[i] = ux if ok else vx[i]
                    vy[i] = uy if ok else vy[i]
                    st[i] = kf if running and not ok else st[i]
            for i in range(m):
                pos[start + i, 0] = x[i]
                pos[start + i, 1] = y[i]
                stop[start + i] = np.int64(st[i])
            if ftz:
                swap_mxcsr(saved)

    return kernel


class NumbaRunner(Runner):
    subnormals = "none"  # float32 only; float64 never reaches subnormals here

    def compile(self) -> None:
        import numba

        numba.set_num_threads(self.case["threads"])
        self.mode = self.subnormals if self.dtype == "float32" else "none"
        if self.mode == "ftz" and not X86:
            raise NotAvailable("FTZ/DAZ through MXCSR is x86 only")
        t0 = time.perf_counter()
        self._kernel = _numba_kernels(self.landscape, self.optimizer, self.dtype, self.mode)
        nt = np.dtype(self.dtype).type
        if self.optimizer == "momentum":
            self._consts = (nt(self.hyper["lr"]), nt(self.hyper["beta"]))
        else:
            self._consts = adam_coefficients(self.steps, self.hyper["lr"], self.dtype)
        self._kernel(self.x0[: BLOCK + 3].copy(), 1, *self._consts)  # compile (and a 1-step run)
        self.compile_s = time.perf_counter() - t0

    def run(self) -> tuple[np.ndarray, int]:
        pos = self.x0.copy()
        self._kernel(pos, self.steps, *self._consts)
        w = pos.astype(np.float64)
        return w, int(np.isfinite(w).all(axis=1).sum())

    def info(self) -> dict:
        import numba

        return {"numba": numba.__version__, "numba_threads": numba.get_num_threads(), "subnormals": self.mode}


class NumbaGuardRunner(NumbaRunner):
    subnormals = "guard"


class NumbaFtzRunner(NumbaRunner):
    subnormals = "ftz"


class NumbaFormulaRunner(Runner):
    """The hand-written kernel of ``FORMULA`` (momentum only), with its divergence check."""

    def compile(self) -> None:
        import numba

        numba.set_num_threads(self.case["threads"])
        self.ftz = self.dtype == "float32" and X86
        t0 = time.perf_counter()
        self._kernel = _numba_formula_kernel(self.dtype, self.ftz)
        nt = np.dtype(self.dtype).type
        self._consts = (nt(self.hyper["lr"]), nt(self.hyper["beta"]))
        self._kernel(self.x0[: BLOCK + 3].copy(), 1, *self._consts, np.zeros(BLOCK + 3, np.int64))
        self.compile_s = time.perf_counter() - t0

    def run(self) -> tuple[np.ndarray, int]:
        pos = self.x0.copy()
        stop = np.empty(self.n, np.int64)
        self._kernel(pos, self.steps, *self._consts, stop)
        return pos.astype(np.float64), int((stop < 0).sum())

    def info(self) -> dict:
        import numba

        return {"numba": numba.__version__, "numba_threads": numba.get_num_threads(), "ftz": self.ftz}


class TorchOptimRunner(Runner):
    def compile(self) -> None:
        import torch

        torch.set_num_threads(self.case["threads"])
        self._torch = torch
        self.run(steps=20)

    def _u(self, p):
        x, y = p[:, 0], p[:, 1]
        if self.landscape == "double-well":
            a = x * x - 1
            return a * a - TILT * x + y * y
        t = y - x * x
        o = 1 - x
        return 100 * t * t + o * o

    def run(self, steps: int | None = None) -> tuple[np.ndarray, int]:
        torch = self._torch
        steps = self.steps if steps is None else steps
        p = torch.nn.Parameter(torch.from_numpy(self.x0.copy()))
        if self.optimizer == "momentum":
            # torch's form b <- beta*b + g, w <- w - lr*b is the seeds' form with v = -lr*b.
            opt = torch.optim.SGD([p], lr=self.hyper["lr"], momentum=self.hyper["beta"])
        else:
            opt = torch.optim.Adam([p], lr=self.hyper["lr"], betas=(ADAM_B1, ADAM_B2), eps=ADAM_EPS)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            self._u(p).sum().backward()
            opt.step()
        w = p.detach().numpy().astype(np.float64)
        return w, int(np.isfinite(w).all(axis=1).sum())

    def info(self) -> dict:
        return {"torch": self._torch.__version__, "torch_threads": self._torch.get_num_threads()}


class SimulateRunner(Runner):
    """``descent.simulate`` with ``SaveAt.summary()`` and the default events (nothing stops a
    particle but divergence); the whole call is timed."""

    backend = "torch"

    def compile(self) -> None:
        import torch

        from descent.dynamics import SaveAt, simulate
        from descent.landscapes import get_landscape
        from descent.landscapes.formula import formula_landscape
        from descent.optim import Optimizer

        torch.set_num_threads(self.case["threads"])
        self._torch = torch
        self._simulate, self._save = simulate, SaveAt.summary()
        if self.landscape == "formula":
            self._land = formula_landscape(FORMULA)
        else:
            self._land = get_landscape(self.landscape)
        hyper = dict(self.hyper)
        if self.optimizer == "momentum":
            hyper["momentum"] = hyper.pop("beta")
        self._opt = Optimizer.build(self.optimizer, **hyper)
        self.kernel_runs: list[dict] = []
        # the kernel: compile (or load from the disk cache) and a whole run; torch: 20 steps
        self.run(steps=self.steps if self.backend == "kernel" else 20)
        if self.backend == "kernel":
            self.compile_s = self.kernel_runs[0].get("compile_seconds")
            self.kernel_runs.clear()

    def run(self, steps: int | None = None) -> tuple[np.ndarray, int]:
        steps = self.steps if steps is None else steps
        x0 = self._torch.from_numpy(self.x0.copy())
        traj = self._simulate(self._land, self._opt, x0, steps, save=self._save, backend=self.backend)
        if self.backend == "kernel":
            from descent.kernels.backend import kernel_info

            self.kernel_runs.append(kernel_info())
        w = traj.final_position.detach().cpu().numpy().astype(np.float64)
        return w, int((traj.stop_step < 0).sum())

    def info(self) -> dict:
        out = {"torch": self._torch.__version__, "torch_threads": self._torch.get_num_threads()}
        if self.backend == "kernel":
            from descent.kernels import backend

            out["flush_float32"] = bool(getattr(backend, "FLUSH_FLOAT32", False))
            out["kernel_run_s"] = [r.get("run_seconds") for r in self.kernel_runs]
        return out


class SimulateKernelRunner(SimulateRunner):
    backend = "kernel"


RUNNERS = {
    "jax": JaxRunner,
    "numba": NumbaRunner,
    "numba-guard": NumbaGuardRunner,
    "numba-ftz": NumbaFtzRunner,
    "torch-optim": TorchOptimRunner,
    "simulate-torch": SimulateRunner,
    "simulate-kernel": SimulateKernelRunner,
    "numba-formula": NumbaFormulaRunner,
}


def timed_runs(fn, repeat: int, min_seconds: float) -> list[float]:
    """Time ``fn()`` ``repeat`` times (only twice once the runs last over ``MAX_SECONDS`` in all),
    and more while they last under ``min_seconds`` in all (at most ``MAX_RUNS``)."""
    times: list[float] = []

    def more() -> bool:
        n, total = len(times), sum(times)
        if n < min(repeat, 2) or (n < repeat and total < MAX_SECONDS):
            return True
        return total < min_seconds and n < MAX_RUNS

    while more():
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def fail(exc: Exception) -> dict:
    status = "not installed" if isinstance(exc, NotInstalled) else "not available"
    why = str(exc) if isinstance(exc, NotAvailable) else f"{type(exc).__name__}: {exc}"
    return {"status": status, "why": " ".join(why.split())[:300]}


def worker(name: str, case: dict) -> dict:
    """One contender on one case: warm-up, timed runs, the final state of a few particles."""
    t0 = time.perf_counter()
    try:
        runner = RUNNERS[name](case)
        runner.compile()
    except Exception as exc:  # noqa: BLE001 - a contender that cannot run is reported, not fatal
        return fail(exc)
    warmup_s = time.perf_counter() - t0
    last: list = []
    try:
        times = timed_runs(lambda: last.append(runner.run()), case["repeat"], case["min_seconds"])
    except Exception as exc:  # noqa: BLE001
        return fail(exc)
    result, active = last[-1]
    return {
        "status": "ok",
        "compile_s": runner.compile_s,
        "warmup_s": warmup_s,
        "times_s": times,
        "active": active,
        "finite": int(np.isfinite(result).all(axis=1).sum()),
        "samples": result[sample_rows(case["n"])].tolist(),
        "info": runner.info(),
    }


def steps_worker(case: dict) -> dict:
    """simulate-kernel at one N for several step counts, taking turns (figure 4, cost against steps)."""
    try:
        runner = SimulateKernelRunner(case)
        runner.compile()
    except Exception as exc:  # noqa: BLE001
        return fail(exc)
    counts = case["step_counts"]
    times = {k: [] for k in counts}
    kernel = {k: [] for k in counts}
    active = {k: case["n"] for k in counts}
    for _ in range(case["repeat"]):
        for k in counts:
            t0 = time.perf_counter()
            _, act = runner.run(steps=k)
            times[k].append(time.perf_counter() - t0)
            kernel[k].append(runner.kernel_runs[-1].get("run_seconds"))
            active[k] = min(active[k], act)
    return {"status": "ok", "times_s": times, "kernel_s": kernel, "active": active}


def arena_worker(case: dict) -> dict:
    """The Arena's case in a fresh process: import, the first call, then warm calls."""
    t0 = time.perf_counter()
    import torch

    import descent
    from descent.dynamics import SaveAt
    from descent.kernels.backend import kernel_info

    import_s = time.perf_counter() - t0
    torch.set_num_threads(case["threads"])
    well = descent.get_landscape("double-well")
    hyper = HYPER[("double-well", "momentum")]
    opt = descent.Optimizer.build("momentum", lr=hyper["lr"], momentum=hyper["beta"])
    x0 = well.start()
    save = SaveAt(every=1)

    def call():
        return descent.simulate(well, opt, x0, case["steps"], save=save, backend="kernel")

    try:
        t0 = time.perf_counter()
        traj = call()
        first_s = time.perf_counter() - t0
        info = kernel_info()
        warm = [timed_runs(call, 1, 0.0)[0] for _ in range(case["calls"])]
    except Exception as exc:  # noqa: BLE001
        return fail(exc)
    return {
        "status": "ok",
        "import_s": import_s,
        "first_s": first_s,
        "compile_s": info.get("compile_seconds"),
        "warm_s": warm,
        "frames": int(traj.positions.shape[0]),
        "outcome": traj.outcomes[0],
    }


def memory_worker(case: dict) -> dict:
    """One large summary run in a fresh process; peak resident memory from getrusage."""
    import torch

    from descent.dynamics import SaveAt, simulate
    from descent.kernels.backend import kernel_info
    from descent.landscapes import get_landscape
    from descent.optim import Optimizer

    torch.set_num_threads(case["threads"])
    well = get_landscape("double-well")
    hyper = HYPER[("double-well", "momentum")]
    opt = Optimizer.build("momentum", lr=hyper["lr"], momentum=hyper["beta"])
    dtype = getattr(torch, case["dtype"])
    n = case["n"]
    gen = torch.Generator().manual_seed(case["seed"])
    (x0, x1), (y0, y1) = BOXES["double-well"]
    pos = torch.rand(n, 2, dtype=dtype, generator=gen)  # uniform in the box, made in place
    pos[:, 0].mul_(x1 - x0).add_(x0)
    pos[:, 1].mul_(y1 - y0).add_(y0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        t0 = time.perf_counter()
        traj = simulate(well, opt, pos, case["steps"], save=SaveAt.summary(), backend="kernel")
        seconds = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        return fail(exc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    info = kernel_info()
    return {
        "status": "ok",
        "seconds": seconds,
        "kernel_s": info.get("run_seconds"),
        "compile_s": info.get("compile_seconds"),
        "peak_bytes": peak,
        "before_bytes": before,
        "active": int((traj.stop_step < 0).sum()),
    }


WORKERS = {"steps": steps_worker, "arena": arena_worker, "memory": memory_worker}


def main() -> int:
    """``--worker NAME --case JSON``: run one measurement, print its result as one JSON line."""
    name, case = sys.argv[sys.argv.index("--worker") + 1], json.loads(sys.argv[sys.argv.index("--case") + 1])
    res = WORKERS[name](case) if name in WORKERS else worker(name, case)
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
