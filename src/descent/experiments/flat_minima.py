"""Flat minima: does SGD's noise find flatter minima that generalise better? Measured on real networks.

Protocol (after Keskar et al., ICLR 2017, at matched training loss). Per dataset (``datasets``:
scikit-learn's digits and breast cancer, stratified 80/20 split, standardised), a ReLU MLP
(``depth`` hidden layers of ``width``, torch's default initialisation) is trained by plain SGD
(descent's ``gd`` rule, learning rate ``lr``) with epoch mini-batches of each size in ``batches``
(``FULL``: batch gradient descent). The ``seeds`` networks of one batch size are one engine swarm (a
`RunSpec` on a `descent.objectives.NetworkObjective`, ``starts="random:N"`` with the same seed at every
batch size, so seed i starts from the same initialisation whatever the batch size: the comparisons are
paired by seed), each network drawing its own batches from the engine's stream.

The stopping rule, per run: the full training cross-entropy is checked every ``check`` steps (the
saved frames); the run's stopping point is the first check at which it is at most ``target`` (1e-2).
What the run does after that check cannot change its state there, so the state at the first such
check is the state of the run stopped by the rule. A run that never reaches the target within its
``steps`` budget has no stopping point: it is counted as such, and left out of every comparison
(a pair needs both of its runs stopped).

At each stopping point, with ``L`` the full training loss: the sharpness ``lambda_max(H)``, ``H`` the
Hessian of ``L`` (Lanczos on Hessian-vector products, `descent.train.hessian.top_eigenvalues`), the
trace ``tr H`` (Hutchinson with ``probes`` Rademacher vectors and its standard error; seed i's networks
share their probe vectors), and the generalisation gap: test loss - train loss, and test error - train
error. Between every two batch sizes each quantity is compared by the paired Wilcoxon signed-rank
test (`paired_wilcoxon`: scipy's, exact for n <= 50) on the seeds' differences; the median difference
and the two-sided p-value are reported. The claim checks: for the smallest batch against batch GD,
the one-sided p-value for "smaller at the small batch" is below ``ALPHA``, for each quantity and each
dataset. The instrument checks: the stopping points' training loss (recomputed independently) is
below the target and the check before it was not; on one network, the Lanczos eigenvalue equals the
dense Hessian's to 1e-6 and Hutchinson's trace is within 3 SE of the exact trace.

Measured at the full size (one thread, about 85 s of CPU): every run stopped (median 595 steps on
digits, 380 to 420 on breast cancer, the same at every batch size at this lr); B = 16 ended flatter
than batch GD on both datasets (sharpness 0.47 vs 0.73 on digits, 0.46 vs 0.77 on breast cancer; all
ten seeds or nine of ten, one-sided p 0.001 to 0.002; the trace likewise), but its generalisation gaps
were not smaller (one-sided p 0.42 to 0.90): flatter, not better generalising.

>>> r = paired_wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.5])
>>> r.n, r.median_difference, r.p_less, r.p_two_sided  # all five below: p = 1/2^5 one-sided
(5, -3.0, 0.03125, 0.0625)
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent._errors import invalid, listed
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.batch_table import COLORS, first_reached
from descent.experiments.figures import finish, subplots, table_figure
from descent.experiments.rows import agrees, below, exceeds, number
from descent.landscapes import get_landscape
from descent.objectives.network import NetworkObjective
from descent.spec import RunSpec
from descent.train.gradients import exact_hessian

NAME = "flat-minima"
CLAIM = (
    "SGD's noise finds flatter minima that generalise better: networks trained with small batches "
    "end at minima of lower sharpness (top Hessian eigenvalue, Hessian trace) with a smaller gap "
    "between test and training loss than networks trained with large batches or full-batch descent."
)
PROTOCOL = (
    "ReLU MLPs on digits and breast cancer are trained by SGD with batch sizes 16, 64, 256 and the full "
    "data, the same initialisations (seeds) at every batch size, each run stopped at the first check "
    "of its full training cross-entropy below 1e-2; there the sharpness (Lanczos), the Hessian trace "
    "(Hutchinson) and the generalisation gaps are measured and compared between batch sizes by paired "
    "Wilcoxon signed-rank tests."
)
FULL = 0  # the batch size of batch gradient descent in ``Config.batches``
ALPHA = 0.05  # the claim checks' one-sided significance level
DENSE_REL = 1e-6  # Lanczos against the dense Hessian's top eigenvalue
DENSE_CHUNK = 128  # Hessian columns per vmapped backward pass in the dense check
EIGSH_TOL = 1e-10  # ARPACK's relative tolerance for the sharpness
NETWORK_DATASETS = ("digits", "breast-cancer")  # those with a registered DATASET-mlp landscape
QUANTITIES = (
    ("sharpness", "sharpness (top Hessian eigenvalue)"),
    ("trace", "Hessian trace (Hutchinson)"),
    ("loss_gap", "loss gap (test - train cross-entropy)"),
    ("error_gap", "error gap (test - train error)"),
)


@dataclass(frozen=True)
class Config:
    """The issue's protocol by default; ``quick()``: a smaller network, fewer seeds and examples, the
    same checks and criteria."""

    datasets: tuple[str, ...] = ("digits", "breast-cancer")
    examples: tuple[int, ...] = (0, 0)  # per dataset, its first examples (0: all); 80 % train
    width: int = 32
    depth: int = 2
    batches: tuple[int, ...] = (16, 64, 256, FULL)
    lr: float = 0.2
    seeds: int = 10
    target: float = 1e-2
    steps: tuple[int, ...] = (1500, 1000)  # per dataset, each run's budget (a pilot: all stop by ~700)
    check: int = 10  # steps between checks of the full training loss
    probes: int = 100  # Hutchinson's Rademacher vectors per network
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(examples=(500, 400), width=16, depth=1, seeds=6, steps=(600, 1200), probes=30)

    def __post_init__(self) -> None:
        if not self.datasets or any(d not in NETWORK_DATASETS for d in self.datasets):
            raise invalid("datasets", self.datasets, f"datasets among: {listed(NETWORK_DATASETS)}")
        for name in ("examples", "steps"):
            value = getattr(self, name)
            if len(value) != len(self.datasets):
                raise invalid(name, value, f"one entry per dataset ({len(self.datasets)})")
        if any(_not_int(e, 0) for e in self.examples):
            raise invalid("examples", self.examples, "integers >= 0 (0: all examples)")
        if any(_not_int(s, 1) for s in self.steps):
            raise invalid("steps", self.steps, "integers >= 1")
        batches = self.batches
        if len(batches) < 2 or any(_not_int(b, 0) for b in batches) or len(set(batches)) < len(batches):
            raise invalid(
                "batches", batches, f"at least two distinct batch sizes >= 1, or {FULL} (full batch)"
            )
        if FULL not in batches:
            raise invalid("batches", batches, f"a list holding {FULL} (batch GD, the claim's reference)")
        for name, low in (("width", 1), ("depth", 1), ("seeds", 2), ("check", 1), ("probes", 2), ("seed", 0)):
            if _not_int(getattr(self, name), low):
                raise invalid(name, getattr(self, name), f"an integer >= {low}")
        for name in ("lr", "target"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise invalid(name, value, "a finite number > 0")

    @property
    def smallest(self) -> int:
        """The smallest mini-batch: the claim's small batch."""
        return min(b for b in self.batches if b != FULL)


def _not_int(value: object, low: int) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < low


# --- the networks and their training ---------------------------------------------------------------------
def landscape_params(config: Config, index: int) -> dict:
    return {"width": config.width, "depth": config.depth, "examples": config.examples[index], "activation": 0}


def network(config: Config, index: int) -> NetworkObjective:
    """Dataset ``index``'s MLP objective, the registered landscape ``DATASET-mlp`` (so a stored spec
    replays by name): split seed 0, ReLU, cross-entropy."""
    return get_landscape(f"{config.datasets[index]}-mlp", **landscape_params(config, index))


def swarm_spec(config: Config, index: int, batch: int, data_size: int) -> RunSpec:
    """The ``seeds`` networks of dataset ``index`` at batch size ``batch`` as one run."""
    return RunSpec(
        landscape=f"{config.datasets[index]}-mlp",
        landscape_params=landscape_params(config, index),
        optimizer="gd",
        hyper={"lr": config.lr},
        starts=f"random:{config.seeds}",
        steps=config.steps[index],
        save=f"every:{config.check}",
        batch_size=None if batch == FULL or batch >= data_size else batch,
        batch_mode="epoch",
        seed=config.seed,
        backend="torch",
    )


def frame_losses(net: NetworkObjective, positions: torch.Tensor) -> torch.Tensor:
    """The full training loss of every saved network ``positions [T, N, P]``: ``[T, N]`` (a frame at a
    time: all at once would hold T N copies of the hidden layers)."""
    with torch.no_grad():
        return torch.stack([net.losses(frame, net.inputs, net.targets) for frame in positions])


def stopping_points(losses: torch.Tensor, steps: torch.Tensor, target: float) -> list[int | None]:
    """The stopping rule: per run (column of ``losses [T, N]``, checked at ``steps [T]``), the index of
    the first check whose full training loss is at most ``target``; None when no check reaches it."""
    reached = first_reached(losses, steps, target)
    return [None if k is None else int((steps == k).nonzero()[0, 0]) for k in reached]


def train(config: Config, net: NetworkObjective, index: int, batch: int, runs: Runs, tick) -> dict:
    """One swarm: its stopping points, the networks there and the training losses at the checks."""
    spec = swarm_spec(config, index, batch, net.data_size)
    start = time.perf_counter()
    traj = runs(spec, tick, objective=net)
    wall = time.perf_counter() - start
    losses = frame_losses(net, traj.positions)
    frames = stopping_points(losses, traj.steps, config.target)
    return {
        "batch": batch,
        "frames": frames,
        "steps": [None if f is None else int(traj.steps[f]) for f in frames],
        "points": [None if f is None else traj.positions[f, i] for i, f in enumerate(frames)],
        "before": [None if not f else traj.positions[f - 1, i] for i, f in enumerate(frames)],
        "curve_steps": traj.steps.numpy(),
        "curve": losses.numpy(),
        "wall": wall,
    }


# --- measurements at the stopping points ------------------------------------------------------------------
def training_loss_fn(net: NetworkObjective):
    """``w [P] -> L(w)``, the full training loss through ``functional_call`` (not the swarm's vmap)."""
    from descent.train.models import functional_loss, loss_function

    return functional_loss(net.model, loss_function(net.loss, net.task), net.inputs, net.targets)


def measure(net: NetworkObjective, w: torch.Tensor, probes: int, seed: int) -> dict:
    """At one network ``w [P]``: sharpness, Hutchinson's trace and its SE, train and test loss and error,
    and the two gaps."""
    from descent.train.hessian import hutchinson_trace, top_eigenvalues

    loss_fn = training_loss_fn(net)
    sharpness = top_eigenvalues(loss_fn, w, tol=EIGSH_TOL, seed=seed).values[0]
    trace = hutchinson_trace(loss_fn, w, probes, seed)
    train, test = net.metrics(w.unsqueeze(0), test=False), net.metrics(w.unsqueeze(0))
    with torch.no_grad():
        train_loss = float(loss_fn(w))
    out = {
        "sharpness": sharpness,
        "trace": trace.mean,
        "trace_se": trace.se,
        "train_loss": train_loss,
        "train_error": 1.0 - float(train["accuracy"][0]),
        "test_loss": float(test["loss"][0]),
        "test_error": 1.0 - float(test["accuracy"][0]),
    }
    out["loss_gap"] = out["test_loss"] - out["train_loss"]
    out["error_gap"] = out["test_error"] - out["train_error"]
    return out


def dense_check(net: NetworkObjective, w: torch.Tensor) -> dict:
    """The exact Hessian of the training loss at ``w``, the Jacobian of its gradient (``torch.func``,
    ``DENSE_CHUNK`` columns at a time: all at once would hold P copies of the hidden layers): its top
    eigenvalue and trace."""
    hessian = exact_hessian(training_loss_fn(net), w, DENSE_CHUNK)
    return {"top": float(torch.linalg.eigvalsh(hessian)[-1]), "trace": float(hessian.trace())}


# --- statistics -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paired:
    """The Wilcoxon signed-rank test on paired differences ``a_i - b_i``: ``n`` pairs (both finite),
    their median, the two-sided p-value and the one-sided one for "a below b" (``p_less``)."""

    n: int
    median_difference: float
    p_two_sided: float
    p_less: float


def paired_wilcoxon(a, b) -> Paired:
    """Wilcoxon's signed-rank test of ``a`` against ``b`` paired by position (scipy.stats.wilcoxon:
    exact null distribution for n <= 50 pairs without zero differences). A pair with a NaN (a run that
    never stopped) is left out; no pair gives NaN p-values, only zero differences p = 1."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise invalid("b", b.shape, f"as many values as a, {a.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    if diff.size == 0:
        return Paired(0, math.nan, math.nan, math.nan)
    median = float(np.median(diff))
    if not np.any(diff):
        return Paired(int(diff.size), median, 1.0, 1.0)
    two = float(wilcoxon(diff, alternative="two-sided").pvalue)
    less = float(wilcoxon(diff, alternative="less").pvalue)
    return Paired(int(diff.size), median, two, less)


# --- the experiment ---------------------------------------------------------------------------------------
def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    runs = Runs()
    total = len(config.batches) * sum(config.steps) + 1
    done = 0
    start = time.perf_counter()
    data: list[dict] = []
    for index, dataset in enumerate(config.datasets):
        net = network(config, index)
        modes = []
        for batch in config.batches:
            offset = done
            tick = None if progress is None else (lambda k, _t, offset=offset: progress(offset + k, total))
            mode = train(config, net, index, batch, runs, tick)
            mode["measured"] = [
                None if w is None else measure(net, w, config.probes, config.seed + i)
                for i, w in enumerate(mode["points"])
            ]
            mode["before_loss"] = [
                None if w is None else float(training_loss_fn(net)(w).detach()) for w in mode["before"]
            ]
            modes.append(mode)
            done += config.steps[index]
        data.append({"dataset": dataset, "net": net, "modes": modes})
    dense = _dense_case(config, data[-1])
    if progress is not None:
        progress(total, total)
    config_dict = {
        **asdict(config),
        "model": f"mlp:{','.join([str(config.width)] * config.depth)} (relu), cross-entropy, SGD (gd)",
        "weights": {d["dataset"]: d["net"].dim for d in data},
        "training examples": {d["dataset"]: d["net"].data_size for d in data},
        "threads": torch.get_num_threads(),
        "wall seconds": time.perf_counter() - start,
    }
    rows = _rows(config, data, dense)
    figures = [_figure(config, data), _table_figure(config, data)]
    return Result(NAME, CLAIM, PROTOCOL, rows, config_dict, figures, runs.specs)


def _dense_case(config: Config, item: dict) -> dict | None:
    """The instrument's small case: the last dataset's first stopped network under batch GD."""
    full = next(m for m in item["modes"] if m["batch"] == FULL)
    for measured, w in zip(full["measured"], full["points"]):
        if measured is not None:
            return {**dense_check(item["net"], w), "measured": measured, "dataset": item["dataset"]}
    return None


def values(mode: dict, key: str) -> list[float]:
    """``key`` at every seed's stopping point, NaN for a run that never stopped."""
    return [math.nan if m is None else m[key] for m in mode["measured"]]


def _median(xs: list[float]) -> float:
    finite = [x for x in xs if math.isfinite(x)]
    return statistics.median(finite) if finite else math.nan


def _bid(batch: int) -> str:
    return "full" if batch == FULL else f"B={batch}"


def _word(batch: int) -> str:
    return "batch GD" if batch == FULL else f"B = {batch}"


# --- rows -------------------------------------------------------------------------------------------------
def _rows(config: Config, data: list[dict], dense: dict | None) -> list[Row]:
    out: list[Row] = []
    for item in data:
        out += _dataset_rows(config, item)
    out += _dense_rows(dense)
    for item in data:
        out += _claim_rows(config, item)
    return out


def _dataset_rows(config: Config, item: dict) -> list[Row]:
    ds, modes = item["dataset"], item["modes"]
    group = f"{ds}: at the stopping points (medians over seeds)"
    out: list[Row] = []
    for mode in modes:
        bid, word = _bid(mode["batch"]), _word(mode["batch"])
        reached = sum(f is not None for f in mode["frames"])
        steps = _median([math.nan if s is None else float(s) for s in mode["steps"]])
        out += [
            number(
                f"reached/{ds}/{bid}", f"{ds}, {word}: runs stopped (of {config.seeds})", reached, group=group
            ),
            number(f"steps/{ds}/{bid}", f"{ds}, {word}: steps to the stop (median)", steps, group=group),
            number(
                f"seconds/{ds}/{bid}",
                f"{ds}, {word}: the swarm's training wall time",
                mode["wall"],
                unit="s",
                group=group,
            ),
        ]
        extra = (("trace_se", "Hutchinson's SE of the trace"), ("test_error", "test error"))
        for key, label in QUANTITIES + extra:
            out.append(
                number(
                    f"{key}/{ds}/{bid}",
                    f"{ds}, {word}: {label} (median)",
                    _median(values(mode, key)),
                    group=group,
                    key=key == "sharpness" and mode["batch"] in (config.smallest, FULL),
                )
            )
    pairs = [(a, b) for i, a in enumerate(modes) for b in modes[i + 1 :]]
    for key, label in QUANTITIES:
        group = f"{ds}: {label}, paired Wilcoxon between batch sizes"
        for a, b in pairs:
            test = paired_wilcoxon(values(a, key), values(b, key))
            pid = f"{_bid(a['batch'])}-{_bid(b['batch'])}"
            what = f"{ds}, {label}: {_word(a['batch'])} - {_word(b['batch'])}"
            out += [
                number(
                    f"diff/{ds}/{key}/{pid}",
                    f"{what}, median paired difference ({test.n} pairs)",
                    test.median_difference,
                    group=group,
                ),
                number(
                    f"p/{ds}/{key}/{pid}",
                    f"{what}, two-sided Wilcoxon p ({test.n} pairs)",
                    test.p_two_sided,
                    group=group,
                ),
            ]
    out += _stop_rows(config, item)
    return out


def _stop_rows(config: Config, item: dict) -> list[Row]:
    """The stopping rule, checked with the loss recomputed (``functional_call``, one network at a time)."""
    ds, modes = item["dataset"], item["modes"]
    group = f"{ds}: the stopping rule (instrument)"
    at_stop = [m["train_loss"] for mode in modes for m in mode["measured"] if m is not None]
    before = [x for mode in modes for x in mode["before_loss"] if x is not None]
    runs = config.seeds * len(modes)
    never = [f"{_word(mode['batch'])}: {sum(f is None for f in mode['frames'])}" for mode in modes]
    missing = runs - len(at_stop)
    stopped = f"{len(at_stop)} of {runs} runs on {ds} stopped within their budget" + (
        f" (never: {', '.join(n for n in never if not n.endswith(': 0'))}; left out of the comparisons)"
        if missing
        else ""
    )
    return [
        below(
            f"stop_loss/{ds}",
            f"{ds}: largest training loss at a stopping point (recomputed), below the target",
            max(at_stop) if at_stop else math.nan,
            config.target,
            about="theory",
            group=group,
            if_pass=f"{stopped}, each at a training cross-entropy below {config.target:g}.",
            if_fail=f"{stopped}; a stopping point's training loss is not below {config.target:g}.",
        ),
        exceeds(
            f"stop_first/{ds}",
            f"{ds}: smallest training loss at the check before a stop (recomputed), above the target",
            min(before) if before else math.nan,
            config.target,
            about="theory",
            group=group,
        ),
    ]


def _dense_rows(dense: dict | None) -> list[Row]:
    if dense is None:
        top = trace = se = exact_top = exact_trace = math.nan  # the checks fail: nothing to check
        where = "no network stopped"
    else:
        top, trace, se = (
            dense["measured"]["sharpness"],
            dense["measured"]["trace"],
            dense["measured"]["trace_se"],
        )
        exact_top, exact_trace = dense["top"], dense["trace"]
        where = f"{dense['dataset']}, batch GD, first stopped seed"
    group = "the curvature instruments against the exact Hessian (one network)"
    return [
        agrees(
            "lanczos_dense",
            f"Lanczos sharpness against the dense Hessian's top eigenvalue ({where})",
            top,
            exact_top,
            rel=DENSE_REL,
            group=group,
        ),
        agrees(
            "hutchinson_exact",
            f"Hutchinson's trace against the dense Hessian's trace ({where})",
            trace,
            exact_trace,
            se=se,
            group=group,
        ),
    ]


def _claim_rows(config: Config, item: dict) -> list[Row]:
    ds, modes = item["dataset"], item["modes"]
    small = next(m for m in modes if m["batch"] == config.smallest)
    full = next(m for m in modes if m["batch"] == FULL)
    out = []
    for key, label in QUANTITIES:
        a, b = values(small, key), values(full, key)
        test = paired_wilcoxon(a, b)
        numbers = (
            f"medians {_median(a):.4g} (B = {config.smallest}) and {_median(b):.4g} (batch GD), median "
            f"paired difference {test.median_difference:+.3g} over {test.n} seeds, one-sided p = "
            f"{test.p_less:.3g}"
        )
        out.append(
            below(
                f"claim/{ds}/{key}",
                f"{ds}: {label} lower at B = {config.smallest} than under batch GD (one-sided paired "
                f"Wilcoxon p < {ALPHA:g})",
                test.p_less,
                ALPHA,
                group=f"the claim: small batches end flatter and generalise better ({ds})",
                key=True,
                if_pass=f"On {ds} the {label} is lower at B = {config.smallest} than under batch GD: "
                f"{numbers}.",
                if_fail=f"On {ds} the {label} is not measurably lower at B = {config.smallest} than under "
                f"batch GD: {numbers}.",
            )
        )
    return out


SHORT = {
    "sharpness": "sharpness lambda_max(H)",
    "trace": "trace tr H (Hutchinson)",
    "loss_gap": "test - train loss",
    "error_gap": "test - train error",
}


# --- figures ----------------------------------------------------------------------------------------------
def _figure(config: Config, data: list[dict]):
    """Per dataset (rows) the four quantities by batch size, each seed a dot, its runs joined by a line;
    the bar is the median."""
    fig, axes = subplots(len(data), len(QUANTITIES), height=3.0 * len(data) + 0.4, squeeze=False)
    for r, item in enumerate(data):
        modes = item["modes"]
        xs = np.arange(len(modes))
        for c, (key, _) in enumerate(QUANTITIES):
            ax = axes[r][c]
            table = np.array([values(mode, key) for mode in modes])  # [modes, seeds]
            for seed in range(table.shape[1]):
                ax.plot(xs, table[:, seed], "-", color="0.75", lw=0.8, zorder=1)
            for x, (color, row) in enumerate(zip(COLORS, table)):
                ax.plot(np.full(row.shape, x), row, "o", color=color, ms=4, alpha=0.8, zorder=2)
                ax.plot([x - 0.25, x + 0.25], [_median(list(row))] * 2, "k-", lw=2, zorder=3)
            ax.set_xticks(xs)
            ax.set_xticklabels(["full" if m["batch"] == FULL else str(m["batch"]) for m in modes])
            ax.set_xlabel("batch size")
            ax.set_title(SHORT[key], fontsize=10)
            ax.grid(alpha=0.3)
        axes[r][0].set_ylabel(item["dataset"], fontsize=11)
    fig.suptitle(
        f"at each run's stopping point (training CE <= {config.target:g}): a dot per seed, a seed's runs "
        "joined, the bar its median",
        fontsize=10,
    )
    return finish(fig)


def _table_figure(config: Config, data: list[dict]):
    header = [
        "dataset",
        "batch",
        "stopped",
        "steps",
        "sharpness",
        "trace",
        "loss gap",
        "error gap",
        "test err.",
    ]
    header += [f"p vs GD: {q}" for q in ("sharp.", "trace", "loss gap", "err. gap")]
    cells = []
    for item in data:
        full = next(m for m in item["modes"] if m["batch"] == FULL)
        for mode in item["modes"]:
            steps = _median([math.nan if s is None else float(s) for s in mode["steps"]])
            row = [
                item["dataset"],
                _word(mode["batch"]),
                f"{sum(f is not None for f in mode['frames'])}/{config.seeds}",
            ]
            row += [f"{steps:.0f}"] + [f"{_median(values(mode, k)):.3g}" for k, _ in QUANTITIES]
            row.append(f"{_median(values(mode, 'test_error')):.3f}")
            for key, _ in QUANTITIES:
                p = paired_wilcoxon(values(mode, key), values(full, key)).p_two_sided
                row.append("-" if mode is full else f"{p:.3g}")
            cells.append(row)
    title = (
        f"at the stopping points (training CE <= {config.target:g}): medians over {config.seeds} seeds, "
        "two-sided paired Wilcoxon p against batch GD"
    )
    return table_figure(header, cells, title, row_height=0.28, margin=0.5)
