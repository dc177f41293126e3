"""Double well: momentum 0 stays in the local minimum, momentum 0.9 jumps to the global one.

Protocol. The landscape is ``double-well`` ``U = (x^2 - 1)^2 - tilt x + y^2`` (local minimum left,
global right, barrier near x = 0), started from its default start (-1.7, 0) at rest.

1. The seed's two settings: ``momentum`` (the seeds' heavy ball; ``beta = 0`` is GD) at the landscape's
   lr 0.02 with beta 0 and 0.9; where each run ends, against the two minima.
2. Where each claim holds: one batched simulation holds a fine scan over lr for beta 0 and 0.9 (the lr
   bands around the seed's lr where "stays left" and "reaches right" hold) and the whole
   (lr, momentum) map of which minimum is reached. A claim about a learning rate is taken to hold if
   it survives one tuning step of the lr, a factor 2 either way.
3. Why: with time step ``h = sqrt(lr)`` and velocity ``v/h`` the heavy ball is the symplectic-Euler
   discretisation of the damped oscillator ``x'' + gamma x' = -U'(x)`` with friction
   ``gamma = (1 - beta)/sqrt(lr)``. It tops the barrier only when ``gamma`` is below a critical friction
   ``gamma_c``; the heavy ball's ``gamma_c(beta)`` is found by batched bisection on lr (did the ball
   ever pass the barrier's x?), extrapolated to ``h -> 0`` linearly from the two smallest step sizes,
   and compared with the continuous oscillator's ``gamma_c`` (scipy's DOP853 and bisection on gamma).
4. Basins of attraction: a grid of starts over the box, coloured by the minimum reached, for GD,
   momentum, Nesterov and Adam at the seed's lr (U is separable and all four rules act per coordinate,
   so the basins are vertical stripes: the outcome depends on x0 only). GD at lr 0.02 cannot cross the
   barrier: ``x -> x - lr U'(x)`` is increasing wherever ``lr U'' < 1`` (``U'' <= 44`` on the box) and
   fixes the barrier's x.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, exceeds, number
from descent.landscapes import get_landscape
from descent.optim import RULES
from descent.spec import RunSpec

NAME = "double-well-momentum"
CLAIM = (
    "Double well: with momentum 0 the ball gets stuck in the left (local) minimum; with momentum 0.9 "
    "it gains enough speed to jump over the hill to the global minimum on the right."
)
PROTOCOL = (
    "A ball starts at rest at (-1.7, 0) on the tilted double well and runs the seeds' momentum rule at "
    "lr 0.02 with beta 0 and 0.9, then over a fine lr scan and the whole (lr, beta) map, and from a grid "
    "of starts. Where it ends is compared with the two minima, and the friction (1 - beta)/sqrt(lr) at "
    "which the ball stops topping the barrier with the damped oscillator x'' + gamma x' = -U'(x)."
)

LEFT, RIGHT = "minimum:left", "minimum:right"
CODES = {LEFT: 0, RIGHT: 1, "diverged": 2}  # everything else (moving, stalled) is 3
CODE_NAMES = ("left (local)", "right (global)", "diverged", "still moving / other")
BASIN_RULES = ("gd", "momentum", "nesterov", "adam")
SETTLED = 1e-3  # a run "ends in" a minimum when its final x is this close to it (both converge to ~1e-14)
BAND_FACTOR = 2.0  # one tuning step of the lr: a robust claim holds from lr/2 to 2 lr


@dataclass(frozen=True)
class Config:
    tilt: float = 0.3
    lr_seed: float = 0.02
    beta_seed: float = 0.9
    seed_steps: int = 600
    lr_range: tuple[float, float] = (1e-3, 0.3)
    scan_lrs: int = 400  # fine lr scan for beta 0 and beta_seed
    map_lrs: int = 121
    map_betas: int = 100  # linspace(0, 0.99), plus beta_seed
    map_steps: int = 5000
    # the critical-friction bisection is the same at every size (it is cheap), so its criterion is
    friction_betas: tuple[float, ...] = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
    friction_rounds: int = 3
    friction_points: int = 16
    friction_steps: int = 1200
    basin_grid: int = 41
    basin_steps: int = 3000
    adam_lr: float = 0.02
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(scan_lrs=48, map_lrs=20, map_betas=10, map_steps=2500, basin_grid=9, basin_steps=1000)


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    landscape = get_landscape("double-well", tilt=config.tilt)
    stages = 4
    runs = Runs()
    seed = _seed_runs(config, runs)
    _tick(progress, 1, stages)
    scan, grid = _scan_and_map(config, runs)
    _tick(progress, 2, stages)
    friction = _critical_friction(config, landscape, runs)
    _tick(progress, 3, stages)
    basins = _basins(config, runs)
    _tick(progress, 4, stages)
    minima = {p.id: p.position[0] for p in landscape.critical_points}
    bands = {beta: _band(*scan[beta], wanted, config.lr_seed) for beta, wanted in _wanted(config)}
    rows = [
        *_seed_rows(config, seed, minima),
        *_band_rows(config, bands, friction),
        *_friction_rows(config, friction),
        *_map_rows(grid),
        *_basin_rows(basins, friction["barrier_x"]),
    ]
    config_dict = {
        **asdict(config),
        "landscape": f"double-well (tilt {config.tilt:g}), default start (-1.7, 0)",
        "optimizer": "momentum (seeds' form v <- beta v - lr g, w <- w + v); beta = 0 is GD",
        "basin rules": {
            "gd": config.lr_seed,
            "momentum": config.lr_seed,
            "nesterov": config.lr_seed,
            "adam": config.adam_lr,
        },
    }
    figures = [
        _figure(config, landscape, seed, scan, bands),
        _details(config, landscape, grid, friction, basins),
    ]
    return Result(NAME, CLAIM, PROTOCOL, rows, config_dict, figures, runs.specs)


def _wanted(config: Config) -> tuple[tuple[float, str], ...]:
    return ((0.0, LEFT), (config.beta_seed, RIGHT))


# --- rows -------------------------------------------------------------------------------------
def _seed_rows(config: Config, seed: dict, minima: dict) -> list[Row]:
    lr, beta = config.lr_seed, config.beta_seed
    group = f"the seed's settings at lr {lr:g} (theory: the minima)"
    (gd_x, _), (hb_x, _) = seed["final"]
    gd_out, hb_out = seed["outcomes"]
    return [
        agrees(
            "seed/beta=0",
            f"momentum 0 at lr {lr:g}: final x against the left (local) minimum",
            gd_x,
            minima["left"],
            absolute=SETTLED,
            about="claim",
            group=group,
            key=True,
            if_pass=f"From (-1.7, 0) at lr {lr:g} momentum 0 ended in the left (local) minimum, x = "
            f"{gd_x:.4f} (minimum at {minima['left']:.4f}).",
            if_fail=f"Momentum 0 at lr {lr:g} did not stay in the left minimum: it ended at x = {gd_x:.4f} "
            f"({gd_out}).",
        ),
        agrees(
            f"seed/beta={beta:g}",
            f"momentum {beta:g} at lr {lr:g}: final x against the right (global) minimum",
            hb_x,
            minima["right"],
            absolute=SETTLED,
            about="claim",
            group=group,
            key=True,
            if_pass=f"Momentum {beta:g} crossed the barrier and ended in the right (global) minimum, x = "
            f"{hb_x:.4f} (minimum at {minima['right']:.4f}).",
            if_fail=f"Momentum {beta:g} at lr {lr:g} did not reach the right minimum: it ended at x = "
            f"{hb_x:.4f} ({hb_out}).",
        ),
        number(
            "seed/settle/beta=0", "momentum 0: settling step", seed["steps"][0], unit="steps", group=group
        ),
        number(
            f"seed/settle/beta={beta:g}",
            f"momentum {beta:g}: settling step",
            seed["steps"][1],
            unit="steps",
            group=group,
        ),
    ]


def _band_rows(config: Config, bands: dict, friction: dict) -> list[Row]:
    lr = config.lr_seed
    group = f"robustness in lr: the claim within a factor {BAND_FACTOR:g} of lr {lr:g} (scanned lrs)"
    out: list[Row] = []
    for beta, wanted in _wanted(config):
        low, high = bands[beta]
        factor = min(lr / low, high / lr) if math.isfinite(low) else 0.0
        what = "stays in the left minimum" if wanted == LEFT else "reaches the right minimum"
        out.append(
            exceeds(
                f"band/beta={beta:g}",
                f"momentum {beta:g} {what} for every scanned lr within this factor of lr {lr:g}",
                factor,
                BAND_FACTOR,
                group=group,
                key=beta == config.beta_seed,
                if_pass=f"Momentum {beta:g} {what} for every scanned lr from {low:.3g} to {high:.3g}: the "
                f"claim survives changing lr {lr:g} by a factor {factor:.2f} either way.",
                if_fail=f"Momentum {beta:g} {what} only for lr from {low:.3g} to {high:.3g} (a factor "
                f"{factor:.2f} around {lr:g}): a knife-edge of the lr, not a property of the momentum.",
            )
        )
        out.append(
            number(f"band_low/beta={beta:g}", f"momentum {beta:g}: lowest lr of the band", low, group=group)
        )
        out.append(
            number(
                f"band_high/beta={beta:g}", f"momentum {beta:g}: highest lr of the band", high, group=group
            )
        )
    beta = config.beta_seed
    if beta in friction["edges"]:
        out[-2] = number(
            f"band_low/beta={beta:g}",
            f"momentum {beta:g}: lowest lr of the band (theory: the bisection edge of gamma_c)",
            bands[beta][0],
            theory=friction["edges"][beta],
            group=group,
        )
    return out


def _friction_rows(config: Config, friction: dict) -> list[Row]:
    group = "critical friction (theory: the damped oscillator x'' + gamma x' = -U'(x))"
    out = [
        number(
            f"gamma_c/beta={beta:g}",
            f"heavy ball's critical friction (1 - beta)/sqrt(lr_edge) at beta {beta:g} (h = {h:.3g})",
            g,
            theory=friction["ode"],
            group=group,
        )
        for (beta, g), h in zip(friction["gamma_c"].items(), friction["h"].values())
    ]
    out.append(
        agrees(
            "gamma_c/extrapolated",
            "heavy ball's critical friction extrapolated to h = sqrt(lr) -> 0 (two smallest h) against the "
            "continuous oscillator's",
            friction["extrapolated"],
            friction["ode"],
            # the bisection brackets are 0.07 % wide in gamma and the two-point extrapolation leaves an
            # O(h^2) remainder (h <= 0.016); 0.2 % covers both
            rel=2e-3,
            group=group,
            key=True,
        )
    )
    out.append(
        number(
            "gamma_c/resolution",
            "relative width of the final bisection brackets in gamma",
            friction["resolution"],
            group=group,
        )
    )
    return out


def _map_rows(grid: dict) -> list[Row]:
    group = "the (lr, momentum) map from (-1.7, 0): share of grid cells"
    counts = Counter(grid["outcomes"].ravel().tolist())
    total = grid["outcomes"].size
    out = [
        number(
            f"map/{name.split(':')[-1]}", f"cells ending {label}", counts.get(name, 0) / total, group=group
        )
        for name, label in (
            (LEFT, "in the left minimum"),
            (RIGHT, "in the right minimum"),
            ("diverged", "diverged"),
        )
    ]
    other = 1.0 - sum(counts.get(k, 0) for k in (LEFT, RIGHT, "diverged")) / total
    out.append(
        number("map/other", "cells still moving or elsewhere after the step budget", other, group=group)
    )
    return out


def _basin_rows(basins: dict, barrier_x: float) -> list[Row]:
    group = "basins of attraction over a grid of starts (theory: separable U, per-coordinate rules)"
    out: list[Row] = []
    for rule, data in basins.items():
        out_, x0 = data["outcomes"], data["x0"]
        left_side, right_side = x0 < barrier_x, x0 > barrier_x
        out.append(
            agrees(
                f"basins/stripes/{rule}",
                f"{rule}: share of columns (same x0) with one outcome",
                data["stripes"],
                1.0,
                absolute=0,
                group=group,
            )
        )
        out.append(
            number(
                f"basins/right/{rule}",
                f"{rule}: share of starts reaching the right (global) minimum",
                float(np.mean(out_ == RIGHT)),
                group=group,
            )
        )
        crossed = float(np.mean(out_[left_side] == RIGHT))
        back = float(np.mean(out_[right_side] == LEFT))
        if rule == "gd":
            out.append(
                agrees(
                    "basins/crossed/gd",
                    "gd: share of starts that end on the other side of the barrier (it cannot cross it)",
                    float(np.mean(np.r_[out_[left_side] == RIGHT, out_[right_side] == LEFT])),
                    0.0,
                    absolute=0,
                    group=group,
                )
            )
        out.append(
            number(
                f"basins/over/{rule}",
                f"{rule}: share of starts left of the barrier that end right",
                crossed,
                group=group,
            )
        )
        out.append(
            number(
                f"basins/back/{rule}",
                f"{rule}: share of starts right of the barrier that end left",
                back,
                group=group,
            )
        )
    return out


# --- runs -------------------------------------------------------------------------------------
def _tick(progress: Progress | None, k: int, total: int) -> None:
    if progress is not None:
        progress(k, total)


def _spec(config: Config, **fields) -> RunSpec:
    """A run on the double well of ``config`` from its default start."""
    params = {"tilt": config.tilt}
    return RunSpec(landscape="double-well", landscape_params=params, seed=config.seed, **fields)


def _seed_runs(config: Config, runs: Runs) -> dict:
    """The seed's two settings, one run: the heavy ball at lr_seed with momentum 0 and beta_seed."""
    spec = _spec(
        config,
        optimizer="momentum",
        hyper={"lr": config.lr_seed, "momentum": [0.0, config.beta_seed]},
        steps=config.seed_steps,
        save="every:1",
    )
    traj = runs(spec)
    return {
        "traj": traj,
        "outcomes": list(traj.outcomes),
        "steps": traj.outcome_step.tolist(),
        "final": traj.final_position.tolist(),
    }


def _lr_grid(config: Config, n: int) -> np.ndarray:
    lrs = np.geomspace(config.lr_range[0], config.lr_range[1], n)
    return np.unique(np.append(lrs, config.lr_seed))


def _scan_and_map(config: Config, runs: Runs) -> tuple[dict, dict]:
    """One batched run: the fine lr scans (beta 0 and beta_seed) and the (lr, beta) map."""
    scan_lrs = _lr_grid(config, config.scan_lrs)
    map_lrs = _lr_grid(config, config.map_lrs)
    map_betas = np.unique(np.append(np.round(np.linspace(0.0, 0.99, config.map_betas), 6), config.beta_seed))
    grid_lr, grid_beta = np.meshgrid(map_lrs, map_betas, indexing="ij")
    lrs = np.concatenate([scan_lrs, scan_lrs, grid_lr.ravel()])
    betas = np.concatenate(
        [np.zeros_like(scan_lrs), np.full_like(scan_lrs, config.beta_seed), grid_beta.ravel()]
    )
    spec = _spec(
        config,
        optimizer="momentum",
        hyper={"lr": lrs.tolist(), "momentum": betas.tolist()},
        steps=config.map_steps,
        save="summary",
    )
    traj = runs(spec)
    outcomes = np.array(traj.outcomes, dtype=object)
    n = len(scan_lrs)
    scan = {0.0: (scan_lrs, outcomes[:n]), config.beta_seed: (scan_lrs, outcomes[n : 2 * n])}
    grid = {"lrs": map_lrs, "betas": map_betas, "outcomes": outcomes[2 * n :].reshape(grid_lr.shape)}
    return scan, grid


def _band(lrs: np.ndarray, outcomes: np.ndarray, wanted: str, lr0: float) -> tuple[float, float]:
    """The contiguous range of scanned lrs around ``lr0`` where the outcome is ``wanted`` (nan, nan
    where it does not hold at ``lr0``)."""
    i = int(np.argmin(np.abs(lrs - lr0)))
    if outcomes[i] != wanted:
        return (math.nan, math.nan)
    lo = i
    while lo > 0 and outcomes[lo - 1] == wanted:
        lo -= 1
    hi = i
    while hi < len(lrs) - 1 and outcomes[hi + 1] == wanted:
        hi += 1
    return float(lrs[lo]), float(lrs[hi])


def oscillator_critical_friction(tilt: float, x0: float, barrier_x: float, tol: float = 1e-9) -> float:
    """The smallest friction gamma at which ``x'' + gamma x' = -U'(x)`` (``U = (x^2 - 1)^2 - tilt x``)
    started at rest at ``x0`` left of the barrier no longer passes ``barrier_x``: bisection on gamma,
    each trajectory integrated (DOP853) until it passes the barrier or first turns back (after which
    friction keeps it below the barrier's energy)."""
    from scipy.integrate import solve_ivp

    def passes(gamma: float) -> bool:
        def field(t, s):
            return [s[1], -gamma * s[1] - (4.0 * s[0] * (s[0] ** 2 - 1.0) - tilt)]

        def cross(t, s):
            return s[0] - barrier_x

        def turn(t, s):
            return s[1]

        cross.terminal, cross.direction = True, 1
        turn.terminal, turn.direction = True, -1
        sol = solve_ivp(
            field, (0.0, 500.0), [x0, 0.0], events=[cross, turn], rtol=1e-11, atol=1e-13, method="DOP853"
        )
        return len(sol.t_events[0]) > 0

    low, high = 0.1, 10.0
    if not passes(low) or passes(high):
        raise ValueError("the critical friction is not between 0.1 and 10")
    while high - low > tol * high:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if passes(mid) else (low, mid)
    return 0.5 * (low + high)


def _critical_friction(config: Config, landscape, runs: Runs) -> dict:
    """Batched bisection, per beta, on the smallest lr at which the ball passes the barrier's x (read
    from the saved frames: the largest x reached); its friction, extrapolated to h -> 0, and the
    continuous oscillator's."""
    barrier_x = landscape.point("barrier").position[0]
    betas = np.array(sorted(config.friction_betas))
    # bracket: gamma between 0.3 and 3 covers the edge for every beta
    low = ((1.0 - betas) / 3.0) ** 2
    high = ((1.0 - betas) / 0.3) ** 2
    k = config.friction_points
    for _ in range(config.friction_rounds):
        fractions = np.linspace(0.0, 1.0, k)
        lrs = np.exp(np.log(low)[:, None] + (np.log(high) - np.log(low))[:, None] * fractions[None, :])
        spec = _spec(
            config,
            optimizer="momentum",
            hyper={"lr": lrs.ravel().tolist(), "momentum": np.repeat(betas, k).tolist()},
            steps=config.friction_steps,
            save="every:1",
        )
        traj = runs(spec)
        passed = (traj.positions[:, :, 0].max(dim=0).values > barrier_x).numpy().reshape(lrs.shape)
        for b in range(len(betas)):
            first = np.nonzero(passed[b])[0]
            j = int(first[0]) if first.size else k - 1
            low[b], high[b] = lrs[b, max(j - 1, 0)], lrs[b, j]
    edges = {float(beta): float(math.sqrt(low[b] * high[b])) for b, beta in enumerate(betas)}
    heavy_ball = RULES["momentum"]  # its friction (1 - beta)/sqrt(lr): the rule's own physics
    gamma_c = {beta: float(heavy_ball.friction({"lr": lr, "momentum": beta})) for beta, lr in edges.items()}
    h = {beta: math.sqrt(lr) for beta, lr in edges.items()}
    # linear extrapolation to h -> 0 from the two smallest time steps (the two largest betas)
    (b1, b2) = sorted(h, key=h.get)[:2]
    slope = (gamma_c[b2] - gamma_c[b1]) / (h[b2] - h[b1])
    extrapolated = gamma_c[b1] - slope * h[b1]
    start = landscape.default_start[0]
    return {
        "edges": edges,
        "gamma_c": gamma_c,
        "h": h,
        "barrier_x": barrier_x,
        "resolution": float(np.max(np.sqrt(high / low)) - 1.0),  # relative bracket width in gamma
        "extrapolated": float(extrapolated),
        "slope": float(slope),
        "ode": oscillator_critical_friction(config.tilt, float(start), barrier_x),
    }


def _basins(config: Config, runs: Runs) -> dict:
    """One run per rule from a grid of starts over the box (cell centres, rows in y)."""
    out = {}
    for rule in BASIN_RULES:
        hyper = {"lr": config.adam_lr} if rule == "adam" else {"lr": config.lr_seed}
        if rule in ("momentum", "nesterov"):
            hyper["momentum"] = config.beta_seed
        spec = _spec(
            config,
            optimizer=rule,
            hyper=hyper,
            starts=f"grid:{config.basin_grid}",
            steps=config.basin_steps,
            save="summary",
        )
        traj = runs(spec)
        outcomes = np.array(traj.outcomes, dtype=object)
        image = outcomes.reshape(config.basin_grid, config.basin_grid)  # rows: y, columns: x
        stripes = float(np.mean([len(set(image[:, j])) == 1 for j in range(config.basin_grid)]))
        x0 = traj.positions[0, :, 0].numpy()
        out[rule] = {"outcomes": outcomes, "image": image, "x0": x0, "stripes": stripes}
    return out


# --- figures ----------------------------------------------------------------------------------
def _codes(outcomes: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda o: CODES.get(o, 3))(outcomes).astype(float)


def _cmap():
    from matplotlib.colors import ListedColormap

    return ListedColormap(["tab:blue", "gold", "tab:red", "lightgray"])


def _figure(config, landscape, seed, scan, bands):
    """The card: the seed's two runs on the landscape and in time, and the lr bands where each holds."""
    from descent.plots.static import draw_landscape

    fig, axes = subplots(1, 3, height=4.4)
    traj = seed["traj"]
    styles = (("white", "momentum 0"), ("tab:orange", f"momentum {config.beta_seed:g}"))
    ax = axes[0]
    draw_landscape(ax, landscape, resolution=120)
    for i, (color, label) in enumerate(styles):
        path = traj.positions[:, i, :].numpy()
        ax.plot(path[:, 0], path[:, 1] + 0.05 * (i - 0.5), color=color, lw=1.4, label=label)
    ax.legend(fontsize=9, loc="upper left")
    ax.set_title(f"the seed's runs from (-1.7, 0), lr {config.lr_seed:g}", fontsize=10)

    ax = axes[1]
    steps = traj.steps.numpy()
    for i, (color, label) in enumerate(styles):
        ax.plot(
            steps, traj.positions[:, i, 0].numpy(), color="tab:blue" if i == 0 else color, lw=1.4, label=label
        )
    for point in landscape.critical_points:
        ax.axhline(point.position[0], color="gray", lw=0.8, ls="--" if point.is_minimum else ":")
        ax.text(steps[-1], point.position[0], f" {point.id}", va="center", fontsize=9)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, steps[-1])
    ax.set_xlabel("step")
    ax.set_ylabel("x")
    ax.set_title("x against the step (dashed: minima, dotted: barrier)", fontsize=10)
    ax.legend(fontsize=9, loc="lower right")
    ax.grid(alpha=0.3)

    ax = axes[2]
    cmap = _cmap()
    for beta, y in ((0.0, 0), (config.beta_seed, 1)):
        s_lrs, outcomes = scan[beta]
        ax.scatter(
            s_lrs,
            np.full(len(s_lrs), y),
            c=_codes(outcomes),
            cmap=cmap,
            vmin=-0.5,
            vmax=3.5,
            s=16,
            marker="s",
        )
        low, high = bands[beta]
        if math.isfinite(low):
            ax.plot([low, high], [y + 0.25] * 2, "k-", lw=2)
    ax.axvspan(config.lr_seed / BAND_FACTOR, config.lr_seed * BAND_FACTOR, color="k", alpha=0.08)
    ax.axvline(config.lr_seed, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yticks([0, 1], ["momentum 0", f"momentum {config.beta_seed:g}"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("learning rate (shaded: lr/2 to 2 lr)")
    ax.set_title(
        "blue: ends left, gold: right, red: diverged\n(bar: the band around the seed's lr)", fontsize=10
    )
    return finish(fig)


def _details(config, landscape, grid, friction, basins):
    """Details: the (lr, beta) map, the critical friction against h, the four rules' basins."""
    fig, axes = subplots(2, 3, height=8.4)
    cmap = _cmap()
    ax = axes[0, 0]
    lrs, betas = grid["lrs"], grid["betas"]
    ax.pcolormesh(lrs, betas, _codes(grid["outcomes"]).T, cmap=cmap, vmin=-0.5, vmax=3.5, shading="nearest")
    fine = np.geomspace(lrs.min(), lrs.max(), 200)
    gamma = friction["ode"]
    ax.plot(fine, 1.0 - gamma * np.sqrt(fine), "k--", lw=1, label=f"gamma = {gamma:.3f} (oscillator)")
    ax.plot([config.lr_seed] * 2, [0.0, config.beta_seed], "kx", ms=9, label="the seed's settings")
    ax.set_xscale("log")
    ax.set_ylim(betas.min() - 0.01, betas.max() + 0.01)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("momentum beta")
    ax.set_title("minimum reached from (-1.7, 0)", fontsize=10)
    ax.legend(fontsize=9, loc="lower left")

    ax = axes[0, 1]
    hs = np.array(list(friction["h"].values()))
    gs = np.array(list(friction["gamma_c"].values()))
    ax.plot(hs, gs, "o", color="tab:purple", label="heavy ball (bisection)")
    line = np.linspace(0.0, 2.0 * np.sort(hs)[1], 50)  # around the two smallest h it is fitted to
    ax.plot(
        line,
        friction["extrapolated"] + friction["slope"] * line,
        ":",
        color="tab:purple",
        label="extrapolation",
    )
    ax.axhline(friction["ode"], color="k", lw=0.8, ls="--", label="continuous oscillator")
    ax.set_xlabel("time step h = sqrt(lr) at the edge")
    ax.set_ylabel("critical friction gamma_c")
    ax.set_title("friction above which the ball stays left", fontsize=10)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)

    (x0, x1), (y0, y1) = landscape.bounds
    for ax, rule in zip([axes[0, 2], *axes[1]], BASIN_RULES):
        ax.imshow(
            _codes(basins[rule]["image"]),
            origin="lower",
            extent=(x0, x1, y0, y1),
            cmap=cmap,
            vmin=-0.5,
            vmax=3.5,
            aspect="auto",
            interpolation="nearest",
        )
        for point in landscape.critical_points:
            ax.plot(*point.position, "k*" if point.is_minimum else "kx", ms=9)
        share = float(np.mean(basins[rule]["outcomes"] == RIGHT))
        ax.set_title(f"basins, {rule}: {share:.0%} reach the global minimum", fontsize=10)
        ax.set_xlabel("x0")
        ax.set_ylabel("y0")
    return finish(fig)
