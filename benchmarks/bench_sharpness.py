"""Sharpness tracking's cost relative to training (issue 12): full-batch GD on the edge-of-stability
network (tanh MLP 64-64-64-10, MSE, the first 1000 digits images, lr 0.1) for ``--steps`` steps,

- plain: training alone (`TorchOptimizer("gd")`);
- tracker k: plus `SharpnessTracker(every=k)` (3 Hessian-vector products per check: thick-restart
  Lanczos from the previous check's 2 top Ritz vectors; its first check is a cold eigsh), k = 10, 100;
- warm eigsh k=10: plus `top_eigenvalues` warm-started from the last eigenvector every 10 steps
  (tolerance 1e-6, ncv 10: what the edge-of-stability experiment measures with);
- cold eigsh k=100: plus a cold `top_eigenvalues` (tolerance 1e-10, random start) every 100 steps;

and one cold eigsh and one Hessian-vector product alone. Each case runs ``--repeat`` times in turn
(best kept); wall and CPU seconds are both given, with the load average, as the machine is shared.
Prints a markdown table and, with ``--json``, the numbers.

``--accuracy`` instead measures the tracker against a cold eigsh: ``--accuracy-steps`` GD steps (2000)
at each lr of ``--lrs`` (0.1 0.2), the tracker every ``--every`` steps (10) with ``--products`` and
``--keep``, a cold eigsh (tolerance 1e-10) every 100 steps; prints |tracked/cold - 1| at each checkpoint, the
largest and how many are within 1 %.

    .venv/bin/python benchmarks/bench_sharpness.py [--steps 1000] [--repeat 3] [--json]
    .venv/bin/python benchmarks/bench_sharpness.py --accuracy [--products 3] [--keep 2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from machine import cpu_model, load_average


def setup(lr: float = 0.1):
    from descent.experiments.edge_of_stability import digits
    from descent.optim import TorchOptimizer
    from descent.train import build_model, loss_function

    x, y = digits(1000)
    model = build_model("mlp:64,64,64", 64, 10, activation="tanh", seed=0)
    return (
        x,
        y,
        model,
        loss_function("mse", "classification"),
        TorchOptimizer(model.parameters(), "gd", lr=lr),
    )


def train(steps: int, measure=None, lr: float = 0.1) -> dict:
    """``steps`` GD steps, calling ``measure(step, fn, theta)`` before each; times and products."""
    from descent.train import flat_parameters, functional_loss

    x, y, model, loss, optimizer = setup(lr)
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        if measure is not None:
            measure(step, functional_loss(model, loss, x, y), flat_parameters(model))
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def cases(steps: int) -> dict:
    from descent.train.hessian import SharpnessTracker, top_eigenvalues

    def tracker(k):
        state = {"tracker": SharpnessTracker(every=k)}

        def measure(step, fn, theta):
            state["tracker"](step, fn, theta)

        def products():
            return sum(state["tracker"].hvps)

        return measure, products, lambda: len(state["tracker"].steps)

    def eigsh_every(k, warm):
        state = {"vector": None, "products": 0, "checks": 0}

        def measure(step, fn, theta):
            if step % k:
                return
            if warm:
                top = top_eigenvalues(fn, theta, tol=1e-6, v0=state["vector"], ncv=10)
                state["vector"] = top.vectors[:, 0]
            else:
                top = top_eigenvalues(fn, theta, tol=1e-10, seed=step)
            state["products"] += top.products
            state["checks"] += 1

        return measure, lambda: state["products"], lambda: state["checks"]

    return {
        "plain": (None, lambda: 0, lambda: 0),
        "tracker k=10": tracker(10),
        "tracker k=100": tracker(100),
        "warm eigsh k=10": eigsh_every(10, warm=True),
        "cold eigsh k=100": eigsh_every(100, warm=False),
    }


def one_off() -> dict:
    """One cold eigsh and one product alone, at the start of training."""
    from descent.train import flat_parameters, functional_loss
    from descent.train.hessian import HessianOperator, top_eigenvalues

    x, y, model, loss, _ = setup()
    fn, theta = functional_loss(model, loss, x, y), flat_parameters(model)
    start = time.perf_counter()
    top = top_eigenvalues(fn, theta, tol=1e-10)
    cold = time.perf_counter() - start
    operator = HessianOperator(fn, theta)
    start = time.perf_counter()
    for _ in range(20):
        operator(top.vectors[:, 0])
    return {
        "cold_eigsh_s": cold,
        "cold_eigsh_products": top.products,
        "hvp_ms": (time.perf_counter() - start) * 50,
    }


def accuracy(steps: int, lrs: list[float], products: int, keep: int, every: int = 10) -> dict:
    """The tracker (every ``every`` steps) against a cold eigsh every 100 steps, per lr: the relative errors
    at the checkpoints, the largest, and how many are within 1 %."""
    from descent.train.hessian import SharpnessTracker

    out = {}
    for lr in lrs:
        tracker = SharpnessTracker(every=every, products=products, keep=keep, cold_every=100)
        train(steps + 1, tracker, lr=lr)
        tracked = tracker.tracked_at(tracker.cold_steps[1:])  # step 0 is the cold start itself
        errors = [abs(t / c - 1) for t, c in zip(tracked, tracker.cold_values[1:])]
        out[lr] = {
            "steps": tracker.cold_steps[1:],
            "errors": errors,
            "max": max(errors),
            "within_1pct": sum(e < 0.01 for e in errors),
            "max_products": max(tracker.hvps[1:]),
        }
        print(
            f"lr {lr}: every {every}, products {products}, keep {keep}: largest error {max(errors):.2%}, "
            f"{out[lr]['within_1pct']}/{len(errors)} checkpoints within 1 %, "
            f"at most {out[lr]['max_products']} products a check"
        )
        print("  step:  " + " ".join(f"{s:>5d}" for s in tracker.cold_steps[1:]))
        print("  err %: " + " ".join(f"{100 * e:5.2f}" for e in errors))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--accuracy-steps", type=int, default=2000)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.1, 0.2])
    parser.add_argument("--products", type=int, default=3)
    parser.add_argument("--keep", type=int, default=2)
    parser.add_argument("--every", type=int, default=10, help="the tracker's period k in --accuracy")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.accuracy:
        return accuracy(args.accuracy_steps, args.lrs, args.products, args.keep, args.every)
    loads = [load_average()]
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for name, (measure, products, checks) in cases(args.steps).items():
            timing = train(args.steps, measure)
            timing.update(products=products(), checks=checks())
            if name not in best or timing["wall"] < best[name]["wall"]:
                best[name] = timing
        loads.append(load_average())
    extra = one_off()
    plain = best["plain"]
    lines = [
        f"GD, {args.steps} steps, digits MLP 64-64-64-10 (13,130 parameters), n = 1000, "
        f"{args.threads} thread(s), {cpu_model()}, load average {min(loads):.1f}-{max(loads):.1f}; "
        f"best of {args.repeat}",
        "",
        "| case | wall s | x plain (wall) | CPU s | x plain (CPU) | checks | products | ms per check (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in best.items():
        per = (t["cpu"] - plain["cpu"]) / t["checks"] * 1e3 if t["checks"] else float("nan")
        lines.append(
            f"| {name} | {t['wall']:.2f} | {t['wall'] / plain['wall']:.2f} | {t['cpu']:.2f} | "
            f"{t['cpu'] / plain['cpu']:.2f} | {t['checks']} | {t['products']} | {per:.1f} |"
        )
    lines += [
        "",
        f"one cold eigsh (tol 1e-10): {extra['cold_eigsh_s']:.3f} s, "
        f"{extra['cold_eigsh_products']} products; "
        f"one Hessian-vector product: {extra['hvp_ms']:.2f} ms; one training step: "
        f"{plain['wall'] / args.steps * 1e3:.2f} ms",
    ]
    print("\n".join(lines))
    result = {"steps": args.steps, "cases": best, **extra, "load": loads}
    if args.json:
        print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
