"""Learning-rate-free optimizers on the learning-to-learn protocol (issue 13, item 4), side by side in
one run: Prodigy, D-Adaptation (SGD and Adam), schedule-free (SGD and AdamW), our hypergradient rules
hd-sgd and hd-adam, and SGD and Adam tuned over a fixed-rate grid of four decades.

The protocol and its training loop are `descent.experiments.learning_to_learn`'s (``Config()``: an
mlp:32 relu on the digits training set, mini-batches of 32, 20 epochs, 5 seeds, each seed its own
network and data order shared by every optimizer). Every optimizer starts from the same five rates
over four decades, ``centre * (0.01, 0.1, 1, 10, 100)``, with the centre of its family (SGD 0.1,
Adam 1e-3):

- hd-sgd, hd-adam: the starting rate ``lr``, at the experiment's hyper_lr and discount (the tangent's
  mu); the rate in use is ``state[first param]["rate"]``;
- Prodigy, DAdaptSGD, DAdaptAdam: ``lr = 1`` (their multiplier, at its recommended value) and the
  starting rate spread through ``d0``, their initial estimate of the distance to the solution (the
  first step's rate is ``d0 * lr``); the rate in use is ``d * lr`` of the first param group;
- SGDScheduleFree (momentum 0.9), AdamWScheduleFree (weight decay 0): ``lr`` itself (they adapt the
  averaging, not the rate: the rate in use is ``lr`` throughout); trained in ``train()`` mode, the
  final loss taken in ``eval()`` mode (the averaged weights).

The reference of each SGD-family optimizer is SGD at its tuned rate, of each Adam-family one Adam at
its tuned rate; per start: the final training loss relative to the reference (``mean_s(L_s/L*_s) -
1``, SE over the seeds) and the rate in use at the end (geometric mean over the seeds). Prints a
markdown table; writes ``lr_free.png`` (the rate per step, median over seeds, from each start, the
tuned rate dashed) and ``lr_free.json`` into ``--out`` (default out/bench).

    .venv/bin/python benchmarks/bench_lr_free.py [--quick] [--out out/bench]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model

from descent.experiments import learning_to_learn as ltl

#: the centre of each family's rates: the experiment's (its centres are SGD's, momentum's, Adam's)
FAMILIES = {"sgd": ltl.Config().centres[0], "adam": ltl.Config().centres[2]}


def d_times_lr(optimizer: torch.optim.Optimizer) -> float:
    """Prodigy's and D-Adaptation's rate in use: ``d * lr`` of the first param group."""
    group = optimizer.param_groups[0]
    return float(group["d"] * group["lr"])


def contenders(config: ltl.Config) -> dict[str, tuple[str, object, object]]:
    """name -> (family, make_at(start) -> optimizer factory, rate reader)."""
    import dadaptation
    import prodigyopt
    import schedulefree

    def hd_at(rule: str, lr: float):
        """The experiment's own hypergradient rule, at its hyper_lr and discount, starting at lr."""
        k = ltl.RULES.index(rule)
        return ltl.hypergradient(rule, lr, config.hyper_lrs[k], config.momentum, config.discounts[k])

    return {
        "hd-sgd": ("sgd", lambda lr: hd_at("hd-sgd", lr), ltl.rate_in_use),
        "DAdaptSGD (d0)": ("sgd", lambda lr: lambda p: dadaptation.DAdaptSGD(p, lr=1.0, d0=lr), d_times_lr),
        "SGDScheduleFree (lr)": (
            "sgd",
            lambda lr: lambda p: schedulefree.SGDScheduleFree(p, lr=lr, momentum=0.9),
            ltl.rate_in_use,
        ),
        "hd-adam": ("adam", lambda lr: hd_at("hd-adam", lr), ltl.rate_in_use),
        "Prodigy (d0)": ("adam", lambda lr: lambda p: prodigyopt.Prodigy(p, lr=1.0, d0=lr), d_times_lr),
        "DAdaptAdam (d0)": (
            "adam",
            lambda lr: lambda p: dadaptation.DAdaptAdam(p, lr=1.0, d0=lr),
            d_times_lr,
        ),
        "AdamWScheduleFree (lr)": (
            "adam",
            lambda lr: lambda p: schedulefree.AdamWScheduleFree(p, lr=lr, weight_decay=0.0),
            ltl.rate_in_use,
        ),
    }


def geometric_mean(values: list[float]) -> float:
    array = np.array(values)
    return float(np.exp(np.log(array).mean())) if np.all(array > 0) else math.nan


def percent(value: float, se: float) -> str:
    if not math.isfinite(value):
        return "diverged"
    if value >= 1:  # the loss over the reference's, as a factor
        return f"{1 + value:.3g}x the loss"
    return f"{100 * value:+.1f} ± {100 * se:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the experiment's quick size")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ltl.Config.quick() if args.quick else ltl.Config()
    data = ltl.digits(config)
    orders = ltl.seed_orders(config, len(data.y))
    started = time.perf_counter()
    tuned = {}
    for family, centre in FAMILIES.items():
        grid = ltl.fixed_grid(config, data, orders, family, centre)
        best = ltl.tune(grid)
        tuned[family] = {
            "rate": best,
            "losses": grid[best],
            "grid": {f"{k:g}": v.tolist() for k, v in grid.items()},
        }
    results = {}
    for name, (family, make_at, rate) in contenders(config).items():
        runs = ltl.from_starts(config, data, orders, make_at, rate, FAMILIES[family])
        results[name] = {"family": family, "runs": runs}
        print(f"{name}: done at {time.perf_counter() - started:.0f} s", flush=True)
    starts = [FAMILIES["sgd"] * m for m in config.starts]
    header = ["optimizer (spread)", "reference"] + [f"start x{m:g}" for m in config.starts]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table = []
    for name, entry in results.items():
        family = entry["family"]
        reference = tuned[family]
        cells = []
        for lr, runs in entry["runs"].items():
            excess, se = ltl.relative_excess(ltl.losses(runs), reference["losses"])
            end = geometric_mean([run.rates[-1] for run in runs if run.rates])
            cells.append(f"{percent(excess, se)}; rate {end:.2g}")
            table.append({"optimizer": name, "start": lr, "excess": excess, "se": se, "end_rate": end})
        label = f"{family.upper() if family == 'sgd' else 'Adam'} at {reference['rate']:.3g}"
        lines.append("| " + " | ".join([name, label] + cells) + " |")
    for family, reference in tuned.items():
        mean = float(np.mean(reference["losses"]))
        lines.append(f"Tuned {family}: rate {reference['rate']:.3g}, final loss {mean:.3g}.  ")
    adam_starts = [FAMILIES["adam"] * m for m in config.starts]
    print(
        f"\nstarting rates: SGD family {', '.join(f'{s:g}' for s in starts)}; Adam family "
        f"{', '.join(f'{s:g}' for s in adam_starts)}; {config.seeds} seeds, {config.epochs} epochs, batch "
        f"{config.batch}. Cell: final training loss relative to the tuned reference, minus 1 (SE over "
        "seeds); the rate in use at the end (geometric mean over seeds). "
        f"{cpu_model()}, {time.perf_counter() - started:.0f} s\n"
    )
    print("\n".join(lines[: 2 + len(results)]) + "\n\n" + "\n".join(lines[2 + len(results) :]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lr_free.json").write_text(
        json.dumps(
            {
                "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.__dict__.items()},
                "tuned": {f: {"rate": t["rate"], "grid": t["grid"]} for f, t in tuned.items()},
                "rows": table,
            },
            indent=1,
            default=str,
        )
    )
    figure(results, tuned, args.out / "lr_free.png")


def figure(results: dict, tuned: dict, path: Path) -> None:
    """The rate in use per step (median over seeds) of each optimizer from each start."""
    from descent.experiments.figures import finish, subplots

    fig, axes = subplots(2, 4, height=7.6)
    for ax, (name, entry) in zip(axes.flat, results.items()):
        for color, (lr, runs) in zip(ltl.COLORS, entry["runs"].items()):
            length = min(len(run.rates) for run in runs)
            if length:
                rates = np.median(np.array([run.rates[:length] for run in runs]), axis=0)
                ax.loglog(
                    np.arange(1, length + 1), np.maximum(rates, 1e-12), color=color, lw=1.2, label=f"{lr:.0e}"
                )
        ax.axhline(tuned[entry["family"]]["rate"], color="k", ls="--", lw=1.0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("rate in use")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, title="start", title_fontsize=9)
    axes.flat[-1].axis("off")
    finish(fig).savefig(path, dpi=100)
    print(f"\nfigure: {path}")


if __name__ == "__main__":
    main()
