"""Compiled kernels against JAX, a hand-written Numba kernel and torch: every CPU figure of issue 9.

One command runs every figure side by side in one process tree (each measurement in its own
subprocess pinned to ``--threads`` CPUs) and, with ``--write-markdown``, replaces the section
"## Compiled kernels" of BENCHMARKS.md (nothing else in the file changes):

1. throughput: particle-steps per second on the same problem for every contender, per landscape
   (double well ``U = (x^2 - 1)^2 - 0.3x + y^2``, Rosenbrock 2-D), optimizer (momentum in the seeds'
   form ``v <- beta*v - lr*g, w <- w + v``; Adam), dtype and N; ratios of ``simulate-kernel`` to JAX
   (target >= 3) and to the torch.optim loop (target >= 100 float32, >= 50 float64);
2. formula: a user formula (not a built-in) through ``simulate(backend="kernel")`` against a
   hand-written Numba kernel of the same function (target: within 20 %);
3. arena: one ball, 1000 steps, every step saved: the whole ``simulate`` call warm in process
   (target < 2 ms) and the first call in a fresh process with the kernel cached on disk (< 500 ms);
4. scaling: throughput from N = 1e4 to 1e7 (flat within 1.5x) and cost against steps (linear: time
   per step within 1.2x);
5. memory: 1e7 particles x 1e4 steps with ``SaveAt.summary()`` in float64, peak resident memory
   (< 2 GiB);
6. compile time, reported apart from every throughput figure.

Contenders of figure 1 (``kernel_contenders.py``, which also runs each measurement as a worker):

``jax``             ``jax.jit`` of ``lax.scan`` (default unroll) over steps of ``jax.vmap(jax.grad(U))``;
                    ``jax_enable_x64`` for float64
``numba``           a hand-written kernel: ``numba.njit(parallel=True, fastmath={"contract"})``, blocks
                    of 256 particles in local arrays, the step loop inside, typed constants; no events,
                    nothing done about subnormals (the ceiling)
``numba-guard``     the same kernel flushing |state| < 2^-100 to zero every step, branch-free (float32
                    double well only: there y decays through the float32 subnormals, steps ~1700-1950)
``numba-ftz``       the same kernel with the FTZ and DAZ bits of MXCSR set on each worker thread around
                    each block, restored after (float32 double well only; x86)
``torch-optim``     ``torch.optim.SGD(momentum)`` / ``torch.optim.Adam`` over one ``nn.Parameter [N, 2]``,
                    ``U(p).sum().backward()`` every step
``simulate-torch``  ``descent.simulate(..., save=SaveAt.summary(), backend="torch")`` (not by default)
``simulate-kernel`` ``descent.simulate(..., save=SaveAt.summary(), backend="kernel")``, events on

The torch contenders cost the same every step, so they time ``min(steps, --slow-work / N)`` steps
(1000 at N = 1e5, 100 at N = 1e6) and their rate is per step. Compile / warm-up is timed apart.
Each measurement: a warm-up, then ``--repeat`` timed runs (two once they last over 20 s in all;
more while they last under a second in all, at most 15); the median and the spread
((max - min) / median) are reported, with the share of particles still active (finite, not
stopped) at the end.

    .venv/bin/python benchmarks/bench_kernels.py --write-markdown BENCHMARKS.md   # all (~20 min)
    .venv/bin/python benchmarks/bench_kernels.py --quick                          # smoke run (~2 min)
    .venv/bin/python benchmarks/bench_kernels.py --figures throughput --sizes 1e6 --contenders jax,numba
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from kernel_contenders import FORMULA, HYPER, RUNNERS, SAMPLES, TOL  # benchmarks/, next to this script
from machine import cpu_model, load_average

ROOT = Path(__file__).resolve().parents[1]
CONTENDER_SCRIPT = Path(__file__).resolve().parent / "kernel_contenders.py"
LANDSCAPES = ("double-well", "rosenbrock")
OPTIMIZERS = ("momentum", "adam")
DTYPES = ("float32", "float64")
CONTENDERS = ("jax", "numba", "numba-guard", "numba-ftz", "torch-optim", "simulate-kernel")
SLOW = ("torch-optim", "simulate-torch")  # time fewer steps at large N (their cost per step is constant)
FIGURES = ("throughput", "formula", "arena", "scaling", "memory")
GIB = 2.0**30

# The presets: the full run (every figure at the issue's sizes) and --quick (a smoke run, 1-2 min).
PRESETS = {
    "full": {
        "sizes": "1e5,1e6",
        "steps": 2000,
        "repeat": 3,
        "min_seconds": 1.0,
        "landscapes": ",".join(LANDSCAPES),
        "optimizers": ",".join(OPTIMIZERS),
        "dtypes": ",".join(DTYPES),
        "slow_work": 1e8,
        "formula_n": 100_000,
        "formula_steps": 2000,
        "arena_steps": 1000,
        "arena_calls": 100,
        "scale_sizes": (10_000, 100_000, 1_000_000, 10_000_000),
        "scale_steps": 2000,
        "scale_big": (100_000_000, 200),  # from this N on, this many steps (none here: 2000 steps at 1e7)
        "step_n": 100_000,
        "step_counts": (500, 1000, 2000, 4000),
        "memory_n": 10_000_000,
        "memory_steps": 10_000,
        "memory_dtypes": ("float32", "float64"),
    },
    "quick": {
        "sizes": "1e4",
        "steps": 200,
        "repeat": 1,
        "min_seconds": 0.1,
        "landscapes": "double-well",
        "optimizers": "momentum,adam",
        "dtypes": "float32",
        "slow_work": 2e6,
        "formula_n": 10_000,
        "formula_steps": 200,
        "arena_steps": 1000,
        "arena_calls": 20,
        "scale_sizes": (1_000, 10_000, 100_000),
        "scale_steps": 200,
        "scale_big": (100_000, 50),
        "step_n": 10_000,
        "step_counts": (100, 200, 400),
        "memory_n": 1_000_000,
        "memory_steps": 200,
        "memory_dtypes": ("float64", "float32"),
    },
}


def slow_steps(n: int, steps: int, slow_work: float) -> int:
    """The steps a slow contender times at N = n: all of them while n * steps <= slow_work."""
    return int(max(1, min(steps, slow_work // n)))


# --- the parent: one subprocess per measurement --------------------------------------------------
class Session:
    """The run's settings, its kernel caches and what it saw of the machine's load."""

    def __init__(self, threads: int, timeout: float):
        self.threads, self.timeout = threads, timeout
        self.tmp = Path(tempfile.mkdtemp(prefix="descent-bench-kernels-"))
        self.shared_cache = self.tmp / "shared"
        self.loads = [load_average()]
        self.fresh = 0

    def cold_cache(self) -> Path:
        """A new, empty kernel cache: the worker compiles its kernel from scratch."""
        self.fresh += 1
        return self.tmp / f"cold-{self.fresh}"

    def env(self, cache: Path, threads: int) -> dict:
        env = dict(os.environ)
        env.update(
            OMP_NUM_THREADS=str(threads),
            MKL_NUM_THREADS=str(threads),
            NUMBA_NUM_THREADS=str(threads),
            JAX_PLATFORMS="cpu",
            XLA_FLAGS=xla_flags(threads),
            DESCENT_KERNEL_CACHE=str(cache),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")])),
        )
        return env

    def spawn(self, name: str, case: dict, cache: Path | None = None, timeout: float | None = None) -> dict:
        """Run worker ``name`` on ``case`` in a subprocess pinned to ``case["threads"]`` CPUs, in
        the shared kernel cache unless ``cache`` is given."""
        timeout = self.timeout if timeout is None else timeout
        threads = case.get("threads", self.threads)
        apply, _ = pin(threads)
        cmd = [sys.executable, str(CONTENDER_SCRIPT), "--worker", name, "--case", json.dumps(case)]
        env = self.env(self.shared_cache if cache is None else cache, threads)
        try:
            proc = subprocess.run(
                cmd, env=env, preexec_fn=apply, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"status": "not available", "why": f"timed out after {timeout:.0f} s"}
        finally:
            self.loads.append(load_average())
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])[-300:]
        return {"status": "not available", "why": f"worker failed (rc {proc.returncode}): {tail}"}

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def xla_flags(threads: int) -> str:
    return f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}"


def pin(threads: int):
    """Affinity to the first ``threads`` CPUs of this process's set (what XLA and torch size pools by)."""
    cpus = sorted(os.sched_getaffinity(0))[:threads] if hasattr(os, "sched_getaffinity") else None

    def apply() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    return apply, cpus


def summarise(res: dict, n: int, steps: int) -> dict:
    """Median, spread, rate and active share of a worker's timed runs."""
    if res.get("status") != "ok":
        return res
    med = statistics.median(res["times_s"])
    res["median_s"] = med
    res["spread"] = (max(res["times_s"]) - min(res["times_s"])) / med
    res["rate"] = n * steps / med
    res["active_share"] = res["active"] / n
    kernel_s = [s for s in res.get("info", {}).get("kernel_run_s", []) if s]
    if kernel_s:
        res["kernel_rate"] = n * steps / statistics.median(kernel_s)
    return res


def ok(res: dict | None) -> bool:
    return res is not None and res.get("status") == "ok"


def unavailable(res: dict | None) -> str:
    if res is None:
        return "not run"
    if res.get("status") == "not installed":
        return "not installed"
    return "not available: " + str(res.get("why", "")).replace("|", "/")[:120]


def line_for(label: str, res: dict) -> str:
    if not ok(res):
        return f"{label}: {unavailable(res)}"
    comp = res.get("compile_s")
    comp_txt = "-" if comp is None else f"{comp:.2f} s"
    return (
        f"{label}: {res['rate']:.2e} ps/s, median {res['median_s']:.3f} s over {len(res['times_s'])} runs "
        f"(spread {100 * res['spread']:.1f}%), compile {comp_txt}, warm-up {res['warmup_s']:.2f} s, active "
        f"{100 * res['active_share']:.1f}%"
    )


# --- figure 1: throughput against JAX, the hand-written kernel and torch.optim ------------------
def figure_throughput(s: Session, cfg: dict) -> dict:
    rows = []
    grid = itertools.product(cfg["sizes"], cfg["landscapes"], cfg["optimizers"], cfg["dtypes"])
    for n, land, opt, dtype in grid:
        case = {
            "landscape": land, "optimizer": opt, "dtype": dtype, "n": n, "steps": cfg["steps"],
            "seed": cfg["seed"], "repeat": cfg["repeat"], "min_seconds": cfg["min_seconds"],
            "threads": s.threads,
        }  # fmt: skip
        rows += throughput_case(s, cfg, case)
    return {"rows": rows}


def throughput_case(s: Session, cfg: dict, case: dict) -> list[dict]:
    """Every contender on one case; ratios to JAX and agreement with its final positions."""
    n, land, dtype = case["n"], case["landscape"], case["dtype"]
    results = {}
    for name in cfg["contenders"]:
        if name in ("numba-guard", "numba-ftz") and (dtype, land) != ("float32", "double-well"):
            continue  # the subnormal variants: only where subnormals occur
        steps = slow_steps(n, cfg["steps"], cfg["slow_work"]) if name in SLOW else cfg["steps"]
        cache = s.cold_cache() if name == "simulate-kernel" else None
        res = summarise(s.spawn(name, {**case, "steps": steps}, cache=cache), n, steps)
        res["steps"] = steps
        results[name] = res
        label = f"{land} {case['optimizer']} {dtype} N={n:.0e} {name} ({steps} steps)"
        print(line_for(label, res), flush=True)
    ref = results.get("jax")
    rows = []
    for name, res in results.items():
        if ok(res) and ok(ref):
            res["x_jax"] = res["rate"] / ref["rate"]
            if res["steps"] == ref["steps"]:
                a, b = np.asarray(res["samples"]), np.asarray(ref["samples"])
                res["max_abs_diff_vs_jax"] = float(np.max(np.abs(a - b)))
                res["agrees"] = bool(res["max_abs_diff_vs_jax"] <= TOL[dtype])
        rows.append({**case, "contender": name, **res})
    return rows


def throughput_summary(rows: list[dict]) -> list[dict]:
    """Per case: simulate-kernel against JAX, torch-optim and the best hand-written kernel."""
    cases: dict[tuple, dict] = {}
    for r in rows:
        key = (r["landscape"], r["optimizer"], r["dtype"], r["n"])
        cases.setdefault(key, {})[r["contender"]] = r
    out = []
    for (land, opt, dtype, n), by in cases.items():
        k, j, t = by.get("simulate-kernel"), by.get("jax"), by.get("torch-optim")
        numbas = [by[c] for c in ("numba", "numba-guard", "numba-ftz") if ok(by.get(c))]
        best = max(numbas, key=lambda r: r["rate"]) if numbas else None
        torch_target = 100.0 if dtype == "float32" else 50.0
        out.append({
            "landscape": land, "optimizer": opt, "dtype": dtype, "n": n,
            "kernel": k, "jax": j, "torch": t, "numba": best,
            "x_jax": k["rate"] / j["rate"] if ok(k) and ok(j) else None,
            "x_torch": k["rate"] / t["rate"] if ok(k) and ok(t) else None,
            "numba_x_jax": best["rate"] / j["rate"] if best and ok(j) else None,
            "torch_target": torch_target,
        })  # fmt: skip
    return out


# --- figure 2: a user formula against a hand-written kernel --------------------------------------
def figure_formula(s: Session, cfg: dict) -> dict:
    rows = []
    for dtype in ("float64", "float32"):
        case = {
            "landscape": "formula", "optimizer": "momentum", "dtype": dtype, "n": cfg["formula_n"],
            "steps": cfg["formula_steps"], "seed": cfg["seed"], "repeat": cfg["repeat"],
            "min_seconds": cfg["min_seconds"], "threads": s.threads,
        }  # fmt: skip
        pair = {}
        for name in ("simulate-kernel", "numba-formula"):
            cache = s.cold_cache() if name == "simulate-kernel" else None
            res = summarise(s.spawn(name, case, cache=cache), case["n"], case["steps"])
            pair[name] = res
            print(line_for(f"formula momentum {dtype} N={case['n']:.0e} {name}", res), flush=True)
        k, h = pair["simulate-kernel"], pair["numba-formula"]
        ratio = k["rate"] / h["rate"] if ok(k) and ok(h) else None
        diff = None
        if ok(k) and ok(h):
            diff = float(np.max(np.abs(np.asarray(k["samples"]) - np.asarray(h["samples"]))))
        rows.append({"dtype": dtype, **case, "kernel": k, "numba": h, "ratio": ratio, "max_abs_diff": diff})
    return {"rows": rows}


# --- figure 3: the Arena's case -------------------------------------------------------------------
def figure_arena(s: Session, cfg: dict) -> dict:
    """Three fresh processes: an empty kernel cache (it compiles), then the kernel on disk, at the
    session's threads and at one thread."""
    case = {"steps": cfg["arena_steps"], "calls": cfg["arena_calls"], "threads": s.threads}
    cache = s.cold_cache()
    runs = {
        "cold": s.spawn("arena", case, cache=cache),
        "cached": s.spawn("arena", case, cache=cache),
        "cached_1": s.spawn("arena", {**case, "threads": 1}, cache=cache),
    }
    for key, res in runs.items():
        if ok(res):
            print(
                f"arena ({ARENA_LABELS[key]}): import {res['import_s']:.2f} s, first call "
                f"{1e3 * res['first_s']:.1f} ms (compile/load {res['compile_s']:.3f} s), warm median "
                f"{1e3 * statistics.median(res['warm_s']):.2f} ms",
                flush=True,
            )
        else:
            print(f"arena ({ARENA_LABELS[key]}): {unavailable(res)}", flush=True)
    return {**runs, "case": case}


ARENA_LABELS = {
    "cold": "fresh, empty cache",
    "cached": "fresh, kernel cached on disk",
    "cached_1": "fresh, kernel cached on disk, 1 thread",
}


# --- figure 4: scaling in N and in steps ----------------------------------------------------------
def figure_scaling(s: Session, cfg: dict) -> dict:
    big_n, big_steps = cfg["scale_big"]
    rows, steps_rows = [], []
    for dtype in ("float64", "float32"):
        for n in cfg["scale_sizes"]:
            steps = big_steps if n >= big_n else cfg["scale_steps"]
            case = {
                "landscape": "double-well", "optimizer": "momentum", "dtype": dtype, "n": n,
                "steps": steps, "seed": cfg["seed"], "repeat": cfg["repeat"],
                "min_seconds": cfg["min_seconds"], "threads": s.threads,
            }  # fmt: skip
            res = summarise(s.spawn("simulate-kernel", case), n, steps)
            print(
                line_for(f"scaling double-well momentum {dtype} N={n:.0e} ({steps} steps)", res), flush=True
            )
            rows.append({**case, **res})
    for dtype in ("float64", "float32"):
        case = {
            "landscape": "double-well", "optimizer": "momentum", "dtype": dtype, "n": cfg["step_n"],
            "steps": max(cfg["step_counts"]), "step_counts": list(cfg["step_counts"]), "seed": cfg["seed"],
            "repeat": max(cfg["repeat"], 5), "min_seconds": 0.0, "threads": s.threads,
        }  # fmt: skip
        res = s.spawn("steps", case)
        steps_rows.append({**case, **res})
        if ok(res):
            per = {k: statistics.median(v) / int(k) for k, v in res["times_s"].items()}
            print(
                f"steps {dtype} N={case['n']:.0e}: "
                + ", ".join(f"{k}: {1e6 * v:.1f} us/step" for k, v in per.items())
            )
        else:
            print(f"steps {dtype}: {unavailable(res)}", flush=True)
    return {"rows": rows, "steps": steps_rows}


# --- figure 5: memory of a large summary run ----------------------------------------------------
def figure_memory(s: Session, cfg: dict, scaling: dict | None) -> dict:
    n, steps = cfg["memory_n"], cfg["memory_steps"]
    rows = []
    for dtype in cfg["memory_dtypes"]:
        rate = None
        for r in (scaling or {}).get("rows", []):
            if r["dtype"] == dtype and ok(r):
                rate = r["rate"]  # the largest N measured, the closest to this one
        estimate = n * steps / rate if rate else None
        est_txt = f"about {estimate:.0f} s at {rate:.2e} ps/s" if estimate else "no estimate"
        print(f"memory {dtype}: {n:.0e} particles x {steps} steps, {est_txt}", flush=True)
        case = {"n": n, "steps": steps, "dtype": dtype, "seed": cfg["seed"], "threads": s.threads}
        timeout = max(600.0, 4 * estimate) if estimate else 1800.0
        res = s.spawn("memory", case, timeout=timeout)
        if ok(res):
            print(
                f"memory {dtype}: {res['seconds']:.1f} s, peak RSS {res['peak_bytes'] / GIB:.2f} GiB "
                f"(before the call {res['before_bytes'] / GIB:.2f} GiB), active {res['active'] / n:.1%}",
                flush=True,
            )
        else:
            print(f"memory {dtype}: {unavailable(res)}", flush=True)
        rows.append({**case, "estimate_s": estimate, **res})
    return {"rows": rows}


# --- Markdown -------------------------------------------------------------------------------------
def yes_no(value: float | None, target: float, above: bool = True) -> str:
    if value is None:
        return "n/a"
    return "yes" if (value >= target if above else value < target) else "no"


def fmt(x: float | None, spec: str = ".2f", missing: str = "-") -> str:
    return missing if x is None else format(x, spec)


def rate_cell(res: dict | None) -> str:
    return f"{res['rate']:.2e}" if ok(res) else unavailable(res)


def sci(n: int) -> str:
    return f"{n:.0e}".replace("e+0", "e").replace("e+", "e")


def worst(items: list[tuple[float | None, str]], key=min) -> tuple[float | None, str]:
    vals = [(v, label) for v, label in items if v is not None]
    return key(vals) if vals else (None, "")


def markdown(results: dict, mach: dict, cfg: dict, command: str, seconds: float, loads: list[float]) -> str:
    """The section "## Compiled kernels" of BENCHMARKS.md."""
    L: list[str] = ["## Compiled kernels", ""]
    L.append(
        f"`{command}` ({mach['date']}, {seconds / 60:.1f} min in "
        f"all{', quick preset' if cfg['quick'] else ''}). Machine: {mach['cpu']}, {mach['logical_cores']} "
        f"logical cores, shared (load average {loads[0]:.1f} at the start, {max(loads):.1f} at most between "
        f"measurements, {loads[-1]:.1f} at the end); every measurement in its own subprocess pinned to CPUs "
        f"{mach['pinned_cpus']} with {mach['threads']} threads (`OMP_NUM_THREADS`, `NUMBA_NUM_THREADS`, "
        f"torch and XLA: `{mach['xla_flags']}`). Python {mach['python']}, numpy {mach['numpy']}, torch "
        f"{mach['torch']}, jax/jaxlib {mach['jax']}/{mach['jaxlib']}, numba {mach['numba']} (llvmlite "
        f"{mach['llvmlite']})."
    )
    L.append("")
    L.append(
        "Every contender solves the same problem: seeded uniform starts in the landscape's box (drawn in "
        "float64 and cast), the same dtype, N, steps and hyper-parameters (momentum lr 0.01, beta 0.9 on "
        "the double well and the formula, lr 1e-4 on Rosenbrock; Adam lr 0.01 / 1e-3, betas 0.9/0.999, eps "
        "1e-8), only the final state kept (`SaveAt.summary()` for descent, whose events stay on). At these "
        "rates no particle diverges or stops: the share still active is printed per row. Compile and "
        f"warm-up are timed apart; medians of at least {cfg['repeat']} timed runs (more while they last "
        f"under {cfg['min_seconds']:g} s in all), spread = (max - min) / median. `simulate-kernel` times "
        "the whole `simulate` call, each in a fresh kernel cache (its compile column is a cold compile)."
    )
    L.append("")
    targets, sections = [], []

    thr = results.get("throughput")
    if isinstance(thr, dict):
        summary = throughput_summary(thr["rows"])
        label = lambda c: f"{c['landscape']} {c['optimizer']} {c['dtype']} N={sci(c['n'])}"  # noqa: E731
        v, where = worst([(c["x_jax"], label(c)) for c in summary])
        met = all(c["x_jax"] is not None and c["x_jax"] >= 3 for c in summary) if summary else False
        n_met = sum(1 for c in summary if c["x_jax"] is not None and c["x_jax"] >= 3)
        targets.append((
            "CPU, 2 threads, both dtypes, N = 1e5 and 1e6, 2000 steps, double well and Rosenbrock, "
            "momentum and Adam: simulate-kernel >= 3x JAX",
            f"{n_met} of {len(summary)} cases; lowest {fmt(v)}x ({where})" if v is not None else "n/a",
            "yes" if met else "no",
        ))  # fmt: skip
        for dtype, goal in (("float32", 100), ("float64", 50)):
            sub = [c for c in summary if c["dtype"] == dtype]
            if not sub:
                continue
            v, where = worst([(c["x_torch"], label(c)) for c in sub])
            met = all(c["x_torch"] is not None and c["x_torch"] >= goal for c in sub)
            targets.append((
                f"{dtype}: simulate-kernel >= {goal}x the torch.optim loop",
                f"lowest {fmt(v, '.0f')}x ({where})" if v is not None else "n/a",
                "yes" if met else "no",
            ))  # fmt: skip
        sections.append(throughput_markdown(thr, summary, cfg))
    elif thr is not None:
        sections.append(f"### 1. Throughput\n\nFigure failed: {thr}\n")

    form = results.get("formula")
    if isinstance(form, dict):
        vals = [(r["ratio"], r["dtype"]) for r in form["rows"]]
        v, where = worst(vals)
        met = all(r["ratio"] is not None and r["ratio"] >= 0.8 for r in form["rows"])
        targets.append((
            f"a user formula (`{FORMULA}`) within 20 % of a hand-written Numba kernel",
            ", ".join(f"{d} {fmt(r)}x" for r, d in vals) if v is not None else "n/a",
            "yes" if met else "no",
        ))  # fmt: skip
        sections.append(formula_markdown(form))
    elif form is not None:
        sections.append(f"### 2. A user formula\n\nFigure failed: {form}\n")

    arena = results.get("arena")
    if isinstance(arena, dict):
        warm = {
            k: statistics.median(arena[k]["warm_s"]) * 1e3 for k in ("cached", "cached_1") if ok(arena[k])
        }
        first = {k: arena[k]["first_s"] * 1e3 for k in ("cached", "cached_1") if ok(arena[k])}
        one = f"; {fmt(warm['cached_1'])} ms at 1 thread" if "cached_1" in warm else ""
        targets.append((
            "the Arena's case (1 ball, 1000 steps, every step saved), warm, in process: < 2 ms",
            f"{fmt(warm.get('cached'))} ms at {arena['case']['threads']} threads{one}",
            yes_no(warm.get("cached"), 2.0, above=False),
        ))  # fmt: skip
        one = f"; {fmt(first['cached_1'], '.0f')} ms at 1 thread" if "cached_1" in first else ""
        targets.append((
            "the same, first call in a fresh process, kernel cached on disk: < 500 ms",
            f"{fmt(first.get('cached'), '.0f')} ms at {arena['case']['threads']} threads{one}",
            yes_no(first.get("cached"), 500.0, above=False),
        ))  # fmt: skip
        sections.append(arena_markdown(arena))
    elif arena is not None:
        sections.append(f"### 3. The Arena's case\n\nFigure failed: {arena}\n")

    scal = results.get("scaling")
    if isinstance(scal, dict):
        flat, linear = scaling_ratios(scal)
        sizes = sorted({r["n"] for r in scal["rows"]})
        span = f"N = {sci(sizes[0])} to {sci(sizes[-1])}" if sizes else "N"
        targets.append((
            f"throughput flat within 1.5x from {span} (double well, momentum)",
            ", ".join(f"{d} {fmt(v)}x" for d, v in flat.items()),
            "yes" if flat and all(v is not None and v <= 1.5 for v in flat.values()) else "no",
        ))  # fmt: skip
        targets.append((
            "cost linear in steps: time per step within 1.2x over the step counts",
            ", ".join(f"{d} {fmt(v)}x" for d, v in linear.items()),
            "yes" if linear and all(v is not None and v <= 1.2 for v in linear.values()) else "no",
        ))  # fmt: skip
        sections.append(scaling_markdown(scal, flat, linear))
    elif scal is not None:
        sections.append(f"### 4. Scaling\n\nFigure failed: {scal}\n")

    mem = results.get("memory")
    if isinstance(mem, dict):
        cells, mets = [], []
        for r in mem["rows"]:
            if ok(r):
                cells.append(f"{r['dtype']} {r['peak_bytes'] / GIB:.2f} GiB")
                mets.append(r["peak_bytes"] < 2 * GIB)
            else:
                cells.append(f"{r['dtype']} {unavailable(r)}")
                mets.append(False)
        r0 = mem["rows"][0]
        targets.append((
            f"{sci(r0['n'])} particles x {r0['steps']} steps, `SaveAt.summary()`: < 2 GiB peak resident",
            ", ".join(cells), "yes" if mets and all(mets) else "no",
        ))  # fmt: skip
        sections.append(memory_markdown(mem))
    elif mem is not None:
        sections.append(f"### 5. Memory\n\nFigure failed: {mem}\n")

    compile_txt = compile_summary(results)
    if compile_txt:
        targets.append(("compile time reported apart from the throughput", compile_txt, "yes"))

    L += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    L += [f"| {t} | {m} | {y} |" for t, m, y in targets]
    L.append("")
    for sec in sections:
        L += [sec.rstrip("\n"), ""]
    return "\n".join(L).rstrip("\n") + "\n"


def throughput_markdown(thr: dict, summary: list[dict], cfg: dict) -> str:
    L = ["### 1. Throughput against JAX, torch.optim and a hand-written kernel", ""]
    slow = sorted({(r["n"], r["steps"]) for r in thr["rows"] if r["contender"] in SLOW and ok(r)})
    slow_txt = ", ".join(f"{s} steps at N = {sci(n)}" for n, s in slow) or "-"
    L.append(
        f"Particle-steps per second (ps/s), {cfg['steps']} steps. The torch.optim loop times fewer steps "
        f"where N x steps exceeds {cfg['slow_work']:.0e} ({slow_txt}) and its rate is per step: each of its "
        "steps does the same tensor work, so its cost is linear in steps. simulate-kernel: the whole call; "
        "beside it its kernel alone (`kernel_info()['run_seconds']`; the rest of the call sets up the "
        "outputs, labels the outcomes and builds the trajectory). The hand-written Numba kernel (no "
        "events; float32 on the double well: the best of plain, guard and FTZ) is the ceiling. Active: the "
        "share of simulate-kernel's particles not stopped at the end."
    )
    L += [
        "",
        "| landscape | optimizer | dtype | N | simulate-kernel ps/s | kernel alone | JAX ps/s | × JAX (>= "
        "3) | met | torch.optim ps/s | × torch (>= 100 f32, 50 f64) | met | hand-written Numba ps/s | its "
        "× JAX | active |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in summary:
        k = c["kernel"]
        active = f"{100 * k['active_share']:.1f}%" if ok(k) else "-"
        alone = fmt(k.get("kernel_rate"), ".2e") if ok(k) else "-"
        L.append(
            f"| {c['landscape']} | {c['optimizer']} | {c['dtype']} | {sci(c['n'])} | {rate_cell(k)} | "
            f"{alone} | {rate_cell(c['jax'])} | {fmt(c['x_jax'])} | {yes_no(c['x_jax'], 3.0)} | "
            f"{rate_cell(c['torch'])} | {fmt(c['x_torch'], '.0f')} | "
            f"{yes_no(c['x_torch'], c['torch_target'])} | {rate_cell(c['numba'])} | {fmt(c['numba_x_jax'])} "
            f"| {active} |"
        )
    L += [
        "",
        "Every contender (compile: JAX `lower().compile()`, Numba its compilation, simulate-kernel its "
        "kernel's cold compile; warm-up: the whole set-up including a first run; max |Δx| vs JAX over "
        f"{SAMPLES} particles spread through the swarm, ✗ above {TOL['float64']:g} float64 / "
        f"{TOL['float32']:g} float32, compared only at equal steps):",
        "",
        "| landscape | optimizer | dtype | N | contender | steps | ps/s | × JAX | median s | spread | runs "
        "| compile s | warm-up s | active | max abs diff vs JAX |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in thr["rows"]:
        head = f"| {r['landscape']} | {r['optimizer']} | {r['dtype']} | {sci(r['n'])} | {r['contender']} "
        if not ok(r):
            L.append(head + f"| {r.get('steps', '-')} | {unavailable(r)} | | | | | | | | |")
            continue
        diff = r.get("max_abs_diff_vs_jax")
        dtxt = "-" if diff is None else f"{diff:.1e}" + ("" if r.get("agrees") else " ✗")
        L.append(
            head + f"| {r['steps']} | {r['rate']:.2e} | {fmt(r.get('x_jax'))} | {r['median_s']:.3f} "
            f"| {100 * r['spread']:.0f}% | {len(r['times_s'])} | {fmt(r.get('compile_s'))} | "
            f"{r['warmup_s']:.2f} | {100 * r['active_share']:.1f}% | {dtxt} |"
        )
    return "\n".join(L)


def formula_markdown(form: dict) -> str:
    r0 = form["rows"][0]
    L = [
        "### 2. A user formula against a hand-written Numba kernel",
        "",
        f'`formula_landscape("{FORMULA}")` (not a built-in), momentum lr '
        f"{HYPER[('formula', 'momentum')]['lr']}, "
        f"beta {HYPER[('formula', 'momentum')]['beta']}, N = {sci(r0['n'])}, {r0['steps']} steps, starts "
        "uniform in "
        "[-3, 3]². Against it, a hand-written Numba kernel of the same function in the same blocked layout: "
        "value "
        "and gradient every step (sin and cos of each coordinate once), a divergence check every step (a "
        "particle "
        "whose U or new position is not finite keeps its last state and records its stop step), FTZ/DAZ "
        "around "
        "each block in float32 as descent's kernels do. What descent's kernel does besides: the events of "
        "`Events()` (leaving the far box, convergence counters on |g| and |update|, the running minimum of U "
        "and "
        "its step), every step. Target: simulate-kernel >= 0.8x the hand-written kernel.",
        "",
        "| dtype | simulate-kernel ps/s | hand-written ps/s | ratio (>= 0.8) | met | compile s (descent / "
        "hand) | active (descent / hand) | max abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in form["rows"]:
        k, h = r["kernel"], r["numba"]
        comp = f"{fmt(k.get('compile_s'))} / {fmt(h.get('compile_s'))}" if ok(k) and ok(h) else "-"
        act = f"{100 * k['active_share']:.1f}% / {100 * h['active_share']:.1f}%" if ok(k) and ok(h) else "-"
        L.append(
            f"| {r['dtype']} | {rate_cell(k)} | {rate_cell(h)} | {fmt(r['ratio'])} | "
            f"{yes_no(r['ratio'], 0.8)} | {comp} | {act} | {fmt(r['max_abs_diff'], '.1e')} |"
        )
    return "\n".join(L)


def arena_markdown(arena: dict) -> str:
    case = arena["case"]
    L = [
        "### 3. The Arena's case",
        "",
        f"One ball from the double well's default start, momentum lr 0.01, beta 0.9, {case['steps']} steps, "
        '`SaveAt(every=1)` (every step saved), float64, `simulate(..., backend="kernel")`, the whole call '
        "timed. Three fresh processes: the first with an empty kernel cache (it compiles), then two with the "
        f"kernel on disk, at {case['threads']} threads and at 1. Import: `import descent` (with torch), "
        f"timed apart. Warm: {case['calls']} further calls in the same process.",
        "",
        "| process | import s | first call ms | of which compile / load s | warm median ms | warm p10 ms | "
        "warm p90 ms | first < 500 ms | warm < 2 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in ARENA_LABELS.items():
        res = arena[key]
        if not ok(res):
            L.append(f"| {label} | {unavailable(res)} | | | | | | | |")
            continue
        w = sorted(res["warm_s"])
        p10, p90, med = w[int(0.1 * (len(w) - 1))], w[int(0.9 * (len(w) - 1))], statistics.median(w)
        first = "" if key == "cold" else yes_no(1e3 * res["first_s"], 500, above=False)
        L.append(
            f"| {label} | {res['import_s']:.2f} | {1e3 * res['first_s']:.1f} | "
            f"{fmt(res['compile_s'], '.3f')} | {1e3 * med:.2f} | {1e3 * p10:.2f} | {1e3 * p90:.2f} | "
            f"{first} | {yes_no(1e3 * med, 2, above=False)} |"
        )
    return "\n".join(L)


def scaling_ratios(scal: dict) -> tuple[dict, dict]:
    flat, linear = {}, {}
    for dtype in ("float64", "float32"):
        rows = [r for r in scal["rows"] if r["dtype"] == dtype]
        if rows:
            rates = [r["rate"] for r in rows if ok(r)]
            flat[dtype] = max(rates) / min(rates) if len(rates) == len(rows) else None
        for r in scal["steps"]:
            if r["dtype"] == dtype:
                if ok(r):
                    per = [statistics.median(v) / int(k) for k, v in r["times_s"].items()]
                    linear[dtype] = max(per) / min(per)
                else:
                    linear[dtype] = None
    return flat, linear


def scaling_markdown(scal: dict, flat: dict, linear: dict) -> str:
    L = [
        "### 4. Scaling in N and in steps",
        "",
        "simulate-kernel on the double well, momentum, events on, `SaveAt.summary()`; the whole call timed "
        "and, apart, the kernel alone (`kernel_info()['run_seconds']`). Each N in its own process (the "
        "kernel from the disk cache). The largest N runs fewer steps to keep the command short (the rate "
        "is per particle-step).",
        "",
        "| dtype | N | steps | ps/s (whole call) | ps/s (kernel alone) | median s | spread | active |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in scal["rows"]:
        if not ok(r):
            L.append(f"| {r['dtype']} | {sci(r['n'])} | {r['steps']} | {unavailable(r)} | | | | |")
            continue
        L.append(
            f"| {r['dtype']} | {sci(r['n'])} | {r['steps']} | {r['rate']:.2e} | "
            f"{fmt(r.get('kernel_rate'), '.2e')} | {r['median_s']:.3f} | {100 * r['spread']:.0f}% | "
            f"{100 * r['active_share']:.1f}% |"
        )
    L += [
        "",
        "max / min rate over N: "
        + ", ".join(f"{d} {fmt(v)}x" for d, v in flat.items())
        + " (target <= 1.5).",
        "",
    ]
    L += [
        "Cost against steps: the same swarm at each step count, in one process, taking turns; median time "
        "per step of the whole call (and of the kernel alone).",
        "",
        "| dtype | N | steps | median s | µs per step | µs per step, kernel alone | active |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in scal["steps"]:
        if not ok(r):
            L.append(f"| {r['dtype']} | {sci(r['n'])} | - | {unavailable(r)} | | | |")
            continue
        for k, v in r["times_s"].items():
            med = statistics.median(v)
            ks = [x for x in r["kernel_s"][k] if x]
            kper = 1e6 * statistics.median(ks) / int(k) if ks else None
            L.append(
                f"| {r['dtype']} | {sci(r['n'])} | {k} | {med:.4f} | {1e6 * med / int(k):.2f} | {fmt(kper)} "
                f"| {100 * r['active'][k] / r['n']:.1f}% |"
            )
    L += [
        "",
        "max / min time per step: "
        + ", ".join(f"{d} {fmt(v)}x" for d, v in linear.items())
        + " (target <= 1.2).",
    ]
    return "\n".join(L)


def memory_markdown(mem: dict) -> str:
    L = [
        "### 5. Memory of a large summary run",
        "",
        "A fresh process: imports, starts made in place as a torch tensor (uniform in the double well's "
        "box), "
        'then one `simulate(..., save=SaveAt.summary(), backend="kernel")`, momentum; peak resident memory '
        "of "
        "the process from `getrusage` (`ru_maxrss`), before the call and at the end. The estimate comes from "
        "figure 4's largest N.",
        "",
        "| dtype | N | steps | estimate s | wall s | ps/s | peak RSS before the call | peak RSS | < 2 GiB "
        "| active |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in mem["rows"]:
        head = f"| {r['dtype']} | {sci(r['n'])} | {r['steps']} | {fmt(r.get('estimate_s'), '.0f')} "
        if not ok(r):
            L.append(head + f"| {unavailable(r)} | | | | | |")
            continue
        L.append(
            head + f"| {r['seconds']:.1f} | {r['n'] * r['steps'] / r['seconds']:.2e} "
            f"| {r['before_bytes'] / GIB:.2f} GiB | {r['peak_bytes'] / GIB:.2f} GiB | "
            f"{yes_no(r['peak_bytes'] / GIB, 2.0, above=False)} | {100 * r['active'] / r['n']:.1f}% |"
        )
    return "\n".join(L)


def compile_summary(results: dict) -> str:
    """Cold compile seconds of descent's kernels, and the load from the disk cache."""
    parts = []
    thr = results.get("throughput")
    if isinstance(thr, dict):
        comp = [r["compile_s"] for r in thr["rows"] if r["contender"] == "simulate-kernel" and ok(r)]
        comp = [c for c in comp if c is not None]
        if comp:
            parts.append(f"cold compile {min(comp):.1f}-{max(comp):.1f} s per kernel (figure 1)")
    arena = results.get("arena")
    if isinstance(arena, dict) and ok(arena["cached"]) and arena["cached"].get("compile_s") is not None:
        parts.append(f"load from the disk cache {1e3 * arena['cached']['compile_s']:.0f} ms (figure 3)")
    return "; ".join(parts)


def replace_section(text: str, section: str, heading: str = "## Compiled kernels") -> str:
    """``text`` with the section starting at a line beginning with ``heading`` (up to the next "## "
    heading) replaced by ``section``; appended when there is none."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return text.rstrip("\n") + "\n\n" + section
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


# --- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run of every figure (1-2 min)")
    ap.add_argument("--figures", default=",".join(FIGURES), help=f"comma list of {FIGURES}")
    ap.add_argument("--sizes", help="figure 1: comma list of N (default 1e5,1e6)")
    ap.add_argument("--steps", type=int, help="figure 1: steps (default 2000)")
    ap.add_argument("--repeat", type=int, help="timed runs at least (default 3)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--landscapes", help=f"figure 1 (default {','.join(LANDSCAPES)})")
    ap.add_argument("--optimizers", help=f"figure 1 (default {','.join(OPTIMIZERS)})")
    ap.add_argument("--dtypes", help=f"figure 1 (default {','.join(DTYPES)})")
    ap.add_argument("--contenders", default=",".join(CONTENDERS), help="figure 1 (also: simulate-torch)")
    ap.add_argument("--slow-work", type=float, help="particle-steps the torch contenders time at most (1e8)")
    ap.add_argument("--memory-n", type=int, help="figure 5: particles (default 1e7)")
    ap.add_argument("--memory-steps", type=int, help="figure 5: steps (default 1e4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per worker")
    ap.add_argument("--out", help="write every timing, the machine and the arguments as JSON")
    ap.add_argument(
        "--write-markdown", metavar="PATH", help='replace the "## Compiled kernels" section of PATH'
    )
    args = ap.parse_args(argv)

    started = time.perf_counter()
    cfg = dict(PRESETS["quick" if args.quick else "full"])
    for key in ("sizes", "steps", "repeat", "landscapes", "optimizers", "dtypes", "slow_work"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.memory_n is not None:
        cfg["memory_n"] = args.memory_n
    if args.memory_steps is not None:
        cfg["memory_steps"] = args.memory_steps
    cfg["sizes"] = [int(float(s)) for s in str(cfg["sizes"]).split(",")]
    for key in ("landscapes", "optimizers", "dtypes"):
        cfg[key] = [x for x in cfg[key].split(",") if x]
    cfg["contenders"] = [c for c in args.contenders.split(",") if c]
    cfg.update(seed=args.seed, quick=args.quick)
    figures = [f for f in args.figures.split(",") if f]
    bad = [c for c in cfg["contenders"] if c not in RUNNERS] + [f for f in figures if f not in FIGURES]
    if bad:
        ap.error(f"unknown {bad}; contenders: {list(RUNNERS)}, figures: {list(FIGURES)}")

    _, cpus = pin(args.threads)
    import importlib.metadata as md

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    mach = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "pinned_cpus": cpus,
        "threads": args.threads,
        "python": platform.python_version(),
        **{p: version(p) for p in ("numpy", "torch", "jax", "jaxlib", "numba", "llvmlite")},
        "xla_flags": xla_flags(args.threads),
        "load_average_start": load_average(),
    }
    print("# machine: " + json.dumps(mach), flush=True)
    session = Session(args.threads, args.timeout)
    results: dict = {}
    steps = {
        "throughput": lambda: figure_throughput(session, cfg),
        "formula": lambda: figure_formula(session, cfg),
        "arena": lambda: figure_arena(session, cfg),
        "scaling": lambda: figure_scaling(session, cfg),
        "memory": lambda: figure_memory(
            session, cfg, results.get("scaling") if isinstance(results.get("scaling"), dict) else None
        ),
    }
    try:
        for name in FIGURES:
            if name not in figures:
                continue
            print(f"\n# figure: {name}", flush=True)
            try:
                results[name] = steps[name]()
            except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the others
                results[name] = f"{type(exc).__name__}: {exc}"
                print(f"figure {name} failed: {results[name]}", flush=True)
    finally:
        session.close()
    seconds = time.perf_counter() - started
    command = ".venv/bin/python benchmarks/bench_kernels.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    section = markdown(results, mach, cfg, command.strip(), seconds, session.loads)
    print("\n" + section)
    if args.write_markdown:
        path = Path(args.write_markdown)
        old = path.read_text() if path.exists() else "# Benchmarks\n"
        path.write_text(replace_section(old, section))
        print(f"wrote the section to {path}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": mach, "args": vars(args), "config": cfg, "results": results, "seconds": seconds}
        out.write_text(json.dumps(payload, indent=1, default=str))
        print(f"wrote {out}")
    print(f"done in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
