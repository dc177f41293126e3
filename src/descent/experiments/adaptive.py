"""Adaptive methods: AdaGrad, RMSProp and Adam raced against GD and momentum on flat ground (the
plateau) and in ill-conditioned valleys (a rotated quadratic with kappa = 100, the same one aligned
with the axes, Rosenbrock), plus a look inside Adam: its step per coordinate on the flatter and the
steeper direction of the same step.

The race (a fair one). For each landscape every optimizer gets the same log grid of learning rates,
the same budget of steps (one gradient per step for every rule, so the same gradient budget) and the
same starts; momentum, betas, alpha and eps stay at their defaults. A particle finishes when its loss
reaches the landscape's target; the step at which it does is its time. A start that does not reach
the target within the budget (or diverges) is a failure, counted at the budget (a censored time: the
failing method is credited with the best time it could still have had). Each optimizer's learning
rate is tuned on ``n_tune`` starts for the quantity it is judged on, the mean of these censored times
(then the median), and judged on ``n_eval`` fresh starts drawn with another seed, the same starts for
every optimizer, so the comparison is paired start by start: the share of starts that reach the
target (with its binomial SE), and the ratio of mean censored times (with the paired ratio
estimator's SE). On the starts both reached, the geometric mean of the per-start time ratio is
reported beside it. All learning rates of one optimizer run as one `RunSpec` (a per-particle lr).

Inside Adam. At each race's tuned lr, Adam runs from the fresh starts with the engine's
``update_parts`` probe, which records every step's parts: the force step ``-lr g`` and the update
``u`` itself. The claim is about parameters: at the same step, does Adam step further along the
flatter coordinate (the smaller ``|g_i|``) than along the steeper one? For every step of every
particle, the log of ``|u_flat| / |u_steep|`` (the step ratio) and of ``(|u|/|g|)_flat /
(|u|/|g|)_steep`` (the effective learning rate ratio; GD's is 1, its step ratio is the gradient
ratio) are averaged over the particle's steps until it reaches the target; the particles are the
independent samples of the mean and its SE. (Ranking samples pooled over all steps instead, as a
first version of this experiment did, compares early steps with the last ones before the minimum,
where every method's steps shrink because it has arrived: it measures time, not direction.) On the
plateau, the same coordinate x is also compared on the two kinds of ground: the constant slope,
where Adam's step is exactly ``lr s/(s + eps)`` (a constant gradient gives ``m_hat = s``,
``v_hat = s^2``; Kingma and Ba (2015)), and the well's steep walls (``|g_x| >= 10 s``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent._errors import invalid, listed
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, below, exceeds, mean_se, number, share_se
from descent.landscapes import Landscape, get_landscape, quadratic_matrix
from descent.spec import RunSpec
from descent.theory.rates import gd_parameters

NAME = "adaptive"
CLAIM = (
    "Flat regions challenge gradient flow, often requiring adaptive methods (AdaGrad, RMSProp, Adam), "
    "which adjust the learning rate of each parameter: Adam takes bigger steps on flat ground and "
    "smaller, careful ones on steep slopes."
)
PROTOCOL = (
    "GD, momentum, AdaGrad, RMSProp and Adam race on a plateau, two ill-conditioned quadratics and "
    "Rosenbrock with the same learning-rate grid, step budget and starts, each tuned for its mean steps "
    "to the target (a failure counted at the budget) and judged on fresh starts by the share that "
    "reach it and the paired ratio of mean steps. At each tuned lr Adam's update is recorded step by "
    "step and its step along the flatter coordinate is compared with the one along the steeper "
    "coordinate of the same step."
)

ADAPTIVE = ("adagrad", "rmsprop", "adam")
PLAIN = ("gd", "momentum")
LABELS = {"gd": "GD", "momentum": "momentum", "adagrad": "AdaGrad", "rmsprop": "RMSProp", "adam": "Adam"}
COLORS = {
    "gd": "tab:blue",
    "momentum": "tab:orange",
    "adagrad": "tab:green",
    "rmsprop": "tab:red",
    "adam": "tab:purple",
}
RACES = {
    "plateau": "the seeds' plateau: slope 0.05 over x in [0, 8], then a well; starts x in [0, 1], "
    "y in [-1, 1]; target: loss within 1e-3 of the well's minimum",
    "valley-rotated": "quadratic, kappa = 100, eigenvectors rotated by 30 degrees from the axes; "
    "starts uniform in [-2, 2]^2; target loss 1e-6",
    "valley-aligned": "the same quadratic with axis-aligned eigenvectors (a control: the one case a "
    "per-coordinate step can fix exactly); target loss 1e-6",
    "rosenbrock": "Rosenbrock's banana 100(y - x^2)^2 + (1 - x)^2; starts uniform in [-2.048, 2.048]^2; "
    "target loss 1e-4",
}
ADAM_EPS = 1e-8  # Adam's default eps (descent.optim.rules), for its exact first step
PROBE_EXACT = 1e-12  # the probe's update against the saved displacement: the same float64 numbers
FIRST_STEP_EXACT = 1e-12  # Adam's first step lr g/(|g| + eps): exact up to rounding
# On the plateau's slope the well's Gaussian tail adds a force of at most depth 6 width/width^2
# exp(-18) ~ 2e-7, under 1e-5 of the slope (see descent.landscapes.seeds.plateau): Adam's step there
# is lr s/(s + eps) to that relative precision.
SLOPE_EXACT = 1e-5
WALL = 10.0  # the well's steep walls: |g_x| >= WALL * slope


@dataclass(frozen=True)
class Config:
    races: tuple[str, ...] = ("plateau", "valley-rotated", "valley-aligned", "rosenbrock")
    optimizers: tuple[str, ...] = (*PLAIN, *ADAPTIVE)
    lr_min: float = 1e-4
    lr_max: float = 1e2
    lr_per_decade: int = 4
    budget: int = 3000
    n_tune: int = 16
    n_eval: int = 64
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            races=("plateau", "valley-rotated", "rosenbrock"),
            lr_per_decade=2,
            budget=800,
            n_tune=6,
            n_eval=12,
        )

    def lr_grid(self) -> np.ndarray:
        decades = math.log10(self.lr_max / self.lr_min)
        return np.geomspace(self.lr_min, self.lr_max, int(round(decades * self.lr_per_decade)) + 1)


# --- the races ---------------------------------------------------------------------------------
def race_landscape(race: str) -> tuple[str, dict]:
    """The registered landscape of a race and its parameters."""
    if race == "plateau":
        return "plateau", {}
    if race in ("valley-rotated", "valley-aligned"):
        angle = math.pi / 6 if race == "valley-rotated" else 0.0
        return "quadratic", {"kappa": 100.0, "mu": 1.0, "angle": angle, "dim": 2}
    if race == "rosenbrock":
        return "rosenbrock", {}
    raise invalid("race", race, f"one of: {listed(list(RACES))}")


def race_setup(race: str, n: int, seed: int) -> tuple[Landscape, torch.Tensor, float]:
    """(landscape, starts [n, 2], target loss) of one race; starts drawn with ``seed``."""
    name, params = race_landscape(race)
    landscape = get_landscape(name, **params)
    generator = torch.Generator().manual_seed(seed)
    if race == "plateau":
        u = torch.rand((n, 2), generator=generator, dtype=torch.float64)
        starts = torch.stack([u[:, 0], 2 * u[:, 1] - 1], dim=1)
        return landscape, starts, float(landscape.global_minima[0].value) + 1e-3
    target = 1e-6 if race.startswith("valley") else 1e-4
    return landscape, landscape.random_starts(n, generator), target


def race_spec(
    race: str, optimizer: str, lr: list[float], starts: torch.Tensor, target: float, config: Config
) -> RunSpec:
    """``optimizer`` on the race's landscape from ``starts`` (one per lr), stopped at the target loss."""
    name, params = race_landscape(race)
    return RunSpec(
        landscape=name,
        landscape_params=params,
        optimizer=optimizer,
        hyper={"lr": lr},
        starts=starts.tolist(),
        steps=config.budget,
        save="summary",
        events={"target_loss": target, "stop_on": ["target"]},
        seed=config.seed,
    )


def _times(trajectory, target: float) -> np.ndarray:
    """Steps to target per particle; inf where not reached (or diverged)."""
    stop = trajectory.stop_step.numpy().astype(float)
    reached = (
        (stop >= 0)
        & np.array([o != "diverged" for o in trajectory.outcomes])
        & (trajectory.final_loss.numpy() <= target)
    )
    return np.where(reached, stop, np.inf)


def quantile(times: np.ndarray, q: float) -> float:
    """The q-quantile of times that may hold inf (never reached), interpolating only between finite ones."""
    ordered = np.sort(np.asarray(times, dtype=float))
    position = q * (len(ordered) - 1)
    lo, hi = ordered[int(math.floor(position))], ordered[int(math.ceil(position))]
    if not math.isfinite(hi):
        return math.inf
    return float(lo + (hi - lo) * (position - math.floor(position)))


def censored(times: np.ndarray, budget: int) -> np.ndarray:
    """Times with each failure (inf) counted at the budget."""
    return np.minimum(np.asarray(times, dtype=float), float(budget))


def ratio_of_means(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``mean(a)/mean(b)`` of paired samples and its SE by the ratio estimator's linearisation,
    ``sd(a - r b)/(sqrt(n) mean(b))`` (Cochran, Sampling Techniques (1977), section 6.3)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ratio = float(a.mean() / b.mean())
    residual = a - ratio * b
    return ratio, float(residual.std(ddof=1) / (math.sqrt(len(a)) * b.mean()))


def _selection_key(times: np.ndarray, budget: int) -> tuple[float, float]:
    return float(censored(times, budget).mean()), quantile(times, 0.5)


def race(race_name: str, optimizer: str, config: Config, runs: Runs) -> dict:
    """Tune ``optimizer``'s lr on the grid with the tuning starts, time it on the fresh starts."""
    grid = config.lr_grid()
    _, tune, target = race_setup(race_name, config.n_tune, config.seed)
    _, fresh, _ = race_setup(race_name, config.n_eval, config.seed + 1)
    per_lr = config.n_tune + config.n_eval
    starts = torch.cat([tune, fresh]).repeat(len(grid), 1)
    lr = np.repeat(grid, per_lr).tolist()
    trajectory = runs(race_spec(race_name, optimizer, lr, starts, target, config))
    times = _times(trajectory, target).reshape(len(grid), per_lr)
    tune_times, eval_times = times[:, : config.n_tune], times[:, config.n_tune :]
    keys = [_selection_key(t, config.budget) for t in tune_times]
    best = min(range(len(grid)), key=lambda i: keys[i])
    chosen = eval_times[best]
    return {
        "lr": float(grid[best]),
        "lr_at_grid_edge": best in (0, len(grid) - 1),
        "median": quantile(chosen, 0.5),
        "q25": quantile(chosen, 0.25),
        "q75": quantile(chosen, 0.75),
        "reached": int(np.isfinite(chosen).sum()),
        "any_reached": bool(np.isfinite(tune_times).any()),
        "times": chosen,
        "starts": fresh,
        "tuning_mean": np.array([k[0] for k in keys]),
        "target": target,
    }


def gd_exact_steps(matrix: torch.Tensor, starts: torch.Tensor, lr: float, target: float, budget: int):
    """GD's steps to ``target`` on ``x^T A x / 2`` from each start, from the exact recurrence in A's
    eigenbasis, ``f_k = sum_i lambda_i (1 - lr lambda_i)^(2k) c_i^2 / 2`` (inf if not within budget)."""
    eigenvalues, vectors = np.linalg.eigh(matrix.numpy())
    coefficients = starts.numpy() @ vectors  # [n, d]
    k = np.arange(budget + 1)[:, None, None]
    loss = 0.5 * (eigenvalues * (1.0 - lr * eigenvalues) ** (2 * k) * coefficients**2).sum(-1)  # [K, n]
    hit = loss <= target
    return np.where(hit.any(0), hit.argmax(0), np.inf).astype(float)


def gd_rate(matrix: torch.Tensor, lr: float) -> float:
    """GD's exact contraction rate per step on the quadratic, ``max_i |1 - lr lambda_i|``."""
    eigenvalues = np.linalg.eigvalsh(matrix.numpy())
    return float(np.abs(1.0 - lr * eigenvalues).max())


# --- inside Adam -------------------------------------------------------------------------------
def adam_probe(race_name: str, lr: float, config: Config, runs: Runs) -> dict:
    """Adam at ``lr`` from the fresh starts, every step's parts recorded by the ``update_parts`` probe:
    per particle, the mean log ratio of its flatter coordinate's step (and effective lr) to its steeper
    coordinate's at the same step."""
    landscape, starts, target = race_setup(race_name, config.n_eval, config.seed + 1)
    spec = race_spec(race_name, "adam", [lr] * config.n_eval, starts, target, config)
    trajectory = runs(spec.with_(save="every:1", probes=[{"name": "update_parts"}]))
    parts = trajectory.probes["update_parts"]
    steps = int(parts["steps"][-1])  # record k: step k, from frame k - 1 to frame k (k = 0: the start)
    force, update = parts["force"][1:].numpy(), parts["update"][1:].numpy()  # [steps, N, d]
    grads = -force / lr  # the force step is -lr g
    k = np.arange(1, steps + 1)[:, None]
    stop = trajectory.stop_step.numpy().copy()
    stop[stop < 0] = steps
    moved = k <= stop[None, :]  # a step up to the one that reached the target
    diverged = trajectory.events["diverged"].numpy()
    moved &= (diverged < 0)[None, :] | (k < diverged[None, :])  # a diverging step is undone
    saved = trajectory.displacement[1 : steps + 1].numpy()
    mismatch = float((np.abs(update - saved) * moved[..., None]).max() / max(np.abs(saved).max(), 1e-300))
    g, step = np.abs(grads), np.abs(update)
    first = lr * g[0] / (g[0] + ADAM_EPS)
    first_error = float(np.abs(step[0] / first - 1.0).max())

    flat = g.argmin(-1)[..., None]  # at each step, the coordinate with the smaller |g| ...
    steep = g.argmax(-1)[..., None]  # ... and the one with the larger
    g_flat, g_steep = np.take_along_axis(g, flat, -1)[..., 0], np.take_along_axis(g, steep, -1)[..., 0]
    u_flat, u_steep = np.take_along_axis(step, flat, -1)[..., 0], np.take_along_axis(step, steep, -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_step = np.log(u_flat / u_steep)
        log_grad = np.log(g_flat / g_steep)
    usable = moved & np.isfinite(log_step) & np.isfinite(log_grad) & (flat[..., 0] != steep[..., 0])
    particles = [p for p in range(config.n_eval) if usable[:, p].any()]
    per_step = [float(log_step[usable[:, p], p].mean()) for p in particles]
    per_grad = [float(log_grad[usable[:, p], p].mean()) for p in particles]
    per_eff = [s - q for s, q in zip(per_step, per_grad)]
    out = {
        "lr": lr,
        "particles": len(particles),
        "samples": int(usable.sum()),
        "probe_mismatch": mismatch,
        "first_step_error": first_error,
        "log_step": mean_se(per_step),
        "log_grad": mean_se(per_grad),
        "log_eff": mean_se(per_eff),
        "pairs": (g_flat[usable] / g_steep[usable], u_flat[usable] / u_steep[usable]),
    }
    # pooled over all steps (flattest vs steepest quarter of every |g_i| met): confounded by time
    pooled_g, pooled_u = g[moved], step[moved]
    lo, hi = np.quantile(pooled_g, 0.25), np.quantile(pooled_g, 0.75)
    out["pooled_step"] = float(np.median(pooled_u[pooled_g <= lo]) / np.median(pooled_u[pooled_g >= hi]))
    if race_name == "plateau":  # along x: the flat part (force = slope) against the well's walls
        slope, length = landscape.params["slope"], landscape.params["length"]
        before = trajectory.positions[:steps, :, 0].numpy()  # the position each step starts from
        on_slope = moved & (np.cumprod((before >= 0) & (before <= length), axis=0) > 0)
        on_wall = moved & (g[..., 0] >= WALL * slope)
        exact = slope / (slope + ADAM_EPS)
        out["slope"] = slope
        out["slope_step_error"] = float(np.abs(step[..., 0][on_slope] / lr / exact - 1.0).max())
        out["slope_samples"] = int(on_slope.sum())
        both = [p for p in range(config.n_eval) if on_slope[:, p].any() and on_wall[:, p].any()]
        out["ground"] = mean_se(
            [
                float(np.log(np.median(step[on_slope[:, p], p, 0]) / np.median(step[on_wall[:, p], p, 0])))
                for p in both
            ]
        )
        out["ground_particles"] = len(both)
        out["slope_step"] = float(np.median(step[..., 0][on_slope]) / lr)
        out["wall_step"] = float(np.median(step[..., 0][on_wall]) / lr)
        out["ground_scatter"] = (before[moved], step[..., 0][moved] / lr, g[..., 0][moved] >= WALL * slope)
    return out


# --- the experiment ----------------------------------------------------------------------------
def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    units = len(config.races) * (len(config.optimizers) + 1)
    done = 0
    runs = Runs()
    results: dict[str, dict[str, dict]] = {}
    probes: dict[str, dict] = {}
    for race_name in config.races:
        results[race_name] = {}
        for optimizer in config.optimizers:
            results[race_name][optimizer] = race(race_name, optimizer, config, runs)
            done += 1
            if progress is not None:
                progress(done, units)
        if "adam" in config.optimizers:
            probes[race_name] = adam_probe(race_name, results[race_name]["adam"]["lr"], config, runs)
        done += 1
        if progress is not None:
            progress(done, units)
    config_dict = {
        **asdict(config),
        "lr_grid": config.lr_grid().tolist(),
        "races": {r: RACES[r] for r in config.races},
        "optimizers' settings": "momentum 0.9, Adam betas (0.9, 0.999), RMSProp alpha 0.99, eps 1e-8",
    }
    figures = [_figure(config, results, probes), _details_figure(config, results)]
    return Result(NAME, CLAIM, PROTOCOL, _rows(config, results, probes), config_dict, figures, runs.specs)


# --- the rows ----------------------------------------------------------------------------------
RACE_GROUP = "plateau race: fresh starts, each optimizer at its tuned lr (failures counted at the budget)"
SPEED_GROUP = "plateau race: speed on the starts both reached (reported)"
TABLE_GROUP = "every race: tuned lr, share reached, steps to target (reported)"
OTHER_GROUP = "the valleys and Rosenbrock: adaptive over GD, failures at the budget (reported)"
COORD_GROUP = "inside Adam: flatter vs steeper coordinate of the same step (geometric mean over starts)"
GROUND_GROUP = "inside Adam on the plateau: the same coordinate x on the slope and on the well's walls"
INSTRUMENT_GROUP = (
    "instrument (theory: Adam's exact first step lr g/(|g| + eps), the probe vs the trajectory)"
)
GD_GROUP = (
    "GD on the quadratic valleys (theory: the exact recurrence f_k = sum lambda (1 - lr lambda)^2k c^2/2)"
)


def _steps(value: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) else "never"


def _rows(config: Config, results: dict, probes: dict) -> list[Row]:
    out: list[Row] = []
    n = config.n_eval
    budget = config.budget
    plateau = results.get("plateau", {})
    for a in (o for o in ADAPTIVE if o in plateau):
        ra = plateau[a]
        share, se = share_se(ra["reached"], n)
        name = LABELS[a]
        out.append(
            agrees(
                f"escape/plateau/{a}",
                f"plateau: share of the fresh starts {name} brings to the target",
                share,
                1.0,
                se=se,
                about="claim",
                group=RACE_GROUP,
                key=a == "rmsprop",
                if_pass=f"{name} crossed the plateau to the target from {ra['reached']} of {n} starts.",
                if_fail=f"{name} reached the target from only {ra['reached']} of {n} starts at its tuned lr "
                f"{ra['lr']:.3g}; the others stayed short of it within {budget} steps.",
            )
        )
        for r in (o for o in PLAIN if o in plateau):
            rr = plateau[r]
            ratio, se = ratio_of_means(censored(ra["times"], budget), censored(rr["times"], budget))
            mean_a, mean_r = censored(ra["times"], budget).mean(), censored(rr["times"], budget).mean()
            out.append(
                below(
                    f"faster/plateau/{a}-vs-{r}",
                    f"plateau: {name}'s mean steps to target over {LABELS[r]}'s (same starts, failures at "
                    "the budget)",
                    ratio,
                    1.0,
                    se=se,
                    group=RACE_GROUP,
                    key=a == "adam" and r == "gd",
                    if_pass=f"On the plateau {name} took {mean_a:.0f} steps on average against "
                    f"{LABELS[r]}'s {mean_r:.0f} ({ratio:.2f} of them, failures counted at {budget}).",
                    if_fail=f"On the plateau {name} took {mean_a:.0f} steps on average against "
                    f"{LABELS[r]}'s {mean_r:.0f} ({ratio:.2f} of them, failures counted at {budget}; "
                    f"{name} reached {ra['reached']} of {n} starts, {LABELS[r]} {rr['reached']}): "
                    "not faster.",
                )
            )
            both = np.isfinite(ra["times"]) & np.isfinite(rr["times"])
            if both.sum() >= 2:
                m, s = mean_se(np.log(ra["times"][both] / rr["times"][both]).tolist())
                out.append(
                    number(
                        f"speed_both/plateau/{a}-vs-{r}",
                        f"plateau: {name}'s steps over {LABELS[r]}'s on the {int(both.sum())} starts both "
                        "reached (geometric mean)",
                        math.exp(m),
                        se=math.exp(m) * s,
                        group=SPEED_GROUP,
                    )
                )
    for race_name, table in results.items():
        for optimizer, r in table.items():
            where = f"{race_name}: {LABELS[optimizer]}"
            lr_note = " (grid edge)" if r["lr_at_grid_edge"] else ""
            if not r["any_reached"]:
                lr_note = " (no lr of the grid reached the target)"
            out.append(
                number(
                    f"lr/{race_name}/{optimizer}", f"{where} tuned lr{lr_note}", r["lr"], group=TABLE_GROUP
                )
            )
            share, se = share_se(r["reached"], n)
            out.append(
                number(
                    f"reached/{race_name}/{optimizer}",
                    f"{where} share reached",
                    share,
                    se=se,
                    group=TABLE_GROUP,
                )
            )
            for q in ("q25", "median", "q75"):
                out.append(
                    number(
                        f"{q}/{race_name}/{optimizer}",
                        f"{where} {'median' if q == 'median' else q[1:] + ' % quantile of'} steps to target "
                        "(inf: not reached)",
                        r[q],
                        unit="steps",
                        group=TABLE_GROUP,
                    )
                )
            mean, se = mean_se(censored(r["times"], budget).tolist())
            out.append(
                number(
                    f"mean/{race_name}/{optimizer}",
                    f"{where} mean steps to target (failures at {budget})",
                    mean,
                    se=se if se > 0 else None,
                    unit="steps",
                    group=TABLE_GROUP,
                )
            )
        if race_name != "plateau" and "gd" in table:
            for a in (o for o in ADAPTIVE if o in table):
                ratio, se = ratio_of_means(
                    censored(table[a]["times"], budget), censored(table["gd"]["times"], budget)
                )
                out.append(
                    number(
                        f"vs_gd/{race_name}/{a}",
                        f"{race_name}: {LABELS[a]}'s mean steps over GD's (failures at the budget)",
                        ratio,
                        se=se if se > 0 else None,
                        group=OTHER_GROUP,
                    )
                )
        if race_name.startswith("valley") and "gd" in table:
            out.extend(_gd_rows(race_name, table["gd"], config))
    for race_name, p in probes.items():
        out.extend(_probe_rows(race_name, p))
    return out


def _gd_rows(race_name: str, gd: dict, config: Config) -> list[Row]:
    landscape, _, _ = race_setup(race_name, 1, config.seed)
    matrix = quadratic_matrix(landscape)
    eigenvalues = torch.linalg.eigvalsh(matrix)
    exact = gd_exact_steps(matrix, gd["starts"], gd["lr"], gd["target"], config.budget)
    grid = config.lr_grid()
    fastest = float(grid[int(np.argmin([gd_rate(matrix, lr) for lr in grid]))])
    return [
        agrees(
            f"gd_steps/{race_name}",
            f"{race_name}: GD's mean steps to target at its tuned lr (exact recurrence)",
            float(censored(gd["times"], config.budget).mean()),
            float(censored(exact, config.budget).mean()),
            absolute=1.0,
            unit="steps",
            group=GD_GROUP,
        ),
        agrees(
            f"gd_lr/{race_name}",
            f"{race_name}: GD's tuned lr (theory: the grid's lr of the fastest exact rate "
            "max |1 - lr lambda|)",
            gd["lr"],
            fastest,
            absolute=0.0,
            group=GD_GROUP,
        ),
        number(
            f"gd_lr_optimal/{race_name}",
            f"{race_name}: GD's optimal lr off the grid, 2/(L + mu)",
            gd_parameters(float(eigenvalues[-1]), float(eigenvalues[0])),
            group=GD_GROUP,
        ),
    ]


def _probe_rows(race_name: str, p: dict) -> list[Row]:
    out: list[Row] = []
    (ls, ls_se), (lg, lg_se), (le, le_se) = p["log_step"], p["log_grad"], p["log_eff"]
    step, grad, eff = math.exp(ls), math.exp(lg), math.exp(le)
    starts = p["particles"]
    evens = ""
    if abs(ls) < abs(lg) and le > 3 * le_se:
        evens = ": Adam evens the steps out rather than lengthening the flat ones"
    out.append(
        exceeds(
            f"step_flat_vs_steep/{race_name}",
            f"{race_name}: Adam's step along the flatter coordinate over the steeper one's",
            step,
            1.0,
            se=step * ls_se,
            group=COORD_GROUP,
            key=race_name in ("plateau", "valley-rotated"),
            if_pass=f"On {race_name} Adam stepped {step:.2f} times further along the flatter coordinate "
            f"than along the steeper one of the same step (the gradients differ {1 / grad:.3g} times).",
            if_fail=f"On {race_name} Adam's step along the flatter coordinate was {step:.2f} times its step "
            f"along the steeper one (SE {step * ls_se:.2f}, {starts} starts), where GD's would be {grad:.3g} "
            f"times (the gradients' ratio){evens}.",
        )
    )
    out.append(
        exceeds(
            f"eff_lr_flat_vs_steep/{race_name}",
            f"{race_name}: Adam's effective lr |u|/|g| along the flatter coordinate over the steeper one's "
            "(GD: 1)",
            eff,
            1.0,
            se=eff * le_se,
            group=COORD_GROUP,
            key=race_name == "plateau",
            if_pass=f"Its step per unit of gradient was {eff:.3g} times larger along the flatter coordinate "
            f"on {race_name}.",
            if_fail=f"Its step per unit of gradient along the flatter coordinate on {race_name} was only "
            f"{eff:.3g} times the steeper one's.",
        )
    )
    out.append(
        number(
            f"grad_flat_vs_steep/{race_name}",
            f"{race_name}: gradient along the flatter coordinate over the steeper one's (GD's step ratio)",
            grad,
            se=grad * lg_se,
            group=COORD_GROUP,
        )
    )
    out.append(
        number(
            f"pooled_step/{race_name}",
            f"{race_name}: Adam's median step, flattest over steepest quarter of all |g_i| pooled over the "
            "run (mixes the approach to the minimum in: not a per-coordinate measure)",
            p["pooled_step"],
            group=COORD_GROUP,
        )
    )
    if "ground" in p:
        (lgr, lgr_se), ground = p["ground"], math.exp(p["ground"][0])
        out.append(
            exceeds(
                "ground/plateau",
                "plateau: Adam's step along x on the slope over its step on the well's steep walls",
                ground,
                1.0,
                se=ground * lgr_se,
                group=GROUND_GROUP,
                if_pass=f"Along the plateau's x, Adam moved {p['slope_step']:.3g} lr per step on the gentle "
                f"slope and {p['wall_step']:.3g} lr on the well's steep walls (median).",
                if_fail=f"Along the plateau's x, Adam's steps on the gentle slope ({p['slope_step']:.3g} lr) "
                f"were not longer than on the well's walls ({p['wall_step']:.3g} lr).",
            )
        )
        del lgr
        out.append(
            agrees(
                "slope_step/plateau",
                "plateau: Adam's step along x on the slope, largest relative deviation from lr s/(s + eps)",
                p["slope_step_error"],
                0.0,
                absolute=SLOPE_EXACT,
                group=GROUND_GROUP,
            )
        )
        out.append(
            number(
                "slope_eff/plateau",
                "plateau: Adam's effective lr over lr along x on the slope (theory 1/(s + eps))",
                p["slope_step"] / p["slope"],
                theory=1.0 / (p["slope"] + ADAM_EPS),
                group=GROUND_GROUP,
            )
        )
    out.append(
        agrees(
            f"first_step/{race_name}",
            f"{race_name}: Adam's first step, largest relative deviation from lr |g|/(|g| + eps)",
            p["first_step_error"],
            0.0,
            absolute=FIRST_STEP_EXACT,
            group=INSTRUMENT_GROUP,
        )
    )
    out.append(
        agrees(
            f"probe/{race_name}",
            f"{race_name}: the probe's update against the trajectory's displacement, largest relative "
            "difference",
            p["probe_mismatch"],
            0.0,
            absolute=PROBE_EXACT,
            group=INSTRUMENT_GROUP,
        )
    )
    return out


# --- figures -----------------------------------------------------------------------------------
def _figure(config: Config, results: dict, probes: dict):
    """The card: the plateau race (every start's time, failures above the budget), Adam's flatter over
    steeper coordinate per race, and Adam's step along the plateau's x by ground."""
    fig, axes = subplots(1, 3, height=4.6, gridspec_kw={"width_ratios": [1.3, 1.0, 1.0]})
    budget = config.budget
    ax = axes[0]
    table = results.get("plateau", {})
    names = list(table)
    rng = np.random.default_rng(0)
    for i, optimizer in enumerate(names):
        times = table[optimizer]["times"]
        ok = np.isfinite(times)
        jitter = rng.uniform(-0.22, 0.22, len(times))
        ax.plot(i + jitter[ok], times[ok], ".", ms=5, alpha=0.6, color=COLORS[optimizer])
        ax.plot(i + jitter[~ok], np.full((~ok).sum(), budget * 1.6), "x", ms=5, color=COLORS[optimizer])
        mean = censored(times, budget).mean()
        ax.plot([i - 0.32, i + 0.32], [mean, mean], "k-", lw=1.6)
    ax.axhline(budget, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xticks(
        range(len(names)),
        [f"{LABELS[o]}\n{table[o]['reached']}/{config.n_eval}" for o in names],
        fontsize=9,
    )
    ax.set_ylabel("steps to target (x above the dotted budget: failed)")
    ax.set_title("plateau race (bar: mean, failures at the budget)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")

    ax = axes[1]
    races = list(probes)
    pos = np.arange(len(races))
    series = (
        ("log_step", "Adam's step", "tab:purple"),
        ("log_eff", "Adam's step / |g|", "tab:green"),
        ("log_grad", "gradient (GD's step)", "tab:blue"),
    )
    for j, (key, label, color) in enumerate(series):
        values = [math.exp(probes[r][key][0]) for r in races]
        errors = [3 * v * probes[r][key][1] for r, v in zip(races, values)]
        ax.bar(
            pos + (j - 1) * 0.27, values, 0.27, yerr=errors, color=color, alpha=0.8, label=label, capsize=3
        )
    ax.axhline(1.0, color="k", lw=0.9)
    ax.set_yscale("log")
    ax.set_xticks(pos, [r.replace("-", "\n") for r in races])
    ax.set_ylabel("flatter coordinate / steeper coordinate")
    ax.set_title("same step, per coordinate (bars: 3 SE)", fontsize=10)
    ax.legend(fontsize=9, loc="lower left")
    ax.grid(alpha=0.3, axis="y")

    ax = axes[2]
    probe = probes.get("plateau", {})
    if "ground_scatter" in probe:
        x, step, wall = probe["ground_scatter"]
        ax.plot(x[~wall], step[~wall], ".", ms=3, alpha=0.4, color="tab:gray", label="elsewhere")
        ax.plot(
            x[wall], step[wall], ".", ms=3, alpha=0.6, color="tab:red", label=f"walls: |g_x| >= {WALL:g} s"
        )
        ax.axhline(1.0, color="tab:purple", lw=1.0, ls="--", label="slope: lr s/(s + eps)")
        ax.axvspan(0.0, 8.0, color="tab:green", alpha=0.08)
        ax.set_yscale("log")
        ax.set_xlabel("x before the step (shaded: the slope)")
        ax.set_ylabel("Adam's |step along x| / lr")
        ax.set_title("plateau: Adam along x by ground", fontsize=10)
        ax.legend(fontsize=9, loc="lower left")
        ax.grid(alpha=0.3)
    else:
        ax.set_axis_off()
    return finish(fig)


def _details_figure(config: Config, results: dict):
    """Per race: the tuning curve (mean steps to target over the tuning starts against lr) and the
    fresh starts' times at the tuned lr."""
    races = list(results)
    fig, axes = subplots(len(races), 2, height=3.0 * len(races), squeeze=False)
    grid = config.lr_grid()
    budget = config.budget
    for i, race_name in enumerate(races):
        ax = axes[i, 0]
        for optimizer, r in results[race_name].items():
            ax.loglog(grid, r["tuning_mean"], "-o", ms=3, color=COLORS[optimizer], label=LABELS[optimizer])
            ax.loglog(
                [r["lr"]], [censored(r["times"], budget).mean()], "*", ms=12, color=COLORS[optimizer], mec="k"
            )
        ax.axhline(budget, color="k", lw=0.6, ls=":")
        ax.set_title(f"{race_name}: tuning (star: fresh starts at the tuned lr)", fontsize=10)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("mean steps to target")
        ax.grid(alpha=0.3, which="both")
        if i == 0:
            ax.legend(fontsize=9, ncol=2)
        ax = axes[i, 1]
        names = list(results[race_name])
        data = [censored(results[race_name][o]["times"], budget) for o in names]
        box = ax.boxplot(data, patch_artist=True, showfliers=True)
        for patch, optimizer in zip(box["boxes"], names):
            patch.set_facecolor(COLORS[optimizer])
            patch.set_alpha(0.6)
        ax.set_xticks(
            range(1, len(names) + 1),
            [f"{LABELS[o]}\n{results[race_name][o]['reached']}/{config.n_eval}" for o in names],
            fontsize=9,
        )
        ax.set_yscale("log")
        ax.axhline(budget, color="k", lw=0.6, ls=":")
        ax.set_title(f"{race_name}: fresh starts at the tuned lr (reached / starts)", fontsize=10)
        ax.set_ylabel("steps to target")
        ax.grid(alpha=0.3, axis="y")
    return finish(fig)
