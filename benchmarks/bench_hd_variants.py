"""The hypergradient rules' settings on the learning-to-learn protocol, on digits and other datasets
(issue 13, item 4: the settings behind BENCHMARKS.md's "Learning the learning rate" tables).

The protocol is `descent.experiments.learning_to_learn`'s (an mlp:32 relu, mini-batches of 32, 20
epochs, seeds each fixing the network and the data order for every optimizer); on another dataset
(``--dataset breast-cancer``, ``wine``, ...: `descent.train.data.load_dataset`, seed 0) the same loop
runs on its training split with an mlp:32 sized to it. ``--rule`` hd-sgd, hd-momentum or hd-adam;
the reference is its base (SGD, momentum 0.9, Adam) at the rate tuned on digits (1, 0.1, 0.01;
``--reference-lr``), not retuned on another dataset. Each setting
``discount:hyper_lr:gain:smoothing`` runs the rule from ``--starts`` times the protocol's centre
(0.1, 0.01, 0.001) and prints, per start, the final loss over the reference's minus 1 (mean over
seeds, its SE), the rate at the end and the geometric mean of the rate over the run.

    .venv/bin/python benchmarks/bench_hd_variants.py --dataset digits --seeds 5 \\
        --settings 0.9:0.01:0:0 0.98:0.01:0.1:0.9 0.9778:0.01:0.15:0.9
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from descent.experiments import learning_to_learn as ltl
from descent.optim import TorchOptimizer
from descent.train.data import load_dataset
from descent.train.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--starts", type=float, nargs="+", default=[0.01, 0.1, 1.0, 10.0, 100.0])
    parser.add_argument("--rule", default="hd-sgd", choices=ltl.RULES)
    parser.add_argument("--reference-lr", type=float, default=None, help="default: digits' tuned rate")
    parser.add_argument(
        "--settings", nargs="+", default=["0.9:0.01:0:0"], help="discount:hyper_lr:gain:smoothing"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ltl.Config(seeds=args.seeds, starts=tuple(args.starts))
    if args.dataset == "digits":
        data = ltl.digits(config)
    else:
        split = load_dataset(args.dataset, seed=0)
        data = ltl.Data(split.x_train, split.y_train)
        sizes = split.x_train.shape[1], int(split.y_train.max()) + 1
        ltl.model_for = lambda config, seed: build_model(  # the protocol's network, sized to the data
            f"mlp:{config.width}", *sizes, activation="relu", seed=seed
        )
    orders = ltl.seed_orders(config, len(data.y))
    start = time.time()
    index = ltl.RULES.index(args.rule)
    base, centre = ltl.BASES[args.rule], config.centres[index]
    reference_lr = args.reference_lr or {"sgd": 1.0, "momentum": 0.1, "adam": 0.01}[base]
    reference = ltl.losses(
        ltl.train_seeds(config, data, ltl.fixed(base, reference_lr, 0.9), ltl.rate_in_use, orders)
    )
    print(f"{args.dataset}: {base} at {reference_lr:g}: final loss {reference.mean():.3g}", flush=True)
    extra = {"momentum": 0.9} if args.rule == "hd-momentum" else {}
    for setting in args.settings:
        mu, hyper_lr, gain, smoothing = (float(v) for v in setting.split(":"))

        def make_at(lr, mu=mu, hyper_lr=hyper_lr, gain=gain, smoothing=smoothing):
            return lambda params: TorchOptimizer(
                params,
                args.rule,
                lr=lr,
                hyper_lr=hyper_lr,
                discount=mu,
                gain=gain,
                smoothing=smoothing,
                **extra,
            )

        runs_by_start = ltl.from_starts(config, data, orders, make_at, ltl.rate_in_use, centre)
        cells = []
        for lr, runs in runs_by_start.items():
            excess, se = ltl.relative_excess(ltl.losses(runs), reference)
            end = np.exp(np.mean(np.log([r.rates[-1] for r in runs])))
            mean = np.exp(np.mean([np.mean(np.log(r.rates[2:])) for r in runs]))
            cells.append(f"{lr:.0e}: {excess:+.0%} ± {se:.0%}, rate {end:.2g} (run's mean {mean:.2g})")
        print(f"  {setting}: " + " | ".join(cells) + f"  [{time.time() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
