"""The seeds' batch-size table, measured: batch gradient descent, SGD (B = 1) and mini-batches of 32, 128
and 512 examples training the same MLP on scikit-learn's digits.

Per mode, one `RunSpec` trains the swarm of ``seeds`` networks at once (``descent.objectives.
NetworkObjective``: particle i is seed i's network, its own initialisation and its own batch stream;
every mode starts from the same ``seeds`` networks), with the engine's ``epoch`` batches (a fresh
permutation per epoch, cut into floor(n/B) batches). The saved frames (every ``check`` steps) give the
full training cross-entropy, hence the steps, epochs and seconds to reach ``target`` (resolution: one
check) and the test accuracy there (at matched training loss). The wall time per step: each mode's
swarm run again for ``timing_steps`` steps, ``timing_repeats`` times with the modes interleaved, the
fastest run over its steps and networks (one thread; on a shared machine load only adds time): the
engine's time per network, its per-step bookkeeping included (a hand-written loop's steps are cheaper,
most of all SGD's; the ordering of the modes is what the table compares).

Gradient quality, at each seed's network where batch GD first reached the target: with g_i the n
per-example gradients (the objective's own, one example per particle) and g their mean (the full
gradient), Sigma = (1/n) sum_i (g_i - g)(g_i - g)^T. The variance of a batch-mean gradient around g,
E|g_B - g|^2, is tr(Sigma)/B for B draws with replacement and tr(Sigma)/B (n - B)/(n - 1) without
(each epoch batch is a uniform subset without replacement); it is measured from mini-batches drawn by
the engine's sampler (``sgd_noise.batch_gradients``: ``draw_indices``, both modes) and checked within
3 SE. The effective temperature per parameter is lr tr(Sigma)/(2 B d) [x (n - B)/(n - 1)], d the
number of weights: ``descent.theory.noise.sgd_temperature`` with s^2 = tr(Sigma)/d, the sgd-noise
experiment's quantity.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots, table_figure
from descent.experiments.rows import agrees, exceeds, mean_se, number
from descent.experiments.sgd_noise import batch_gradients
from descent.objectives.network import NetworkObjective, digits_mlp
from descent.spec import RunSpec
from descent.theory.noise import sgd_temperature, without_replacement_factor
from descent.train.gradients import full_gradients, per_example_gradients

NAME = "batch-table"
CLAIM = (
    "The batch size trades gradient quality for speed: batch gradient descent uses all the data per "
    "step (an exact gradient, slow steps), SGD one example (fast, noisy steps), and mini-batches "
    "balance the two, reaching a given training loss fastest."
)
PROTOCOL = (
    "An MLP on scikit-learn's digits is trained by batch GD, SGD and mini-batches of 32, 128 and 512 "
    "examples (epoch batches), five seeds per mode as one swarm of networks, until the training "
    "cross-entropy falls below 0.1; per mode: data per step, the batch gradient's measured variance "
    "against the with- and without-replacement formulas, the effective temperature lr tr(Sigma)/(2Bd), "
    "wall time per epoch, steps and seconds to the target and the test accuracy there."
)
FULL = 0  # the batch size of batch gradient descent in ``Config.batches``


@dataclass(frozen=True)
class Config:
    width: int = 64
    depth: int = 2
    examples: int = 0  # the first images of digits (0: all 1797; 80 % train, 20 % test)
    activation: int = 0  # digits_mlp's code: 0 relu
    batches: tuple[int, ...] = (FULL, 1, 32, 128, 512)
    # SGD at lr 0.1 stays at chance on this MLP (a pilot: all five seeds); it runs at 0.01
    lrs: tuple[float, ...] = (0.1, 0.01, 0.1, 0.1, 0.1)
    steps: tuple[int, ...] = (400, 4000, 400, 400, 400)  # per mode: enough to reach the target
    checks: tuple[int, ...] = (5, 50, 5, 5, 5)  # steps between checks of the full training loss
    seeds: int = 5
    target: float = 0.1
    draws: int = 200  # mini-batches per (B, mode) for the variance
    timing_steps: int = 50  # the timing runs: each mode's swarm for this many steps,
    timing_repeats: int = 3  # this many times, the modes interleaved; the fastest counts
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            width=32,
            depth=1,
            examples=800,
            steps=(300, 2600, 300, 300, 300),
            checks=(5, 50, 5, 5, 5),
            seeds=3,
            draws=120,
            timing_steps=20,
        )


# --- measurements ------------------------------------------------------------------------------------
def noise_trace(per_example: torch.Tensor) -> float:
    """tr(Sigma) = (1/n) sum_i |g_i - g|^2, g the mean gradient."""
    centred = per_example - per_example.mean(0)
    return float(centred.square().sum() / per_example.shape[0])


def batch_variance_formula(trace: float, batch: int, n: int, replacement: bool) -> float:
    """E|g_B - g|^2: tr(Sigma)/B, times (n - B)/(n - 1) without replacement."""
    return trace / batch * (1.0 if replacement else without_replacement_factor(n, batch))


def batch_variance(
    per_example: torch.Tensor, batch: int, replacement: bool, draws: int, seed: int
) -> tuple[float, float]:
    """E|g_B - g|^2 over ``draws`` mini-batches drawn by the engine's sampler (particles 0 .. draws-1,
    step 0), and its standard error; blocks of draws keep the gathered examples small."""
    mean = per_example.mean(0)
    block = max(1, 2**24 // (batch * per_example.shape[1]))
    squares = []
    for first in range(0, draws, block):
        count = min(block, draws - first)
        means = batch_gradients(per_example, batch, replacement, count, seed, first)
        squares.append((means - mean).square().sum(dim=1))
    sample = torch.cat(squares).tolist()
    return mean_se(sample)


def first_reached(losses: torch.Tensor, steps: torch.Tensor, target: float) -> list[int | None]:
    """Per particle, the first saved step whose loss ``[T, N]`` is at most ``target`` (None: never)."""
    out: list[int | None] = []
    for column in losses.T:
        hits = (column <= target).nonzero()
        out.append(int(steps[hits[0, 0]]) if len(hits) else None)
    return out


def _train(config: Config, net: NetworkObjective, runs: Runs, index: int, tick) -> dict:
    """One mode: the swarm of ``seeds`` networks, its training losses at the checks, its timing."""
    batch, lr = config.batches[index], config.lrs[index]
    n = net.data_size
    size = None if batch == FULL or batch >= n else batch
    spec = RunSpec(
        landscape="digits-mlp",
        landscape_params={
            "width": config.width,
            "depth": config.depth,
            "examples": config.examples,
            "activation": config.activation,
        },
        optimizer="gd",
        hyper={"lr": lr},
        starts=f"random:{config.seeds}",
        steps=config.steps[index],
        save=f"every:{config.checks[index]}",
        batch_size=size,
        batch_mode="epoch",
        seed=config.seed,
        backend="torch",
    )
    traj = runs(spec, tick, objective=net)
    t, seeds, dim = traj.positions.shape
    with torch.no_grad():
        losses = net.losses(traj.positions.reshape(-1, dim), net.inputs, net.targets).reshape(t, seeds)
    reached = first_reached(losses, traj.steps, config.target)
    at = [int((traj.steps == k).nonzero()[0, 0]) if k is not None else t - 1 for k in reached]
    points = torch.stack([traj.positions[f, i] for i, f in enumerate(at)])
    steps_per_epoch = 1 if size is None else n // size
    return {
        "spec": spec,
        "batch": n if size is None else size,
        "label": "batch GD" if size is None else ("SGD" if size == 1 else f"mini-batch {size}"),
        "lr": lr,
        "steps_per_epoch": steps_per_epoch,
        "check": config.checks[index],
        "reached": reached,
        "points": points,
        "test_accuracy": net.metrics(points)["accuracy"].tolist(),
        "curve_steps": traj.steps.numpy(),
        "curve": losses.numpy(),
    }


def _time(config: Config, net: NetworkObjective, runs: Runs, modes: list[dict]) -> None:
    """Each mode's wall time per step and network: its swarm run again for ``timing_steps`` steps
    (summary only), ``timing_repeats`` times with the modes interleaved; the fastest run counts (the
    load of a shared machine only adds time)."""
    walls: list[list[float]] = [[] for _ in modes]
    for _ in range(config.timing_repeats):
        for mode, wall in zip(modes, walls):
            spec = mode["spec"].with_(steps=config.timing_steps, save="summary")
            start = time.perf_counter()
            runs(spec, objective=net)
            wall.append(time.perf_counter() - start)
    for mode, wall in zip(modes, walls):
        mode["seconds_per_step"] = min(wall) / config.timing_steps / config.seeds
        mode["seconds_per_epoch"] = mode["seconds_per_step"] * mode["steps_per_epoch"]


def _noise(config: Config, net: NetworkObjective, points: torch.Tensor) -> dict:
    """tr(Sigma), |g|^2 and the relative noise at each seed's point; the variance checks at seed 0's."""
    n, dim = net.data_size, net.dim
    traces, signal = [], []
    variances = {}
    for i, w in enumerate(points):
        grads = per_example_gradients(net, w)
        traces.append(noise_trace(grads))
        signal.append(float(grads.mean(0).square().sum()))
        if i == 0:
            full = full_gradients(net, w.unsqueeze(0))[1][0]
            mean_gap = float((grads.mean(0) - full).abs().max())
            for batch in sorted({b for b in config.batches if b != FULL and b < n}):
                for replacement in (True, False):
                    seed = config.seed + 1000 * batch + replacement
                    value, se = batch_variance(grads, batch, replacement, config.draws, seed)
                    variances[(batch, replacement)] = (value, se)
    return {
        "traces": traces,
        "signal": signal,
        "relative": [a / b for a, b in zip(traces, signal)],
        "variances": variances,
        "mean_gap": mean_gap,
        "n": n,
        "dim": dim,
    }


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    lengths = {len(config.batches), len(config.lrs), len(config.steps), len(config.checks)}
    if len(lengths) != 1:
        raise ValueError("batch-table: batches, lrs, steps and checks need one entry per mode")
    net = digits_mlp(config.width, config.depth, config.examples, config.activation)
    runs = Runs()
    total = sum(config.steps)
    done = 0
    modes = []
    for index in range(len(config.batches)):
        offset = done
        tick = None if progress is None else (lambda k, _t, offset=offset: progress(offset + k, total))
        modes.append(_train(config, net, runs, index, tick))
        done += config.steps[index]
    _time(config, net, runs, modes)
    gd = next(m for m in modes if m["batch"] == net.data_size)
    noise = _noise(config, net, gd["points"])
    if progress is not None:
        progress(total, total)
    config_dict = {
        **asdict(config),
        "model": f"mlp:{','.join([str(config.width)] * config.depth)} (relu), cross-entropy, digits",
        "training examples": net.data_size,
        "weights": net.dim,
        "threads": torch.get_num_threads(),
    }
    figures = [_figure(config, modes, noise), _table_figure(config, modes, noise)]
    return Result(NAME, CLAIM, PROTOCOL, _rows(config, modes, noise), config_dict, figures, runs.specs)


# --- rows ----------------------------------------------------------------------------------------------
G_Q = "gradient quality at the networks where batch GD reached the target (theory: sampling formulas)"
G_S = "speed: wall time on one thread, per network of the swarm"
G_T = "to a training cross-entropy of the target (mean over seeds)"
G_C = "the seeds' table (claims)"


def _seconds_to_target(mode: dict) -> list[float]:
    return [math.nan if k is None else k * mode["seconds_per_step"] for k in mode["reached"]]


def _epochs_to_target(mode: dict) -> list[float]:
    return [math.nan if k is None else k / mode["steps_per_epoch"] for k in mode["reached"]]


def _mean_se_nan(values: list[float]) -> tuple[float, float | None]:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values) or len(finite) < 2:
        return (finite[0] if len(finite) == 1 and len(values) == 1 else math.nan), None
    return mean_se(finite)


def _paired_ratio(top: dict, bottom: dict, values) -> tuple[float, float | None]:
    """The mean over seeds of ``values(top)_i / values(bottom)_i`` and its standard error: the seeds'
    spread plus each count's resolution (a step count is known to one check: a uniform error of sd
    check/sqrt(12)), so identical counts still carry an error. NaN where a seed never reached."""
    a, b = values(top), values(bottom)
    ratios = [x / y for x, y in zip(a, b)]
    if not all(math.isfinite(r) for r in ratios) or len(ratios) < 2:
        return math.nan, None
    mean, se = mean_se(ratios)
    resolution = [
        (r * math.hypot(top["check"] / (math.sqrt(12) * ka), bottom["check"] / (math.sqrt(12) * kb))) ** 2
        for r, ka, kb in zip(ratios, top["reached"], bottom["reached"])
    ]
    return mean, math.sqrt(se**2 + sum(resolution) / len(ratios) ** 2)


def _mode_id(mode: dict, n: int) -> str:
    return "full" if mode["batch"] == n else f"B={mode['batch']}"


def _rows(config: Config, modes: list[dict], noise: dict) -> list[Row]:
    n, dim = noise["n"], noise["dim"]
    trace = float(np.mean(noise["traces"]))
    out: list[Row] = [
        number("trace_sigma", "tr(Sigma), the per-example gradient covariance's trace", trace, group=G_Q),
        agrees(
            "mean_gradient",
            "largest |mean per-example gradient - full gradient| (seed 0)",
            noise["mean_gap"],
            0.0,
            absolute=1e-10,
            group=G_Q,
        ),
    ]
    for (batch, replacement), (value, se) in sorted(noise["variances"].items()):
        word = "with" if replacement else "without"
        formula = batch_variance_formula(noise["traces"][0], batch, n, replacement)
        out.append(
            agrees(
                f"variance/B={batch}/{word}",
                f"E|g_B - g|^2, B = {batch} {word} replacement, vs tr(Sigma)/B"
                + ("" if replacement else " (n - B)/(n - 1)"),
                value,
                formula,
                se=se,
                group=G_Q,
            )
        )
    for mode in modes:
        mid, batch = _mode_id(mode, n), mode["batch"]
        full = batch == n
        temperature = sgd_temperature(mode["lr"], trace / dim, batch, n=n, replacement=False)
        steps = [math.nan if k is None else float(k) for k in mode["reached"]]
        out += [
            number(f"data_per_step/{mid}", f"examples per step, {mode['label']}", batch, group=G_S),
            number(
                f"variance/{mid}",
                f"E|g_B - g|^2 by the without-replacement formula, {mode['label']}",
                0.0 if full else batch_variance_formula(trace, batch, n, False),
                group=G_Q,
            ),
            number(
                f"temperature/{mid}",
                f"effective temperature lr tr(Sigma)/(2Bd) (n - B)/(n - 1), {mode['label']}, "
                f"lr {mode['lr']:g}",
                temperature,
                group=G_Q,
            ),
            number(
                f"seconds_per_epoch/{mid}",
                f"seconds per epoch, {mode['label']}",
                mode["seconds_per_epoch"],
                unit="s",
                group=G_S,
            ),
            number(
                f"seconds_per_step/{mid}",
                f"seconds per step, {mode['label']}",
                mode["seconds_per_step"],
                unit="s",
                group=G_S,
            ),
        ]
        for key, label, values in (
            ("steps_to_target", "steps", steps),
            ("epochs_to_target", "epochs", _epochs_to_target(mode)),
            ("seconds_to_target", "seconds", _seconds_to_target(mode)),
            ("test_accuracy", "test accuracy at the target", mode["test_accuracy"]),
        ):
            value, se = _mean_se_nan(values)
            what = (
                label
                if key == "test_accuracy"
                else f"{label} to a training cross-entropy of {config.target:g}"
            )
            out.append(number(f"{key}/{mid}", f"{what}, {mode['label']}", value, se=se, group=G_T))
        out.append(
            number(
                f"reached/{mid}",
                f"seeds that reached the target, {mode['label']}",
                sum(k is not None for k in mode["reached"]),
                group=G_T,
            )
        )
    out += _claims(config, modes, noise)
    return out


def _claims(config: Config, modes: list[dict], noise: dict) -> list[Row]:
    n = noise["n"]
    by = {m["batch"]: m for m in modes}
    gd, sgd, mini = by[n], by[1], by[32]
    relative, relative_se = mean_se(noise["relative"])
    rows = [
        exceeds(
            "claim/step_cost",
            "batch GD's step costs more wall time than SGD's (ratio of seconds per step)",
            gd["seconds_per_step"] / sgd["seconds_per_step"],
            1.0,
            group=G_C,
            key=True,
            if_pass=f"A batch-GD step ({n} examples) takes "
            f"{gd['seconds_per_step'] / sgd['seconds_per_step']:.1f} times an SGD step's wall time.",
            if_fail="A batch-GD step is not slower than an SGD step here.",
        ),
        exceeds(
            "claim/sgd_noise",
            "SGD's gradient is noisy: tr(Sigma)/|g|^2 (noise over signal) at the trained networks",
            relative,
            1.0,
            se=relative_se,
            group=G_C,
            key=True,
            if_pass=f"One example's gradient is mostly noise: its variance is {relative:.3g} +- "
            f"{relative_se:.2g} times the squared full gradient.",
            if_fail=f"One example's gradient variance is only {relative:.3g} +- {relative_se:.2g} times the "
            "squared full gradient: not noisier than the signal.",
        ),
    ]
    for other, word in ((gd, "batch GD"), (sgd, "SGD")):
        ratio, se = _paired_ratio(other, mini, _seconds_to_target)
        key = "gd" if other is gd else "sgd"
        rows.append(
            exceeds(
                f"claim/minibatch_faster_than_{key}",
                f"mini-batch 32 reaches the target in less wall time than {word} "
                f"(paired ratio, {word} / mini-batch)",
                ratio,
                1.0,
                se=se,
                group=G_C,
                key=True,
                if_pass=f"Mini-batches of 32 reach a training cross-entropy of {config.target:g} "
                f"{ratio:.2g} times faster than {word} (wall time, paired over seeds).",
                if_fail=f"Mini-batches of 32 are not clearly faster than {word} to a training "
                f"cross-entropy of {config.target:g}: ratio {ratio:.3g}"
                + (f" +- {se:.2g}" if se else " (a seed never reached it)")
                + ".",
            )
        )
    ratio, se = _paired_ratio(gd, sgd, _epochs_to_target)
    rows.append(
        exceeds(
            "claim/sgd_fewer_epochs",
            "SGD needs fewer passes over the data than batch GD (paired ratio of epochs, GD / SGD)",
            ratio,
            1.0,
            se=se,
            group=G_C,
            if_pass=f"SGD reaches the target after {ratio:.3g} times fewer epochs than batch GD.",
            if_fail=f"SGD does not reach the target in fewer epochs than batch GD (ratio {ratio:.3g}).",
        )
    )
    return rows


# --- figures -------------------------------------------------------------------------------------------
COLORS = ("black", "tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange")


def _figure(config: Config, modes: list[dict], noise: dict):
    fig, axes = subplots(1, 2, height=4.6)
    ax = axes[0]
    n = noise["n"]
    bs = np.unique(np.geomspace(1, n, 80).astype(int))
    trace0 = noise["traces"][0]
    ax.plot(bs, trace0 / bs, "k-", lw=1, label="tr(Sigma)/B (with replacement)")
    ax.plot(
        bs[bs < n],
        [batch_variance_formula(trace0, b, n, False) for b in bs[bs < n]],
        "k--",
        lw=1,
        label="x (n - B)/(n - 1) (without)",
    )
    for replacement, marker in ((True, "o"), (False, "s")):
        items = sorted((b, v) for (b, r), v in noise["variances"].items() if r == replacement)
        ax.errorbar(
            [b for b, _ in items],
            [v for _, (v, _) in items],
            yerr=[3 * se for _, (_, se) in items],
            fmt=marker,
            mfc="tab:blue" if replacement else "none",
            color="tab:blue",
            label=f"measured, {'with' if replacement else 'without'} replacement (3 SE)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("E|g_B - g|^2")
    ax.set_title("gradient quality: the batch gradient's variance")
    ax.legend(fontsize=9, loc="lower left")
    ax.grid(alpha=0.3)

    ax = axes[1]
    for color, mode in zip(COLORS, modes):
        seconds = mode["curve_steps"] * mode["seconds_per_step"]
        curve = mode["curve"]
        ax.plot(
            seconds[1:],
            curve.mean(1)[1:],
            "-",
            color=color,
            lw=1.4,
            label=f"{mode['label']} (lr {mode['lr']:g})",
        )
        ax.fill_between(seconds[1:], curve.min(1)[1:], curve.max(1)[1:], color=color, alpha=0.15)
    ax.axhline(config.target, color="0.4", ls=":", lw=1, label=f"target {config.target:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall seconds per network (one thread)")
    ax.set_ylabel("training cross-entropy (full data)")
    ax.set_title(f"speed: {config.seeds} seeds per mode (band: min to max)")
    ax.legend(fontsize=9, loc="lower left")
    ax.grid(alpha=0.3)
    return finish(fig)


def _use_cases(modes: list[dict], n: int) -> dict[int, str]:
    """Each mode's measured superlatives (what it is best at here)."""

    def best(key) -> int:
        return min(modes, key=key)["batch"]

    def mean(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return math.inf if len(finite) < len(values) else float(np.mean(finite))

    facts = [
        (best(lambda m: mean(_seconds_to_target(m))), "fastest to the target"),
        (best(lambda m: mean(_epochs_to_target(m))), "fewest epochs"),
        (best(lambda m: m["seconds_per_step"]), "cheapest step"),
        (n, "exact gradient"),
    ]
    out: dict[int, list[str]] = {m["batch"]: [] for m in modes}
    for batch, fact in facts:
        out[batch].append(fact)
    return {b: ", ".join(v) or "-" for b, v in out.items()}


def _table_figure(config: Config, modes: list[dict], noise: dict):
    n, dim = noise["n"], noise["dim"]
    trace = float(np.mean(noise["traces"]))
    uses = _use_cases(modes, n)
    header = [
        "mode",
        "data/step",
        "E|g_B-g|^2 (formula)",
        "T (x1e-6)",
        "s/epoch",
        "steps to CE",
        "s to CE",
        "test acc.",
        "measured: best at",
    ]
    cells = []
    for mode in modes:
        batch = mode["batch"]
        variance = 0.0 if batch == n else batch_variance_formula(trace, batch, n, False)
        temperature = sgd_temperature(mode["lr"], trace / dim, batch, n=n, replacement=False)
        steps, steps_se = _mean_se_nan([math.nan if k is None else float(k) for k in mode["reached"]])
        seconds, _ = _mean_se_nan(_seconds_to_target(mode))
        accuracy, accuracy_se = _mean_se_nan(mode["test_accuracy"])
        cells.append(
            [
                f"{mode['label']} (lr {mode['lr']:g})",
                f"{batch}",
                f"{variance:.3g}",
                f"{temperature * 1e6:.3g}",
                f"{mode['seconds_per_epoch']:.3g}",
                f"{steps:.0f}" + (f" +- {steps_se:.0f}" if steps_se else ""),
                f"{seconds:.3g}",
                f"{accuracy:.3f}" + (f" +- {accuracy_se:.3f}" if accuracy_se else ""),
                uses[batch],
            ]
        )
    title = (
        f"the seeds' table, measured (digits, {n} training images, {config.seeds} seeds; "
        f"CE = training cross-entropy {config.target:g}; wall time per network, one thread)"
    )
    return table_figure(header, cells, title, row_height=0.3, margin=0.6)
