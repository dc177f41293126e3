"""Adaptive methods: AdaGrad, RMSProp and Adam raced against GD and momentum on flat ground (the
plateau) and in ill-conditioned valleys (a rotated quadratic with kappa = 100, Rosenbrock), plus a
look inside Adam: its per-coordinate effective learning rate (its step per unit of gradient) on flat
and steep ground.

The race (a fair one). For each landscape every optimizer gets the same log grid of learning rates,
the same budget of steps (one gradient per step for every rule, so the same gradient budget) and the
same starts; momentum, betas, alpha and eps stay at their defaults. A particle finishes when its loss
reaches the landscape's target; the step at which it does is its time, failures (not reached within
the budget, or diverged) count as infinite. Each optimizer's learning rate is tuned on ``n_tune``
starts (lowest median time, then highest success rate, then lowest mean time, failures counted as
``budget + 1``) and reported on ``n_eval`` fresh starts drawn with another seed: median time with its
interquartile range and success rate. All learning rates of one optimizer run as one `RunSpec` (a
per-particle lr).

Inside Adam. At each race's tuned lr, Adam runs from the fresh starts with the engine's
``update_parts`` probe, which records every step's parts: the force step ``-lr g`` and the update
``u`` itself. Adam's effective learning rate per coordinate is its step per unit of gradient,
``|u| / |g|`` (GD's is lr), so the probe's scale ``u / (-lr g)`` is the effective lr over lr: for Adam
``(m_hat / g) / (sqrt(v_hat) + eps)``, which is ``1/|g|`` where the gradient is steady. Every (step,
particle, coordinate) sample is ranked by its gradient size; the flattest quarter is "flat ground",
the steepest quarter "steep slope".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent._errors import invalid
from descent.experiments._base import Progress, Result, Runs, legacy_result, legacy_verdict
from descent.landscapes import Landscape, get_landscape, quadratic_matrix
from descent.spec import RunSpec
from descent.theory.rates import gd_parameters

NAME = "adaptive"
CLAIM = (
    "Flat regions challenge gradient flow, often requiring adaptive methods (AdaGrad, RMSProp, Adam), "
    "which adjust the learning rate of each parameter: Adam takes bigger steps on flat ground and "
    "smaller, careful ones on steep slopes."
)

KEY_NUMBERS = (
    "plateau: gd median steps to target",
    "plateau: momentum median steps to target",
    "plateau: adam median steps to target",
    "plateau: adam step / lr along x on the flat part",
)
ADAPTIVE = ("adagrad", "rmsprop", "adam")
PLAIN = ("gd", "momentum")
LABELS = {"gd": "GD", "momentum": "momentum", "adagrad": "AdaGrad", "rmsprop": "RMSProp", "adam": "Adam"}
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


@dataclass(frozen=True)
class Config:
    races: tuple[str, ...] = ("plateau", "valley-rotated", "valley-aligned", "rosenbrock")
    optimizers: tuple[str, ...] = (*PLAIN, *ADAPTIVE)
    lr_min: float = 1e-4
    lr_max: float = 1e2
    lr_per_decade: int = 4
    budget: int = 3000
    n_tune: int = 16
    n_eval: int = 32
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            races=("plateau", "valley-rotated", "rosenbrock"), lr_per_decade=2, budget=800, n_tune=6, n_eval=8
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
    raise invalid("race", race, f"one of {list(RACES)}")


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


def _selection_key(times: np.ndarray, budget: int) -> tuple[float, float, float]:
    return (
        quantile(times, 0.5),
        -float(np.isfinite(times).mean()),
        float(np.mean(np.minimum(times, budget + 1))),
    )


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
        "success": float(np.isfinite(chosen).mean()),
        "any_reached": bool(np.isfinite(tune_times).any()),
        "times": chosen,
        "tuning_median": np.array([k[0] for k in keys]),
        "tuning_success": np.array([-k[1] for k in keys]),
        "target": target,
    }


# --- inside Adam -------------------------------------------------------------------------------
def adam_probe(race_name: str, lr: float, config: Config, runs: Runs) -> dict:
    """Adam at ``lr`` from the fresh starts, every step's parts recorded by the ``update_parts`` probe."""
    landscape, starts, target = race_setup(race_name, config.n_eval, config.seed + 1)
    spec = race_spec(race_name, "adam", [lr] * config.n_eval, starts, target, config)
    trajectory = runs(spec.with_(save="every:1", probes=[{"name": "update_parts"}]))
    parts = trajectory.probes["update_parts"]
    steps = int(parts["steps"][-1])  # record k: step k, from frame k - 1 to frame k (k = 0: the start)
    force, update = parts["force"][1:], parts["update"][1:]  # [steps, N, d]
    grads = -force / lr  # the force step is -lr g
    scale = parts["scale"][1:].abs()  # |u| / (lr |g|): the effective lr over lr
    k = torch.arange(1, steps + 1).unsqueeze(1)
    stop = trajectory.stop_step.clone()
    stop[stop < 0] = steps
    moved = k <= stop.unsqueeze(0)  # a step up to the one that reached the target
    diverged = trajectory.events["diverged"]
    moved &= (diverged < 0).unsqueeze(0) | (k < diverged.unsqueeze(0))  # a diverging step is undone
    active = moved.unsqueeze(-1).expand_as(grads)
    saved = trajectory.displacement[1 : steps + 1]
    mismatch = float(((update - saved).abs() * active).max() / saved.abs().max().clamp(min=1e-300))
    g, eff, step = grads[active].abs(), scale[active], update[active].abs()
    flat_cut, steep_cut = float(torch.quantile(g, 0.25)), float(torch.quantile(g, 0.75))
    flat, steep = g <= flat_cut, g >= steep_cut
    out = {
        "lr": lr,
        "samples": int(g.numel()),
        "probe_mismatch": mismatch,
        "first_step": float(update[0].abs().median() / lr),
        "flat_grad": float(g[flat].median()),
        "steep_grad": float(g[steep].median()),
        "flat_eff": float(eff[flat].median()),
        "steep_eff": float(eff[steep].median()),
        "flat_step": float(step[flat].median()),
        "steep_step": float(step[steep].median()),
        "scatter": (g.numpy(), eff.numpy(), step.numpy() / lr),
    }
    if race_name == "plateau":  # along x: the flat part (force = slope) against the well's walls
        slope, length = landscape.params["slope"], landscape.params["length"]
        before = trajectory.positions[:steps, :, 0]  # the position each step starts from
        on_flat = active[..., 0] & (before < length)
        on_wall = active[..., 0] & (grads[..., 0].abs() >= 10 * slope)
        out["plateau_slope"] = slope
        for part, mask in (("flat", on_flat), ("wall", on_wall)):
            if bool(mask.any()):
                out[f"plateau_{part}_gain_x"] = float(scale[..., 0][mask].median())
                out[f"plateau_{part}_step_x"] = float(update[..., 0][mask].abs().median() / lr)
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

    numbers: dict[str, object] = {}
    theory: dict[str, object] = {}
    for race_name, table in results.items():
        for optimizer, r in table.items():
            key = f"{race_name}: {optimizer}"
            numbers[f"{key} median steps to target"] = _steps_value(r["median"], config)
            numbers[f"{key} steps IQR"] = [_steps_value(r["q25"], config), _steps_value(r["q75"], config)]
            numbers[f"{key} success rate"] = r["success"]
            if not r["any_reached"]:
                numbers[f"{key} tuned lr"] = "none: no lr of the grid reached the target"
            else:
                numbers[f"{key} tuned lr"] = (
                    r["lr"] if not r["lr_at_grid_edge"] else f"{r['lr']:.3g} (grid edge)"
                )
        if race_name.startswith("valley") and "gd" in table:
            landscape, _, _ = race_setup(race_name, 1, config.seed)
            eig = torch.linalg.eigvalsh(quadratic_matrix(landscape))
            theory[f"{race_name}: gd tuned lr"] = gd_parameters(float(eig[-1]), float(eig[0]))
    for race_name, probe in probes.items():
        key = f"{race_name}: adam"
        numbers[f"{key} effective lr flat / steep (flattest vs steepest quarter of |g|)"] = (
            probe["flat_eff"] / probe["steep_eff"]
        )
        numbers[f"{key} step length flat / steep"] = probe["flat_step"] / probe["steep_step"]
        numbers[f"{key} median |g| flat, steep"] = [probe["flat_grad"], probe["steep_grad"]]
        numbers[f"{key} median step / lr flat, steep"] = [
            probe["flat_step"] / probe["lr"],
            probe["steep_step"] / probe["lr"],
        ]
        numbers[f"{key} probe's update vs the saved displacement (max relative mismatch)"] = probe[
            "probe_mismatch"
        ]
        numbers[f"{key} first step / lr (median over coordinates)"] = probe["first_step"]
        if "plateau_flat_gain_x" in probe:
            numbers["plateau: adam effective lr / lr along x on the flat part"] = probe["plateau_flat_gain_x"]
            theory["plateau: adam effective lr / lr along x on the flat part"] = 1.0 / probe["plateau_slope"]
            numbers["plateau: adam step / lr along x on the flat part"] = probe["plateau_flat_step_x"]
            theory["plateau: adam step / lr along x on the flat part"] = 1.0
        if "plateau_wall_gain_x" in probe:
            numbers["plateau: adam effective lr / lr along x on the well's walls (|g_x| >= 10 slope)"] = (
                probe["plateau_wall_gain_x"]
            )
            numbers["plateau: adam step / lr along x on the well's walls"] = probe["plateau_wall_step_x"]

    checks: dict[str, bool] = {}
    comparisons: list[str] = []
    for race_name, table in results.items():
        adaptive = [o for o in ADAPTIVE if o in table]
        if not adaptive:
            continue
        best = min(adaptive, key=lambda o: (table[o]["median"], -table[o]["success"]))
        numbers[f"{race_name}: best adaptive"] = best
        rivals = ("gd", "momentum") if race_name == "plateau" else ("gd",)
        for rival in rivals:
            if rival not in table or race_name == "valley-aligned":
                continue
            win = table[best]["median"] < table[rival]["median"]
            checks[
                f"{race_name}: best adaptive ({LABELS[best]}) reaches the target in fewer median steps "
                f"than tuned {LABELS[rival]}"
            ] = win
        plain = [o for o in PLAIN if o in table]
        if plain:
            best_plain = min(plain, key=lambda o: (table[o]["median"], -table[o]["success"]))
            comparisons.append(
                f"{race_name}: {LABELS[best]} {_fmt_steps(table[best]['median'], config)} "
                f"({table[best]['success']:.0%} reached) vs {LABELS[best_plain]} "
                f"{_fmt_steps(table[best_plain]['median'], config)} ({table[best_plain]['success']:.0%})"
            )
    plateau = probes.get("plateau", {})
    if "plateau_flat_gain_x" in plateau and "plateau_wall_gain_x" in plateau:
        checks[
            "plateau: Adam's effective lr along the slope is larger on the flat part than on the well's "
            "steep walls"
        ] = plateau["plateau_flat_gain_x"] > plateau["plateau_wall_gain_x"]
        checks[
            "plateau: Adam's steps along the slope are longer on the flat part than on the well's steep walls"
        ] = plateau["plateau_flat_step_x"] > plateau["plateau_wall_step_x"]
    if probes:
        eff_ratios = [p["flat_eff"] / p["steep_eff"] for p in probes.values()]
        step_ratios = [p["flat_step"] / p["steep_step"] for p in probes.values()]
        checks[
            "every landscape: Adam's effective lr is larger in the flattest quarter of per-coordinate "
            "gradients met than in the steepest quarter"
        ] = min(eff_ratios) > 1.0
        checks[
            "every landscape: Adam's steps are longer in the flattest quarter of per-coordinate gradients "
            "met than in the steepest quarter"
        ] = min(step_ratios) > 1.0

    verdict = legacy_verdict(checks) if checks else "did not hold"
    explanation = _explain(verdict, checks, results, probes, comparisons, config)
    config_dict = {
        **asdict(config),
        "lr_grid": config.lr_grid().tolist(),
        "races": {r: RACES[r] for r in config.races},
        "protocol": PROTOCOL.format(
            budget=config.budget,
            n=len(config.lr_grid()),
            lo=config.lr_min,
            hi=config.lr_max,
            per=config.lr_per_decade,
            tune=config.n_tune,
            fresh=config.n_eval,
        ),
    }
    figure = _figure(config, results, probes)
    return legacy_result(
        NAME, CLAIM, verdict, explanation, numbers, theory, config_dict, figure, checks, runs.specs
    )


PROTOCOL = (
    "Same log grid of {n} learning rates from {lo:g} to {hi:g} ({per} per decade) for every optimizer; "
    "same budget of {budget} steps = {budget} gradients; momentum 0.9, Adam betas (0.9, 0.999), "
    "RMSProp alpha 0.99, default eps; lr tuned on {tune} starts (lowest median steps to target, then "
    "success rate), reported on {fresh} fresh starts; failures count as never reaching the target."
)


def _steps_value(value: float, config: Config) -> float | str:
    return value if math.isfinite(value) else f"> {config.budget} (not reached)"


def _fmt_steps(value: float, config: Config) -> str:
    return f"{value:.0f} steps" if math.isfinite(value) else f"> {config.budget} steps"


def _explain(verdict, checks, results, probes, comparisons, config) -> str:
    passed = [name for name, ok in checks.items() if ok]
    failed = [name for name, ok in checks.items() if not ok]
    parts = [
        "Median steps to target on fresh starts, best adaptive vs best of GD/momentum: "
        + "; ".join(comparisons)
        + "."
    ]
    if passed:
        parts.append("Held: " + "; ".join(passed) + ".")
    if failed:
        parts.append("Did not hold: " + "; ".join(failed) + ".")
    plateau = probes.get("plateau", {})
    if "plateau_flat_step_x" in plateau and "plateau_wall_step_x" in plateau:
        p = plateau
        parts.append(
            f"Inside Adam on the plateau, along the slope: on the flat part its effective lr is "
            f"{p['plateau_flat_gain_x']:.3g} lr (theory 1/slope = {1 / p['plateau_slope']:.3g}) and it moves "
            f"{p['plateau_flat_step_x']:.3g} lr per step; on the well's steep walls the effective lr is "
            f"{p['plateau_wall_gain_x']:.3g} lr and it moves {p['plateau_wall_step_x']:.3g} lr per step. "
            "So there the hiker picture is right."
        )
    if probes:
        eff = ", ".join(f"{r} x{p['flat_eff'] / p['steep_eff']:.3g}" for r, p in probes.items())
        grad = ", ".join(f"{r} x{p['steep_grad'] / p['flat_grad']:.3g}" for r, p in probes.items())
        step = ", ".join(f"{r} x{p['flat_step'] / p['steep_step']:.3g}" for r, p in probes.items())
        first = np.median([p["first_step"] for p in probes.values()])
        parts.append(
            "Over all the gradients Adam meets (flattest vs steepest quarter, per coordinate), its effective "
            f"lr (its step per unit of gradient, |u|/|g|, read from the update_parts probe) flat / steep is "
            f"{eff}, while the gradients differ by {grad}: v_hat follows the gradient's history over about "
            "1/(1 - beta2) = 1000 steps, not the slope underfoot. Its step length flat / "
            f"steep is {step}. Adam's stride, lr*|m_hat|/(sqrt(v_hat) + eps), is about lr only where the "
            f"gradient has been steady and no smaller than before (its first step is lr on every coordinate, "
            f"median {first:.3g} lr; the plateau's flat part gives 1 lr); where small gradients follow large "
            "ones, on a valley floor after the fall from its walls or near a minimum, v_hat still remembers "
            "the steep ground and the steps are short. Adam normalises steps; it does not reliably lengthen "
            "them on flat ground. On the plateau its advantage is that its step does not shrink with the "
            "gradient, as GD's does."
        )
    if "valley-aligned" in results and "valley-rotated" in results:
        aligned = min(
            results["valley-aligned"][o]["median"] for o in ADAPTIVE if o in results["valley-aligned"]
        )
        rotated = min(
            results["valley-rotated"][o]["median"] for o in ADAPTIVE if o in results["valley-rotated"]
        )
        parts.append(
            f"The per-coordinate step fixes a valley only when it lies along the axes: best adaptive "
            f"{_fmt_steps(aligned, config)} on the axis-aligned quadratic, "
            f"{_fmt_steps(rotated, config)} on the same one rotated by 30 degrees."
        )
    return " ".join(parts)


def _figure(config: Config, results, probes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "gd": "tab:blue",
        "momentum": "tab:orange",
        "adagrad": "tab:green",
        "rmsprop": "tab:red",
        "adam": "tab:purple",
    }
    races = list(results)
    n = len(races)
    fig, axes = plt.subplots(2, n + 1, figsize=(4.0 * (n + 1), 7.2), squeeze=False)
    grid = config.lr_grid()
    cap = config.budget * 1.25
    for j, race_name in enumerate(races):
        ax = axes[0, j]
        for optimizer, r in results[race_name].items():
            med = np.where(np.isfinite(r["tuning_median"]), r["tuning_median"], np.nan)
            ax.loglog(
                grid, med, "-o", ms=3, color=colors.get(optimizer), label=LABELS.get(optimizer, optimizer)
            )
            ax.loglog([r["lr"]], [min(r["median"], cap)], "*", ms=12, color=colors.get(optimizer), mec="k")
        ax.axhline(config.budget, color="k", lw=0.6, ls=":")
        ax.set_title(f"{race_name}: tuning (star: fresh starts)", fontsize=9)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("median steps to target")
        ax.grid(alpha=0.3, which="both")
        ax = axes[1, j]
        names = list(results[race_name])
        data = [np.minimum(results[race_name][o]["times"], cap) for o in names]
        box = ax.boxplot(data, patch_artist=True, showfliers=True)
        for patch, optimizer in zip(box["boxes"], names):
            patch.set_facecolor(colors.get(optimizer, "grey"))
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(names) + 1), [LABELS.get(o, o) for o in names], rotation=30, fontsize=8)
        ax.set_yscale("log")
        ax.axhline(config.budget, color="k", lw=0.6, ls=":")
        ax.set_title(f"{race_name}: fresh starts, tuned lr", fontsize=9)
        ax.set_ylabel("steps to target (above dotted: failed)")
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize=7)
    marker_colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (race_name, probe) in enumerate(probes.items()):
        g, gain, step = probe["scatter"]
        pick = np.linspace(0, len(g) - 1, min(len(g), 3000)).astype(int)
        color = marker_colors[i % len(marker_colors)]
        axes[0, n].loglog(g[pick], gain[pick], ".", ms=2, alpha=0.4, color=color, label=race_name)
        axes[1, n].loglog(g[pick], step[pick], ".", ms=2, alpha=0.4, color=color, label=race_name)
    axes[0, n].set_title("Adam: effective lr / lr = |step| / (lr |g|)", fontsize=9)
    axes[1, n].set_title("Adam: |step| / lr per coordinate", fontsize=9)
    for ax in axes[:, n]:
        ax.set_xlabel("|gradient| of the coordinate")
        ax.grid(alpha=0.3, which="both")
        if probes:
            ax.legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    return fig
