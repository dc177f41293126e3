"""Regularisation as barriers: the L2 potential ``lambda/2 |w|^2`` on digits networks (weight decay) and
on the seeds' double well, measured.

Networks. A tanh MLP (``digits-mlp``: two hidden layers) on the first ``examples`` digits (80 % for
training) is trained full batch with momentum by the engine, one `RunSpec` per lambda, with the
coupled L2 transform ``g <- g + lambda w`` (the gradient of ``L(w) + lambda/2 |w|^2``); the particles
are ``networks`` initialisations (``"random:N"`` with the same seed, so the same networks at every
lambda: the comparisons are paired). At the end of each run, per network: the weight norm ``|w|``, the
sharpness of the unregularised training loss (its Hessian's top eigenvalue by Lanczos,
`descent.train.hessian.top_eigenvalues`; the regularised loss's is that plus lambda exactly), the test
accuracy, and the stationarity residual ``|grad L(w) + lambda w| / |lambda w|`` of the regularised
loss (theory: 0 at a minimum, where ``lambda w = -grad L``; the check allows ``STATIONARY_TOL``, the
convergence the step budget reaches for lambda >= 0.01). The claim checks: the weight norm falls at
each step up the lambda grid, and the test accuracy at the best lambda > 0 exceeds lambda 0's (paired
differences over the networks, 3 SE; picking the best lambda favours the claim). Without the term (lambda
0) the cross-entropy of separable data has no minimum: the norm grows with the number of steps, and
its value is the budget's; a large lambda (0.3) pulls every network to the trivial minimum near w = 0
(every digit equally likely).

The double well. ``U = (x^2 - 1)^2 - 0.3 x + y^2`` plus ``lambda/2 |w|^2``
(`descent.objectives.regularized`): the barrier out of the shallow left minimum (the saddle's energy
minus the minimum's) with and without the term, and the lambda at which the left minimum vanishes,
found by following it (`regularization_path`) against the closed form ``4 - (1.5 sqrt(12) t)^(2/3)``
(where ``U' = U'' = 0`` along x). If regularisation acted as a barrier, the barrier around a minimum
would rise; an L2 bowl adds ``lambda/2 (|w_saddle|^2 - |w_min|^2)`` to it, which is negative when the
minimum lies farther from the centre than the saddle: it lowers such barriers and removes minima.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent._errors import invalid
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, exceeds, mean_se, number
from descent.spec import RunSpec

NAME = "regularization"
CLAIM = (
    "Regularisation acts as barriers: an L2 penalty is a wall in the loss landscape that keeps the "
    "weights from wandering far, and with it the network generalises better."
)
PROTOCOL = (
    "Tanh MLPs on digits are trained full batch with momentum under weight decay lambda (the L2 "
    "potential lambda/2 |w|^2) over a grid of lambda, the same networks at every lambda; the weight "
    "norm, the sharpness (top Hessian eigenvalue), the test accuracy and the stationarity of the "
    "regularised loss are measured per network. On the seeds' double well the barrier out of the "
    "shallow minimum is measured with and without the L2 term, and the lambda at which that minimum "
    "vanishes against its closed form."
)

STATIONARY_TOL = 0.05  # |grad L + lambda w| / |lambda w| at the end of the run
FOLD_REL = 0.01  # the grid's spacing near the closed-form fold
TILT = 0.3  # the double well's default tilt
BARRIER_LAMBDA = 1.0  # lambda at which the double well's barrier is compared
CHECKED_FROM = 0.01  # the smallest lambda whose stationarity is checked (smaller ones converge slower)


@dataclass(frozen=True)
class Config:
    lambdas: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3)
    width: int = 32
    depth: int = 2
    examples: int = 1000  # the first digits images (80 % train)
    networks: int = 8
    lr: float = 0.5
    momentum: float = 0.9
    steps: int = 2000
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(lambdas=(0.0, 0.01, 0.1), examples=300, networks=3, steps=400)

    def __post_init__(self) -> None:
        if len(self.lambdas) < 2 or any(not (v >= 0 and math.isfinite(v)) for v in self.lambdas):
            raise invalid("lambdas", self.lambdas, "at least two numbers >= 0")
        if list(self.lambdas) != sorted(self.lambdas):
            raise invalid("lambdas", self.lambdas, "an increasing grid")
        if isinstance(self.networks, bool) or not isinstance(self.networks, int) or self.networks < 2:
            raise invalid("networks", self.networks, "an integer >= 2 (a standard error needs two)")

    def landscape_params(self) -> dict:
        return {"width": self.width, "depth": self.depth, "examples": self.examples, "activation": 1}


def network(config: Config):
    """The digits MLP objective (tanh; its data, test split and model)."""
    from descent.objectives import digits_mlp

    return digits_mlp(**config.landscape_params())


def spec(config: Config, strength: float) -> RunSpec:
    """Full-batch momentum with the L2 transform ``strength`` from the config's networks."""
    return RunSpec(
        landscape="digits-mlp",
        landscape_params=config.landscape_params(),
        optimizer="momentum",
        hyper={"lr": config.lr, "momentum": config.momentum},
        transforms=[{"kind": "l2", "l2": strength}] if strength else [],
        starts=f"random:{config.networks}",
        steps=config.steps,
        save="summary",
        seed=config.seed,
    )


def measure_networks(net, w: torch.Tensor, strength: float) -> dict[str, np.ndarray]:
    """Per network (row of ``w``): weight norm, sharpness of the unregularised training loss, test
    accuracy, training loss and the regularised loss's stationarity residual."""
    from descent.train.gradients import full_gradients
    from descent.train.hessian import top_eigenvalues
    from descent.train.models import functional_loss, loss_function

    loss, grad = full_gradients(net, w)
    residual = (
        (grad + strength * w).norm(dim=1) / (strength * w).norm(dim=1) if strength else grad.norm(dim=1) * 0
    )
    loss_fn = functional_loss(net.model, loss_function(net.loss, net.task), net.inputs, net.targets)
    sharpness = [top_eigenvalues(loss_fn, row, k=1, tol=1e-8).values[0] for row in w]
    return {
        "norm": w.norm(dim=1).numpy(),
        "sharpness": np.array(sharpness),
        "accuracy": net.metrics(w)["accuracy"].numpy(),
        "loss": loss.numpy(),
        "residual": residual.numpy(),
        "grad_norm": grad.norm(dim=1).numpy(),
    }


def double_well(grid_rel: float = FOLD_REL) -> dict:
    """The seeds' double well with the L2 term: barriers at lambda 0 and ``BARRIER_LAMBDA``, and the
    fold (where the left minimum vanishes) found by following it on a grid of relative spacing
    ``grid_rel`` around the closed form."""
    from descent.landscapes import get_landscape
    from descent.objectives.regularized import regularization_path, regularized

    well = get_landscape("double-well", tilt=TILT)
    fold = 4.0 - (1.5 * math.sqrt(12.0) * TILT) ** (2.0 / 3.0)
    barriers = {}
    for strength in (0.0, BARRIER_LAMBDA):
        reg = regularized(well, strength)
        barriers[strength] = float(reg.point("barrier").value) - float(reg.point("left").value)  # type: ignore[operator]
    grid = fold * (1.0 + grid_rel * np.arange(-10, 11))
    path = regularization_path(well, grid)
    alive = ~np.isnan(path.positions["left"][:, 0])
    last = int(np.flatnonzero(alive)[-1])
    measured = 0.5 * (grid[last] + grid[min(last + 1, len(grid) - 1)])
    lambdas = np.linspace(0.0, 4.0, 41)
    curve = regularization_path(well, lambdas)
    return {
        "fold": fold,
        "fold_measured": float(measured),
        "grid_step": float(fold * grid_rel),
        "barriers": barriers,
        "curve": curve,
    }


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    runs = Runs()
    net = network(config)
    measured = []
    for index, strength in enumerate(config.lambdas):
        trajectory = runs(spec(config, strength), objective=net)
        out = measure_networks(net, trajectory.final_position, strength)
        out["outcomes"] = list(trajectory.outcomes)
        measured.append(out)
        if progress is not None:
            progress(index + 1, len(config.lambdas) + 1)
    well = double_well()
    if progress is not None:
        progress(len(config.lambdas) + 1, len(config.lambdas) + 1)
    config_dict = {
        **asdict(config),
        "model": f"mlp {config.depth} x {config.width} (tanh), torch's default initialisation",
        "loss": "cross-entropy (mean), full batch; L2 as the coupled transform g <- g + lambda w",
        "stationary_tol": STATIONARY_TOL,
    }
    rows = _rows(config, measured, well)
    return Result(NAME, CLAIM, PROTOCOL, rows, config_dict, [_figure(config, measured, well)], runs.specs)


def _rows(config: Config, measured: list[dict], well: dict) -> list[Row]:
    out: list[Row] = []
    lambdas = config.lambdas
    for strength, m in zip(lambdas, measured):
        tag = f"{strength:g}"
        group = f"lambda = {tag}"
        for key, label, unit in (
            ("norm", "weight norm |w|", ""),
            ("sharpness", "sharpness of the training loss (top Hessian eigenvalue)", ""),
            ("accuracy", "test accuracy", ""),
            ("loss", "training loss (cross-entropy)", ""),
        ):
            mean, se = mean_se(m[key].tolist())
            out.append(
                number(
                    f"{key}/{tag}",
                    f"lambda {tag}: {label}",
                    mean,
                    se=se if se > 0 else None,  # every network at one point (lambda large: w = 0)
                    unit=unit,
                    group=group,
                    key=key == "norm" and strength in (lambdas[0], lambdas[-1]),
                )
            )
        if strength >= CHECKED_FROM:
            out.append(
                agrees(
                    f"stationary/{tag}",
                    f"lambda {tag}: largest |grad L + lambda w| / |lambda w| over the networks (0 at a "
                    "minimum of the regularised loss)",
                    float(m["residual"].max()),
                    0.0,
                    absolute=STATIONARY_TOL,
                    group=group,
                )
            )
    for (low, a), (high, b) in zip(zip(lambdas, measured), zip(lambdas[1:], measured[1:])):
        drop, se = mean_se((a["norm"] - b["norm"]).tolist())
        out.append(
            exceeds(
                f"norm_falls/{low:g}-{high:g}",
                f"the weight norm falls from lambda {low:g} to {high:g} (paired over the networks)",
                drop,
                0.0,
                se=se,
                group="the L2 potential confines the weights (claim)",
                key=low == lambdas[0],
                if_pass=f"From lambda {low:g} to {high:g} the weight norm fell by {drop:.3g} "
                f"({float(a['norm'].mean()):.3g} -> {float(b['norm'].mean()):.3g}).",
                if_fail=f"From lambda {low:g} to {high:g} the weight norm did not measurably fall "
                f"(change {-drop:+.3g}, SE {se:.2g}).",
            )
        )
    positive = [i for i, strength in enumerate(lambdas) if strength > 0]
    best = max(positive, key=lambda i: float(measured[i]["accuracy"].mean()))
    gains = (measured[best]["accuracy"] - measured[0]["accuracy"]).tolist()
    gain, gain_se = mean_se(gains)
    out.append(
        exceeds(
            "accuracy_gain",
            f"test accuracy at the best lambda > 0 ({lambdas[best]:g}) minus at lambda {lambdas[0]:g} "
            "(paired; choosing the best favours the claim)",
            gain,
            0.0,
            se=gain_se if gain_se > 0 else None,
            group="generalisation (claim)",
            key=True,
            if_pass=f"The L2 term helped the networks generalise: test accuracy {gain:+.3g} at lambda "
            f"{lambdas[best]:g}.",
            if_fail=f"No lambda > 0 measurably improved test accuracy (best: lambda {lambdas[best]:g}, "
            f"{gain:+.3g}, SE {gain_se:.2g}); the sharpness of the training loss went from "
            f"{float(measured[0]['sharpness'].mean()):.3g} to "
            f"{float(measured[best]['sharpness'].mean()):.3g}.",
        )
    )
    barrier0, barrier1 = well["barriers"][0.0], well["barriers"][BARRIER_LAMBDA]
    out.append(
        exceeds(
            "barrier_rises",
            f"double well: the barrier out of the shallow minimum with lambda {BARRIER_LAMBDA:g} minus "
            "without",
            barrier1 - barrier0,
            0.0,
            group="barriers between minima (the double well)",
            key=True,
            if_pass=f"On the double well the L2 term raised the barrier out of the shallow minimum from "
            f"{barrier0:.4g} to {barrier1:.4g}.",
            if_fail=f"On the double well the L2 term is no barrier between minima: it lowered the barrier "
            f"out of the shallow minimum from {barrier0:.4g} to {barrier1:.4g} (lambda {BARRIER_LAMBDA:g}), "
            f"and the minimum vanished at lambda {well['fold_measured']:.3g} (closed form "
            f"{well['fold']:.4g}); it acts as a confining bowl, a wall far out, not as barriers.",
        )
    )
    out.append(
        agrees(
            "fold",
            "double well: the lambda at which the shallow minimum vanishes (followed on a 1 % grid)",
            well["fold_measured"],
            well["fold"],
            absolute=well["grid_step"],
            group="barriers between minima (the double well)",
        )
    )
    return out


def _figure(config: Config, measured: list[dict], well: dict):
    """Weight norm, sharpness and test accuracy against lambda (each network a dot), and the double
    well's minima moving with lambda."""
    fig, axes = subplots(1, 4, height=4.2)
    lambdas = np.array(config.lambdas)
    shown = np.where(lambdas > 0, lambdas, lambdas[lambdas > 0].min() / 3 if (lambdas > 0).any() else 1.0)
    for ax, key, label in zip(
        axes[:3],
        ("norm", "sharpness", "accuracy"),
        ("weight norm |w|", "sharpness (top eigenvalue of L)", "test accuracy"),
    ):
        for x, m in zip(shown, measured):
            ax.plot(np.full(len(m[key]), x), m[key], ".", color="tab:blue", alpha=0.5, ms=5)
        means = [float(m[key].mean()) for m in measured]
        ax.plot(shown, means, "k-o", ms=4, lw=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("lambda (leftmost: 0)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    ax = axes[3]
    curve = well["curve"]
    for point_id, color in (("left", "tab:orange"), ("right", "tab:green")):
        ax.plot(curve.lambdas, curve.positions[point_id][:, 0], "-", color=color, label=f"{point_id} minimum")
    ax.axvline(well["fold"], color="k", ls=":", lw=0.9, label="closed-form fold")
    ax.set_xlabel("lambda")
    ax.set_ylabel("x of the minimum")
    ax.set_title("double well + lambda/2 |w|^2", fontsize=10)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    return finish(fig)
