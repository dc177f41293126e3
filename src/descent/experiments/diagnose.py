"""The physics monitor's diagnoses on deliberately broken training runs (issue 13): each case is a real
small network on scikit-learn's digits, trained by the training lab's plain PyTorch loop
(`descent.train.train` with ``torch:SGD``, no momentum) under `descent.monitor.watch`, over several
seeds; the monitor's diagnosis at the run's last check is compared with the labels stated for the
case before any run.

The cases (the reference run: ReLU ``mlp:W`` with Xavier weights, lr ``lr``, batch ``batch``, ``epochs``
epochs of the 1437 training images; each other case changes one thing):

===============  ====================================================  =============================
case             what is broken                                        acceptable diagnoses
===============  ====================================================  =============================
healthy          nothing: the reference run                            healthy
lr-10x           lr 10 x the reference                                 diverging, edge, oscillating
lr-100x-small    lr 1/100 of the reference                             cold
saddle-init      a tanh ``mlp:W,W,W`` with tiny weights (``normal:0.05``:  saddle, plateau
                 each layer scales its input by 0.05): the output is
                 ~1e-4 of the input, every weight gradient is a product
                 of the other layers' tiny weights, and the origin is a
                 saddle (the layers' products couple with either sign)
hot-batch-1      batch 1 at lr ``hot_lr`` (21 x the linear-scaling rule's  hot
                 ``lr/batch``), ``hot_epochs`` epochs
vanishing        a ``depth``-layer sigmoid ``mlp`` (Xavier): the           plateau, saddle
                 gradient shrinks ~4-fold per layer toward the input
===============  ====================================================  =============================

Why these sets. ``lr-10x``: diverging, edge and oscillating are the monitor's three "the step is too
large for the curvature" findings, each advising a lower lr (rising loss past the edge, or a blow-up,
now or remembered; past the edge with the loss not yet rising, now or remembered; updates anti-aligned
near the edge). ``lr-100x-small``: cold, not plateau or saddle: the loss falls steadily but slowly and
its gradient is not small (those two mean a gradient small for the curvature, which a tiny lr does not
make); cold is the monitor's "lr far below its edge (S/E <= 0.05) with negligible noise: raise it".
``saddle-init`` and ``vanishing``: the loss stalls near log 10 with a gradient small for the curvature
or lost in the noise of the steps; whether Lanczos finds negative curvature beyond ``0.01 S`` decides
saddle or plateau, and both are right for a stalled start (the monitor has no separate "vanishing"
label: a vanishing-gradient net shows up as stalled). ``hot-batch-1``: the noise floor ``d T/2`` of
batch-1 SGD at that lr is of the order of the loss.

The monitor's diagnosis of a run is what the monitor itself says after the run's last check
(``Monitor.diagnosis``, `descent.monitor.diagnosis.diagnose`): the finding on the last three checks,
weighed against the run's past, which the monitor remembers over all checks. A run that blew up or whose
sharpness crossed the edge, and then came back, is diagnosed by that event (diverging, edge), with its
current finding appended (a crossing, the milder event, is instead appended to a current finding that
already asks for a smaller step: oscillating, hot). That is the answer a user should get: such a run
*had* an lr too large for the sharpest region it met and survived by leaving it (a catapult), which the
same lr does not survive on many other seeds (of 80 ``lr-10x`` seeds, 29 end above their start loss,
though 16 end below every healthy seed's final loss); a monitor that forgets it calls the too-large lr
healthy at the end, or, once the sharpness has collapsed in a saturated net, advises raising it. The
diagnosis scored is exactly the one the user reads, not a summary computed by the experiment.

Accuracy: the share of (case, seed) runs whose diagnosis (above) is in the case's set; the claim (issue
13) is that it reaches 90 %. Each case is also measured independently of the monitor, from the loop's
own losses (theory checks that the case is what it claims): the reference run's training loss falls
below a tenth of its start; ``lr-10x``'s mean batch loss over some epoch rises above its start;
``lr-100x-small`` keeps more than half its start loss; ``saddle-init`` and ``vanishing`` end within 2 %
of the loss of predicting the training classes' frequencies (their entropy, about log 10: nothing learnt
from the images); ``vanishing``'s mean squared gradient at the first hidden layer is under 1e-2 of the
last's at initialisation (`descent.train.gradients.layer_gradients`); ``hot-batch-1`` ends above the
reference run's final loss. The runs are training-lab runs, not engine runs: each one's
`~descent.train.TrainConfig` is stored in the result's config (``runs``) and replays with
``train(TrainConfig.from_dict(run), monitor_every=every)``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from descent._errors import invalid
from descent.experiments._base import Progress, Result, Row
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import below, exceeds, number, share_se
from descent.monitor.diagnosis import NAMES

NAME = "diagnose"
CLAIM = (
    "The physics monitor recognises what is wrong with a training run (a learning rate far too large "
    "or too small, a saddle, too much gradient noise, vanishing gradients) or that nothing is, in at "
    "least 90 % of runs."
)
PROTOCOL = (
    "Deliberately broken runs of small networks on digits (lr 10 x too large, 100 x too small, a "
    "saddle-rich tiny initialisation, batch 1 at a hot lr, a deep sigmoid net) and a healthy control, "
    "trained with torch's SGD in a plain PyTorch loop under descent.watch, several seeds each; the "
    "monitor's final diagnosis is scored against labels stated per case before the runs, and each "
    "case's brokenness is measured from its own losses."
)

ACCURACY_TARGET = 0.9  # issue 13
CASES = ("healthy", "lr-10x", "lr-100x-small", "saddle-init", "hot-batch-1", "vanishing")
EXPECTED: dict[str, tuple[str, ...]] = {
    "healthy": ("healthy",),
    "lr-10x": ("diverging", "edge", "oscillating"),
    "lr-100x-small": ("cold",),
    "saddle-init": ("saddle", "plateau"),
    "hot-batch-1": ("hot",),
    "vanishing": ("plateau", "saddle"),
}
COLORS = {
    "healthy": "tab:green",
    "lr-10x": "tab:red",
    "lr-100x-small": "tab:blue",
    "saddle-init": "tab:purple",
    "hot-batch-1": "tab:orange",
    "vanishing": "tab:brown",
}
HEALTHY_FALL = 0.1  # the reference run ends below this fraction of its start loss
SMALL_KEEPS = 0.5  # lr-100x-small ends above this fraction of its start loss
STALL = 0.02  # saddle-init and vanishing end within this fraction of the class prior's entropy
VANISHED = 1e-2  # vanishing: first hidden layer's mean squared gradient over the last's, at init
SADDLE_SIGMA = 0.05  # saddle-init's per-layer weight scale (normal:SIGMA)


@dataclass(frozen=True)
class Config:
    seeds: int = 10  # runs per case, seeds seed .. seed + seeds - 1
    width: int = 32
    depth: int = 6  # the vanishing case's sigmoid hidden layers
    lr: float = 0.3  # the reference run's
    batch: int = 128
    epochs: int = 25
    hot_lr: float = 0.05
    hot_epochs: int = 1
    checks: int = 6  # monitor checks per run (every = steps // checks: 50 at the defaults)
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=3)

    def __post_init__(self) -> None:
        ints = {"seeds": 1, "width": 2, "depth": 3, "batch": 2, "epochs": 1, "hot_epochs": 1, "checks": 3}
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise invalid(name, value, f"an integer >= {low}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise invalid("seed", self.seed, "an integer >= 0")
        for name in ("lr", "hot_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise invalid(name, value, "a finite number > 0")
        if self.batch > TRAIN_EXAMPLES:
            raise invalid("batch", self.batch, f"an integer <= {TRAIN_EXAMPLES} (digits' training images)")
        steps = min(self.epochs * math.ceil(TRAIN_EXAMPLES / self.batch), self.hot_epochs * TRAIN_EXAMPLES)
        if steps < self.checks:
            raise invalid("checks", self.checks, f"an integer <= {steps} (the shortest run's steps)")


TRAIN_EXAMPLES = 1437  # digits' training part (80 % of 1797)


def train_config(case: str, config: Config, seed: int):
    """The `TrainConfig` of one run of ``case`` (module docstring's table)."""
    from descent.train import TrainConfig

    width = config.width
    settings = dict(model=f"mlp:{width}", activation="relu", init="xavier", lr=config.lr)
    batch, epochs = config.batch, config.epochs
    if case == "lr-10x":
        settings["lr"] = 10 * config.lr
    elif case == "lr-100x-small":
        settings["lr"] = config.lr / 100
    elif case == "saddle-init":
        settings.update(
            model=f"mlp:{width},{width},{width}", activation="tanh", init=f"normal:{SADDLE_SIGMA}"
        )
    elif case == "hot-batch-1":
        settings["lr"] = config.hot_lr
        batch, epochs = 1, config.hot_epochs
    elif case == "vanishing":
        settings.update(model="mlp:" + ",".join([str(width)] * config.depth), activation="sigmoid")
    return TrainConfig(
        dataset="digits",
        optimizer="torch:SGD",
        momentum=0.0,
        batch_size=batch,
        epochs=epochs,
        seed=seed,
        **settings,  # type: ignore[arg-type]
    )


def every(train: object, checks: int) -> int:
    """Steps between monitor checks: the run's steps over ``checks``."""
    steps = train.epochs * math.ceil(TRAIN_EXAMPLES / train.batch_size)  # type: ignore[attr-defined]
    return max(1, steps // checks)


def first_to_last(train_config_) -> float:
    """The mean squared gradient at the first hidden layer over the last's, at initialisation, on the
    training set (`descent.train.gradients.layer_gradients`)."""
    from descent.train.data import load_dataset
    from descent.train.gradients import layer_gradients
    from descent.train.loop import config_model

    data = load_dataset("digits", seed=train_config_.seed)
    model = config_model(train_config_, data)
    pre, _ = layer_gradients(model, data.x_train, data.y_train)  # type: ignore[arg-type]
    return float(pre[0] / pre[-1])


def prior_entropy(y) -> float:
    """The cross-entropy of predicting the class frequencies of ``y``: their entropy (nats)."""
    p = np.bincount(np.asarray(y)) / len(y)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def run_case(case: str, config: Config, seed: int) -> dict:
    """One monitored run: its final diagnosis, the diagnosis at every check, and its losses."""
    from descent.train import train

    spec = train_config(case, config, seed)
    result = train(spec, plot=False, monitor_every=every(spec, config.checks))
    rows = result.monitor.rows
    losses = [row["train_loss"] for row in result.metrics]
    out = {
        "case": case,
        "seed": seed,
        "spec": spec.to_dict(),
        "diagnosis": result.monitor.diagnosis.name,
        "advice": result.monitor.diagnosis.message,
        "names": [row["diagnosis"] for row in rows],
        "check_steps": [row["step"] for row in rows],
        "check_losses": [row["loss"] for row in rows],
        "start": result.initial["train_loss"],
        "prior": prior_entropy(result.data.y_train),
        "final": losses[-1],
        "peak": max(row["batch_loss"] for row in result.metrics),
        "first_to_last": first_to_last(spec) if case == "vanishing" else math.nan,
    }
    out["correct"] = out["diagnosis"] in EXPECTED[case]
    return out


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    runs = []
    total = len(CASES) * config.seeds
    for i, case in enumerate(CASES):
        for k in range(config.seeds):
            runs.append(run_case(case, config, config.seed + k))
            if progress is not None:
                progress(i * config.seeds + k + 1, total)
    config_dict = {
        **asdict(config),
        "expected": {case: list(labels) for case, labels in EXPECTED.items()},
        "scored": "the monitor's diagnosis after the run's last check: its last 3 checks weighed against "
        "the blow-ups and edge crossings it remembers over the run",
        "runs": [r["spec"] for r in runs],
        "diagnoses": [r["diagnosis"] for r in runs],
    }
    return Result(NAME, CLAIM, PROTOCOL, _rows(config, runs), config_dict, [_figure(config, runs)], [])


def confusion(runs: list[dict]) -> dict[str, Counter]:
    """Per case, how many runs ended with each diagnosis."""
    table: dict[str, Counter] = {case: Counter() for case in CASES}
    for r in runs:
        table[r["case"]][r["diagnosis"]] += 1
    return table


def needed_share(n: int) -> float:
    """The bound a share k/n must exceed to reach ``ACCURACY_TARGET``: halfway between the smallest
    passing share ``ceil(0.9 n)/n`` and the one below it.

    >>> needed_share(18) * 18, needed_share(60) * 60
    (16.5, 53.5)
    """
    return (math.ceil(round(ACCURACY_TARGET * n, 9)) - 0.5) / n


def _rows(config: Config, runs: list[dict]) -> list[Row]:
    out: list[Row] = []
    correct = sum(r["correct"] for r in runs)
    share, se = share_se(correct, len(runs))
    wrong = [f"{r['case']} seed {r['seed']}: {r['diagnosis']}" for r in runs if not r["correct"]]
    out.append(
        exceeds(
            "accuracy",
            f"share of runs diagnosed within their case's labels (at least {ACCURACY_TARGET:.0%})",
            share,
            needed_share(len(runs)),
            group="accuracy (claim)",
            key=True,
            if_pass=f"The monitor named {correct} of {len(runs)} runs within their case's labels "
            f"({share:.0%}).",
            if_fail=f"The monitor named only {correct} of {len(runs)} runs within their case's labels "
            f"({share:.0%}); misdiagnosed: {'; '.join(wrong)}.",
        )
    )
    out.append(number("accuracy_se", "its standard error (binomial)", se, group="accuracy (claim)"))
    table = confusion(runs)
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        case_share, case_se = share_se(sum(r["correct"] for r in mine), len(mine))
        group = f"{case} (expected: {', '.join(EXPECTED[case])})"
        out.append(
            number(
                f"accuracy/{case}", f"{case}: share diagnosed correctly", case_share, se=case_se, group=group
            )
        )
        for name in NAMES:
            if table[case][name]:
                out.append(
                    number(
                        f"confusion/{case}/{name}",
                        f"{case}: runs diagnosed {name}",
                        table[case][name],
                        group=group,
                    )
                )
    out += _case_checks(runs)
    return out


def _case_checks(runs: list[dict]) -> list[Row]:
    """The cases measured without the monitor: each is what it claims to be (module docstring)."""

    def of(case: str, key: str) -> np.ndarray:
        return np.array([r[key] for r in runs if r["case"] == case], dtype=float)

    def stalled(case: str) -> float:
        return float(np.abs(of(case, "final") / of(case, "prior") - 1).max())

    falls = of("healthy", "final") / of("healthy", "start")
    keeps = of("lr-100x-small", "final") / of("lr-100x-small", "start")
    prior = "|final loss/class prior's entropy - 1|"
    checks = [  # id, label, value, bound, whether the value must exceed the bound (else stay below it)
        (
            "healthy",
            "healthy: largest final/start training loss over the seeds",
            falls.max(),
            HEALTHY_FALL,
            False,
        ),
        (
            "lr-10x",
            "lr-10x: smallest (largest epoch's mean batch loss)/start over the seeds",
            (of("lr-10x", "peak") / of("lr-10x", "start")).min(),
            1.0,
            True,
        ),
        (
            "lr-100x-small",
            "lr-100x-small: smallest final/start training loss",
            keeps.min(),
            SMALL_KEEPS,
            True,
        ),
        ("saddle-init", f"saddle-init: largest {prior} over the seeds", stalled("saddle-init"), STALL, False),
        ("vanishing", f"vanishing: largest {prior} over the seeds", stalled("vanishing"), STALL, False),
        (
            "vanishing-gradient",
            "vanishing: largest first/last hidden layer's mean squared gradient at init over the seeds",
            of("vanishing", "first_to_last").max(),
            VANISHED,
            False,
        ),
        (
            "hot-batch-1",
            "hot-batch-1: smallest final training loss over the healthy run's largest",
            of("hot-batch-1", "final").min() / of("healthy", "final").max(),
            1.0,
            True,
        ),
    ]
    group = "the cases, measured from the loop's own losses (not the monitor)"
    return [
        (exceeds if up else below)(f"case/{id}", label, float(value), bound, about="theory", group=group)
        for id, label, value, bound, up in checks
    ]


def _figure(config: Config, runs: list[dict]):
    """The confusion table (cases against final diagnoses, the acceptable cells framed) and, per case,
    the share of seeds whose diagnosis at each check is acceptable."""
    fig, axes = subplots(1, 2, height=4.8, gridspec_kw={"width_ratios": [1.3, 1.0]})
    ax = axes[0]
    table = confusion(runs)
    labels = list(NAMES)
    counts = np.array([[table[case][name] for name in labels] for case in CASES], dtype=float)
    ax.imshow(counts / config.seeds, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    for i, case in enumerate(CASES):
        for j, name in enumerate(labels):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=10)
            if name in EXPECTED[case]:
                ax.add_patch(_frame(j, i))
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(CASES)), CASES)
    share = sum(r["correct"] for r in runs) / len(runs)
    ax.set_title(
        f"final diagnosis, {config.seeds} seeds a case (framed: expected); {share:.0%} right", fontsize=10
    )

    ax = axes[1]
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        checks = min(len(r["names"]) for r in mine)
        steps = np.array(mine[0]["check_steps"][:checks], dtype=float)
        right = [np.mean([r["names"][c] in EXPECTED[case] for r in mine]) for c in range(checks)]
        ax.plot(steps / steps[-1], right, "o-", color=COLORS[case], ms=3, label=case)
    ax.set_xlabel("check (fraction of the run)")
    ax.set_ylabel("share of seeds diagnosed as expected")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("when the diagnosis settles", fontsize=10)
    ax.legend(fontsize=9, loc="lower right")
    ax.grid(alpha=0.3)
    return finish(fig)


def _frame(x: float, y: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.5)
