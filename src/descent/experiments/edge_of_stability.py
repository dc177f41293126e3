"""Edge of stability: under full-batch GD the sharpness rises to the stability edge and hovers there.

Protocol (Cohen et al., ICLR 2021; Adam: Cohen et al. 2022, arXiv:2207.14484). Data: the first ``n``
digits images (``load_dataset("digits", n=n)``, its training and test parts together: full-batch GD
holds nothing out here), pixel intensities scaled to [0, 1] (the loader's standardisation undone:
with standardised inputs this network sharpens more slowly; at lr 0.1 it reached only 0.68 of 2/lr
in 3000 steps). Model: a tanh MLP ``64-64-64-10`` (`descent.train.models.build_model`, seed
``seed``), MSE ``1/(2n) sum_i |f(x_i) - onehot(y_i)|^2``, as an engine objective (`objective`: a
`descent.objectives.NetworkObjective`, one flattened network per particle). Every run is a `RunSpec`
run by `run_spec` from the same start (``starts="default:N"``), one spec per rule (a swarm has one
rule; particle i takes run i's hyper-parameters), its parameters saved every ``every`` steps; the
specs are stored in the result and each replays with ``run_spec(spec, landscape=objective(config))``:

- GD at each lr of ``gd_lrs`` (edge ``2/lr``) and a negative control, GD at ``control_lr`` (edge
  ``2/lr``): one swarm; the heavy ball (descent's ``momentum``, velocity form) at ``momentum_lr``
  with ``beta`` (edge ``2(1 + beta)/lr``);
- Adam at ``adam_lr`` with ``beta1`` (edge ``(2 + 2 beta1)/((1 - beta1) lr)`` on the preconditioned
  sharpness ``lambda_max(P^-1 H)``, ``P = (1 - beta1^t)(sqrt(v_hat) + eps)`` from the rule's state
  at the check (after the previous step), saved by the engine's ``optimizer_state`` probe:
  `adam_scale`, as `descent.train.hessian.adam_preconditioner` reads torch's Adam).

The engine's iterates equal torch.optim's SGD, SGD(momentum) and Adam to float rounding (tested over
100 steps); at the edge the dynamics is chaotic and amplifies any rounding (a 1e-15 relative change of
the start moves the lr 0.2 run by 1e-2 within 200 steps), so numbers taken after the edge is reached
(median, maximum, final loss) move in their second or third digit with the kernels' rounding (at the
quick size every check fell the same way as on the torch.optim path).

Every ``every`` steps the sharpness is measured by Lanczos (`top_eigenvalues`, scipy's ``eigsh``,
relative tolerance ``tol``) warm-started from the previous check's eigenvector; every ``cold_every``
steps a cold ``eigsh`` (tolerance 1e-10, from a random vector) checks it (a theory row: the
instrument). The 3-product `SharpnessTracker` runs beside it and its distance from the cold values is
reported (a number: near the edge several eigenvalues crowd under ``lambda_max`` and cross, which three
products a check cannot always follow).

The claim, per edge run: let ``s*`` be the first check with sharpness >= 0.95 edge; the median of the
sharpness over the checks after ``s*`` lies in [0.95, 1.15] edge, its maximum stays under 1.3 edge, and
the final loss is below 0.2 of the initial one. The control's sharpness stays below its edge over its
whole run. Adam's preconditioned sharpness is held to the same two bands (claim rows: a verdict, not
an assertion). The runs are deterministic, so the bands are stated tolerances, the same at every size.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from descent._errors import invalid
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, below, number
from descent.spec import RunSpec

NAME = "edge-of-stability"
CLAIM = (
    "Too large a step overshoots: gradient descent is stable only while lr x sharpness < 2. On a "
    "real network full-batch GD does not stay safely inside that bound: the sharpness (the top "
    "Hessian eigenvalue) rises until it reaches the edge 2/lr and then hovers there while the loss "
    "keeps falling; with heavy-ball momentum the edge is 2(1 + beta)/lr, and Adam's preconditioned "
    "sharpness hovers at (2 + 2 beta1)/((1 - beta1) lr)."
)
PROTOCOL = (
    "A tanh MLP 64-64-64-10 is trained with MSE by full-batch GD at lr 0.1 and 0.2, by the heavy ball "
    "(beta 0.5, lr 0.1), by GD at lr 0.05 (a negative control) and by Adam on the first 1000 digits "
    "images, and its sharpness is measured every 10 steps by Lanczos on Hessian-vector products. After "
    "the sharpness first reaches 0.95 of the edge, its median over the remaining checks must lie in "
    "[0.95, 1.15] of the edge and its maximum below 1.3 of it, while the loss falls below 0.2 of its start."
)

REACH = 0.95  # "reaches the edge": the first check at or above 0.95 x edge
BAND = (0.95, 1.15)  # the median's band after that, in units of the edge
PEAK = 1.3  # the maximum after that stays below this many edges
LOSS_DROP = 0.2  # the final loss below this fraction of the initial loss
COLD_TOL = 1e-10  # the cold eigsh's tolerance
WARM_REL = 1e-4  # the measured (warm-started) sharpness within this of the cold eigsh: the instrument
TRACKER_TARGET = 0.01  # the target for the 3-product tracker, reported (not a check)
ADAM_EPS = 1e-8  # Adam's eps (torch's default)
OBJECTIVE = "digits-eos-mlp"  # the specs' objective: built here (`objective`), passed to run_spec


@dataclass(frozen=True)
class Config:
    n: int = 1000
    widths: tuple[int, ...] = (64, 64, 64)
    gd_lrs: tuple[float, ...] = (0.1, 0.2)
    momentum_lr: float = 0.1
    beta: float = 0.5
    control_lr: float = 0.05
    adam_lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    steps: int = 3000
    every: int = 10
    cold_every: int = 100
    tol: float = 1e-6
    ncv: int = 10
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(n=200, steps=800, every=20, cold_every=200)


@dataclass(frozen=True)
class Run:
    """One training run: its id, the engine's rule and hyper-parameters (descent's names) and edge."""

    id: str
    label: str
    rule: str
    hyper: dict
    edge: float
    kind: str  # "edge" (the claim), "control" or "adam"


def runs_of(config: Config) -> list[Run]:
    """The runs of the protocol, with each one's stability edge."""
    out = [Run(f"gd/lr={lr:g}", f"GD lr {lr:g}", "gd", {"lr": lr}, 2.0 / lr, "edge") for lr in config.gd_lrs]
    lr, beta = config.momentum_lr, config.beta
    out.append(
        Run(
            f"momentum/lr={lr:g}/beta={beta:g}",
            f"heavy ball beta {beta:g} lr {lr:g}",
            "momentum",
            {"lr": lr, "momentum": beta},
            2.0 * (1.0 + beta) / lr,
            "edge",
        )
    )
    lr = config.control_lr
    out.append(Run(f"control/lr={lr:g}", f"GD lr {lr:g} (control)", "gd", {"lr": lr}, 2.0 / lr, "control"))
    lr, b1 = config.adam_lr, config.beta1
    out.append(
        Run(
            f"adam/lr={lr:g}",
            f"Adam lr {lr:g} beta1 {b1:g}",
            "adam",
            {"lr": lr, "beta1": b1, "beta2": config.beta2, "eps": ADAM_EPS},
            (2.0 + 2.0 * b1) / ((1.0 - b1) * lr),
            "adam",
        )
    )
    return out


def digits(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` digits images (pixels in [0, 1]) and their labels, in the loader's order."""
    from descent.train import load_dataset

    data = load_dataset("digits", n=n, seed=0)
    x = torch.cat([data.x_train, data.x_test]) * data.feature_std + data.feature_mean
    return x / 16.0, torch.cat([data.y_train, data.y_test])


def reached(values: list[float], edge: float) -> int | None:
    """The index of the first value at or above ``REACH`` x edge (None if none)."""
    return next((i for i, v in enumerate(values) if v >= REACH * edge), None)


def after_reaching(values: list[float], edge: float) -> dict:
    """The claim's numbers, in units of the edge: the first check at >= 0.95 edge, then the median and
    maximum over the checks after it (NaN where there is none).

    >>> stats = after_reaching([5.0, 9.5, 10.0, 12.0, 10.5], 10.0)
    >>> stats["first"], stats["median"], stats["max"], stats["checks"]
    (1, 1.05, 1.2, 3)
    """
    first = reached(values, edge)
    rest = [] if first is None else [v / edge for v in values[first + 1 :]]
    return {
        "first": first,
        "median": statistics.median(rest) if rest else math.nan,
        "max": max(rest) if rest else math.nan,
        "checks": len(rest),
    }


def objective(config: Config):
    """The experiment's network as an engine objective (`descent.objectives.network_objective`): the
    tanh MLP on ``digits(n)`` with the MSE loss; every spec starts from its initialisation
    (``"default"``: `descent.train.build_model` with seed ``config.seed``)."""
    from descent.objectives import network_objective
    from descent.train import build_model

    x, y = digits(config.n)
    spec = "mlp:" + ",".join(str(w) for w in config.widths)
    model = build_model(spec, x.shape[1], 10, activation="tanh", seed=config.seed)
    return network_objective(model, x, y, "mse", init_seed=config.seed, name=OBJECTIVE)


def spec(config: Config, runs: Sequence[Run]) -> RunSpec:
    """One engine run of ``runs`` (one rule): a swarm of ``len(runs)`` copies of the initial network,
    particle i with ``runs[i]``'s hyper-parameters, full batch, the parameters saved every ``every``
    steps (and, for Adam, the rule's state: its preconditioner)."""
    rules = {item.rule for item in runs}
    if len(rules) != 1:
        raise invalid("runs", sorted(rules), "runs of one rule (a swarm has one update rule)")
    hyper = {name: [item.hyper[name] for item in runs] for name in runs[0].hyper}
    every = config.every
    return RunSpec(
        landscape=OBJECTIVE,
        optimizer=runs[0].rule,
        hyper={k: v[0] if len(v) == 1 else v for k, v in hyper.items()},
        starts=f"default:{len(runs)}",
        steps=config.steps,
        save=f"every:{every}",
        probes=[{"name": "optimizer_state", "every": every}] if runs[0].rule == "adam" else [],
        seed=config.seed,
    )


def by_rule(plan: Sequence[Run]) -> list[list[Run]]:
    """The runs grouped by rule, in order of first appearance: one spec (swarm) per group."""
    groups: dict[str, list[Run]] = {}
    for item in plan:
        groups.setdefault(item.rule, []).append(item)
    return list(groups.values())


def adam_scale(state: dict, call: int, particle: int, hyper: dict) -> torch.Tensor:
    """Adam's preconditioner ``P = (1 - beta1^t)(sqrt(v / (1 - beta2^t)) + eps)`` ``[P]`` from the
    engine's ``optimizer_state`` probe (``exp_avg_sq [calls, N, P]``, ``step [calls]``), as
    `descent.train.hessian.adam_preconditioner` reads it from torch's Adam."""
    beta1, beta2 = hyper["beta1"], hyper["beta2"]
    t = float(state["step"][call])
    v_hat = state["exp_avg_sq"][call, particle] / (1.0 - beta2**t)
    return (1.0 - beta1**t) * (torch.sqrt(v_hat) + hyper["eps"])


def train(config: Config, plan: Sequence[Run], net, runs: Runs | None = None) -> dict[str, dict]:
    """Train every run of ``plan`` with the engine (one `RunSpec` per rule, through ``runs``, which
    keeps the specs): per run id, its trajectory, its particle and the engine's seconds."""
    runs = Runs() if runs is None else runs
    out = {}
    for group in by_rule(plan):
        start = time.perf_counter()
        trajectory = runs(spec(config, group), objective=net)
        seconds = time.perf_counter() - start
        for particle, item in enumerate(group):
            out[item.id] = {"trajectory": trajectory, "particle": particle, "seconds": seconds}
    return out


def measure(config: Config, run: Run, net, trained: dict) -> dict:
    """The sharpness of ``run``'s saved networks at every ``every`` steps (warm-started Lanczos), the
    3-product tracker beside it and a cold eigsh every ``cold_every`` steps; the loss at each saved
    step. Adam's checks start after its first step (its preconditioner needs one). A run that diverged
    at step d (the engine's ``diverged`` event: it froze the network at its last finite state) is
    measured up to step d - 1, and its loss series ends with NaN."""
    from descent.train import functional_loss, loss_function
    from descent.train.hessian import SharpnessTracker, top_eigenvalues

    trajectory, particle = trained["trajectory"], trained["particle"]
    fn = functional_loss(net.model, loss_function(net.loss, net.task), net.inputs, net.targets)
    diverged_at = int(trajectory.events["diverged"][particle])
    state = trajectory.probes.get("optimizer_state", {})
    state_steps = [int(s) for s in state.get("steps", [])]
    tracker = SharpnessTracker(every=config.every, tol=COLD_TOL, seed=config.seed)
    out: dict = {"steps": [], "sharpness": [], "tracked": [], "products": [], "loss": [], "loss_steps": []}
    out.update(cold_steps=[], cold=[], warm_at_cold=[], tracked_at_cold=[], diverged=diverged_at >= 0)
    vector = None
    start = time.perf_counter()
    for frame, step in enumerate(int(s) for s in trajectory.steps):
        if 0 <= diverged_at <= step:
            out["loss"].append(math.nan)
            out["loss_steps"].append(diverged_at)
            break
        out["loss"].append(float(trajectory.loss[frame, particle]))
        out["loss_steps"].append(step)
        if step % config.every or (run.rule == "adam" and step == 0):
            continue
        theta = trajectory.positions[frame, particle]
        scale = (
            adam_scale(state, state_steps.index(step), particle, run.hyper) if run.rule == "adam" else None
        )
        top = top_eigenvalues(
            fn, theta, tol=config.tol, v0=vector, seed=config.seed, scale=scale, ncv=config.ncv
        )
        vector = top.vectors[:, 0]
        tracked = tracker(step, fn, theta, scale)
        out["steps"].append(step)
        out["sharpness"].append(top.values[0])
        out["tracked"].append(tracked)
        out["products"].append(top.products)
        if step % config.cold_every == 0:
            cold = top_eigenvalues(fn, theta, tol=COLD_TOL, seed=config.seed + step, scale=scale)
            out["cold_steps"].append(step)
            out["cold"].append(cold.values[0])
            out["warm_at_cold"].append(top.values[0])
            out["tracked_at_cold"].append(tracked)
    out["seconds"] = time.perf_counter() - start
    out["train_seconds"] = trained["seconds"]
    out["tracker_products"] = tracker.hvps[1:]
    return out


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    torch_threads = torch.get_num_threads()
    plan = runs_of(config)
    net = objective(config)
    runs = Runs()
    trained = train(config, plan, net, runs)
    measured = {}
    for index, item in enumerate(plan):
        measured[item.id] = measure(config, item, net, trained[item.id])
        if progress is not None:
            progress(index + 1, len(plan))
    config_dict = {
        **asdict(config),
        "data": f"first {config.n} digits images, pixels / 16, all used for training",
        "model": "tanh MLP "
        + "-".join(str(w) for w in (*config.widths, 10))
        + ", MSE (1/2n) sum |f - onehot|^2",
        "training": "the engine (run_spec): one RunSpec per rule, full batch, parameters saved every "
        f"{config.every} steps",
        "edges": {item.id: item.edge for item in plan},
        "training seconds (its rule's swarm)": {item.id: measured[item.id]["train_seconds"] for item in plan},
        "sharpness seconds": {item.id: measured[item.id]["seconds"] for item in plan},
        "torch threads": torch_threads,
    }
    rows = _rows(config, plan, measured)
    return Result(NAME, CLAIM, PROTOCOL, rows, config_dict, [_figure(config, plan, measured)], runs.specs)


# --- rows -------------------------------------------------------------------------------------------
def _rows(config: Config, plan: list[Run], measured: dict) -> list[Row]:
    out: list[Row] = []
    for item in plan:
        m = measured[item.id]
        values = m["sharpness"]
        what = "preconditioned sharpness" if item.kind == "adam" else "sharpness"
        edge_text = (
            "(2 + 2 beta1)/((1 - beta1) lr)"
            if item.kind == "adam"
            else ("2(1 + beta)/lr" if item.rule == "momentum" else "2/lr")
        )
        group = f"{item.label} (edge {edge_text} = {item.edge:.4g})"
        stats = after_reaching(values, item.edge)
        first_step = m["steps"][stats["first"]] if stats["first"] is not None else math.nan
        ratio = m["loss"][-1] / m["loss"][0]
        final = values[-1] / item.edge if values else math.nan
        out.append(
            number(
                f"{item.id}/reached",
                f"{item.label}: first step with {what} >= {REACH:g} x edge (nan: never)",
                first_step,
                unit="steps",
                group=group,
            )
        )
        if item.kind in ("edge", "adam"):
            low, high = BAND
            out.append(
                agrees(
                    f"{item.id}/median",
                    f"{item.label}: median {what} over the {stats['checks']} checks after it first "
                    f"reached {REACH:g} x edge, in edges (claim: in [{low:g}, {high:g}])",
                    stats["median"],
                    0.5 * (low + high),
                    absolute=0.5 * (high - low),
                    about="claim",
                    group=group,
                    key=True,
                    if_pass=f"{item.label}: the {what} reached the edge {item.edge:.4g} at step "
                    f"{first_step:.0f} and hovered there (median {stats['median']:.3f} edges).",
                    if_fail=f"{item.label}: the {what} did not hover at its edge {item.edge:.4g} ("
                    + (
                        f"median {stats['median']:.3f} edges after step {first_step:.0f})."
                        if stats["checks"]
                        else f"it never reached {REACH:g} of it, or only at the last check)."
                    ),
                )
            )
            out.append(
                below(
                    f"{item.id}/max",
                    f"{item.label}: largest {what} after it first reached {REACH:g} x edge, in edges",
                    stats["max"],
                    PEAK,
                    group=group,
                    if_pass=f"It never rose past {stats['max']:.3f} edges.",
                    if_fail=f"It rose to {stats['max']:.3f} edges (bound {PEAK:g}).",
                )
            )
        else:
            peak = max(values, default=math.nan) / item.edge
            out.append(
                below(
                    f"{item.id}/max",
                    f"{item.label}: largest sharpness over its {config.steps} steps, in edges "
                    "(negative control: stays below its edge)",
                    peak,
                    1.0,
                    group=group,
                    key=True,
                    if_pass=f"The control at {item.label} stayed below its edge ({peak:.3f} edges at most, "
                    f"{final:.3f} at the end): the edge moves with the learning rate.",
                    if_fail=f"The control at {item.label} reached {peak:.3f} of its edge within "
                    f"{config.steps} steps.",
                )
            )
        if item.kind == "edge":
            out.append(
                below(
                    f"{item.id}/loss",
                    f"{item.label}: final loss / initial loss",
                    ratio,
                    LOSS_DROP,
                    group=group,
                    if_pass=f"Meanwhile the loss fell to {ratio:.3f} of its start.",
                    if_fail=f"The loss only fell to {ratio:.3f} of its start (bound {LOSS_DROP:g}).",
                )
            )
        else:
            out.append(
                number(f"{item.id}/loss", f"{item.label}: final loss / initial loss", ratio, group=group)
            )
        out.append(
            number(
                f"{item.id}/final",
                f"{item.label}: final {what}, in edges",
                final,
                group=group,
            )
        )
        out += _instrument_rows(item, m, group)
    return out


def _instrument_rows(item: Run, m: dict, group: str) -> list[Row]:
    """The instrument: the warm-started Lanczos against a cold eigsh; the 3-product tracker's distance
    from it; products per check."""
    warm = [abs(w / c - 1) for w, c in zip(m["warm_at_cold"], m["cold"])]
    tracked = [abs(t / c - 1) for t, c in zip(m["tracked_at_cold"], m["cold"]) if t is not None]
    within = sum(e <= TRACKER_TARGET for e in tracked)
    return [
        agrees(
            f"{item.id}/lanczos",
            f"{item.label}: measured sharpness (warm-started eigsh) against a cold eigsh, largest "
            f"|ratio - 1| over {len(warm)} checkpoints",
            max(warm) if warm else math.nan,
            0.0,
            absolute=WARM_REL,
            group=group,
        ),
        number(
            f"{item.id}/tracker",
            f"{item.label}: 3-product tracker against a cold eigsh, largest |ratio - 1| "
            f"({within} of {len(tracked)} checkpoints within {TRACKER_TARGET:.0%})",
            max(tracked) if tracked else math.nan,
            group=group,
        ),
        number(
            f"{item.id}/products",
            f"{item.label}: Hessian-vector products per warm-started eigsh (mean)",
            statistics.fmean(m["products"]) if m["products"] else math.nan,
            group=group,
        ),
    ]


# --- figure -----------------------------------------------------------------------------------------
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:gray", "tab:red")


def _figure(config: Config, plan: list[Run], measured: dict):
    """Sharpness against step with each run's edge (dashed), and the loss."""
    fig, axes = subplots(1, 3, height=4.6)
    for item, color in zip(plan, COLORS):
        m = measured[item.id]
        ax = axes[2] if item.kind == "adam" else axes[0]
        ax.plot(m["steps"], m["sharpness"], color=color, lw=1.2, label=item.label)
        ax.axhline(item.edge, color=color, ls="--", lw=0.9)
        axes[1].semilogy(m["loss_steps"], m["loss"], color=color, lw=1.0, label=item.label)
    axes[0].set_title("sharpness (dashed: each run's edge)", fontsize=11)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("lambda_max(H)")
    axes[0].legend(fontsize=9)
    axes[1].set_title("training loss", fontsize=11)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("loss")
    axes[2].set_title("Adam: lambda_max(P^-1 H) (dashed: 38/lr)", fontsize=11)
    axes[2].set_xlabel("step")
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
    return finish(fig)
