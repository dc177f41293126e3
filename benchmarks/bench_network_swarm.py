"""A swarm of digits MLPs trained at once by the engine against the same networks trained one after the
other by the standard PyTorch loop (issue 12: target, the swarm at least 5x faster).

Both train ``--networks`` MLPs (``mlp:64,64`` by default: relu, 64 pixels -> 10 logits, 8970 weights;
the training part of scikit-learn's digits, 1437 images) with heavy-ball momentum (lr 0.1, momentum 0.9) for
``--steps`` steps of batch size 32, every network from its own seeded initialisation:

- swarm: one ``simulate`` call on a `NetworkObjective` (``functional_call`` + ``vmap``), epoch batches
  drawn by the engine's stream for every network, nothing saved but the summary;
- sequential: for each network, its model, ``torch.optim.SGD(momentum=0.9)`` and the usual loop (a
  ``torch.randperm`` per epoch cut into batches; forward, cross-entropy, ``backward``, ``step``).

Timed at 1 and 2 threads, float64 (the lab's default) and float32, each ``--repeats`` times interleaved
(the fastest of each counts: on a shared machine the load varies); a markdown table to stdout.

``--keep-freed-memory``: glibc's ``mallopt`` keeps freed memory in the process (mmap and trim thresholds
1 GiB) for both contenders. By default glibc hands every freed block of more than a few MB back to the
system, so each new ``[N, P]`` tensor of a large swarm (7 MB at 100 x 8970 in float64) is fresh pages
that the kernel must fault in and zero: on this machine an elementwise add of two such tensors took
15 ms with the default and 2.5 ms with the flag (the engine makes a dozen such tensors a step).

    .venv/bin/python benchmarks/bench_network_swarm.py [--networks 100] [--steps 100] [--repeats 3]
        [--threads 1,2] [--width 64] [--depth 2] [--keep-freed-memory]
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


def sequential(net, spec: str, starts: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    """Seconds for the standard loop to train the networks one after the other, and their final
    mini-batch losses."""
    inputs, targets = net.inputs.to(starts.dtype), net.targets
    n, per_epoch = net.data_size, net.data_size // BATCH
    finals = []
    start = time.perf_counter()
    for i, w in enumerate(starts):
        model = build_model(spec, 64, 10, activation="relu", dtype=starts.dtype)
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
        finals.append(float(loss.detach()))
    return time.perf_counter() - start, torch.tensor(finals)


def keep_freed_memory() -> None:
    """glibc: serve large blocks from the heap and never trim it (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    if not (libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)):
        raise SystemExit("mallopt refused the thresholds")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--keep-freed-memory", action="store_true")
    args = parser.parse_args(argv)
    if args.keep_freed_memory:
        keep_freed_memory()
    net = digits_mlp(width=args.width, depth=args.depth)  # relu, on digits' training part
    spec = "mlp:" + ",".join([str(args.width)] * args.depth)
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for dtype in (torch.float64, torch.float32):
            starts = net.inits(range(args.networks), dtype=dtype)
            swarm(net, starts[:2], 2)  # warm up (first vmap call)
            swarm_times, seq_times = [], []
            for _ in range(args.repeats):  # interleaved; the fastest of each (a shared machine's load varies)
                swarm_s, swarm_loss = swarm(net, starts, args.steps)
                seq_s, seq_loss = sequential(net, spec, starts, args.steps)
                swarm_times.append(swarm_s)
                seq_times.append(seq_s)
            swarm_s, seq_s = min(swarm_times), min(seq_times)
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
    print(f"{args.networks} digits MLPs ({spec}, relu, {net.dim} weights), {args.steps} steps of batch ")
    print(f"{BATCH}, momentum {MOMENTUM} at lr {LR}; {platform.processor() or platform.machine()}")
    print(f"freed memory kept in the process (mallopt): {args.keep_freed_memory}")
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
