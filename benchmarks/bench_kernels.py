"""Compiled kernels against JAX and torch: particle-steps per second on the same problem, side by side.

For each landscape (double well ``U = (x^2 - 1)^2 - 0.3x + y^2``, Rosenbrock 2-D), optimizer
(momentum in the seeds' form ``v <- beta*v - lr*g, w <- w + v``; Adam), dtype and swarm size N, the
same run (starts uniform in the landscape's box, seeded; ``--steps`` steps; only the final state
kept) is timed for every contender, each in its own subprocess pinned to ``--threads`` CPUs:

``jax``             ``jax.jit`` of ``lax.scan`` (default unroll) over steps of ``jax.vmap(jax.grad(U))``;
                    ``jax_enable_x64`` for float64
``numba``           a hand-written kernel: ``numba.njit(parallel=True, fastmath={"contract"})``, blocks
                    of 256 particles in local arrays, the step loop inside, typed constants; no events,
                    nothing done about subnormals
``numba-guard``     the same kernel flushing |state| < 2^-100 to zero every step, branch-free (float32
                    only: on the double well y decays through the float32 subnormals, steps ~1700-1950)
``numba-ftz``       the same kernel with the FTZ and DAZ bits of MXCSR set on each worker thread around
                    each block, restored after (float32 only; x86)
``torch-optim``     ``torch.optim.SGD(momentum)`` / ``torch.optim.Adam`` over one ``nn.Parameter [N, 2]``,
                    ``U(p).sum().backward()`` every step
``simulate-torch``  ``descent.simulate(..., save=SaveAt.summary())`` (``backend="torch"`` where it exists)
``simulate-kernel`` ``descent.simulate(..., backend="kernel")`` where it exists ("not available" otherwise)

Compile / warm-up is timed separately and left out of the throughput. Each contender: warm-up, then
``--repeat`` timed runs; the median and the spread (max - min over median) are reported, with the
share of particles still active (finite, not stopped) at the end, and the ratio to JAX. Final positions
of a few particles are compared with JAX's (tolerance 1e-10 in float64, 1e-3 in float32).

    .venv/bin/python benchmarks/bench_kernels.py                        # N = 1e5, 2000 steps, all cases
    .venv/bin/python benchmarks/bench_kernels.py --sizes 1e5,1e6 --out out/bench/kernels.json
    .venv/bin/python benchmarks/bench_kernels.py --sizes 1e4 --steps 200 --repeat 1   # quick look
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import cpu_model  # benchmarks/machine.py (scripts run from this folder)

ROOT = Path(__file__).resolve().parents[1]
LANDSCAPES = ("double-well", "rosenbrock")
OPTIMIZERS = ("momentum", "adam")
DTYPES = ("float32", "float64")
CONTENDERS = ("jax", "numba", "numba-guard", "numba-ftz", "torch-optim", "simulate-torch", "simulate-kernel")
BOXES = {"double-well": ((-2.0, 2.0), (-1.5, 1.5)), "rosenbrock": ((-2.048, 2.048), (-2.048, 2.048))}
# Rates at which no particle of a uniform swarm over the box diverges (Rosenbrock's wall curvature
# reaches ~6e3; heavy ball is stable for lr < 2(1 + beta)/6e3), so every step does full work.
HYPER = {
    ("double-well", "momentum"): {"lr": 0.01, "beta": 0.9},
    ("double-well", "adam"): {"lr": 0.01},
    ("rosenbrock", "momentum"): {"lr": 1e-4, "beta": 0.9},
    ("rosenbrock", "adam"): {"lr": 1e-3},
}
TILT = 0.3
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
BLOCK = 256
FLUSH_BELOW = 2.0**-100  # float32 guard: 7.9e-31, eight decades above the subnormal range
TOL = {"float64": 1e-10, "float32": 1e-3}
SAMPLES = 16


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


# --- contenders (each runs in a worker process) ---------------------------------------------------
class Runner:
    """``compile()`` once (timed as compile / warm-up), then ``run()`` -> final positions [N, 2]
    (float64 NumPy) and the number of particles still active."""

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
        import jax

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
        self._compiled = jax.jit(run).lower(w0, *args).compile()
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


class NumbaRunner(Runner):
    subnormals = "none"  # float32 only; float64 never reaches subnormals here

    def compile(self) -> None:
        import numba

        numba.set_num_threads(self.case["threads"])
        self.mode = self.subnormals if self.dtype == "float32" else "none"
        self._kernel = _numba_kernels(self.landscape, self.optimizer, self.dtype, self.mode)
        nt = np.dtype(self.dtype).type
        if self.optimizer == "momentum":
            self._consts = (nt(self.hyper["lr"]), nt(self.hyper["beta"]))
        else:
            self._consts = adam_coefficients(self.steps, self.hyper["lr"], self.dtype)
        self._kernel(self.x0[: BLOCK + 3].copy(), 1, *self._consts)  # compile (and a 1-step run)

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


class TorchOptimRunner(Runner):
    def compile(self) -> None:
        import torch

        torch.set_num_threads(self.case["threads"])
        self._torch = torch
        self._warm = True
        self.run(steps=20)
        self._warm = False

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
    backend: str | None = "torch"

    def compile(self) -> None:
        import inspect

        import torch

        sys.path.insert(0, str(ROOT / "src"))
        from descent.dynamics import SaveAt, simulate
        from descent.landscapes import get_landscape
        from descent.optim import Optimizer

        torch.set_num_threads(self.case["threads"])
        self._torch = torch
        self._simulate, self._save = simulate, SaveAt.summary()
        self._land = get_landscape(self.landscape)
        hyper = dict(self.hyper)
        if self.optimizer == "momentum":
            hyper["momentum"] = hyper.pop("beta")
        self._opt = Optimizer.build(self.optimizer, **hyper)
        has_backend = "backend" in inspect.signature(simulate).parameters
        if self.backend == "kernel" and not has_backend:
            raise NotAvailable("descent.simulate has no backend= argument")
        self._kw = {"backend": self.backend} if has_backend else {}
        self.run(steps=self.steps if self.backend == "kernel" else 20)  # kernel: compile for the real run

    def run(self, steps: int | None = None) -> tuple[np.ndarray, int]:
        steps = self.steps if steps is None else steps
        x0 = self._torch.from_numpy(self.x0.copy())
        traj = self._simulate(self._land, self._opt, x0, steps, save=self._save, **self._kw)
        w = traj.final_position.detach().cpu().numpy().astype(np.float64)
        active = int((traj.stop_step < 0).sum()) if traj.stop_step is not None else -1
        return w, active

    def info(self) -> dict:
        return {"torch": self._torch.__version__, "torch_threads": self._torch.get_num_threads(), **self._kw}


class SimulateKernelRunner(SimulateRunner):
    backend = "kernel"


class NotAvailable(Exception):
    pass


RUNNERS = {
    "jax": JaxRunner,
    "numba": NumbaRunner,
    "numba-guard": NumbaGuardRunner,
    "numba-ftz": NumbaFtzRunner,
    "torch-optim": TorchOptimRunner,
    "simulate-torch": SimulateRunner,
    "simulate-kernel": SimulateKernelRunner,
}


def worker(name: str, case: dict) -> dict:
    runner = RUNNERS[name](case)
    t0 = time.perf_counter()
    try:
        runner.compile()
    except NotAvailable as exc:
        return {"status": "not available", "why": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a contender that cannot run is reported, not fatal
        return {"status": "not available", "why": f"{type(exc).__name__}: {exc}"[:300]}
    compile_s = time.perf_counter() - t0
    times, result, active = [], None, 0
    for _ in range(case["repeat"]):
        t0 = time.perf_counter()
        result, active = runner.run()
        times.append(time.perf_counter() - t0)
    rows = sample_rows(case["n"])
    return {
        "status": "ok",
        "compile_s": compile_s,
        "times_s": times,
        "active": active,
        "finite": int(np.isfinite(result).all(axis=1).sum()),
        "samples": result[rows].tolist(),
        "info": runner.info(),
    }


# --- the parent: one subprocess per (case, contender) --------------------------------------------
def worker_env(threads: int) -> dict:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        NUMBA_NUM_THREADS=str(threads),
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")])),
    )
    return env


def pin(threads: int):
    """Affinity to the first ``threads`` CPUs of this process's set (what XLA and torch size pools by)."""
    cpus = sorted(os.sched_getaffinity(0))[:threads] if hasattr(os, "sched_getaffinity") else None

    def apply() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    return apply, cpus


def spawn(name: str, case: dict, threads: int, timeout: float) -> dict:
    apply, _ = pin(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--case", json.dumps(case)]
    try:
        proc = subprocess.run(
            cmd, env=worker_env(threads), preexec_fn=apply, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"status": "not available", "why": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"status": "not available", "why": f"worker failed (rc {proc.returncode}): {proc.stderr[-300:]}"}


def summarise(res: dict, case: dict) -> dict:
    if res.get("status") != "ok":
        return res
    med = statistics.median(res["times_s"])
    res["median_s"] = med
    res["spread"] = (max(res["times_s"]) - min(res["times_s"])) / med
    res["rate"] = case["n"] * case["steps"] / med
    res["active_share"] = res["active"] / case["n"]
    return res


def fmt_rate(r: float) -> str:
    return f"{r:.2e}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1e5", help="comma list of N (default 1e5; e.g. 1e5,1e6)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--landscapes", default=",".join(LANDSCAPES))
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    ap.add_argument("--dtypes", default=",".join(DTYPES))
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per worker")
    ap.add_argument("--out", help="write every timing, the machine and the arguments as JSON")
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.case))), flush=True)
        return 0

    sizes = [int(float(s)) for s in args.sizes.split(",")]
    contenders = [c for c in args.contenders.split(",") if c]
    bad = [c for c in contenders if c not in RUNNERS]
    if bad:
        ap.error(f"unknown contenders {bad}; choose from {list(RUNNERS)}")
    _, cpus = pin(args.threads)
    import importlib.metadata as md

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "-"

    mach = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "pinned_cpus": cpus,
        "threads": args.threads,
        "python": platform.python_version(),
        **{p: version(p) for p in ("numpy", "torch", "jax", "jaxlib", "numba", "llvmlite")},
        "xla_flags": worker_env(args.threads)["XLA_FLAGS"],
    }
    print("# machine: " + json.dumps(mach), flush=True)
    rows = []
    for n in sizes:
        for land in args.landscapes.split(","):
            for opt in args.optimizers.split(","):
                for dtype in args.dtypes.split(","):
                    case = {
                        "landscape": land,
                        "optimizer": opt,
                        "dtype": dtype,
                        "n": n,
                        "steps": args.steps,
                        "seed": args.seed,
                        "repeat": args.repeat,
                        "threads": args.threads,
                    }
                    results = {}
                    for name in contenders:
                        if name in ("numba-guard", "numba-ftz") and dtype != "float32":
                            continue
                        res = summarise(spawn(name, case, args.threads, args.timeout), case)
                        results[name] = res
                        label = f"{land} {opt} {dtype} N={n:.0e} {name}"
                        if res["status"] == "ok":
                            print(
                                f"{label}: {fmt_rate(res['rate'])} ps/s, median {res['median_s']:.3f} s "
                                f"(spread {100 * res['spread']:.1f}%), compile {res['compile_s']:.2f} s, "
                                f"active {100 * res['active_share']:.1f}%",
                                flush=True,
                            )
                        else:
                            print(f"{label}: not available ({res.get('why', '')})", flush=True)
                    ref = results.get("jax")
                    ref_ok = ref is not None and ref.get("status") == "ok"
                    for name, res in results.items():
                        if res.get("status") == "ok" and ref_ok:
                            a, b = np.asarray(res["samples"]), np.asarray(ref["samples"])
                            res["max_abs_diff_vs_jax"] = float(np.max(np.abs(a - b)))
                            res["agrees"] = bool(res["max_abs_diff_vs_jax"] <= TOL[dtype])
                            res["x_jax"] = res["rate"] / ref["rate"]
                        rows.append({**case, "contender": name, **res})

    lines = [
        f"Machine: {mach['cpu']}, {mach['logical_cores']} logical cores, "
        f"{args.threads} threads per contender (pinned to CPUs {cpus}); Python {mach['python']}, "
        f"numpy {mach['numpy']}, torch {mach['torch']}, "
        f"jax {mach['jax']}, numba {mach['numba']} (llvmlite {mach['llvmlite']}); {mach['date']}.",
        "",
        f"{args.steps} steps, final state only, medians of {args.repeat} runs; "
        "spread = (max - min) / median; agreement: max |x - x_jax| over "
        f"{SAMPLES} particles (tolerance {TOL['float64']:g} float64, {TOL['float32']:g} float32).",
        "",
        "| landscape | optimizer | dtype | N | contender | particle-steps/s | × JAX | median s | spread "
        "| compile s | active | max abs diff vs JAX |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['landscape']} | {r['optimizer']} | {r['dtype']} | {r['n']:.0e} | {r['contender']} "
        if r.get("status") != "ok":
            why = str(r.get("why", "")).replace("|", "/")[:80]
            lines.append(head + f"| not available ({why}) | | | | | | |")
            continue
        diff = r.get("max_abs_diff_vs_jax")
        dtxt = "-" if diff is None else f"{diff:.1e}" + ("" if r.get("agrees") else " ✗")
        xj = r.get("x_jax")
        lines.append(
            head + f"| {fmt_rate(r['rate'])} | {'-' if xj is None else f'{xj:.2f}'} | {r['median_s']:.3f} "
            f"| {100 * r['spread']:.1f}% | {r['compile_s']:.2f} | {100 * r['active_share']:.1f}% | {dtxt} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": mach, "args": vars(args), "rows": rows}, indent=1))
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
