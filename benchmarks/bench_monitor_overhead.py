"""The physics monitor's overhead beside Cockpit's (issue 13's targets: the default period costs at most
5 % of the training time, the full instrument set at most 30 %).

The run: digits (1437 training images, standardised), mlp:64,64 (ReLU, torch's default init, float32:
Cockpit's top-eigenvalue power iteration compares a float32 number with the model's dtype and fails
on float64), cross-entropy, ``torch.optim.SGD`` lr 0.1 momentum 0.9, mini-batches of 32 (45
steps an epoch) in one seeded order shared by every variant. Variants, each timed around the training
loop only (building the model, the monitor or the cockpit is not timed):

- ``plain``: the loop alone;
- ``ours default``: ``descent.watch(model, optimizer, loss, held, every=k)`` with its default
  instruments (``descent.monitor.monitor.INSTRUMENTS["default"]``: per-example gradients of 32 held
  examples a check for tr(Sigma), the held batch's loss and gradient, 3 warm-started Lanczos products
  on 64 held examples for the sharpness, momentum buffers for the kinetic energy; the bottom
  eigenvalue only when a run looks stalled), held batch: 256 training images;
- ``ours full``: ``full=True``, every instrument on the whole held batch each check (every held
  example's own gradient, 6 Lanczos products and 2 Hutchinson probes for tr H on all 256);
- ``cockpit economy`` and ``cockpit full``: Cockpit's ``configuration("economy")`` (alpha, distance,
  1d gradient histogram, gradient norm, inner-product, norm and orthogonality tests, loss, update
  size) and ``configuration("full")`` (those plus TIC, Hessian trace, top Hessian eigenvalue, 2d
  histogram), tracked every k steps (``schedules.linear(k)``), the model and loss extended by
  BackPACK (``backpack.extend``, Cockpit's own way), the individual losses passed as it asks.

Periods k: 1, 10, 50 and 1000 (the monitor's default, ``DEFAULT_EVERY``). Time per epoch is the fastest
repeat's time per step times 45 (a run at k = 1 takes ``--steps-k1`` steps, the others ``--steps`` or
8 k, whichever is more: eight checks at least, the first (the most costly) included); the overhead is
over ``plain`` at the same thread count. Repeats are interleaved (every variant once, then again) at
1 and 2 threads, and the fastest is kept: the machine is shared, and its load average is printed.

Two overheads per cell: the wall-clock one (the variant's time over ``plain``'s; on a shared machine
it moves by a few per cent between runs, which is the size of the default period's whole cost) and,
for ours, the monitor's own time: the seconds spent inside ``monitor.step`` over the rest of the same
run's loop (exact to the timer; it leaves out only indirect costs such as caches the check disturbs,
and the one forward pass a check listens to). Cockpit's work runs inside the backward pass
(BackPACK's extension) and has only the wall-clock figure.

    .venv/bin/python benchmarks/bench_monitor_overhead.py [--repeats 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model, load_average  # noqa: E402

BATCH, LR, MOMENTUM, HELD, SEED = 32, 0.1, 0.9, 256, 0
MODEL = "mlp:64,64"  # --model: the smallest is the hard case (a check's fixed costs against a short step)
VARIANTS = ("ours default", "ours full", "cockpit economy", "cockpit full")


def data():
    from descent.train.data import load_dataset

    d = load_dataset("digits", seed=SEED, dtype=torch.float32)
    return d.x_train, d.y_train


def batches(n: int, steps: int) -> list[torch.Tensor]:
    """``steps`` mini-batches of ``BATCH`` from fresh seeded permutations of ``n`` examples."""
    generator = torch.Generator().manual_seed(SEED)
    out: list[torch.Tensor] = []
    while len(out) < steps:
        order = torch.randperm(n, generator=generator)
        out += [order[i : i + BATCH] for i in range(0, n, BATCH)]
    return out[:steps]


def model_and_optimizer():
    from descent.train.models import build_model

    model = build_model(MODEL, 64, 10, seed=SEED, dtype=torch.float32)
    return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)


def run_loop(x, y, order, watch: dict | None = None) -> tuple[float, float]:
    """The timed loop; with ``watch`` (``descent.watch``'s options), under the monitor. Returns the
    loop's seconds and the seconds spent inside ``monitor.step`` (0 without the monitor)."""
    import descent

    model, optimizer = model_and_optimizer()
    loss_fn = nn.functional.cross_entropy
    monitor = (
        None if watch is None else descent.watch(model, optimizer, loss_fn, (x[:HELD], y[:HELD]), **watch)
    )
    inside = 0.0
    start = time.perf_counter()
    for index in order:
        optimizer.zero_grad()
        loss = loss_fn(model(x[index]), y[index])
        loss.backward()
        optimizer.step()
        if monitor is not None:
            entered = time.perf_counter()
            monitor.step(loss)
            inside += time.perf_counter() - entered
    seconds = time.perf_counter() - start
    if monitor is not None:
        monitor.close()
    return seconds, inside


def step_times(x, y, order, every: int) -> None:
    """Each training step timed alone (the monitor's call outside the timer), without and with the
    monitor at period ``every``: the mean step, and the first steps after a check (means over the
    checks): whether the monitor slows the training steps themselves, beside its own time."""
    import statistics

    import descent

    for watched in (False, True):
        model, optimizer = model_and_optimizer()
        loss_fn = nn.functional.cross_entropy
        monitor = (
            descent.watch(model, optimizer, loss_fn, (x[:HELD], y[:HELD]), every=every, verbose=False)
            if watched
            else None
        )
        times = []
        for index in order:
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
            if monitor is not None:
                monitor.step(loss)
        checks = range(every, len(times) - 5, every)
        after = [round(1e6 * statistics.mean(times[k + j] for k in checks)) for j in range(5)]
        print(
            f"{'with' if watched else 'without'} the monitor (every {every}): mean step "
            f"{1e6 * statistics.mean(times):.1f} us, median {1e6 * statistics.median(times):.1f} us; "
            f"the first 5 steps after a check: {after} us"
        )


def run_cockpit(x, y, order, every: int, label: str) -> float:
    from backpack import extend
    from cockpit import Cockpit
    from cockpit.utils.configuration import configuration
    from cockpit.utils.schedules import linear

    model, optimizer = model_and_optimizer()
    model = extend(model)
    loss_fn = extend(nn.CrossEntropyLoss())
    individual = nn.CrossEntropyLoss(reduction="none")
    cockpit = Cockpit(model.parameters(), quantities=configuration(label, track_schedule=linear(every)))
    start = time.perf_counter()
    for step, index in enumerate(order):
        optimizer.zero_grad()
        outputs = model(x[index])
        loss = loss_fn(outputs, y[index])
        losses = individual(outputs, y[index])
        info = {"batch_size": len(index), "individual_losses": losses, "loss": loss, "optimizer": optimizer}
        with cockpit(step, info=info):
            loss.backward(create_graph=cockpit.create_graph(step))
        optimizer.step()
    return time.perf_counter() - start


def timed(variant: str, x, y, order, every: int) -> tuple[float, float]:
    """The loop's seconds and the seconds inside the monitor (NaN for Cockpit: its work is inside
    the backward pass, through BackPACK's extension, and cannot be timed apart)."""
    if variant == "plain":
        return run_loop(x, y, order)
    if variant.startswith("ours"):
        return run_loop(x, y, order, {"every": every, "verbose": False, "full": variant == "ours full"})
    return run_cockpit(x, y, order, every, variant.split()[1]), float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    from descent.monitor.monitor import DEFAULT_EVERY

    parser.add_argument("--periods", type=int, nargs="+", default=[1, 10, 50, DEFAULT_EVERY])
    parser.add_argument("--steps", type=int, default=450, help="steps of a run at k > 1 and of plain")
    parser.add_argument("--steps-k1", type=int, default=45, help="steps of a run at k = 1")
    parser.add_argument("--model", default=MODEL, help="descent's model spec (descent train --model)")
    parser.add_argument(
        "--step-times",
        action="store_true",
        help="time each training step alone, with and without the monitor",
    )
    args = parser.parse_args()
    globals()["MODEL"] = args.model
    warnings.filterwarnings("ignore")
    x, y = data()
    if args.step_times:
        torch.set_num_threads(args.threads[0])
        return step_times(x, y, batches(len(x), 8 * DEFAULT_EVERY), DEFAULT_EVERY)
    steps_per_epoch = -(-len(x) // BATCH)
    longest = max(args.steps, *(8 * k for k in args.periods))
    plans = [("plain", 0, longest)]
    plans += [
        (v, k, args.steps_k1 if k == 1 else max(args.steps, 8 * k)) for k in args.periods for v in VARIANTS
    ]
    best: dict[tuple[str, int, int], tuple[float, float]] = {}  # (s/step, s/step inside the monitor)
    loads = [load_average()]
    print(f"# {cpu_model()}, {os.cpu_count()} CPUs; torch {torch.__version__}; load average {loads[0]:.2f}")
    for repeat in range(args.repeats):
        for threads in args.threads:
            torch.set_num_threads(threads)
            for variant, every, steps in plans:
                seconds, inside = timed(variant, x, y, batches(len(x), steps), every)
                key = (variant, every, threads)
                best[key] = min(best.get(key, (math.inf, math.nan)), (seconds / steps, inside / steps))
        loads.append(load_average())
        print(f"# repeat {repeat + 1} of {args.repeats} done; load average {loads[-1]:.2f}", flush=True)
    print()
    print(
        f"{MODEL} on digits, SGD momentum 0.9, batch {BATCH} ({steps_per_epoch} steps an epoch), float32; "
        f"fastest of {args.repeats} interleaved repeats; load average {min(loads):.2f}-{max(loads):.2f}"
    )
    print()
    header = (
        "| variant | k | "
        + " | ".join(
            f"{t} thread{'s' if t > 1 else ''}: s/epoch (wall overhead; own time)" for t in args.threads
        )
        + " |"
    )
    print(header)
    print("|" + "---|" * (2 + len(args.threads)))
    for variant, every, _ in plans:
        cells = []
        for threads in args.threads:
            per_step, inside = best[(variant, every, threads)]
            epoch, plain = per_step * steps_per_epoch, best[("plain", 0, threads)][0] * steps_per_epoch
            own = "" if math.isnan(inside) else f"; {100 * inside / (per_step - inside):.1f} %"
            wall = f" ({100 * (epoch / plain - 1):+.1f} %{own})" if variant != "plain" else ""
            cells.append(f"{epoch:.4f}{wall}")
        print(f"| {variant} | {every or '-'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
