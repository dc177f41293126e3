"""Learning to learn: optimizers that learn their own learning rate by a meta-gradient (hypergradient
descent, :mod:`descent.optim.hypergradient`) against the same optimizers with a tuned fixed rate.

Protocol. An MLP (``mlp:WIDTH``, relu, torch's default initialisation, float64) on the training part
of scikit-learn's digits, mini-batches of ``batch`` examples (each epoch a fresh permutation from the
seed's own generator, cut into batches, the last one smaller), ``epochs`` epochs, one thread. Seed s
fixes the network's initialisation and the data order, so every optimizer trained from seed s sees
the same network and the same batches. The measured number is the final training loss
``L = mean cross-entropy over the whole training set``.

1. Tuning: plain SGD, heavy-ball momentum (``torch.optim.SGD(momentum=beta)``) and Adam at every rate
   of a grid spanning four decades around each base's ``centre`` (``grid`` multipliers); the tuned
   rate is the one of least mean final loss over the seeds.
2. Learning: ``hd-sgd``, ``hd-momentum`` and ``hd-adam`` through `descent.optim.TorchOptimizer` (the
   whole model one particle: one learned rate, read each step from ``state[first parameter]["rate"]``)
   started from ``centre`` times each of ``starts`` (four decades), each at its rule's ``hyper_lr`` and
   ``discount`` (mu: the hypergradient looks ~1/(1-mu) steps back; 0 is Baydin et al.'s one step).
3. Per (rule, start), with ``L*_s`` the tuned base's final loss at seed s, the relative excess
   ``mean_s(L_s / L*_s) - 1`` and its standard error over the seeds (paired: same network, same
   batches). The claim check: the excess is below 10 %, by 3 SE (``measured < 0.1 - 3 SE``).

Instrument check: the adapter steps the rule the engine steps. One `RunSpec` runs ``hd-sgd`` full batch
on the ``digits-mlp`` landscape (the same data and architecture) for ``engine_steps`` steps; a
`TorchOptimizer` loop from the same start on the same data must reach the same weights (float64, to
1e-9).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from descent._errors import invalid, listed
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, below, exceeds, number
from descent.spec import RunSpec

NAME = "learning-to-learn"
CLAIM = (
    "Optimizers can learn to learn: a meta-gradient adjusts their own learning dynamics (the learning "
    "rate) while they train, so that from any starting rate they end as well as with a tuned one."
)
PROTOCOL = (
    "An MLP on scikit-learn's digits, mini-batches of 32, a fixed number of epochs, several seeds: SGD, "
    "momentum and Adam are tuned over fixed rates spanning four decades, and their hypergradient "
    "versions hd-sgd, hd-momentum and hd-adam (each at its default hypergradient horizon) start from "
    "rates spread over four decades, their first step a probe at a thousandth of the start; each final "
    "training loss is compared with the tuned one's (claim: within 10 %), and the learned rate is "
    "logged every step."
)

#: each hypergradient rule and the base it learns the rate of
RULES = ("hd-sgd", "hd-momentum", "hd-adam")
BASES = {"hd-sgd": "sgd", "hd-momentum": "momentum", "hd-adam": "adam"}
LOSS_TOP = 10.0  # the figure draws a larger (diverged) final loss at this height
WITHIN = 0.10  # the claim: final loss within 10 % of the tuned fixed rate's
COLORS = ("tab:purple", "tab:blue", "tab:green", "tab:orange", "tab:red", "tab:brown", "tab:pink")

Rate = Callable[[torch.optim.Optimizer], float]
MakeOptimizer = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class Config:
    width: int = 32
    examples: int = 0  # the first digits images (0: all 1797; 80 % train, stratified)
    batch: int = 32
    epochs: int = 20
    seeds: int = 5
    # the rates are centre * multiplier, per base (sgd, momentum, adam)
    centres: tuple[float, float, float] = (0.1, 0.01, 0.001)
    grid: tuple[float, ...] = tuple(10.0 ** (k / 2) for k in range(-4, 5))  # fixed rates: four decades
    starts: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)  # the learned rate's starts
    momentum: float = 0.9
    hyper_lrs: tuple[float, float, float] = (0.01, 0.001, 1e-4)  # hd-sgd, hd-momentum, hd-adam
    discounts: tuple[float, float, float] = (0.9, 0.0, 0.0)  # the tangent's mu: hd-sgd, hd-momentum, hd-adam
    engine_steps: int = 20
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(examples=300, epochs=3, seeds=3, grid=(0.01, 0.1, 1.0, 10.0, 100.0), engine_steps=5)

    def __post_init__(self) -> None:
        for name in ("width", "batch", "epochs", "engine_steps"):
            _integer(name, getattr(self, name), 1)
        _integer("seeds", self.seeds, 2)
        _integer("seed", self.seed, 0)
        _integer("examples", self.examples, 0)
        if self.examples and not 50 <= self.examples <= 1797:
            raise invalid("examples", self.examples, "0 (all 1797) or an integer in [50, 1797]")
        for name in ("centres", "grid", "starts", "hyper_lrs"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values or not all(_positive(v) for v in values):
                raise invalid(name, values, "a non-empty tuple of finite numbers > 0")
        discounts = self.discounts
        if (
            not isinstance(discounts, tuple)
            or len(discounts) != len(RULES)
            or not all(_fraction(v) for v in discounts)
        ):
            raise invalid("discounts", discounts, f"{len(RULES)} numbers in [0, 1), for {listed(RULES)}")
        for name in ("centres", "hyper_lrs"):
            if len(getattr(self, name)) != len(RULES):
                raise invalid(name, getattr(self, name), f"{len(RULES)} numbers, for {listed(RULES)}")
        if not _fraction(self.momentum):
            raise invalid("momentum", self.momentum, "a number in [0, 1)")


def _integer(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(name, value, f"an integer >= {low}")


def _fraction(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < 1


def _positive(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    )


# --- data, models, the training loop (the benchmark reuses these) ---------------------------------
@dataclass(frozen=True)
class Data:
    """The training examples ``x [n, 64]``, labels ``y [n]``."""

    x: torch.Tensor
    y: torch.Tensor


def digits(config: Config) -> Data:
    """The training part of the first ``examples`` digits (split seed 0), float64: the data of the
    ``digits-mlp`` landscape."""
    from descent.train.data import load_dataset

    data = load_dataset("digits", seed=0, n=config.examples or None)
    return Data(data.x_train, data.y_train)


def model_for(config: Config, seed: int) -> nn.Module:
    """``mlp:WIDTH`` relu, torch's default initialisation from ``seed``, float64."""
    from descent.train.models import build_model

    return build_model(f"mlp:{config.width}", 64, 10, activation="relu", seed=seed)


def batches(n: int, batch: int, epochs: int, seed: int) -> list[torch.Tensor]:
    """The data order of seed ``seed``: per epoch ``torch.randperm(n)`` from one generator seeded with
    ``seed``, cut into batches of ``batch`` (the last one smaller)."""
    generator = torch.Generator().manual_seed(seed)
    return [part for _ in range(epochs) for part in torch.randperm(n, generator=generator).split(batch)]


def full_loss(model: nn.Module, data: Data) -> float:
    """The mean cross-entropy over all of ``data``."""
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(data.x), data.y))


@dataclass
class Run:
    """One training run: its final training loss and the rate in use at every step."""

    final_loss: float
    rates: list[float] = field(default_factory=list)


def train(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: Data, order: list[torch.Tensor], rate: Rate
) -> Run:
    """Mini-batch training along ``order`` (batches of example indices); after each step ``rate
    (optimizer)`` is logged. An optimizer with ``train()`` / ``eval()`` modes (schedule-free) is put in
    training mode to step and in evaluation mode (its averaged weights) for the final loss. A loss
    that stops being finite ends the run (final loss inf)."""
    modes = callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval", None))
    if modes:
        optimizer.train()  # type: ignore[attr-defined]
    from descent.train.loop import train_along

    rates: list[float] = []
    loss = nn.functional.cross_entropy
    if not train_along(model, optimizer, loss, data.x, data.y, order, lambda o: rates.append(rate(o))):
        return Run(math.inf, rates)
    if modes:
        optimizer.eval()  # type: ignore[attr-defined]
    final = full_loss(model, data)
    return Run(final if math.isfinite(final) else math.inf, rates)


def rate_in_use(optimizer: torch.optim.Optimizer) -> float:
    """The rate the optimizer steps with now: a fixed-rate one's first group ``lr``, a hypergradient
    rule's learned rate (the training lab's `current_lr`)."""
    from descent.train.loop import current_lr

    return current_lr(optimizer)


def fixed(base: str, lr: float, momentum: float) -> MakeOptimizer:
    """torch's own optimizer for ``base`` ("sgd", "momentum", "adam") at the fixed rate ``lr``."""
    if base == "adam":
        return lambda params: torch.optim.Adam(params, lr=lr)
    beta = momentum if base == "momentum" else 0.0
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=beta)


def hypergradient(rule: str, lr: float, hyper_lr: float, momentum: float, discount: float) -> MakeOptimizer:
    """The hypergradient rule ``rule`` through `TorchOptimizer`, starting at ``lr``, its tangent
    discounted by ``discount``."""
    from descent.optim import TorchOptimizer

    extra: dict[str, Any] = {"momentum": momentum} if rule == "hd-momentum" else {}
    return lambda params: TorchOptimizer(params, rule, lr=lr, hyper_lr=hyper_lr, discount=discount, **extra)


def train_seeds(
    config: Config, data: Data, make: MakeOptimizer, rate: Rate, orders: list[list[torch.Tensor]]
) -> list[Run]:
    """One run per seed (``config.seed + s``: its network and ``orders[s]``)."""
    runs = []
    for s, order in enumerate(orders):
        model = model_for(config, config.seed + s)
        runs.append(train(model, make(list(model.parameters())), data, order, rate))
    return runs


def seed_orders(config: Config, n: int) -> list[list[torch.Tensor]]:
    return [batches(n, config.batch, config.epochs, config.seed + s) for s in range(config.seeds)]


def fixed_grid(
    config: Config, data: Data, orders: list[list[torch.Tensor]], base: str, centre: float, tick=None
) -> dict[float, np.ndarray]:
    """The final losses ``[seeds]`` of ``base`` at each fixed rate ``centre * grid``."""
    out = {}
    for multiplier in config.grid:
        lr = centre * multiplier
        out[lr] = losses(train_seeds(config, data, fixed(base, lr, config.momentum), rate_in_use, orders))
        if tick is not None:
            tick()
    return out


def from_starts(
    config: Config,
    data: Data,
    orders: list[list[torch.Tensor]],
    make_at: Callable[[float], MakeOptimizer],
    rate: Rate,
    centre: float,
    tick=None,
) -> dict[float, list[Run]]:
    """The runs (one per seed) of the optimizer ``make_at(lr)`` from each start ``lr = centre *
    starts``, ``rate`` logged every step."""
    out = {}
    for multiplier in config.starts:
        lr = centre * multiplier
        out[lr] = train_seeds(config, data, make_at(lr), rate, orders)
        if tick is not None:
            tick()
    return out


def losses(runs: list[Run]) -> np.ndarray:
    return np.array([run.final_loss for run in runs])


def tune(grid_losses: dict[float, np.ndarray]) -> float:
    """The rate of least mean final loss (a rate with a non-finite loss at any seed never wins)."""
    return min(grid_losses, key=lambda lr: float(np.mean(grid_losses[lr])))


def relative_excess(learned: np.ndarray, tuned: np.ndarray) -> tuple[float, float]:
    """``mean_s(L_s / L*_s) - 1`` and its SE over the seeds (inf, inf when a run diverged)."""
    return _mean_se(learned / tuned, shift=-1.0)


def _mean_se(values: np.ndarray, shift: float = 0.0) -> tuple[float, float]:
    """The mean of ``values`` (plus ``shift``) and its SE ``sd/sqrt(n)``; (inf, inf) where a value, or
    the spread of values as large as a diverged run's, is not finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, se = float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))
    if not (math.isfinite(mean) and math.isfinite(se)):
        return math.inf, math.inf
    return mean + shift, se


# --- the instrument check: the adapter steps the engine's rule -------------------------------------
def engine_spec(config: Config) -> RunSpec:
    """hd-sgd full batch on ``digits-mlp`` (the experiment's data and architecture) from one network."""
    return RunSpec(
        landscape="digits-mlp",
        landscape_params={"width": config.width, "depth": 1, "examples": config.examples, "activation": 0},
        optimizer="hd-sgd",
        hyper={"lr": config.centres[0], "hyper_lr": config.hyper_lrs[0], "discount": config.discounts[0]},
        starts="random:1",
        steps=config.engine_steps,
        save="every:1",
        seed=config.seed,
        backend="torch",
    )


def engine_against_adapter(config: Config, runs: Runs) -> float:
    """max |w_engine - w_adapter| after ``engine_steps`` full-batch hd-sgd steps from the same start."""
    from descent.objectives.network import digits_mlp

    spec = engine_spec(config)
    trajectory = runs(spec)
    net = digits_mlp(config.width, 1, config.examples, 0)
    model = model_for(config, config.seed)
    nn.utils.vector_to_parameters(trajectory.positions[0, 0].to(torch.float64), model.parameters())
    optimizer = hypergradient(
        "hd-sgd", config.centres[0], config.hyper_lrs[0], config.momentum, config.discounts[0]
    )(list(model.parameters()))
    whole = torch.arange(net.data_size)
    train(model, optimizer, Data(net.inputs, net.targets), [whole] * config.engine_steps, rate_in_use)
    adapter = nn.utils.parameters_to_vector(model.parameters()).detach()
    return float((adapter - trajectory.positions[-1, 0]).abs().max())


# --- the experiment ----------------------------------------------------------------------------
def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    data = digits(config)
    orders = seed_orders(config, len(data.y))
    bases = [BASES[rule] for rule in RULES]
    total = len(RULES) * (len(config.grid) + len(config.starts)) + 1
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    measured: dict[str, dict] = {}
    for rule, base, centre, hyper_lr, discount in zip(
        RULES, bases, config.centres, config.hyper_lrs, config.discounts
    ):
        grid = fixed_grid(config, data, orders, base, centre, tick)
        learned = from_starts(
            config,
            data,
            orders,
            functools.partial(
                hypergradient, rule, hyper_lr=hyper_lr, momentum=config.momentum, discount=discount
            ),
            rate_in_use,
            centre,
            tick,
        )
        measured[rule] = {"base": base, "grid": grid, "tuned": tune(grid), "learned": learned}
    runs = Runs()
    engine_gap = engine_against_adapter(config, runs)
    tick()
    config_dict = {
        **asdict(config),
        "rules": list(RULES),
        "bases": bases,
        "model": f"mlp:{config.width} relu, torch's default initialisation, float64",
        "loss": "mean cross-entropy over the whole training set after the last epoch",
        "within": WITHIN,
    }
    rows = _rows(config, measured, engine_gap)
    return Result(NAME, CLAIM, PROTOCOL, rows, config_dict, [_figure(config, measured)], runs.specs)


def _start_label(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-").replace("e+0", "e")


def _rows(config: Config, measured: dict[str, dict], engine_gap: float) -> list[Row]:
    out: list[Row] = []
    for rule in RULES:
        m = measured[rule]
        base, tuned = m["base"], m["tuned"]
        tuned_losses = m["grid"][tuned]
        group = f"{rule} against {base} at its tuned fixed rate"
        for lr, grid_losses in m["grid"].items():
            mean, spread = _mean_se(grid_losses)
            se = spread if math.isfinite(spread) else None
            out.append(
                number(
                    f"grid/{base}/{_start_label(lr)}",
                    f"{base}, fixed rate {lr:.3g}: final loss",
                    mean,
                    se=se,
                    group=f"{base}: fixed-rate grid",
                )
            )
        out.append(
            number(
                f"tuned/{base}", f"{base}: best-tuned fixed rate", tuned, group=group, key=rule == "hd-sgd"
            )
        )
        worst = -math.inf
        for lr, learned in m["learned"].items():
            label = _start_label(lr)
            excess, se = relative_excess(losses(learned), tuned_losses)
            worst = max(worst, excess)
            mean_loss = float(np.mean(losses(learned)))
            out.append(
                below(
                    f"excess/{rule}/{label}",
                    f"{rule} from {lr:.3g}: final loss over tuned {base}'s, minus 1",
                    excess,
                    WITHIN,
                    se=se,
                    group=group,
                    if_pass=f"{rule} from {lr:.3g} ended at {mean_loss:.3g}, {excess:+.1%} (SE {se:.1%}) "
                    f"against {base} at its tuned rate {tuned:.3g}.",
                    if_fail=f"{rule} from {lr:.3g} did not end within 10 % of tuned {base}: final loss "
                    f"{mean_loss:.3g}, {excess:+.1%} (SE {se:.1%}) against {base} at {tuned:.3g}.",
                )
            )
            final_rates = np.array([run.rates[-1] if run.rates else math.nan for run in learned])
            out.append(
                number(
                    f"rate/{rule}/{label}",
                    f"{rule} from {lr:.3g}: learned rate at the end (geometric mean over seeds)",
                    float(np.exp(np.mean(np.log(final_rates)))) if np.all(final_rates > 0) else math.nan,
                    group=group,
                )
            )
        out.append(
            number(
                f"worst/{rule}",
                f"{rule}: the largest relative excess over the starts",
                worst,
                group=group,
                key=True,
            )
        )
        lowest = min(min(run.rates, default=math.inf) for learned in m["learned"].values() for run in learned)
        out.append(
            exceeds(
                f"positive/{rule}",
                f"{rule}: the smallest learned rate over every step, start and seed is positive",
                lowest,
                0.0,
                about="theory",
                group="instrument checks",
            )
        )
    out.append(
        agrees(
            "engine/hd-sgd",
            f"hd-sgd through TorchOptimizer against the engine's hd-sgd on digits-mlp: max weight gap after "
            f"{config.engine_steps} full-batch steps",
            engine_gap,
            0.0,
            absolute=1e-9,
            group="instrument checks",
        )
    )
    return out


def _figure(config: Config, measured: dict[str, dict]):
    """Top: the learned rate per step (median over seeds) from each start, the tuned rate dashed.
    Bottom: final loss against the rate, the fixed-rate grid (line) and each start (dots)."""
    fig, axes = subplots(2, len(RULES), height=7.6)
    for column, rule in enumerate(RULES):
        m = measured[rule]
        ax = axes[0, column]
        for color, (lr, learned) in zip(COLORS, m["learned"].items()):
            length = min(len(run.rates) for run in learned)
            if length:
                rates = np.median(np.array([run.rates[:length] for run in learned]), axis=0)
                ax.loglog(np.arange(1, length + 1), rates, color=color, lw=1.3, label=f"from {lr:.0e}")
        ax.axhline(m["tuned"], color="k", ls="--", lw=1.0, label=f"tuned {m['base']}")
        low, high = min(*m["learned"], m["tuned"]), max(*m["learned"], m["tuned"])
        ax.set_ylim(low / 30, high * 3)  # a rate that collapses further leaves through the bottom
        ax.set_xlabel("step")
        ax.set_ylabel("learned rate (median over seeds)")
        ax.set_title(f"{rule}: the rate it learns", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, loc="best")
        ax = axes[1, column]
        rates = sorted(m["grid"])
        means = [min(float(np.mean(m["grid"][lr])), LOSS_TOP) for lr in rates]
        ax.loglog(rates, means, "k.-", lw=1.0, label=f"{m['base']}, fixed rate")
        best = float(np.mean(m["grid"][m["tuned"]]))
        ax.axhline(best * (1 + WITHIN), color="gray", ls=":", lw=1.0, label="tuned + 10 %")
        for color, (lr, learned) in zip(COLORS, m["learned"].items()):
            ax.loglog([lr], [min(float(np.mean(losses(learned))), LOSS_TOP)], "o", color=color, ms=6)
        ax.set_xlabel("fixed rate, or the learned rate's start (dots)")
        ax.set_ylim(top=LOSS_TOP * 2)
        ax.set_ylabel(f"final training loss (mean; at most {LOSS_TOP:g})")
        ax.set_title(f"{rule} (dots) against {m['base']}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, loc="best")
    return finish(fig)
