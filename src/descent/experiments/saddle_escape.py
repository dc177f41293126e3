"""Saddle escape: how long gradient descent lingers near a saddle, and what kicks it off.

Protocol. The landscape is ``saddle`` ``U = x^2 - c y^2``, unbounded below along ``y``: a particle that
leaves the box ``|y| <= R = 2`` is frozen as ``escaped`` and the engine records that step (the
``left_box`` event, its ``stop_step``), so one run (one `RunSpec`) measures every exit step exactly.
The unstable curvature is ``lambda = |U_yy| = 2c`` (`descent.theory.saddle`).

1. Deterministic escape. Starts ``(x0, eps)`` for ``eps`` over many decades (one batched run), GD at
   ``lr`` against ``ceil(ln(R/eps)/ln(1 + lr lambda))``, and the heavy ball (``momentum``) at the same
   ``lr`` against its exact closed form. ``eps = 0`` (on the stable axis) never escapes. GD at the
   heavy ball's effective step ``lr/(1 - beta)`` is run beside them, as the fair comparison.
2. Noisy escape from the saddle point itself: Langevin at temperature ``T``, GD with Gaussian gradient
   noise ``sigma = sqrt(2T/lr)`` (mini-batch-like noise at the same temperature ``T = lr sigma^2/2``)
   and the heavy ball with gradient noise at the same ``T = lr sigma^2/(2(1 - beta))``; several ``T``
   in one run each (per-particle temperatures). Mean exit times carry standard errors and are
   compared with REFERENCE.md's ``(ln(lambda R^2/T) + 0.5772 + ln 2)/(2 lambda)`` under both readings
   of ``lambda`` (``2c`` and ``c``), with the exact continuous mean first-passage time (quadrature),
   and with the discrete chain's own prediction (which removes the known time-step bias).
3. The bounded saddle ``saddle-bounded`` (``U = x^2 - c y^2 + y^4/4``), where runs end: from the same
   ``eps`` GD and the heavy ball fall into a minimum (the ``converged`` event with ``grad_tol`` 1e-8 stops
   them), and from ``eps = 0`` GD converges to the saddle and stalls there (outcome ``saddle:origin``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from descent.experiments._base import Progress, Result, Runs, legacy_result, legacy_verdict
from descent.landscapes import get_landscape
from descent.spec import RunSpec
from descent.theory.saddle import (
    discrete_exit_steps,
    discrete_exit_steps_sd,
    exact_exit_time,
    gd_escape_steps,
    heavy_ball_asymptotic_speedup,
    heavy_ball_escape_steps,
    langevin_exit_time,
    langevin_exit_time_sd,
    unstable_curvature,
)

NAME = "saddle-escape"
CLAIM = (
    "Saddle points slow gradient descent: near the flat centre it crawls, and exactly on the saddle it "
    "stops; the noise of SGD kicks it off, and momentum speeds up crossing saddle points."
)

NOISES = ("langevin", "gradient noise", "heavy ball + gradient noise")


@dataclass(frozen=True)
class Config:
    curvature: float = 1.0  # c in U = x^2 - c y^2
    lr: float = 0.05
    momentum: float = 0.9
    x0: float = 1.5
    eps_decades: tuple[float, float] = (1.0, 15.0)  # eps from 10^-1 down to 10^-15
    n_eps: int = 57
    noise_lr: float = 0.005
    temperatures: tuple[float, ...] = (1e-2, 1e-3, 1e-4, 1e-5)
    particles: int = 20000  # per temperature and noise kind
    z_max: float = 3.5  # allowed |measured - theory| in standard errors
    bounded_eps: tuple[float, ...] = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
    bounded_radius: float = 1.0
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(n_eps=15, temperatures=(1e-2, 1e-3, 1e-4), particles=1000, bounded_eps=(1e-3, 1e-9))


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    lam = unstable_curvature(config.curvature)
    landscape = get_landscape("saddle", curvature=config.curvature)
    radius = float(landscape.bounds[1][1])
    numbers: dict = {"unstable curvature lambda = |U_yy| = 2c": lam, "exit radius R": radius}
    theory: dict = {}
    checks: dict[str, bool] = {}
    stages = 4

    runs = Runs()
    det = _deterministic(config, runs, lam, radius, numbers, theory, checks)
    if progress is not None:
        progress(1, stages)
    noisy = _noisy(config, runs, lam, radius, numbers, theory, checks)
    if progress is not None:
        progress(2, stages)
    bounded = _bounded(config, runs, lam, numbers, checks)
    if progress is not None:
        progress(3, stages)

    verdict = legacy_verdict(checks)
    explanation = _explain(config, lam, radius, numbers, theory, checks)
    config_dict = {
        **asdict(config),
        "landscape": f"saddle x^2 - {config.curvature:g} y^2 (and saddle-bounded)",
        "exit": f"first step with |y| > R = {radius:g} (leaving the box), from the engine's stop_step",
    }
    figure = _figure(config, lam, radius, det, noisy, bounded)
    if progress is not None:
        progress(4, stages)
    return legacy_result(
        NAME, CLAIM, verdict, explanation, numbers, theory, config_dict, figure, checks, runs.specs
    )


def _saddle(config: Config, **fields) -> RunSpec:
    """A run on the saddle x^2 - c y^2 (unbounded below: leaving the box stops a particle)."""
    params = {"curvature": config.curvature}
    return RunSpec(landscape="saddle", landscape_params=params, save="summary", **fields)


# --- 1. deterministic escape from eps --------------------------------------------------------
def _deterministic(config, runs, lam, radius, numbers, theory, checks) -> dict:
    lr, beta = config.lr, config.momentum
    lr_eff = lr / (1.0 - beta)
    eps = np.concatenate([np.logspace(-config.eps_decades[0], -config.eps_decades[1], config.n_eps), [0.0]])
    n = len(eps)
    starts = [[config.x0, float(e)] for e in eps]
    budget = int(1.5 * gd_escape_steps(eps[-2], radius, lr, lam)) + 50
    # GD at lr (every eps, and eps = 0) and GD at the heavy ball's effective step lr/(1 - beta) (eps > 0)
    gd = runs(
        _saddle(
            config,
            optimizer="gd",
            hyper={"lr": [lr] * n + [lr_eff] * (n - 1)},
            starts=starts + starts[:-1],
            steps=budget,
            seed=config.seed,
        )
    )
    hb = runs(
        _saddle(
            config,
            optimizer="momentum",
            hyper={"lr": lr, "momentum": beta},
            starts=starts,
            steps=budget,
            seed=config.seed,
        )
    )
    gd_steps = gd.stop_step[:n].numpy()
    gd_eff_steps = gd.stop_step[n:].numpy()
    hb_steps = hb.stop_step.numpy()
    gd_theory = np.array([gd_escape_steps(e, radius, lr, lam) for e in eps[:-1]])
    hb_theory = np.array([heavy_ball_escape_steps(e, radius, lr, lam, beta) for e in eps[:-1]])
    eff_theory = np.array([gd_escape_steps(e, radius, lr_eff, lam) for e in eps[:-1]])
    gd_err = np.abs(gd_steps[:-1] - gd_theory)
    hb_err = np.abs(hb_steps[:-1] - hb_theory)
    # slope of the escape step against ln(R/eps): theory 1/ln(1 + lr lambda)
    logs = np.log(radius / eps[:-1])
    slope = float(np.polyfit(logs, gd_steps[:-1], 1)[0])
    slope_hb = float(np.polyfit(logs[logs > 10], hb_steps[:-1][logs > 10], 1)[0])
    axis_escaped = [gd.outcomes[n - 1] == "escaped", hb.outcomes[n - 1] == "escaped"]
    axis_y = [float(gd.final_position[n - 1, 1]), float(hb.final_position[n - 1, 1])]

    numbers["GD: max |escape step - theory| over eps > 0 (steps)"] = int(gd_err.max())
    numbers["GD: escape steps for eps = 1e-1 .. smallest"] = [int(gd_steps[0]), int(gd_steps[-2])]
    numbers["GD: slope of escape step vs ln(R/eps)"] = slope
    theory["GD: slope of escape step vs ln(R/eps)"] = 1.0 / math.log1p(lr * lam)
    numbers["heavy ball: max |escape step - theory| over eps > 0 (steps)"] = int(hb_err.max())
    numbers["heavy ball: slope of escape step vs ln(R/eps)"] = slope_hb
    theory["heavy ball: slope of escape step vs ln(R/eps)"] = 1.0 / (
        heavy_ball_asymptotic_speedup(lr, lam, beta) * math.log1p(lr * lam)
    )
    speedup = gd_steps[:-1] / hb_steps[:-1]
    numbers["heavy ball over GD at the same lr: speed-up (smallest eps)"] = float(speedup[-1])
    numbers["heavy ball over GD at the same lr: speed-up range over eps"] = [
        float(speedup.min()),
        float(speedup.max()),
    ]
    theory["heavy ball over GD at the same lr: speed-up (eps -> 0)"] = heavy_ball_asymptotic_speedup(
        lr, lam, beta
    )
    eff_ratio = hb_steps[:-1] / gd_eff_steps
    numbers[f"GD at the effective step lr/(1 - beta) = {lr_eff:g}: escape steps (smallest eps)"] = int(
        gd_eff_steps[-1]
    )
    numbers["heavy ball steps / GD-at-effective-lr steps (smallest eps)"] = float(eff_ratio[-1])
    theory["heavy ball steps / GD-at-effective-lr steps (eps -> 0)"] = math.log1p(lr_eff * lam) / (
        heavy_ball_asymptotic_speedup(lr, lam, beta) * math.log1p(lr * lam)
    )
    numbers["eps = 0: outcome (GD, heavy ball)"] = [gd.outcomes[n - 1], hb.outcomes[n - 1]]
    numbers["eps = 0: final |y| (GD, heavy ball)"] = [abs(v) for v in axis_y]
    numbers["eps = 0: steps run without escaping"] = int(gd.steps_run)

    checks["GD's escape step = ceil(ln(R/eps)/ln(1 + lr*lambda)) for every eps (within 1 step)"] = bool(
        gd_err.max() <= 1 and np.all(gd_steps[:-1] > 0)
    )
    checks["heavy ball's escape step = its closed form for every eps (within 1 step)"] = bool(
        hb_err.max() <= 1 and np.all(hb_steps[:-1] > 0) and np.all(np.abs(gd_eff_steps - eff_theory) <= 1)
    )
    checks["started exactly on the stable axis (eps = 0), neither GD nor the heavy ball escapes"] = (
        not any(axis_escaped) and gd.outcomes[n - 1] == "saddle:origin"
    )
    return {
        "eps": eps,
        "gd": gd_steps,
        "hb": hb_steps,
        "gd_eff": gd_eff_steps,
        "gd_theory": gd_theory,
        "hb_theory": hb_theory,
        "eff_theory": eff_theory,
        "speedup": speedup,
    }


# --- 2. noisy escape from the saddle point --------------------------------------------------
def _noisy(config, runs, lam, radius, numbers, theory, checks) -> dict:
    lr, beta, n = config.noise_lr, config.momentum, config.particles
    temps = np.repeat(np.array(config.temperatures, dtype=np.float64), n)
    slowest = max(
        discrete_exit_steps(lr, lam, radius, t) + 15 * discrete_exit_steps_sd(lr, lam, t)
        for t in config.temperatures
    )
    budget = int(slowest) + 1
    # one run per kind of noise, every temperature in it (per-particle T), all from the saddle point
    gd_sigma = np.sqrt(2.0 * temps / lr)  # T = lr sigma^2 / 2
    hb_sigma = np.sqrt(2.0 * (1.0 - beta) * temps / lr)  # T = lr sigma^2 / (2 (1 - beta))
    setups = {
        "langevin": {"optimizer": "langevin", "hyper": {"lr": lr, "temperature": temps.tolist()}},
        "gradient noise": {
            "optimizer": "gd",
            "hyper": {"lr": lr},
            "transforms": [{"kind": "grad_noise", "sigma": gd_sigma.tolist()}],
        },
        "heavy ball + gradient noise": {
            "optimizer": "momentum",
            "hyper": {"lr": lr, "momentum": beta},
            "transforms": [{"kind": "grad_noise", "sigma": hb_sigma.tolist()}],
        },
    }
    out: dict = {"temperatures": list(config.temperatures), "lr": lr}
    within_discrete, within_reference, reading_c_rejected, faster = [], [], [], []
    for index, (kind, setup) in enumerate(setups.items()):
        spec = _saddle(config, starts=[[0.0, 0.0]], steps=budget, seed=config.seed + 1 + index, **setup)
        traj = runs(spec)
        steps = traj.stop_step.numpy().astype(np.float64)
        censored = int((steps < 0).sum())
        steps = np.where(steps < 0, budget, steps)
        momentum = beta if kind.startswith("heavy") else 0.0
        rows = []
        for j, temp in enumerate(config.temperatures):
            s = steps[j * n : (j + 1) * n]
            mean, se, sd = float(s.mean()), float(s.std(ddof=1) / math.sqrt(n)), float(s.std(ddof=1))
            pred = discrete_exit_steps(lr, lam, radius, temp, momentum)
            z_disc = (mean - pred) / se
            key = f"{kind}, T={temp:g}"
            numbers[f"{key}: mean exit time (t = steps*lr)"] = mean * lr
            numbers[f"{key}: standard error"] = se * lr
            numbers[f"{key}: sd of exit time"] = sd * lr
            theory[f"{key}: discrete-chain mean exit time"] = pred * lr
            numbers[f"{key}: z vs discrete chain"] = z_disc
            within_discrete.append(abs(z_disc) <= config.z_max)
            row = {"T": temp, "mean": mean * lr, "se": se * lr, "sd": sd * lr, "discrete": pred * lr}
            if momentum == 0.0:
                ref = langevin_exit_time(lam, radius, temp)
                ref_c = langevin_exit_time(lam / 2.0, radius, temp)
                bias = pred * lr - ref  # the time-step bias of the chain, known in closed form
                z_ref = (mean * lr - ref) / (se * lr)
                z_c = (mean * lr - ref_c) / (se * lr)
                theory[f"{key}: REFERENCE mean exit time, lambda = 2c"] = ref
                theory[f"{key}: REFERENCE mean exit time, lambda = c"] = ref_c
                theory[f"{key}: exact continuous mean first-passage time"] = exact_exit_time(
                    lam, radius, temp
                )
                theory[f"{key}: sd of exit time"] = langevin_exit_time_sd(lam)
                numbers[f"{key}: relative deviation from REFERENCE (lambda = 2c)"] = mean * lr / ref - 1.0
                numbers[f"{key}: z vs REFERENCE (lambda = 2c)"] = z_ref
                numbers[f"{key}: z vs REFERENCE (lambda = c)"] = z_c
                within_reference.append(abs(mean * lr - ref) <= config.z_max * se * lr + abs(bias))
                reading_c_rejected.append(abs(z_c) > 10.0)
                row.update(reference=ref, reference_c=ref_c)
            rows.append(row)
        numbers[f"{kind}: particles not escaped within {budget} steps"] = censored
        out[kind] = rows
        if kind == "langevin":
            middle = len(config.temperatures) // 2
            out["langevin_times"] = steps[middle * n : (middle + 1) * n] * lr
    for j, temp in enumerate(config.temperatures):
        ratio = out["gradient noise"][j]["mean"] / out["heavy ball + gradient noise"][j]["mean"]
        numbers[f"heavy ball over GD with noise at T={temp:g} (same lr and T): speed-up"] = ratio
        theory[f"heavy ball over GD with noise at T={temp:g} (same lr and T): speed-up"] = (
            out["gradient noise"][j]["discrete"] / out["heavy ball + gradient noise"][j]["discrete"]
        )
        faster.append(ratio > 1.0)
    out["faster"] = faster
    checks[f"noisy mean exit times match the discrete chain's prediction within {config.z_max:g} SE"] = all(
        within_discrete
    )
    checks[
        f"Langevin / gradient-noise mean exit times match REFERENCE's formula with lambda = |U_yy| = 2c "
        f"(within {config.z_max:g} SE plus the known time-step bias)"
    ] = all(within_reference)
    checks["the other reading of REFERENCE's lambda (lambda = c) is rejected (> 10 SE off at every T)"] = all(
        reading_c_rejected
    )
    return out


# --- 3. the bounded saddle: runs that end ----------------------------------------------------
def _bounded(config, runs, lam, numbers, checks) -> dict:
    landscape = get_landscape("saddle-bounded", curvature=config.curvature)
    lr, beta = config.lr, config.momentum
    eps = np.array([*config.bounded_eps, 0.0])
    budget = 4 * int(gd_escape_steps(min(config.bounded_eps), config.bounded_radius, lr, lam)) + 2000
    out: dict = {"eps": eps, "landscape": landscape}
    ends = []
    for kind, optimizer, hyper in (
        ("GD", "gd", {"lr": lr}),
        ("heavy ball", "momentum", {"lr": lr, "momentum": beta}),
    ):
        spec = RunSpec(
            landscape="saddle-bounded",
            landscape_params={"curvature": config.curvature},
            optimizer=optimizer,
            hyper=hyper,
            starts=[[config.x0, float(e)] for e in eps],
            steps=budget,
            save="every:1",
            events={"grad_tol": 1e-8, "stop_on": ["converged"]},  # |grad| and |step| < 1e-8 stop it
            seed=config.seed,
        )
        traj = runs(spec)
        y = traj.positions[:, :, 1].abs().numpy()
        leave = [
            int(np.argmax(y[:, i] >= config.bounded_radius))
            if (y[:, i] >= config.bounded_radius).any()
            else -1
            for i in range(len(eps))
        ]
        stop = traj.stop_step.tolist()
        numbers[_bounded_key(kind, "outcome", config)] = traj.outcomes
        numbers[_bounded_key(kind, "leave", config)] = leave
        numbers[_bounded_key(kind, "stop", config)] = stop
        minima = all(o.startswith("minimum:") for o in traj.outcomes[:-1]) and all(s > 0 for s in stop[:-1])
        ends.append(minima and stop[-1] > 0)
        if kind == "GD":
            ends.append(traj.outcomes[-1] == "saddle:origin")
        out[kind] = {"traj": traj, "leave": leave, "stop": stop, "outcomes": traj.outcomes}
    checks[
        "bounded saddle: every run ends, from eps > 0 in a minimum, GD from eps = 0 stalled at the saddle"
    ] = all(ends)
    return out


def _bounded_key(kind: str, what: str, config: Config) -> str:
    eps = ", ".join(f"{e:g}" for e in (*config.bounded_eps, 0.0))
    label = {
        "outcome": "outcomes",
        "leave": f"steps to |y| >= {config.bounded_radius:g}",
        "stop": "steps until stopped (|grad| < 1e-8)",
    }[what]
    return f"bounded saddle, {kind}: {label} (eps = {eps})"


# --- words and figure -------------------------------------------------------------------------
def _explain(config, lam, radius, numbers, theory, checks) -> str:
    lr, beta = config.lr, config.momentum
    t0 = config.temperatures[0]
    n, th = numbers, theory
    first, last = n["GD: escape steps for eps = 1e-1 .. smallest"]
    parts = [
        f"On U = x^2 - {config.curvature:g} y^2 the unstable curvature is lambda = |U_yy| = {lam:g}. "
        f"From y0 = eps, GD at lr {lr:g} leaves |y| < {radius:g} after ceil(ln(R/eps)/ln(1 + lr*lambda)) "
        f"steps: measured and predicted differ by at most "
        f"{n['GD: max |escape step - theory| over eps > 0 (steps)']} step over eps from "
        f"1e-{config.eps_decades[0]:g} to 1e-{config.eps_decades[1]:g} ({first} to {last} steps, slope "
        f"{n['GD: slope of escape step vs ln(R/eps)']:.3f} steps per e-fold vs "
        f"{th['GD: slope of escape step vs ln(R/eps)']:.3f}): the slowdown is logarithmic in the "
        f"distance from the stable axis. Started exactly on it (eps = 0), GD converged to the saddle "
        f"(outcome {n['eps = 0: outcome (GD, heavy ball)'][0]}) and never left in "
        f"{n['eps = 0: steps run without escaping']} steps; neither did the heavy ball.",
    ]
    key = f"langevin, T={t0:g}"
    mean, se = n[f"{key}: mean exit time (t = steps*lr)"], n[f"{key}: standard error"]
    ref, ref_c = (
        th[f"{key}: REFERENCE mean exit time, lambda = 2c"],
        th[f"{key}: REFERENCE mean exit time, lambda = c"],
    )
    bias = th[f"{key}: discrete-chain mean exit time"] / ref - 1
    asymptotic = abs(th[f"{key}: exact continuous mean first-passage time"] / ref - 1)
    parts.append(
        f"Noise kicks it off the saddle: at T = {t0:g} Langevin left in {mean:.3f} +- {se:.3f} time units "
        f"(steps x lr) vs REFERENCE's (ln(lambda R^2/T) + 0.5772 + ln 2)/(2 lambda) = {ref:.3f} with "
        f"lambda = 2c (the curvature |U_yy|), and {ref_c:.3f} with lambda = c, which is "
        f"{abs(n[f'{key}: z vs REFERENCE (lambda = c)']):.0f} SE away: lambda is |U_yy|. Mini-batch-like "
        f"gradient noise sigma = sqrt(2T/lr) behaves the same. The time step lr = {config.noise_lr:g} biases "
        f"the chain by a known {bias:+.2%}, and the asymptotic formula is within {asymptotic:.1e} of the "
        "exact first-passage time; the exit time grows only like ln(1/T)."
    )
    same_lr = n["heavy ball over GD at the same lr: speed-up (smallest eps)"]
    same_lr_theory = th["heavy ball over GD at the same lr: speed-up (eps -> 0)"]
    noisy = n[f"heavy ball over GD with noise at T={t0:g} (same lr and T): speed-up"]
    effective = n["heavy ball steps / GD-at-effective-lr steps (smallest eps)"]
    parts.append(
        f"Momentum does speed up saddle crossing at the same lr: beta = {beta:g} left {same_lr:.2f} times "
        f"sooner from the smallest eps (theory ln r+/ln(1 + lr lambda) = {same_lr_theory:.2f}) and "
        f"{noisy:.2f} times sooner with noise at the same temperature. But the heavy ball's step is "
        f"effectively lr/(1 - beta): GD given that step ({lr / (1 - beta):g}) leaves {effective:.2f} times "
        "sooner than the heavy ball, so the speed-up is that of a larger step, which momentum takes while "
        "staying stable for stiffer directions."
    )
    gd_b, hb_b = n[_bounded_key("GD", "leave", config)], n[_bounded_key("heavy ball", "leave", config)]
    gd_s, hb_s = n[_bounded_key("GD", "stop", config)], n[_bounded_key("heavy ball", "stop", config)]
    parts.append(
        f"On the bounded saddle (where runs end) from eps = {config.bounded_eps[0]:g} the heavy ball reached "
        f"|y| >= {config.bounded_radius:g} in {hb_b[0]} steps against GD's {gd_b[0]}, but it rings in the "
        f"minimum and settled (|grad| < 1e-8) after {hb_s[0]} steps against GD's {gd_s[0]}; from eps = 0 "
        "both converged to the saddle and stopped there, which the outcome reports as saddle:origin."
    )
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        parts.append("Checks that failed: " + "; ".join(failed) + ".")
    return " ".join(parts)


def _figure(config, lam, radius, det, noisy, bounded):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from descent.plots.static import draw_landscape

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    ax = axes[0]
    eps = det["eps"][:-1]
    ax.semilogx(eps, det["gd"][:-1], "o", color="tab:blue", ms=4, label=f"GD lr={config.lr:g}")
    ax.semilogx(eps, det["gd_theory"], "-", color="tab:blue", lw=0.8)
    ax.semilogx(
        eps, det["hb"][:-1], "s", color="tab:orange", ms=4, label=f"heavy ball beta={config.momentum:g}"
    )
    ax.semilogx(eps, det["hb_theory"], "-", color="tab:orange", lw=0.8)
    ax.semilogx(
        eps,
        det["gd_eff"],
        "^",
        color="tab:green",
        ms=4,
        label=f"GD lr={config.lr / (1 - config.momentum):g} (= lr/(1-beta))",
    )
    ax.semilogx(eps, det["eff_theory"], "-", color="tab:green", lw=0.8)
    ax.invert_xaxis()
    ax.set_xlabel("eps (start distance from the stable axis)")
    ax.set_ylabel(f"steps to leave |y| < {radius:g}")
    ax.set_title("deterministic escape (lines: closed forms)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    ax = axes[1]
    temps = np.array(noisy["temperatures"])
    fine = np.geomspace(temps.min() / 2, temps.max() * 2, 60)
    ax.semilogx(
        fine,
        [langevin_exit_time(lam, radius, t) for t in fine],
        "k-",
        lw=1,
        label="REFERENCE, lambda = |U_yy| = 2c",
    )
    ax.semilogx(
        fine,
        [langevin_exit_time(lam / 2, radius, t) for t in fine],
        "k--",
        lw=1,
        label="REFERENCE, lambda = c",
    )
    markers = {
        "langevin": ("o", "tab:blue"),
        "gradient noise": ("x", "tab:purple"),
        "heavy ball + gradient noise": ("s", "tab:orange"),
    }
    for kind in NOISES:
        rows = noisy[kind]
        marker, color = markers[kind]
        ax.errorbar(
            [r["T"] for r in rows],
            [r["mean"] for r in rows],
            yerr=[3 * r["se"] for r in rows],
            fmt=marker,
            color=color,
            ms=5,
            capsize=2,
            label=kind,
        )
    ax.set_xlabel("temperature T")
    ax.set_ylabel("mean exit time (steps x lr)")
    ax.set_title("noisy escape from the saddle point (bars: 3 SE)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    ax = axes[2]
    rows = noisy["langevin"]
    t_mid = rows[len(rows) // 2]
    ax.hist(noisy["langevin_times"], bins=40, color="tab:blue", alpha=0.5, density=True)
    ax.axvline(t_mid["reference"], color="k", lw=1, label="REFERENCE mean (lambda = 2c)")
    ax.axvline(t_mid["reference_c"], color="k", ls="--", lw=1, label="REFERENCE mean (lambda = c)")
    ax.axvline(t_mid["mean"], color="tab:blue", lw=1.5, label=f"measured mean {t_mid['mean']:.3f}")
    ax.set_title(f"Langevin exit times at T = {t_mid['T']:g}", fontsize=10)
    ax.set_xlabel("exit time")
    ax.legend(fontsize=7)

    ax = axes[3]
    draw_landscape(ax, bounded["landscape"], resolution=120)
    for kind, color in (("GD", "white"), ("heavy ball", "tab:orange")):
        traj = bounded[kind]["traj"]
        for i in range(len(bounded["eps"])):
            path = traj.positions[:, i, :].numpy()
            ax.plot(path[:, 0], path[:, 1], color=color, lw=0.8, alpha=0.8)
    ax.set_title("bounded saddle: GD (white), heavy ball (orange)", fontsize=10)
    fig.tight_layout()
    return fig
