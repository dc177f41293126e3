"""A swarm of digits MLPs trained at once by the engine against the same networks trained one after the
other by the standard PyTorch loop (issue 12: target, the swarm at least 5x faster).

Both train ``--networks`` MLPs (``mlp:64,64``, relu, 64 pixels -> 10 logits, 8970 weights; the training
part of scikit-learn's digits, 1437 images) with heavy-ball momentum (lr 0.1, momentum 0.9) for
``--steps`` steps of batch size 32, every network from its own seeded initialisation:

- swarm: one ``simulate`` call on a `NetworkObjective` (``functional_call`` + ``vmap``), epoch batches
  drawn by the engine's stream for every network, nothing saved but the summary;
- sequential: for each network, its model, ``torch.optim.SGD(momentum=0.9)`` and the usual loop (a
  ``torch.randperm`` per epoch cut into batches; forward, cross-entropy, ``backward``, ``step``).

Timed at 1 and 2 threads, float64 (the lab's default) and float32; a markdown table to stdout.

    .venv/bin/python benchmarks/bench_network_swarm.py [--networks 100] [--steps 200]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from descent.dynamics import Batching, SaveAt, simulate
from descent.objectives import digits_mlp
from descent.optim import Optimizer
from descent.train import build_model, set_flat_parameters

LR, MOMENTUM, BATCH = 0.1, 0.9, 32


def swarm(net, starts: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    """Seconds for the engine to train every network of ``starts`` at once, and their final losses."""
    optimizer = Optimizer.build("momentum", lr=LR, momentum=MOMENTUM)
    batching = Batching.build(BATCH, "epoch", starts.shape[0], net.data_size)
    start = time.perf_counter()
    traj = simulate(net, optimizer, starts, steps, batching=batching, save=SaveAt.parse("summary"))
    return time.perf_counter() - start, traj.final_loss


def sequential(net, starts: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    """Seconds for the standard loop to train the networks one after the other, and their final
    mini-batch losses."""
    inputs, targets = net.inputs.to(starts.dtype), net.targets
    n, per_epoch = net.data_size, net.data_size // BATCH
    finals = []
    start = time.perf_counter()
    for i, w in enumerate(starts):
        model = build_model("mlp:64,64", 64, 10, activation="relu", dtype=starts.dtype)
        set_flat_parameters(model, w)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        generator = torch.Generator().manual_seed(i)
        for k in range(steps):
            if k % per_epoch == 0:
                order = torch.randperm(n, generator=generator)
            rows = order[(k % per_epoch) * BATCH : (k % per_epoch + 1) * BATCH]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs[rows]), targets[rows])
            loss.backward()
            optimizer.step()
        finals.append(float(loss))
    return time.perf_counter() - start, torch.tensor(finals)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    net = digits_mlp()  # mlp:64,64 relu on digits' training part
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for dtype in (torch.float64, torch.float32):
            starts = net.inits(range(args.networks), dtype=dtype)
            swarm(net, starts[:2], 2)  # warm up (first vmap call)
            swarm_s, swarm_loss = swarm(net, starts, args.steps)
            seq_s, seq_loss = sequential(net, starts, args.steps)
            row = {
                "threads": threads,
                "dtype": str(dtype).removeprefix("torch."),
                "swarm_s": swarm_s,
                "sequential_s": seq_s,
                "speedup": seq_s / swarm_s,
                "swarm_loss": float(swarm_loss.mean()),
                "sequential_loss": float(seq_loss.mean()),
            }
            results.append(row)
            print(row, flush=True)
    print()
    print(f"{args.networks} digits MLPs (mlp:64,64, relu, {net.dim} weights), {args.steps} steps of batch ")
    print(f"{BATCH}, momentum {MOMENTUM} at lr {LR}; {platform.processor() or platform.machine()}")
    print()
    print("| threads | dtype | swarm (s) | 100 sequential runs (s) | speed-up | target | final batch loss |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        met = "met" if r["speedup"] >= 5 else "not met"
        print(
            f"| {r['threads']} | {r['dtype']} | {r['swarm_s']:.2f} | {r['sequential_s']:.2f} | "
            f"{r['speedup']:.2f}x | >= 5x: {met} | {r['swarm_loss']:.3f} / {r['sequential_loss']:.3f} |"
        )
    return results


if __name__ == "__main__":
    main()
