"""Double well: momentum 0 stays in the local minimum, momentum 0.9 jumps to the global one.

Protocol. The landscape is ``double-well`` ``U = (x^2 - 1)^2 - tilt x + y^2`` (local minimum left,
global right, barrier near x = 0), started from its default start (-1.7, 0) at rest.

1. The seed's two settings: ``momentum`` (the seeds' heavy ball; ``beta = 0`` is GD) at the landscape's
   lr 0.02 with beta 0 and 0.9; the outcome is the engine's (``minimum:left`` / ``minimum:right``).
2. Where each claim holds: one batched simulation holds a fine scan over lr for beta 0 and 0.9 (the lr
   bands around the seed's lr where "stays left" and "reaches right" hold) and the whole
   (lr, momentum) map of which minimum is reached, with the shares of each outcome.
3. Why: the heavy ball is a damped oscillator ``x'' + gamma x' = -U'`` with ``gamma = (1 - beta)/sqrt(lr)``
   (REFERENCE.md), so for small lr the outcome depends on the friction gamma alone. The lower edge of the
   "reaches right" band is the critical friction gamma_c above which the ball cannot top the barrier;
   it is found for several beta by batched bisection on lr (did the ball ever pass the barrier's x?),
   and its collapse onto one gamma_c as lr -> 0 is checked.
4. Basins of attraction: a grid of starts over the box, coloured by the minimum reached, for GD,
   momentum, Nesterov and Adam at the seed's lr (U is separable and all four rules act per coordinate,
   so the basins are vertical stripes: the outcome depends on x0 only).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from descent.experiments._base import Progress, Result, Runs, legacy_result, legacy_verdict
from descent.landscapes import get_landscape
from descent.optim import RULES
from descent.spec import RunSpec

NAME = "double-well-momentum"
CLAIM = (
    "Double well: with momentum 0 the ball gets stuck in the left (local) minimum; with momentum 0.9 "
    "it gains enough speed to jump over the hill to the global minimum on the right."
)

LEFT, RIGHT = "minimum:left", "minimum:right"
CODES = {LEFT: 0, RIGHT: 1, "diverged": 2}  # everything else (moving, stalled) is 3
CODE_NAMES = ("left (local)", "right (global)", "diverged", "still moving / other")
BASIN_RULES = ("gd", "momentum", "nesterov", "adam")


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
    band_factor: float = 2.0  # a robust claim holds from lr_seed/band_factor to lr_seed*band_factor
    friction_betas: tuple[float, ...] = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
    friction_rounds: int = 3
    friction_points: int = 16
    friction_steps: int = 1200
    friction_tolerance: float = 0.03  # spread of gamma_c over beta >= 0.9 (the small-lr limit)
    basin_grid: int = 41
    basin_steps: int = 3000
    adam_lr: float = 0.02
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            scan_lrs=48,
            map_lrs=20,
            map_betas=10,
            map_steps=2500,
            friction_betas=(0.9, 0.95, 0.98),
            friction_rounds=3,
            friction_points=10,
            friction_steps=600,
            friction_tolerance=0.05,
            basin_grid=9,
            basin_steps=1000,
        )


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    landscape = get_landscape("double-well", tilt=config.tilt)
    numbers: dict = {}
    theory: dict = {}
    checks: dict[str, bool] = {}
    stages = 4

    runs = Runs()
    seed = _seed_runs(config, runs)
    _tick(progress, 1, stages)
    scan, grid = _scan_and_map(config, runs)
    _tick(progress, 2, stages)
    friction = _critical_friction(config, landscape, runs)
    _tick(progress, 3, stages)
    basins = _basins(config, runs)

    # 1. the seed's settings
    gd_out, hb_out = seed["outcomes"]
    numbers[f"seed setting, momentum 0 (lr {config.lr_seed:g}): outcome"] = gd_out
    numbers[f"seed setting, momentum {config.beta_seed:g} (lr {config.lr_seed:g}): outcome"] = hb_out
    numbers["seed setting: settling steps (momentum 0, momentum 0.9)"] = seed["steps"]
    numbers["seed setting: final position (momentum 0, momentum 0.9)"] = seed["final"]
    checks[f"momentum 0 at lr {config.lr_seed:g} stays in the left (local) minimum"] = gd_out == LEFT
    checks[f"momentum {config.beta_seed:g} at lr {config.lr_seed:g} reaches the right (global) minimum"] = (
        hb_out == RIGHT
    )

    # 2. bands and the map
    bands = {}
    for beta, wanted, label in (
        (0.0, LEFT, "momentum 0 stays left"),
        (config.beta_seed, RIGHT, "reaches right"),
    ):
        lrs, outcomes = scan[beta]
        low, high = _band(lrs, outcomes, wanted, config.lr_seed)
        share = float(np.mean([o == wanted for o in outcomes]))
        bands[beta] = (low, high)
        key = f"momentum {beta:g}: {label}"
        numbers[f"{key}: lr band around {config.lr_seed:g}"] = [low, high]
        numbers[f"{key}: share of the scanned lrs ({config.lr_range[0]:g}..{config.lr_range[1]:g}, log)"] = (
            share
        )
    robust = all(
        low <= config.lr_seed / config.band_factor and high >= config.lr_seed * config.band_factor
        for low, high in bands.values()
    )
    factor = config.band_factor
    band_name = f"from lr/{factor:g} to {factor:g}*lr around lr {config.lr_seed:g}"
    checks[f"both claims hold on a contiguous lr band {band_name}"] = robust
    counts = Counter(grid["outcomes"].ravel().tolist())
    total = grid["outcomes"].size
    for name, label in ((LEFT, "left"), (RIGHT, "right"), ("diverged", "diverged")):
        p = counts.get(name, 0) / total
        numbers[f"map: share of (lr, momentum) cells reaching {label}"] = _share(p, total)
    other = 1.0 - sum(counts.get(k, 0) for k in (LEFT, RIGHT, "diverged")) / total
    numbers["map: share still moving / other after the step budget"] = other
    stable = grid["outcomes"] != "diverged"
    right_stable = float(np.mean(grid["outcomes"][stable] == RIGHT)) if stable.any() else math.nan
    numbers["map: share reaching right among cells that do not diverge"] = _share(
        right_stable, int(stable.sum())
    )

    # 3. critical friction
    gamma_c = friction["gamma_c"]
    for beta, g in gamma_c.items():
        numbers[f"critical friction gamma_c = (1 - beta)/sqrt(lr_edge) at beta {beta:g}"] = g
        numbers[f"lower lr edge of 'passes the barrier' at beta {beta:g}"] = friction["edges"][beta]
    limit = [g for b, g in gamma_c.items() if b >= 0.9]
    spread = (max(limit) - min(limit)) / float(np.mean(limit))
    gamma_limit = float(np.mean(limit))
    numbers["gamma_c, mean over beta >= 0.9 (the small-lr limit)"] = gamma_limit
    numbers["gamma_c relative spread over beta >= 0.9"] = spread
    numbers["gamma_c resolution of the bisection (relative)"] = friction["resolution"]
    edge_pred = ((1.0 - config.beta_seed) / gamma_limit) ** 2
    theory[f"lower edge of the momentum-{config.beta_seed:g} band, ((1 - beta)/gamma_c)^2"] = edge_pred
    checks[
        f"the lower edge follows one friction gamma = (1 - beta)/sqrt(lr) for beta >= 0.9 "
        f"(spread <= {config.friction_tolerance:.0%})"
    ] = spread <= config.friction_tolerance + friction["resolution"]

    # 4. basins
    for rule, data in basins.items():
        out = data["outcomes"]
        n = len(out)
        right = float(np.mean(out == RIGHT))
        numbers[f"basins, {rule}: share of starts reaching right (global)"] = _share(right, n)
        numbers[f"basins, {rule}: share reaching left (local)"] = float(np.mean(out == LEFT))
        numbers[f"basins, {rule}: share not settled in a minimum"] = float(
            np.mean((out != LEFT) & (out != RIGHT))
        )
        x0 = data["x0"]
        left_side, right_side = x0 < friction["barrier_x"], x0 > friction["barrier_x"]
        numbers[f"basins, {rule}: starts left of the barrier that end right"] = float(
            np.mean(out[left_side] == RIGHT)
        )
        numbers[f"basins, {rule}: starts right of the barrier that end left"] = float(
            np.mean(out[right_side] == LEFT)
        )
        numbers[f"basins, {rule}: columns (same x0) with one outcome"] = data["stripes"]
    _tick(progress, 4, stages)

    verdict = legacy_verdict(checks)
    explanation = _explain(config, numbers, bands, gamma_limit, checks)
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
    figure = _figure(config, landscape, seed, scan, grid, friction, basins, gamma_limit)
    return legacy_result(
        NAME, CLAIM, verdict, explanation, numbers, theory, config_dict, figure, checks, runs.specs
    )


# --- runs -------------------------------------------------------------------------------------
def _tick(progress: Progress | None, k: int, total: int) -> None:
    if progress is not None:
        progress(k, total)


def _share(p: float, n: int) -> dict[str, float]:
    """A share with its binomial standard error (for a grid: the resolution of the estimate)."""
    return {"share": p, "se": math.sqrt(max(p * (1.0 - p), 0.0) / max(n, 1))}


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
    final = traj.final_position.tolist()
    return {"traj": traj, "outcomes": traj.outcomes, "steps": traj.outcome_step.tolist(), "final": final}


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
    """The contiguous range of scanned lrs around ``lr0`` where the outcome is ``wanted``."""
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


def _critical_friction(config: Config, landscape, runs: Runs) -> dict:
    """Batched bisection, per beta, on the smallest lr at which the ball passes the barrier's x (read
    from the saved frames: the largest x reached)."""
    barrier_x = landscape.point("barrier").position[0]
    betas = np.array(config.friction_betas)
    # bracket: gamma between 0.3 and 3 covers the edge for every beta
    low = ((1.0 - betas) / 3.0) ** 2
    high = ((1.0 - betas) / 0.3) ** 2
    k = config.friction_points
    for _ in range(config.friction_rounds):
        fractions = np.linspace(0.0, 1.0, k)
        lrs = np.exp(
            np.log(low)[:, None] + (np.log(high) - np.log(low))[:, None] * fractions[None, :]
        )  # [B, k]
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
    resolution = float(
        np.max(np.sqrt(high / low)) - 1.0
    )  # relative half-width of the final brackets in gamma
    return {"edges": edges, "gamma_c": gamma_c, "barrier_x": barrier_x, "resolution": resolution}


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


# --- words and figure -------------------------------------------------------------------------
def _explain(config, numbers, bands, gamma_limit, checks) -> str:
    lr, beta = config.lr_seed, config.beta_seed
    (gl, gh), (ml, mh) = bands[0.0], bands[beta]
    gd_key = f"seed setting, momentum 0 (lr {lr:g}): outcome"
    hb_key = f"seed setting, momentum {beta:g} (lr {lr:g}): outcome"
    shares = {
        r: numbers[f"basins, {r}: share of starts reaching right (global)"]["share"] for r in BASIN_RULES
    }
    back = numbers["basins, momentum: starts right of the barrier that end left"]
    over = numbers["basins, momentum: starts left of the barrier that end right"]
    right = numbers["map: share of (lr, momentum) cells reaching right"]
    parts = [
        f"From (-1.7, 0) at lr {lr:g}, momentum 0 ended in {numbers[gd_key]} and momentum {beta:g} in "
        f"{numbers[hb_key]}, as the seed says. Momentum 0 stays left for every scanned lr from {gl:.3g} to "
        f"{gh:.3g}; momentum {beta:g} reaches the right minimum on the band {ml:.3g} to {mh:.3g} around "
        f"lr {lr:g}, and beyond it the outcome alternates between the wells (and diverges at large lr). Over "
        f"the whole (lr, momentum) map only {right['share']:.1%} +- {right['se']:.1%} of the cells reach the "
        "global minimum: the claim is about one setting, not momentum in general. ",
        "The heavy ball is a damped oscillator with friction gamma = (1 - beta)/sqrt(lr): it tops the "
        f"barrier only when gamma < gamma_c = {gamma_limit:.3f} (the small-lr limit, found by bisection "
        f"for several beta), so momentum {beta:g} needs lr above ((1 - beta)/gamma_c)^2 = "
        f"{((1 - beta) / gamma_limit) ** 2:.4f}; with too little friction it crosses back and the ending "
        "depends on where it runs out of energy. ",
        f"Over a grid of starts the share reaching the global minimum is GD {shares['gd']:.1%}, momentum "
        f"{shares['momentum']:.1%}, Nesterov {shares['nesterov']:.1%}, Adam {shares['adam']:.1%}: momentum "
        f"carries {over:.1%} of the starts left of the barrier over it, but also throws {back:.1%} of those "
        "starting right of it into the local minimum on the left, so it is not selective. U is separable, so "
        "each basin map consists of vertical stripes.",
    ]
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        parts.append(" Checks that failed: " + "; ".join(failed) + ".")
    return "".join(parts)


def _codes(outcomes: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda o: CODES.get(o, 3))(outcomes).astype(float)


def _figure(config, landscape, seed, scan, grid, friction, basins, gamma_limit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from descent.plots.static import draw_landscape

    cmap = ListedColormap(["tab:blue", "gold", "tab:red", "lightgray"])
    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    ax = axes[0, 0]
    lrs, betas = grid["lrs"], grid["betas"]
    ax.pcolormesh(lrs, betas, _codes(grid["outcomes"]).T, cmap=cmap, vmin=-0.5, vmax=3.5, shading="nearest")
    fine = np.geomspace(lrs.min(), lrs.max(), 200)
    ax.plot(
        fine, 1.0 - gamma_limit * np.sqrt(fine), "k--", lw=1, label=f"gamma = gamma_c = {gamma_limit:.2f}"
    )
    ax.plot([config.lr_seed] * 2, [0.0, config.beta_seed], "kx", ms=9, label="the seed's settings")
    ax.set_xscale("log")
    ax.set_ylim(betas.min() - 0.01, betas.max() + 0.01)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("momentum beta")
    ax.set_title("minimum reached from (-1.7, 0)", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")

    ax = axes[0, 1]
    for beta, y in ((0.0, 0), (config.beta_seed, 1)):
        s_lrs, outcomes = scan[beta]
        ax.scatter(
            s_lrs,
            np.full(len(s_lrs), y),
            c=_codes(outcomes),
            cmap=cmap,
            vmin=-0.5,
            vmax=3.5,
            s=14,
            marker="s",
        )
    ax.axvline(config.lr_seed, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yticks([0, 1], ["momentum 0", f"momentum {config.beta_seed:g}"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("learning rate")
    ax.set_title("lr scans (blue left, gold right, red diverged)", fontsize=10)

    ax = axes[0, 2]
    draw_landscape(ax, landscape, resolution=120)
    traj = seed["traj"]
    for i, (color, label) in enumerate(
        (("white", "momentum 0"), ("tab:orange", f"momentum {config.beta_seed:g}"))
    ):
        path = traj.positions[:, i, :].numpy()
        ax.plot(path[:, 0], path[:, 1] + 0.05 * (i - 0.5), color=color, lw=1.2, label=label)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"the seed's runs at lr {config.lr_seed:g}", fontsize=10)

    ax = axes[0, 3]
    gammas = friction["gamma_c"]
    ax.plot(list(gammas), list(gammas.values()), "o-", color="tab:purple")
    ax.axhline(gamma_limit, color="k", lw=0.8, ls="--")
    ax.set_xlabel("momentum beta")
    ax.set_ylabel("gamma_c = (1 - beta)/sqrt(lr_edge)")
    ax.set_title("critical friction to top the barrier", fontsize=10)
    ax.grid(alpha=0.3)

    (x0, x1), (y0, y1) = landscape.bounds
    for ax, rule in zip(axes[1], BASIN_RULES):
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
    fig.tight_layout()
    return fig
