"""The Arena's maps of outcomes (`descent.arena.maps`): seconds to a basin map and a phase map.

Target (issue 11, item 3): a 200 x 200 map of 1000 steps each within 1 s on this 2-core machine with
the kernel warm (its compile cached). Each case runs in its own process, as the Arena's server does
(torch on one thread, Numba on its default threads):

- ``cold``: the first map in a process whose kernel cache (``DESCENT_KERNEL_CACHE`` and
  ``NUMBA_CACHE_DIR``) is an empty folder: the kernel is generated and compiled;
- ``disk``: the first map in a new process with that folder filled: the kernel is loaded from disk;
- ``warm``: the median (and the largest) of ``--repeat`` maps after that in the same process, and
  the median CPU seconds of the process per map (all its threads: on a busy machine the wall time
  grows, the CPU time much less).

Each warm map is also split: ``run_spec`` (the engine: building the spec's optimizer and starts, the
kernel's loop, the trajectory and its outcome labels), of which the kernel's loop alone
(`descent.kernels.backend.kernel_info`), and the rest (this module: the checks, the landscape from the
Arena's cache, the labels as indices, the stability edges). The load average is printed before and
after: the two cores are shared.

    .venv/bin/python benchmarks/arena_maps.py                 # every case (~1 min)
    .venv/bin/python benchmarks/arena_maps.py --cases 0,1 --repeat 9 --json out/bench/maps.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (map kind, landscape, rule, hyper-parameters, n, steps)
CASES = [
    ("basin", "double-well", "momentum", {"lr": 0.02, "momentum": 0.9}, 200, 1000),
    ("phase", "double-well", "momentum", {"lr": 0.02, "momentum": 0.9}, 200, 1000),
    ("basin", "himmelblau", "adam", {"lr": 0.05}, 200, 1000),
    ("phase", "himmelblau", "adam", {"lr": 0.05}, 200, 1000),
    ("phase", "double-well", "langevin", {"lr": 0.02, "temperature": 0.1}, 200, 1000),
    ("basin", "eggholder", "nesterov", {"lr": 0.5, "momentum": 0.9}, 200, 1000),
    ("phase", "rastrigin", "nesterov", {"lr": 0.002, "momentum": 0.9}, 200, 1000),
    ("basin", "quadratic", "gd", {"lr": 0.1}, 400, 250),
]


def _state(case: tuple) -> dict:
    from descent.arena.state import default_state, normalize

    _, landscape, rule, hyper, _, steps = case
    state = default_state()
    state.update(landscape=landscape, racers=[{"optimizer": rule, "hyper": dict(hyper)}], steps=steps)
    return normalize(state)


def worker(index: int, repeat: int) -> dict:
    """One case in this process: the first map, then ``repeat`` more, each split into its parts."""
    import torch

    torch.set_num_threads(1)  # as the Arena's server
    from descent.arena import maps
    from descent.kernels.backend import kernel_info

    case = CASES[index]
    kind, n = case[0], case[4]
    make = maps.basin_map if kind == "basin" else maps.phase_map
    state = _state(case)
    engine: list[float] = []
    plain_run_spec = maps.run_spec

    def timed_run_spec(*args, **kwargs):
        began = time.perf_counter()
        try:
            return plain_run_spec(*args, **kwargs)
        finally:
            engine.append(time.perf_counter() - began)

    maps.run_spec = timed_run_spec
    began = time.perf_counter()
    first = make(state, n)
    first_seconds = time.perf_counter() - began
    rows, made = [], first
    for _ in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        made = make(state, n)
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
        kernel = kernel_info().get("run_seconds")
        rows.append({"total": total, "cpu": cpu, "run_spec": engine[-1], "kernel": kernel})
    return {
        "first": first_seconds,
        "compile": first.compile_seconds,
        "backend": made.backend,
        "cells": int(made.outcome.size),
        "counts": made.counts(),
        "runs": rows,
        "load": os.getloadavg()[0],
    }


def _spawn(index: int, repeat: int, cache: str) -> dict:
    env = {**os.environ, "DESCENT_KERNEL_CACHE": cache, "NUMBA_CACHE_DIR": cache}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, __file__, "--worker", str(index), "--repeat", str(repeat)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"case {index} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(str(i) for i in range(len(CASES))))
    parser.add_argument("--repeat", type=int, default=5, help="warm maps per case")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.repeat)))
        return
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    header = (
        f"{'map':6} {'landscape':12} {'rule':9} {'n':>4} {'steps':>5} {'cold s':>7} {'compile':>7} "
        f"{'disk s':>7} {'warm s':>7} {'max':>6} {'cpu s':>6} {'run_spec':>8} {'kernel':>7} {'rest':>6}"
        "  backend"
    )
    print(header)
    print("-" * len(header))
    results = []
    for index in [int(i) for i in args.cases.split(",")]:
        kind, landscape, rule, _, n, steps = CASES[index]
        with tempfile.TemporaryDirectory(prefix="descent-maps-") as cache:
            cold = _spawn(index, args.repeat, cache)
            disk = _spawn(index, 0, cache)
        runs = cold["runs"]
        warm = statistics.median(r["total"] for r in runs)
        engine = statistics.median(r["run_spec"] for r in runs)
        loop = (
            statistics.median(r["kernel"] for r in runs if r["kernel"] is not None) if runs else float("nan")
        )
        rest = statistics.median(r["total"] - r["run_spec"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        print(
            f"{kind:6} {landscape:12} {rule:9} {n:>4} {steps:>5} {cold['first']:7.2f} {cold['compile']:7.2f} "
            f"{disk['first']:7.2f} {warm:7.3f} {max(r['total'] for r in runs):6.3f} {cpu:6.3f} {engine:8.3f} "
            f"{loop:7.3f} {rest:6.3f}  {cold['backend']}",
            flush=True,
        )
        results.append({"case": CASES[index], "cold": cold, "disk": disk})
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"load": [load_before, load_after], "results": results}, indent=1))


if __name__ == "__main__":
    main()
