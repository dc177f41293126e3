"""Saddle escape: how long gradient descent lingers near a saddle, what kicks it off, what momentum adds.

Protocol. The landscape is ``saddle`` ``U = x^2 - c y^2``, unbounded below along ``y``: a particle that
leaves the box ``|y| <= R = 2`` is frozen as ``escaped`` and the engine records that step (the
``left_box`` event, its ``stop_step``), so one run (one `RunSpec`) measures every exit step exactly.
The unstable direction has curvature ``lambda = |U_yy| = 2c`` (`descent.theory.saddle`): along it the
force is ``+lambda y``.

1. Deterministic escape. Starts ``(x0, eps)`` for ``eps`` over many decades (one batched run), GD at
   ``lr`` against ``ceil(ln(R/eps)/ln(1 + lr lambda))`` (``y_k = (1 + lr lambda)^k eps``), and the heavy
   ball (``momentum``) at the same ``lr`` against its exact closed form
   ``y_k = eps (a r_+^k + (1 - a) r_-^k)`` (``r_+-`` the roots of ``z^2 - (1 + beta + lr lambda) z + beta``);
   their ratio is the heavy ball's speed-up, ``ln r_+/ln(1 + lr lambda)`` far from the saddle.
   ``eps = 0`` (on the stable axis) never escapes. GD at the heavy ball's effective step
   ``lr/(1 - beta)`` is run beside them, as the fair comparison.
2. Noisy escape from the saddle point itself: Langevin at temperature ``T``, GD with Gaussian gradient
   noise ``sigma = sqrt(2T/lr)`` (mini-batch-like noise at the same temperature ``T = lr sigma^2/2``)
   and the heavy ball with gradient noise at the same ``T = lr sigma^2/(2(1 - beta))``; several ``T``
   in one run each (per-particle temperatures). Linearised, ``y(t) ~ e^(lambda t) sqrt(T/lambda) Z`` with
   ``Z ~ N(0, 1)``, so the exit time is ``(ln(lambda R^2/T) - ln Z^2)/(2 lambda)`` with mean
   ``(ln(lambda R^2/T) + 0.5772 + ln 2)/(2 lambda)`` (the small-noise exit law of a linear instability).
   Mean exit times carry standard errors and are compared with the discrete chain's own prediction
   (the same law with the chain's growth per step and noise amplitude), and, for Langevin and
   gradient noise, with the continuous law plus the chain's known time-step bias; the law itself is
   compared with the exact continuous mean first-passage time (quadrature).
3. The bounded saddle ``saddle-bounded`` (``U = x^2 - c y^2 + y^4/4``), where runs end: from the same
   ``eps`` GD and the heavy ball fall into a minimum (the ``converged`` event with ``grad_tol`` 1e-8 stops
   them), and from ``eps = 0`` GD converges to the saddle and stalls there (outcome ``saddle:origin``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, exceeds, number, share_se
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
    unstable_curvature,
)

NAME = "saddle-escape"
CLAIM = (
    "Saddle points slow gradient descent: near the flat centre it crawls, and exactly on the saddle it "
    "stops; the noise of SGD kicks it off, and momentum speeds up crossing saddle points."
)
PROTOCOL = (
    "GD and the heavy ball start at distances eps from the stable axis of the saddle x^2 - c y^2 (and "
    "exactly on it), and GD with gradient noise, Langevin and the heavy ball with gradient noise start "
    "on the saddle point at several temperatures, thousands of particles each; every exit step from "
    "|y| < R is recorded. Exit steps are compared with the exact recurrences (deterministic) and with "
    "the small-noise exit law of a linear instability, (ln(lambda R^2/T) + 0.5772 + ln 2)/(2 lambda) "
    "with lambda = |U_yy| = 2c, and the discrete chain's version of it (noisy)."
)

NOISES = ("langevin", "gradient noise", "heavy ball + gradient noise")
KIND_ID = {"langevin": "langevin", "gradient noise": "gd_noise", "heavy ball + gradient noise": "hb_noise"}
LAW = "small-noise exit law (ln(lambda R^2/T) + 0.5772 + ln 2)/(2 lambda), lambda = |U_yy| = 2c"


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
    stages = 3
    runs = Runs()
    det = _deterministic(config, runs, lam, radius)
    _tick(progress, 1, stages)
    noisy = _noisy(config, runs, lam, radius)
    _tick(progress, 2, stages)
    bounded = _bounded(config, runs, lam)
    _tick(progress, 3, stages)
    rows = [
        number("lambda", "unstable curvature lambda = |U_yy| = 2c", lam, group="the saddle"),
        number("radius", "exit radius R (|y| >= R leaves the box)", radius, group="the saddle"),
        *_deterministic_rows(config, lam, radius, det),
        *_noisy_rows(config, lam, radius, noisy),
        *_bounded_rows(config, bounded),
    ]
    config_dict = {
        **asdict(config),
        "landscape": f"saddle x^2 - {config.curvature:g} y^2 (and saddle-bounded)",
        "exit": f"first step with |y| > R = {radius:g} (leaving the box), from the engine's stop_step",
    }
    figures = [_figure(config, lam, radius, det, noisy), _details(config, noisy, bounded)]
    return Result(NAME, CLAIM, PROTOCOL, rows, config_dict, figures, runs.specs)


def _tick(progress: Progress | None, k: int, total: int) -> None:
    if progress is not None:
        progress(k, total)


def _saddle(config: Config, **fields) -> RunSpec:
    """A run on the saddle x^2 - c y^2 (unbounded below: leaving the box stops a particle)."""
    params = {"curvature": config.curvature}
    return RunSpec(landscape="saddle", landscape_params=params, save="summary", **fields)


# --- 1. deterministic escape from eps --------------------------------------------------------
def _deterministic(config: Config, runs: Runs, lam: float, radius: float) -> dict:
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
    return {
        "eps": eps,
        "budget": budget,
        "steps_run": int(gd.steps_run),
        "gd": gd.stop_step[:n].numpy(),
        "hb": hb.stop_step.numpy(),
        "gd_eff": gd.stop_step[n:].numpy(),
        "gd_theory": np.array([gd_escape_steps(e, radius, lr, lam) for e in eps[:-1]]),
        "hb_theory": np.array([heavy_ball_escape_steps(e, radius, lr, lam, beta) for e in eps[:-1]]),
        "eff_theory": np.array([gd_escape_steps(e, radius, lr_eff, lam) for e in eps[:-1]]),
        "axis_outcomes": [gd.outcomes[n - 1], hb.outcomes[n - 1]],
        "axis_final": [gd.final_position[n - 1].tolist(), hb.final_position[n - 1].tolist()],
    }


def _deterministic_rows(config: Config, lam: float, radius: float, det: dict) -> list[Row]:
    lr, beta = config.lr, config.momentum
    lr_eff = lr / (1.0 - beta)
    eps, gd, hb, gd_eff = det["eps"][:-1], det["gd"][:-1], det["hb"][:-1], det["gd_eff"]
    small = float(eps[-1])
    group_gd = "GD's escape from eps (theory: ceil(ln(R/eps)/ln(1 + lr lambda)))"
    group_hb = "heavy ball's escape from eps (theory: its exact closed form)"
    group_speed = "momentum's speed-up, deterministic (theory: closed forms; far out ln r+/ln(1 + lr lambda))"
    logs = np.log(radius / eps)
    far = logs > 10  # the heavy ball's transient (the r_- mode and the factor a) has died out
    slope_gd = float(np.polyfit(logs, gd, 1)[0])
    slope_hb = float(np.polyfit(logs[far], hb[far], 1)[0])
    speedup = float(gd[-1] / hb[-1])
    speedup_exact = float(det["gd_theory"][-1] / det["hb_theory"][-1])
    asymptotic = heavy_ball_asymptotic_speedup(lr, lam, beta)
    axis_escaped = sum(o == "escaped" for o in det["axis_outcomes"])
    crawl = float(gd[-1] / gd[0])
    # the step counts are integers from exact recurrences: no tolerance
    out = [
        agrees(
            f"{id}/max_error",
            f"{who}: largest |escape step - closed form| over the {len(eps)} eps from {eps[0]:.0e} "
            f"to {small:.0e}",
            float(np.max(np.abs(measured - det[theory]))),
            0.0,
            absolute=0,
            unit="steps",
            group=group,
        )
        for id, who, measured, theory, group in (
            ("gd_steps", f"GD at lr {lr:g}", gd, "gd_theory", group_gd),
            ("hb_steps", f"heavy ball (beta {beta:g}, lr {lr:g})", hb, "hb_theory", group_hb),
            (
                "gd_eff_steps",
                f"GD at the effective step lr/(1 - beta) = {lr_eff:g}",
                gd_eff,
                "eff_theory",
                group_gd,
            ),
        )
    ]
    out += [
        number(
            "gd_steps/eps_min",
            f"GD's escape steps from eps = {small:.0e}",
            gd[-1],
            theory=det["gd_theory"][-1],
            unit="steps",
            group=group_gd,
            key=True,
        ),
        number(
            "gd_slope",
            "GD: steps per e-fold of R/eps (fitted slope)",
            slope_gd,
            theory=1.0 / math.log1p(lr * lam),
            group=group_gd,
        ),
        number(
            "hb_slope",
            "heavy ball: steps per e-fold of R/eps (fitted slope, ln(R/eps) > 10)",
            slope_hb,
            theory=1.0 / (asymptotic * math.log1p(lr * lam)),
            group=group_hb,
        ),
        exceeds(
            "crawl/gd",
            f"GD's escape steps from eps = {small:.0e} over those from eps = {eps[0]:.0e}",
            crawl,
            1.0,
            group=group_gd,
            if_pass=f"Near the saddle GD crawls: from eps = {small:.0e} it needed {int(gd[-1])} steps to "
            f"leave |y| < {radius:g}, {crawl:.1f} times as many as from eps = {eps[0]:.0e} ({int(gd[0])}), "
            f"{slope_gd:.2f} steps per e-fold of 1/eps as ceil(ln(R/eps)/ln(1 + lr lambda)) says.",
            if_fail=f"GD did not slow down near the saddle: {int(gd[-1])} steps from eps = {small:.0e} "
            f"against {int(gd[0])} from eps = {eps[0]:.0e}.",
        ),
        agrees(
            "on_axis/escaped",
            "runs started exactly on the stable axis (eps = 0, GD and heavy ball) that left the box",
            float(axis_escaped),
            0.0,
            absolute=0,
            group=group_gd,
            about="claim",
            if_pass=f"Started exactly on the stable axis, neither GD nor the heavy ball left the saddle in "
            f"{det['steps_run']} steps (outcomes {', '.join(det['axis_outcomes'])}).",
            if_fail=f"{axis_escaped} of the runs started on the stable axis escaped: "
            f"{', '.join(det['axis_outcomes'])}.",
        ),
        exceeds(
            "speedup/deterministic",
            f"momentum's speed-up over GD at lr {lr:g} from eps = {small:.0e} (GD steps / heavy-ball steps)",
            speedup,
            1.0,
            group=group_speed,
            key=True,
            if_pass=f"Momentum speeds the deterministic escape: beta {beta:g} left from eps = {small:.0e} in "
            f"{int(hb[-1])} steps against GD's {int(gd[-1])} at the same lr, {speedup:.2f} times sooner "
            f"(closed forms {speedup_exact:.2f}; far from the saddle ln r+/ln(1 + lr lambda) = "
            f"{asymptotic:.2f}).",
            if_fail=f"Momentum did not speed the deterministic escape: {int(hb[-1])} heavy-ball steps "
            f"against GD's {int(gd[-1])}.",
        ),
        agrees(
            "speedup_exact/deterministic",
            f"momentum's speed-up from eps = {small:.0e} against the ratio of the closed forms",
            speedup,
            speedup_exact,
            absolute=0,
            group=group_speed,
        ),
        number(
            "speedup_asymptotic",
            "momentum's speed-up far from the saddle: ratio of the fitted slopes",
            slope_gd / slope_hb,
            theory=asymptotic,
            group=group_speed,
        ),
        number(
            "effective_lr/ratio",
            f"heavy-ball steps over those of GD at its effective step lr/(1 - beta) = {lr_eff:g}, eps = "
            f"{small:.0e}",
            float(hb[-1] / gd_eff[-1]),
            theory=math.log1p(lr_eff * lam) / (asymptotic * math.log1p(lr * lam)),
            group=group_speed,
        ),
    ]
    return out


# --- 2. noisy escape from the saddle point --------------------------------------------------
def _noisy(config: Config, runs: Runs, lam: float, radius: float) -> dict:
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
    out: dict = {"budget": budget}
    for index, (kind, setup) in enumerate(setups.items()):
        spec = _saddle(config, starts=[[0.0, 0.0]], steps=budget, seed=config.seed + 1 + index, **setup)
        steps = runs(spec).stop_step.numpy().astype(np.float64)
        escaped = steps >= 0
        momentum = beta if kind.startswith("heavy") else 0.0
        per_t = []
        for j, temp in enumerate(config.temperatures):
            s = np.where(escaped, steps, budget)[j * n : (j + 1) * n] * lr  # exit times t = steps lr
            per_t.append(
                {
                    "T": temp,
                    "mean": float(s.mean()),
                    "se": float(s.std(ddof=1) / math.sqrt(n)),
                    "sd": float(s.std(ddof=1)),
                    "sd_se": _sd_se(s),
                    "chain": discrete_exit_steps(lr, lam, radius, temp, momentum) * lr,
                    "chain_sd": discrete_exit_steps_sd(lr, lam, temp, momentum) * lr,
                    "times": s,
                }
            )
        out[kind] = {"rows": per_t, "escaped": int(escaped.sum()), "runs": int(escaped.size)}
    return out


def _sd_se(sample: np.ndarray) -> float:
    """The standard error of a sample's standard deviation, from its fourth central moment (delta
    method: se(s^2) = sqrt((m4 - s^4)/n), se(s) = se(s^2)/(2 s))."""
    n = sample.size
    centred = sample - sample.mean()
    variance = float(np.mean(centred**2))
    return math.sqrt(max(float(np.mean(centred**4)) - variance**2, 0.0) / n) / (2.0 * math.sqrt(variance))


def _ratio_se(a: dict, b: dict) -> tuple[float, float]:
    """a/b of two independent sample means and its SE (delta method)."""
    ratio = a["mean"] / b["mean"]
    return ratio, ratio * math.hypot(a["se"] / a["mean"], b["se"] / b["mean"])


def _noisy_rows(config: Config, lam: float, radius: float, noisy: dict) -> list[Row]:
    lr, beta = config.noise_lr, config.momentum
    out: list[Row] = []
    group_chain = "noisy mean exit time (theory: the discrete chain's exit law)"
    group_law = f"noisy mean exit time (theory: the {LAW})"
    for kind in NOISES:
        data = noisy[kind]
        share, se = share_se(data["escaped"], data["runs"])
        where = f"at lr {lr:g}" + (f", beta {beta:g}" if kind.startswith("heavy") else "")
        row_args = dict(
            se=se,
            group="noise kicks it off the saddle point",
            key=kind == "gradient noise",
        )
        if kind == "gradient noise":
            out.append(
                agrees(
                    "escaped/gd_noise",
                    f"share of GD runs with gradient noise started on the saddle point that left |y| < "
                    f"{radius:g} within {noisy['budget']} steps (every T)",
                    share,
                    1.0,
                    about="claim",
                    if_pass=f"Noise kicks GD off the saddle point: {data['escaped']} of {data['runs']} runs "
                    f"with gradient noise left it, where noiseless GD stays on the stable axis forever.",
                    if_fail=f"Only {data['escaped']} of {data['runs']} runs with gradient noise left the "
                    f"saddle within {noisy['budget']} steps.",
                    **row_args,
                )
            )
        else:
            out.append(
                number(
                    f"escaped/{KIND_ID[kind]}",
                    f"share of {kind} runs from the saddle point that left within {noisy['budget']} steps",
                    share,
                    se=se,
                    group="noise kicks it off the saddle point",
                )
            )
        for r in data["rows"]:
            tid = f"{KIND_ID[kind]}/T={r['T']:g}"
            out.append(
                agrees(
                    f"exit_time/{tid}",
                    f"{kind} {where}, T = {r['T']:g}: mean exit time (steps x lr) against the chain's law",
                    r["mean"],
                    r["chain"],
                    se=r["se"],
                    group=group_chain,
                    key=kind == "gradient noise" and r["T"] == config.temperatures[0],
                )
            )
            out.append(
                agrees(
                    f"exit_sd/{tid}",
                    f"{kind}, T = {r['T']:g}: standard deviation of the exit time against the chain's law",
                    r["sd"],
                    r["chain_sd"],
                    se=r["sd_se"],
                    group=group_chain,
                )
            )
            if kind == "heavy ball + gradient noise":
                continue
            law = langevin_exit_time(lam, radius, r["T"])
            out.append(
                agrees(
                    f"exit_law/{tid}",
                    f"{kind}, T = {r['T']:g}: mean exit time against the continuous exit law",
                    r["mean"],
                    law,
                    se=r["se"],
                    # the chain's time-step bias, known in closed form: its law minus the continuous one
                    bias=abs(r["chain"] - law),
                    group=group_law,
                )
            )
            if kind == "langevin":
                out.append(
                    agrees(
                        f"law_vs_exact/T={r['T']:g}",
                        f"T = {r['T']:g}: the exit law against the exact continuous mean first-passage "
                        "time (quadrature)",
                        law,
                        exact_exit_time(lam, radius, r["T"]),
                        # the law is asymptotic in lambda R^2/T >= 800 here, where its gap is 2e-4
                        rel=1e-3,
                        group=group_law,
                    )
                )
    group_speed = "momentum's speed-up with noise (theory: ratio of the chain's laws)"
    gd_rows, hb_rows = noisy["gradient noise"]["rows"], noisy["heavy ball + gradient noise"]["rows"]
    for j, (g, h) in enumerate(zip(gd_rows, hb_rows)):
        ratio, se = _ratio_se(g, h)
        t = g["T"]
        out.append(
            exceeds(
                f"speedup/noisy/T={t:g}",
                f"momentum's speed-up over GD with gradient noise at T = {t:g} (same lr {lr:g} and T): "
                "ratio of mean exit times",
                ratio,
                1.0,
                se=se,
                group=group_speed,
                key=j == 0,
                if_pass=f"With noise at T = {t:g} the heavy ball left the saddle point {ratio:.2f} +- "
                f"{se:.2f} times sooner than GD (the chains' laws: {g['chain'] / h['chain']:.2f}).",
                if_fail=f"With noise at T = {t:g} the heavy ball was not faster: ratio {ratio:.3f} +- "
                f"{se:.3f}.",
            )
        )
        out.append(
            agrees(
                f"speedup_chain/noisy/T={t:g}",
                f"momentum's speed-up with noise at T = {t:g} against the ratio of the chains' laws",
                ratio,
                g["chain"] / h["chain"],
                se=se,
                group=group_speed,
            )
        )
    return out


# --- 3. the bounded saddle: runs that end ----------------------------------------------------
def _bounded(config: Config, runs: Runs, lam: float) -> dict:
    landscape = get_landscape("saddle-bounded", curvature=config.curvature)
    lr, beta = config.lr, config.momentum
    eps = np.array([*config.bounded_eps, 0.0])
    budget = 4 * int(gd_escape_steps(min(config.bounded_eps), config.bounded_radius, lr, lam)) + 2000
    out: dict = {"eps": eps, "landscape": landscape, "budget": budget}
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
        out[kind] = {
            "traj": traj,
            "leave": leave,
            "stop": traj.stop_step.tolist(),
            "outcomes": list(traj.outcomes),
            "final": traj.final_position[-1].tolist(),
        }
    return out


def _bounded_rows(config: Config, bounded: dict) -> list[Row]:
    group = "the bounded saddle x^2 - c y^2 + y^4/4: runs that end"
    gd, hb = bounded["GD"], bounded["heavy ball"]
    distance = math.hypot(*gd["final"])
    out = [
        # the converged event stops a run at |grad| < 1e-8; on the saddle |grad| >= 2 |x|, 2c |y|
        agrees(
            "stops_on_saddle/gd",
            "GD from eps = 0 on the bounded saddle: distance from the saddle point where it stopped",
            distance,
            0.0,
            absolute=1e-8,
            about="claim",
            group=group,
            if_pass=f"Exactly on the saddle GD stops: from eps = 0 it converged to the saddle point and the "
            f"run ended at step {gd['stop'][-1]} (outcome {gd['outcomes'][-1]}, {distance:.1e} from it).",
            if_fail=f"From eps = 0 GD did not stop on the saddle: it ended {distance:.3g} from it "
            f"(outcome {gd['outcomes'][-1]}).",
        )
    ]
    for kind, data in (("GD", gd), ("heavy ball", hb)):
        ended = sum(
            o.startswith("minimum:") and s > 0 for o, s in zip(data["outcomes"][:-1], data["stop"][:-1])
        )
        kid = "gd" if kind == "GD" else "hb"
        out.append(
            number(
                f"bounded/{kid}/ended_in_minimum",
                f"{kind}: runs from eps > 0 that stopped in a minimum (of {len(data['outcomes']) - 1})",
                ended,
                group=group,
            )
        )
        e0 = bounded["eps"][0]
        out.append(
            number(
                f"bounded/{kid}/leave",
                f"{kind} from eps = {e0:g}: steps to |y| >= {config.bounded_radius:g}",
                data["leave"][0],
                unit="steps",
                group=group,
            )
        )
        out.append(
            number(
                f"bounded/{kid}/stop",
                f"{kind} from eps = {e0:g}: steps until stopped in the minimum (|grad| < 1e-8)",
                data["stop"][0],
                unit="steps",
                group=group,
            )
        )
    return out


# --- figures ----------------------------------------------------------------------------------
def _figure(config: Config, lam: float, radius: float, det: dict, noisy: dict):
    """The card: deterministic escape against eps, noisy mean exit times against T, momentum's speed-ups."""
    fig, axes = subplots(1, 3, height=4.6)
    ax = axes[0]
    eps = det["eps"][:-1]
    lr_eff = config.lr / (1 - config.momentum)
    for key, theory, marker, color, label in (
        ("gd", "gd_theory", "o", "tab:blue", f"GD, lr {config.lr:g}"),
        ("hb", "hb_theory", "s", "tab:orange", f"heavy ball, beta {config.momentum:g}"),
        ("gd_eff", "eff_theory", "^", "tab:green", f"GD, lr {lr_eff:g} = lr/(1 - beta)"),
    ):
        values = det[key][: len(eps)]
        ax.semilogx(eps, values, marker, color=color, ms=4, label=label)
        ax.semilogx(eps, det[theory], "-", color=color, lw=0.8)
    ax.invert_xaxis()
    ax.set_xlabel("eps (start's distance from the stable axis)")
    ax.set_ylabel(f"steps to leave |y| < {radius:g}")
    ax.set_title("crawling near the saddle (lines: closed forms)", fontsize=10)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)

    ax = axes[1]
    temps = np.array(config.temperatures)
    fine = np.geomspace(temps.min() / 2, temps.max() * 2, 60)
    ax.semilogx(
        fine, [langevin_exit_time(lam, radius, t) for t in fine], "k-", lw=1, label="exit law, lambda = 2c"
    )
    styles = {
        "langevin": ("o", "tab:blue"),
        "gradient noise": ("x", "tab:purple"),
        "heavy ball + gradient noise": ("s", "tab:orange"),
    }
    for kind in NOISES:
        rows = noisy[kind]["rows"]
        marker, color = styles[kind]
        ax.errorbar(
            [r["T"] for r in rows],
            [r["mean"] for r in rows],
            yerr=[3 * r["se"] for r in rows],
            fmt=marker,
            color=color,
            ms=6,
            capsize=2,
            label=kind,
        )
        ax.plot([r["T"] for r in rows], [r["chain"] for r in rows], "_", color=color, ms=14)
    ax.set_xlabel("temperature T")
    ax.set_ylabel("mean exit time from the saddle point (steps x lr)")
    ax.set_title("noise kicks it off (bars 3 SE; dashes: chain's law)", fontsize=10)
    ax.legend(fontsize=9, loc="center right")
    ax.grid(alpha=0.3)

    ax = axes[2]
    gd_rows, hb_rows = noisy["gradient noise"]["rows"], noisy["heavy ball + gradient noise"]["rows"]
    labels = ["no noise\neps 1e-15"] + [f"noise\nT {r['T']:.0e}" for r in gd_rows]
    measured = [det["gd"][-2] / det["hb"][-2]] + [_ratio_se(g, h)[0] for g, h in zip(gd_rows, hb_rows)]
    theory = [det["gd_theory"][-1] / det["hb_theory"][-1]] + [
        g["chain"] / h["chain"] for g, h in zip(gd_rows, hb_rows)
    ]
    pos = np.arange(len(labels))
    ax.bar(pos - 0.2, measured, 0.4, color="tab:orange", label="measured")
    ax.bar(pos + 0.2, theory, 0.4, color="lightgray", label="theory")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(pos, labels)
    ax.set_ylabel("GD exit time / heavy-ball exit time")
    ax.set_title(f"momentum's speed-up at the same lr (beta {config.momentum:g})", fontsize=10)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return finish(fig)


def _details(config: Config, noisy: dict, bounded: dict):
    """Details: the exit-time distribution at one T, and the bounded saddle's paths."""
    from descent.plots.static import draw_landscape

    fig, axes = subplots(1, 2, height=4.4)
    ax = axes[0]
    rows = noisy["gradient noise"]["rows"]
    mid = rows[len(rows) // 2]
    ax.hist(mid["times"], bins=40, color="tab:purple", alpha=0.5, density=True, label="GD + gradient noise")
    ax.axvline(mid["chain"], color="k", lw=1, label=f"chain's law mean {mid['chain']:.3f}")
    ax.axvline(mid["mean"], color="tab:purple", lw=1.5, label=f"measured mean {mid['mean']:.3f}")
    ax.set_title(f"exit times from the saddle point at T = {mid['T']:g}", fontsize=10)
    ax.set_xlabel("exit time (steps x lr)")
    ax.legend(fontsize=9)

    ax = axes[1]
    draw_landscape(ax, bounded["landscape"], resolution=120)
    for kind, color in (("GD", "white"), ("heavy ball", "tab:orange")):
        traj = bounded[kind]["traj"]
        for i in range(len(bounded["eps"])):
            path = traj.positions[:, i, :].numpy()
            ax.plot(path[:, 0], path[:, 1], color=color, lw=0.8, alpha=0.8)
    ax.set_title("bounded saddle: GD (white), heavy ball (orange)", fontsize=10)
    return finish(fig)
