"""Loss slices of a real network: the issue's 41 x 41 filter-normalised slice of the digits MLP (target:
at most 5 s on 2 cores), the first-use build of the tabulated ``digits-slice`` landscape (201 x 201),
and one ball's 1000 steps on it (the Arena's speed: target well under 100 ms once the cache is warm).

1. The digits MLP of the issue's ``descent train`` example (mlp:64,64, relu, momentum lr 0.1, batch
   32, 20 epochs, seed 0) is trained by ``descent.train``'s loop; then ``slice_2d`` over two
   filter-normalised directions on [-1, 1]^2, 41 x 41 points, on the 1437 training images, in float64
   and float32; the batched path (an MLP's first layer computed once per direction) against the
   generic ``vmap`` path and against the one-point-at-a-time reference (float64). Medians of
   ``--repeat`` runs.
2. ``digits-slice`` built from nothing in an empty temporary cache (training, tabulation, minima),
   then read back from that cache in a fresh in-process state.
3. ``run_spec`` of one ball, momentum, 1000 steps, saving every step, backend auto (it falls back to
   the torch loop: the landscape is a table, not a formula) and torch; the double well's torch loop
   beside it for scale. Medians of ``--repeat`` runs after one warm-up.

    .venv/bin/python benchmarks/bench_slices.py --threads 2 --out out/bench_slices.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import cpu_model, load_average  # benchmarks/machine.py (scripts run from this folder)

try:
    import descent  # noqa: F401
except ImportError:  # run from a checkout without installing: PYTHONPATH=src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from descent.landscapes import network_slice  # noqa: E402
from descent.spec import RunSpec, run_spec  # noqa: E402
from descent.train import slices  # noqa: E402
from descent.train.loop import TrainConfig, train  # noqa: E402


def median_seconds(function, repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds (all threads) of ``repeat`` calls: on a shared machine the CPU
    time says what the work costs, the wall time what a user waits."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def slice_timings(repeat: int, size: int) -> list[dict]:
    config = TrainConfig(
        dataset="digits", model="mlp:64,64", optimizer="momentum", lr=0.1, batch_size=32, epochs=20
    )
    result = train(config, out=None, plot=False)
    model, data = result.model, result.data
    d1, d2 = (slices.filter_normalized_direction(model, seed) for seed in (1, 2))
    axis = torch.linspace(-1, 1, size, dtype=torch.float64)
    xy = (data.x_train, data.y_train)
    rows = []
    fast = slices._linear_first
    for dtype in (torch.float64, torch.float32):
        for path in ("batched (first layer once)", "batched (generic vmap)"):
            slices._linear_first = fast if path.startswith("batched (first") else (lambda model: False)
            seconds, cpu = median_seconds(
                lambda dtype=dtype: slices.slice_2d(
                    model, slices.cross_entropy, xy, d1, d2, axis, axis, dtype=dtype
                ),
                repeat,
            )
            what = f"{size} x {size} slice, {path}"
            rows.append({"what": what, "dtype": str(dtype)[6:], "seconds": seconds, "cpu": cpu})
    slices._linear_first = fast
    ga, gb = torch.meshgrid(axis, axis, indexing="ij")
    coefficients = torch.stack([ga.reshape(-1), gb.reshape(-1)], 1)
    seconds, cpu = median_seconds(
        lambda: slices.evaluate_reference(model, slices.cross_entropy, xy, [d1, d2], coefficients), 1
    )
    what = f"{size} x {size} slice, reference (one point at a time)"
    rows.append({"what": what, "dtype": "float64", "seconds": seconds, "cpu": cpu})
    with torch.no_grad():
        train_loss = float(slices.cross_entropy(model(data.x_train), data.y_train))
    for row in rows:
        row["train_loss_at_centre"] = train_loss
    return rows


def build_timings(resolution: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        os.environ[network_slice.CACHE_ENV] = folder
        network_slice._cached.cache_clear()
        first, first_cpu = median_seconds(lambda: network_slice.digits_slice(resolution=resolution), 1)
        info = network_slice.digits_slice(resolution=resolution).info
        assert info["built"]
        network_slice._cached.cache_clear()
        warm, warm_cpu = median_seconds(lambda: network_slice.digits_slice(resolution=resolution), 1)
    rows = [
        {
            "what": f"digits-slice {resolution} x {resolution}: first use (all)",
            "seconds": first,
            "cpu": first_cpu,
        },
        {"what": "  of which: training the network", "seconds": info["train_seconds"]},
        {"what": "  of which: tabulating the slice (float32)", "seconds": info["slice_seconds"]},
        {
            "what": "digits-slice: read back from the cache (minima refined again)",
            "seconds": warm,
            "cpu": warm_cpu,
        },
    ]
    for row in rows:
        row["dtype"] = "float32" if "tabulating" in row["what"] else ""
    return rows


def run_timings(repeat: int, resolution: int) -> list[dict]:
    land = network_slice.digits_slice(resolution=resolution)
    rows = []
    for name, backend in (("digits-slice", "auto"), ("digits-slice", "torch"), ("double-well", "torch")):
        spec = RunSpec(
            landscape=name,
            landscape_params={"resolution": resolution} if name == "digits-slice" else {},
            optimizer="momentum",
            steps=1000,
            backend=backend,
        )
        given = land if name == "digits-slice" else None
        trajectory = run_spec(spec, landscape=given)
        seconds, cpu = median_seconds(lambda spec=spec, given=given: run_spec(spec, landscape=given), repeat)
        rows.append(
            {
                "what": f"1 ball x 1000 steps on {name}, backend {backend}",
                "dtype": "float64",
                "seconds": seconds,
                "cpu": cpu,
                "outcome": trajectory.outcomes[0],
            }
        )
    return rows


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the issue: 2 cores)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=41, help="points per side of the timed slice")
    parser.add_argument(
        "--resolution", type=int, default=201, help="the tabulated landscape's nodes per side"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = load_average()
    rows = (
        slice_timings(args.repeat, args.size)
        + build_timings(args.resolution)
        + run_timings(5 * args.repeat, args.resolution)
    )
    result = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "threads": args.threads,
        "load_average_before": load,
        "load_average_after": load_average(),
        "torch": torch.__version__,
        "rows": rows,
    }
    print(f"threads {args.threads}, {result['cpu']}, load {load:.1f} -> {result['load_average_after']:.1f}\n")
    print("| what | dtype | wall s | CPU s (all threads) |")
    print("|---|---|---|---|")
    for row in rows:
        extra = f" ({row['outcome']})" if "outcome" in row else ""
        cpu = f"{row['cpu']:.3f}" if "cpu" in row else ""
        print(f"| {row['what']}{extra} | {row['dtype']} | {row['seconds']:.3f} | {cpu} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
