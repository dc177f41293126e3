"""`descent train` against a plain hand-written PyTorch loop doing the same work (issue 12's target:
within 5 %).

The run: digits (1437 training images), mlp:64,64 (ReLU, torch's default init), momentum 0.9 at lr
0.1, mini-batches of 32 in a fresh seeded order each epoch, 20 epochs; after every epoch the
training and test loss and accuracy, the mean batch loss and gradient norm, the epoch's update norm
and the lr, a row appended to metrics.csv and a checkpoint (model, optimizer, data-order generator,
metrics); metrics.json at the end. The hand-written loop below does exactly that with
``torch.optim.SGD`` and no descent code; ``descent train --optimizer torch:SGD`` computes the same
numbers (checked: the final test losses agree to 1e-12), so the two times compare the loops
themselves.

Three comparisons, each at 1 and 2 threads, runs interleaved (hand, descent, hand, ...) and medians
of wall and CPU time taken (CPU time: this process's and its children's, less sensitive to a
shared machine's load):

- in one process, imports done: ``train(config, out, plot=False)`` against ``hand_written(out)``,
  with ``torch:SGD`` (the same arithmetic) and with descent's ``momentum`` rule (the adapter);
- whole processes: ``descent train ... --no-plot`` against ``python bench_train.py --hand OUT``
  (interpreter start and imports included; threads set by OMP_NUM_THREADS);
- the same ``descent train`` writing curves.png too (its default).

    .venv/bin/python benchmarks/bench_train.py [--repeats 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve()
DESCENT = Path(sys.executable).with_name("descent")
EPOCHS, BATCH, LR, MOMENTUM, SEED = 20, 32, 0.1, 0.9, 0
COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "batch_loss", "grad_norm")
COLUMNS += ("update_norm", "lr", "seconds")


def hand_written(out: Path) -> dict:
    """The run as a user writes it: sklearn for the data, torch for the rest, files every epoch."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.data.astype(np.float64), digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=SEED, stratify=y)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    x_train, y_train = torch.tensor(x[train]), torch.tensor(y[train])
    x_test, y_test = torch.tensor(x[test]), torch.tensor(y[test])

    torch.manual_seed(SEED)
    f64 = torch.float64
    model = nn.Sequential(
        nn.Linear(64, 64, dtype=f64),
        nn.ReLU(),
        nn.Linear(64, 64, dtype=f64),
        nn.ReLU(),
        nn.Linear(64, 10, dtype=f64),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    order = torch.Generator().manual_seed(SEED)
    rows: list[dict] = []
    begin = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        start = nn.utils.parameters_to_vector(model.parameters()).detach()
        losses, norms = [], []
        for index in torch.randperm(len(x_train), generator=order).split(BATCH):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[index]), y_train[index])
            loss.backward()
            norms.append(nn.utils.get_total_norm([p.grad for p in model.parameters()]))
            optimizer.step()
            losses.append(loss.detach())
        update = nn.utils.parameters_to_vector(model.parameters()).detach() - start
        with torch.no_grad():
            train_out, test_out = model(x_train), model(x_test)
        rows.append(
            {
                "epoch": epoch,
                "train_loss": float(nn.functional.cross_entropy(train_out, y_train)),
                "train_accuracy": float((train_out.argmax(1) == y_train).double().mean()),
                "test_loss": float(nn.functional.cross_entropy(test_out, y_test)),
                "test_accuracy": float((test_out.argmax(1) == y_test).double().mean()),
                "batch_loss": float(torch.stack(losses).mean()),
                "grad_norm": float(torch.stack(norms).mean()),
                "update_norm": float(update.norm()),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - begin,
            }
        )
        checkpoint = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": order.get_state(),
            "metrics": rows,
        }
        torch.save(checkpoint, out / "checkpoint.pt")
        with (out / "metrics.csv").open("a" if epoch > 1 else "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            if epoch == 1:
                writer.writeheader()
            writer.writerow(rows[-1])
    (out / "metrics.json").write_text(json.dumps({"epochs": rows}, indent=1))
    return rows[-1]


def config(optimizer: str):
    from descent.train.loop import TrainConfig

    return TrainConfig(
        dataset="digits",
        model="mlp:64,64",
        optimizer=optimizer,
        lr=LR,
        momentum=MOMENTUM,
        batch_size=BATCH,
        epochs=EPOCHS,
        seed=SEED,
    )


def timed(work) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its finished children) of ``work()``."""

    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    wall, used = time.perf_counter(), cpu()
    work()
    return time.perf_counter() - wall, cpu() - used


def interleaved(contenders: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each contender, run in turn ``repeats`` times after a warm-up."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for round_ in range(repeats + 1):
        for name, work in contenders.items():
            seconds = timed(work)
            if round_:
                times[name].append(seconds)
    return {name: tuple(statistics.median(v) for v in zip(*values)) for name, values in times.items()}


def in_process(threads: int, repeats: int, folder: Path) -> dict[str, tuple[float, float]]:
    from descent.train.loop import train

    torch.set_num_threads(threads)
    check_hand = hand_written(folder)
    check_ours = train(config("torch:SGD"), folder, plot=False).metrics[-1]
    assert abs(check_hand["test_loss"] - check_ours["test_loss"]) < 1e-12, (check_hand, check_ours)
    return interleaved(
        {
            "hand": lambda: hand_written(folder),
            "torch:SGD": lambda: train(config("torch:SGD"), folder, plot=False),
            "momentum": lambda: train(config("momentum"), folder, plot=False),
        },
        repeats,
    )


def whole_process(threads: int, repeats: int, folder: Path) -> dict[str, tuple[float, float]]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    flags = [
        "train",
        "--dataset",
        "digits",
        "--model",
        "mlp:64,64",
        "--lr",
        str(LR),
        "--momentum",
        str(MOMENTUM),
    ]
    flags += ["--batch-size", str(BATCH), "--epochs", str(EPOCHS), "--seed", str(SEED), "--out", str(folder)]

    def command(*args: str):
        return lambda: subprocess.run(args, env=env, check=True, capture_output=True)

    return interleaved(
        {
            "hand": command(sys.executable, str(HERE), "--hand", str(folder), "--threads", str(threads)),
            "torch:SGD": command(str(DESCENT), *flags, "--optimizer", "torch:SGD", "--no-plot"),
            "momentum": command(str(DESCENT), *flags, "--optimizer", "momentum", "--no-plot"),
            "momentum + curves.png": command(str(DESCENT), *flags, "--optimizer", "momentum"),
        },
        repeats,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hand", type=Path, help="(internal) run the hand-written loop into this folder")
    args = parser.parse_args(argv)
    if args.hand is not None:
        torch.set_num_threads(args.threads[0])
        hand_written(args.hand)
        return

    sys.path.insert(0, str(HERE.parent))
    from machine import cpu_model, load_average

    print(
        f"{cpu_model()}; load average {load_average():.1f} at the start; {args.repeats} runs each, medians\n"
    )
    header = ["threads", "measured", "hand-written: wall, CPU (s)", "descent train: wall, CPU (s)"]
    print("| " + " | ".join([*header, "ratio wall", "ratio CPU"]) + " |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for threads in args.threads:
            inside = in_process(threads, args.repeats, Path(folder))
            outside = whole_process(threads, args.repeats, Path(folder))
            for where, times in (("in one process", inside), ("whole process", outside)):
                (hand_wall, hand_cpu) = times["hand"]
                for name, (wall, cpu) in times.items():
                    if name != "hand":
                        what = f"{where}, --optimizer {name}"
                        hand, ours = f"{hand_wall:.3f}, {hand_cpu:.3f}", f"{wall:.3f}, {cpu:.3f}"
                        ratios = f"{wall / hand_wall:.3f} | {cpu / hand_cpu:.3f}"
                        print(f"| {threads} | {what} | {hand} | {ours} | {ratios} |", flush=True)
    print(f"\nload average {load_average():.1f} at the end")


if __name__ == "__main__":
    main()
