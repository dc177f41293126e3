"""Engine throughput: particle-steps per second of `descent.simulate` against two bare loops.

For each landscape (double well, Rosenbrock), optimizer (momentum, Adam), dtype and swarm size N
the same run is timed three ways, side by side:

``simulate``  `descent.dynamics.simulate` with all its bookkeeping on (divergence detection every
              step, recorded events in batches, first/last frames saved: ``SaveAt.summary()``);
``torch``     a bare `torch.optim.SGD(momentum=beta)` / `torch.optim.Adam` loop over one
              ``nn.Parameter`` of shape ``[N, 2]``; value and gradient from the landscape's own
              analytic formulas (``--torch-grad autograd``: ``energy(p).sum().backward()``);
``numpy``     a hand-written momentum / Adam update on NumPy arrays, value and gradient written out
              in NumPy (CPU only).

All three compute the value and the gradient every step and start from the same uniform random
starts; their final positions are compared (``max |dx|``) so the table compares equal work.
Each measurement: one short warm-up run, then ``--repeat`` rounds in which the loops take turns,
each timed for a 1-step and a ``steps``-step call; medians kept.
Throughput = N * steps / (seconds per call). ``simulate / torch``: time ratio per call, and per step
from the difference of the two calls (which removes simulate's fixed cost per call: first and last
frames copied to the host, outcome labels and nearest minima as Python lists).

    .venv/bin/python benchmarks/bench_simulate.py --sizes 1e2,1e4,1e6 --out out/bench.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model  # benchmarks/machine.py (scripts run from this folder)

try:
    from descent.dynamics import SaveAt, simulate
    from descent.landscapes import Landscape, get_landscape
    from descent.optim import Optimizer
except ImportError:  # run from a checkout without installing: PYTHONPATH=src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from descent.dynamics import SaveAt, simulate
    from descent.landscapes import Landscape, get_landscape
    from descent.optim import Optimizer

DTYPES = {"float64": torch.float64, "float32": torch.float32}
LANDSCAPES = ("double-well", "rosenbrock")
OPTIMIZERS = ("momentum", "adam")
IMPLS = ("simulate", "torch", "numpy")
# Rates chosen so that no particle of a uniform swarm over the box diverges (Rosenbrock's wall
# curvature reaches ~6e3, heavy ball is stable for lr < 2(1 + beta)/6e3): every step does full work.
HYPER = {
    ("double-well", "momentum"): {"lr": 0.01, "momentum": 0.9},
    ("double-well", "adam"): {"lr": 0.01},
    ("rosenbrock", "momentum"): {"lr": 1e-4, "momentum": 0.9},
    ("rosenbrock", "adam"): {"lr": 1e-3},
}
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


# --- landscapes -------------------------------------------------------------------------------
def landscape(name: str) -> Landscape:
    return get_landscape(name)


def numpy_value_and_gradient(land: Landscape) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The landscape's value and gradient written out in NumPy (2-D only)."""
    if land.name == "double-well":
        tilt = float(land.params.get("tilt", 0.3))

        def fn(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            a, b = x[:, 0], x[:, 1]
            a2m1 = a * a - 1
            value = a2m1 * a2m1 - tilt * a + b * b
            grad = np.empty_like(x)
            grad[:, 0] = 4 * a * a2m1 - tilt
            grad[:, 1] = 2 * b
            return value, grad

        return fn
    if land.name == "rosenbrock":

        def fn(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            a, b = x[:, 0], x[:, 1]
            t = b - a * a
            one = 1 - a
            value = 100 * t * t + one * one
            grad = np.empty_like(x)
            grad[:, 0] = -400 * a * t - 2 * one
            grad[:, 1] = 200 * t
            return value, grad

        return fn
    raise ValueError(f"no NumPy formula for landscape {land.name!r}")


# --- the three implementations --------------------------------------------------------------
def run_simulate(
    land: Landscape, opt_name: str, hyper: dict, starts: torch.Tensor, steps: int
) -> torch.Tensor:
    opt = Optimizer.build(opt_name, **hyper)
    traj = simulate(land, opt, starts, steps, save=SaveAt.summary())
    return traj.positions[-1]


def run_torch(
    land: Landscape, opt_name: str, hyper: dict, starts: torch.Tensor, steps: int, grad_mode: str = "analytic"
) -> torch.Tensor:
    p = torch.nn.Parameter(starts.detach().clone())
    if opt_name == "momentum":
        opt = torch.optim.SGD([p], lr=hyper["lr"], momentum=hyper["momentum"])
    else:
        opt = torch.optim.Adam([p], lr=hyper["lr"], betas=ADAM_BETAS, eps=ADAM_EPS)
    if grad_mode == "autograd":
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            land.value(p).sum().backward()
            opt.step()
    else:
        for _ in range(steps):
            with torch.no_grad():
                _, p.grad = land.value_and_grad(p)  # the value and gradient simulate computes
            opt.step()
    return p.detach().cpu()


def run_numpy(land: Landscape, opt_name: str, hyper: dict, starts: torch.Tensor, steps: int) -> torch.Tensor:
    fn = numpy_value_and_gradient(land)
    x = starts.detach().cpu().numpy().copy()
    lr = hyper["lr"]
    if opt_name == "momentum":
        beta = hyper["momentum"]
        v = np.zeros_like(x)
        for _ in range(steps):
            _, g = fn(x)
            v *= beta  # v <- beta*v - lr*g;  x <- x + v
            v -= lr * g
            x += v
    else:
        b1, b2 = ADAM_BETAS
        m, s = np.zeros_like(x), np.zeros_like(x)
        for t in range(1, steps + 1):
            _, g = fn(x)
            m *= b1
            m += (1 - b1) * g
            s *= b2
            s += (1 - b2) * (g * g)
            denom = np.sqrt(s) / np.sqrt(1 - b2**t) + ADAM_EPS
            x -= (lr / (1 - b1**t)) * m / denom
    return torch.from_numpy(x)


def _call(
    fn: Callable, land: Landscape, opt_name: str, hyper: dict, starts: torch.Tensor, extra: dict, steps: int
) -> torch.Tensor:
    return fn(land, opt_name, hyper, starts, steps, **extra)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(
    runners: dict[str, Callable[[int], torch.Tensor]], steps: int, warmup_steps: int, repeat: int, device: str
) -> tuple[dict[str, dict[int, list[float]]], dict[str, torch.Tensor]]:
    """Warm each runner up, then time ``repeat`` rounds of a 1-step and a ``steps``-step call, the
    runners taking turns within a round (so a slow spell of a shared machine hits all of them).

    Returns ``times[name][k]`` (seconds of the k-step calls) and each runner's last result.
    """
    for fn in runners.values():
        fn(warmup_steps)
    sync(device)
    times: dict[str, dict[int, list[float]]] = {name: {1: [], steps: []} for name in runners}
    results: dict[str, torch.Tensor] = {}
    for _ in range(repeat):
        for name, fn in runners.items():
            for k in dict.fromkeys((1, steps)):
                sync(device)
                t0 = time.perf_counter()
                results[name] = fn(k)
                sync(device)
                times[name][k].append(time.perf_counter() - t0)
    return times, results


def summarise(n: int, steps: int, times: dict[int, list[float]]) -> dict:
    """Whole-call throughput, and the per-step cost and fixed per-call cost from the 1-step calls."""
    call, one = statistics.median(times[steps]), statistics.median(times[1])
    per_step = (call - one) / (steps - 1) if steps > 1 else call
    per_step = max(per_step, 1e-12)
    return {
        "times_s": times[steps],
        "times_1_step_s": times[1],
        "median_s": call,
        "particle_steps_per_s": n * steps / call,
        "per_step_s": per_step,
        "steady_particle_steps_per_s": n / per_step,
        "fixed_s": one - per_step,
    }


# --- machine --------------------------------------------------------------------------------
def machine(device: str, threads: int) -> dict:
    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": device,
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_multiprocessors=props.multi_processor_count,
            cuda=torch.version.cuda,
        )
    return info


# --- main -----------------------------------------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--sizes: got {text!r}, want a comma list of positive counts")
    return sizes


def parse_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in items if s not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"got {text!r}, want a comma list from {list(allowed)}")
        return items

    return parse


def steps_for(n: int, args: argparse.Namespace) -> int:
    """Steps per timed run: about ``--work`` particle-steps, within [--min-steps, --steps]."""
    return int(min(args.steps, max(args.min_steps, args.work // n)))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("1e2,1e3,1e4,1e5,1e6"),
        help="swarm sizes N, comma separated (default 1e2,1e3,1e4,1e5,1e6)",
    )
    parser.add_argument("--steps", type=int, default=1000, help="most steps per timed run (default 1000)")
    parser.add_argument("--min-steps", type=int, default=10, help="fewest steps per timed run (default 10)")
    parser.add_argument(
        "--work",
        type=float,
        default=5e6,
        help="target particle-steps per timed run; steps = work/N within the two bounds",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; median kept")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument(
        "--dtypes",
        type=parse_list(tuple(DTYPES)),
        default=["float64"],
        help="float64 (default) and/or float32, comma separated",
    )
    parser.add_argument("--landscapes", type=parse_list(LANDSCAPES), default=list(LANDSCAPES))
    parser.add_argument("--optimizers", type=parse_list(OPTIMIZERS), default=list(OPTIMIZERS))
    parser.add_argument(
        "--impls",
        type=parse_list(IMPLS),
        default=None,
        help="which loops to time (default: all three on cpu, simulate,torch on cuda)",
    )
    parser.add_argument(
        "--torch-grad",
        choices=("analytic", "autograd"),
        default="analytic",
        help="gradient of the bare torch loop (default: the landscape's analytic formula)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write every measurement and the machine as JSON here")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    impls = args.impls or (["simulate", "torch"] if args.device == "cuda" else list(IMPLS))
    torch.set_num_threads(args.threads)
    device = args.device
    info = machine(device, torch.get_num_threads())
    print("# " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)

    rows = []
    started = time.perf_counter()
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        for land_name in args.landscapes:
            land = landscape(land_name)
            for opt_name in args.optimizers:
                hyper = HYPER[(land_name, opt_name)]
                for n in args.sizes:
                    steps = steps_for(n, args)
                    warm = min(steps, args.min_steps)
                    gen = torch.Generator().manual_seed(args.seed)
                    starts = land.random_starts(n, gen, dtype=dtype).to(device)
                    run = {"simulate": run_simulate, "torch": run_torch, "numpy": run_numpy}
                    extra = {"torch": {"grad_mode": args.torch_grad}}
                    runners = {
                        impl: functools.partial(
                            _call, run[impl], land, opt_name, hyper, starts, extra.get(impl, {})
                        )
                        for impl in impls
                    }
                    row = {
                        "landscape": land_name,
                        "optimizer": opt_name,
                        "dtype": dtype_name,
                        "n": n,
                        "steps": steps,
                        "hyper": hyper,
                    }
                    times, results = measure(runners, steps, warm, args.repeat, device)
                    finals = {}
                    for impl in impls:
                        row[impl] = summarise(n, steps, times[impl])
                        finals[impl] = results[impl].to(torch.float64).cpu()
                    ref = finals.get("simulate")
                    row["max_abs_diff_vs_simulate"] = {
                        impl: float((f - ref).abs().max())
                        for impl, f in finals.items()
                        if ref is not None and impl != "simulate"
                    }
                    if "simulate" in row and "torch" in row:
                        row["overhead"] = row["simulate"]["median_s"] / row["torch"]["median_s"]
                        row["overhead_per_step"] = row["simulate"]["per_step_s"] / row["torch"]["per_step_s"]
                    rows.append(row)
                    print(format_row(row, impls), flush=True)
    elapsed = time.perf_counter() - started
    print(f"\n# total {elapsed:.1f} s\n")
    print(markdown(rows, impls))
    result = {
        "machine": info,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "impls": impls,
        "rows": rows,
        "elapsed_s": elapsed,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return result


def _rate(row: dict, impl: str) -> str:
    return f"{row[impl]['particle_steps_per_s'] / 1e6:.3g}" if impl in row else "-"


def format_row(row: dict, impls: list[str]) -> str:
    rates = "  ".join(f"{impl}={_rate(row, impl)}M/s" for impl in impls)
    diff = " ".join(f"{k}:{v:.1e}" for k, v in row["max_abs_diff_vs_simulate"].items())
    over = ""
    if "overhead" in row:
        over = f"  overhead={row['overhead']:.2f}x (per step {row['overhead_per_step']:.2f}x)"
    fixed = f"  fixed={row['simulate']['fixed_s'] * 1e3:.1f}ms" if "simulate" in row else ""
    return (
        f"{row['landscape']:<12} {row['optimizer']:<8} {row['dtype']:<7} N={row['n']:<9.0e} "
        f"steps={row['steps']:<5} {rates}{over}{fixed}  |dx| {diff}"
    )


def markdown(rows: list[dict], impls: list[str]) -> str:
    """The results as a Markdown table: million particle-steps per second per whole call, simulate's
    time over the torch loop's (per call and per step), and simulate's fixed cost per call."""
    head = ["landscape", "optimizer", "dtype", "N", "steps", *[f"{i} (M/s)" for i in impls]]
    has_overhead = "simulate" in impls and "torch" in impls
    if has_overhead:
        head += ["simulate / torch (call)", "simulate / torch (per step)"]
    if "simulate" in impls:
        head.append("simulate fixed (ms)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [
            row["landscape"],
            row["optimizer"],
            row["dtype"],
            f"{row['n']:.0e}",
            str(row["steps"]),
            *[_rate(row, impl) for impl in impls],
        ]
        if has_overhead:
            cells += [f"{row['overhead']:.2f}", f"{row['overhead_per_step']:.2f}"]
        if "simulate" in impls:
            cells.append(f"{max(row['simulate']['fixed_s'], 0.0) * 1e3:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
