"""A plain PyTorch training loop on scikit-learn's digits (bundled: nothing is downloaded) with
descent's physics monitor. The monitor takes two lines, marked below; every ``every`` steps it prints
one line (loss, temperature, sharpness against the stability edge, suggested lr, diagnosis) and at the
end writes a report (CSV, JSON, figure, Markdown/HTML) to ``--out``.

    python examples/monitor_loop.py --steps 600 --lr 0.1 --out out/monitor-digits
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from torch import nn

import descent


def main(
    steps: int = 600, every: int = 50, lr: float = 0.1, batch: int = 32, out: str | None = None, seed: int = 0
):
    torch.manual_seed(seed)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16
    y = torch.tensor(digits.target)
    x_train, y_train = x[:1500], y[:1500]
    x_held, y_held = x_train[:256], y_train[:256]  # a fixed batch of training examples: SGD's own noise

    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    monitor = descent.watch(
        model, optimizer, loss_fn=criterion, held=(x_held, y_held), every=every
    )  # monitor, 1 of 2

    for _ in range(steps):
        index = torch.randint(0, len(x_train), (batch,))
        optimizer.zero_grad()
        loss = criterion(model(x_train[index]), y_train[index])
        loss.backward()
        optimizer.step()
        monitor.step(loss)  # monitor, 2 of 2

    print(monitor.diagnosis.message)
    if out is not None:
        print("report:", monitor.report(out)["md"])
    return monitor


def parser() -> argparse.ArgumentParser:
    """The command line, each option with its help and default."""
    commands = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    commands.add_argument("--steps", type=int, default=600, help="training steps (SGD with momentum 0.9)")
    commands.add_argument("--every", type=int, default=50, help="steps between the monitor's checks")
    commands.add_argument("--lr", type=float, default=0.1, help="the learning rate")
    commands.add_argument("--batch", type=int, default=32, help="the training batch size")
    commands.add_argument("--out", default="out/monitor-digits", help="the report's folder")
    commands.add_argument("--seed", type=int, default=0, help="the seed of the model and the batches")
    return commands


if __name__ == "__main__":
    args = parser().parse_args()
    main(args.steps, args.every, args.lr, args.batch, args.out, args.seed)
