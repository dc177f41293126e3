"""Temperature: the Langevin rule ``w <- w - lr U'(w) + sqrt(2 lr T) z`` on the seeds' double well.

All dynamics are `RunSpec`s run by the engine (`run_spec`) on the double well's x part,
``U(x) = (x^2 - 1)^2 - tilt x`` (tilt 0.3: local minimum a ~ -0.96, barrier top b ~ -0.075, global
minimum ~ 1.04; barrier dU = U(b) - U(a) ~ 0.717). In the seeds' 2-D well ``+ y^2`` is an
independent Ornstein-Uhlenbeck coordinate, so the 1-D landscape ``quartic-well`` (dim=1) is the x
marginal exactly, at half the cost. Particles are float32 (the thermal noise per step, ~1e-2, dwarfs
float32 rounding, ~1e-7); the theory is float64.

1. Stationary histogram. Thousands of particles start uniform in [-2, 2] (the box: ``random:N``),
   burn in for several inter-well relaxation times at a temperature that mixes the wells, and their
   pooled positions over a later window (the saved frames) are binned and compared with the Boltzmann
   bin probabilities (exact bin integrals of ``exp(-U/T)/Z``) by total-variation distance. The Euler
   step's own O(lr) bias is computed exactly (``theory.escape.chain_bin_probabilities``: the chain's
   stationary law on a fine grid) and shown with a second group of particles at a large lr in the same
   run (a per-particle lr). The noise floor of the TV comes from the spread between independent groups
   of particles.
2. Escape times. Escape is defined once: the first step at which the energy drops to ``U <= 0``,
   i.e. the first passage to ``c ~ 0.73`` past the barrier (reached only by crossing it; 4-8 T below
   the barrier top, so the time is Kramers' 1/k, not the half of it spent reaching the top, and
   discrete-time monitoring misses nothing). That is the engine's ``target`` event with
   ``target_loss`` = that level, which also stops the particle (``stop_on``), so each particle's
   passage step is exact: ``trajectory.events["target"]``. One run holds every temperature (a
   per-particle temperature), all particles from the local minimum a; it ends when every particle has
   escaped, or at ``escape_time`` (censoring). The mean is the exponential
   maximum-likelihood estimate with censoring, ``(sum of times at risk) / (escapes)``, standard error
   ``tau / sqrt(escapes)``. Compared with the exact 1-D mean first-passage integral from ``a`` to
   ``c``, with the chain's own MFPT at this lr (the discretisation bias), with Kramers' over-damped
   rate (whose known asymptotic correction is the MFPT/Kramers ratio), and the Arrhenius slope of
   log tau against 1/T with the barrier dU.
3. With momentum: the heavy ball ``v <- beta v - lr (g + s z)``, ``w <- w + v`` is the step-h
   discretisation of ``x'' + gamma x' = -U' + noise`` (unit mass) with ``h = sqrt(lr)``,
   ``gamma = (1 - beta)/h`` and temperature ``T = lr s^2 / (2 (1 - beta))`` (the ``grad_noise``
   transform). At fixed h and T, a per-particle beta and s give several frictions in one run; the
   escape times are compared with Kramers' moderate-friction rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import optimize, special

from descent._errors import invalid
from descent.experiments._base import Progress, Result, Runs, checks_line, legacy_result, legacy_verdict
from descent.landscapes.thermal import quartic_roots
from descent.spec import RunSpec
from descent.theory.escape import (
    boltzmann_probabilities,
    chain_bin_probabilities,
    chain_mfpt,
    kramers_rate,
    kramers_rate_moderate,
    mfpt,
)

torch.set_num_threads(1)

NAME = "temperature"
CLAIM = (
    "Stochastic gradient descent introduces 'thermal fluctuations': gradient noise is a temperature. "
    "Langevin descent samples the Boltzmann density exp(-U/T)/Z, and the time to escape a local minimum "
    "follows Kramers' law (Arrhenius: log time grows like barrier/T)."
)
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Config:
    tilt: float = 0.3
    # 1. stationary histogram
    hist_temperature: float = 0.5
    hist_lr: float = 0.0025
    hist_particles: int = 10000
    hist_burn_in: float = 30.0  # time units (lr * steps); ~6 inter-well relaxation times at T = 0.5
    hist_window: float = 15.0
    hist_frame: float = 0.25  # time between recorded frames
    hist_bins: int = 40
    bias_lr: float = 0.02  # a second group at a large step: the O(lr) bias made visible
    bias_particles: int = 1500
    tv_tolerance: float = 0.01
    groups: int = 20
    # 2. escape times (over-damped)
    barriers: tuple[float, ...] = (3.0, 4.0, 5.0, 6.0)  # dU / T
    escape_particles: tuple[int, ...] = (4000, 4000, 4000, 5000)
    escape_lr: float = 0.01
    escape_time: float = 260.0  # censoring time (time units)
    target_energy: float = 0.0  # escape: first step with U <= target_energy (past the barrier)
    mfpt_tolerance: float = 0.05
    slope_tolerance: float = 0.05
    # 3. escape with momentum
    momentum_barrier: float = 4.0
    frictions: tuple[float, ...] = (1.0, 2.0, 4.0)
    momentum_particles: int = 2500  # per friction
    momentum_h: float = 0.05  # physical time step sqrt(lr)
    momentum_time: float = 320.0
    momentum_tolerance: float = 0.1  # beyond the over-damped formula's known correction
    dtype: str = "float32"
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            hist_lr=0.01,
            hist_particles=2500,
            hist_burn_in=20.0,
            hist_window=10.0,
            bias_particles=800,
            bias_lr=0.04,
            tv_tolerance=0.04,
            groups=10,
            barriers=(3.0, 4.0),
            escape_particles=(700, 900),
            escape_lr=0.02,
            escape_time=100.0,
            mfpt_tolerance=0.15,
            slope_tolerance=0.15,
            momentum_barrier=3.0,
            frictions=(2.0,),
            momentum_particles=800,
            momentum_time=120.0,
            momentum_tolerance=0.2,
        )

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise invalid("dtype", self.dtype, f"one of {list(DTYPES)}")
        if len(self.barriers) != len(self.escape_particles) or len(self.barriers) < 2:
            raise invalid("barriers", self.barriers, "two or more, one particle count each")


# --- geometry ------------------------------------------------------------------------------------
def _geometry(config: Config) -> dict:
    tilt = config.tilt
    a, b, m = quartic_roots(tilt)
    u = lambda x: (np.asarray(x) ** 2 - 1) ** 2 - tilt * np.asarray(x)  # noqa: E731
    du = lambda x: 4 * np.asarray(x) * (np.asarray(x) ** 2 - 1) - tilt  # noqa: E731
    if not u(m) < config.target_energy < u(a):
        raise invalid(
            "target_energy", config.target_energy, f"a level in ({u(m):.3f}, {u(a):.3f}) past the barrier"
        )
    c = optimize.brentq(lambda x: u(x) - config.target_energy, b, m)
    return {
        "a": a,
        "b": b,
        "m": m,
        "c": c,
        "u": u,
        "du": du,
        "barrier": float(u(b) - u(a)),
        "curv_a": 12 * a * a - 4,
        "curv_b": 12 * b * b - 4,
    }


def _tv(q: np.ndarray, p: np.ndarray) -> float:
    return 0.5 * float(np.abs(q - p).sum())


def _expected_abs(bias: np.ndarray, se: np.ndarray) -> np.ndarray:
    """E|b + e| for e ~ N(0, se^2)."""
    safe = np.where(se > 0, se, 1.0)
    r = bias / safe
    value = safe * np.sqrt(2 / np.pi) * np.exp(-np.minimum(r**2, 1400.0) / 2) + bias * (
        1 - 2 * special.ndtr(-r)
    )
    return np.where(se > 0, value, np.abs(bias))


def _histograms(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin frequencies with under/overflow appended: [len(edges) - 1 + 1]."""
    counts, _ = np.histogram(x, bins=edges)
    outside = x.size - counts.sum()
    return np.append(counts, outside) / max(x.size, 1)


# --- 1. stationary histogram ------------------------------------------------------------------------
def _well(config: Config, **fields) -> RunSpec:
    """A run on the x part of the seeds' double well (``quartic-well``, 1-D) in the config's dtype."""
    params = {"tilt": config.tilt, "dim": 1}
    return RunSpec(landscape="quartic-well", landscape_params=params, dtype=config.dtype, **fields)


def _stationary(config: Config, geo: dict, runs: Runs, tick) -> dict:
    temp = config.hist_temperature
    n_small, n_big = config.hist_particles, config.bias_particles
    n = n_small + n_big
    steps = round((config.hist_burn_in + config.hist_window) / config.hist_lr)
    every = max(1, round(config.hist_frame / config.hist_lr))
    spec = _well(
        config,
        optimizer="langevin",
        hyper={"lr": [config.hist_lr] * n_small + [config.bias_lr] * n_big, "temperature": temp},
        starts=f"random:{n}",  # uniform in the box [-2, 2]
        steps=steps,
        save=f"every:{every}",
        seed=config.seed + 1,
    )
    traj = runs(spec, tick)
    x = traj.positions[:, :, 0].double().numpy()  # [frames, particles]
    times = traj.steps.numpy() * config.hist_lr
    window = times > config.hist_burn_in + 1e-9

    edges = np.linspace(-2.0, 2.0, config.hist_bins + 1)
    p = boltzmann_probabilities(geo["u"], temp, edges, -3.0, 3.0)
    p = np.append(p, max(0.0, 1 - p.sum()))
    out = {"edges": edges, "boltzmann": p, "times": times}
    groups = np.arange(n) % config.groups
    for label, lo, hi, step in (("small", 0, n_small, config.hist_lr), ("large", n_small, n, config.bias_lr)):
        chain = chain_bin_probabilities(geo["du"], step, temp, edges, -2.6, 2.6)
        chain = np.append(chain, max(0.0, 1 - chain.sum()))
        sample = x[window][:, lo:hi]
        q = _histograms(sample.ravel(), edges)
        per_group = np.stack(
            [_histograms(sample[:, groups[lo:hi] == g].ravel(), edges) for g in range(config.groups)]
        )
        se = per_group.std(axis=0, ddof=1) / math.sqrt(config.groups)
        jack = np.array(
            [_tv((q * config.groups - per_group[g]) / (config.groups - 1), p) for g in range(config.groups)]
        )
        tv_se = math.sqrt((config.groups - 1) / config.groups * ((jack - jack.mean()) ** 2).sum())
        left_mask = np.append(0.5 * (edges[1:] + edges[:-1]) < geo["b"], False)
        share_groups = per_group[:, left_mask].sum(axis=1)
        out[label] = {
            "lr": step,
            "particles": hi - lo,
            "samples": int(sample.size),
            "histogram": q,
            "chain": chain,
            "tv": _tv(q, p),
            "tv_se": tv_se,
            "tv_vs_chain": _tv(q, chain),
            "tv_bias": _tv(chain, p),
            "tv_noise_floor": 0.5 * float(np.sqrt(2 / np.pi) * se.sum()),
            "tv_expected": 0.5 * float(_expected_abs(chain - p, se).sum()),
            "left_share": float(q[left_mask].sum()),
            "left_share_se": float(share_groups.std(ddof=1) / math.sqrt(config.groups)),
            "left_share_boltzmann": float(p[left_mask].sum()),
            "tv_by_frame": np.array([_tv(_histograms(frame[lo:hi], edges), p) for frame in x]),
        }
    return out


# --- 2. over-damped escape times ------------------------------------------------------------------
def _escape(config: Config, geo: dict, runs: Runs, tick) -> dict:
    dU = geo["barrier"]
    temps = np.concatenate([np.full(n, dU / r) for r, n in zip(config.barriers, config.escape_particles)])
    which = np.concatenate([np.full(n, i) for i, n in enumerate(config.escape_particles)])
    lr = config.escape_lr
    total = int(math.ceil(config.escape_time / lr))
    spec = _well(
        config,
        optimizer="langevin",
        hyper={"lr": lr, "temperature": temps.tolist()},
        starts=[[geo["a"]]],  # every particle at the local minimum a
        steps=total,
        save="summary",
        events={"target_loss": config.target_energy, "stop_on": ["target"]},
        seed=config.seed + 100,
    )
    traj = runs(spec, tick)
    reached = traj.events["target"].numpy()  # the first step with U <= target_energy; -1: never
    passage = np.where(reached >= 0, reached * lr, np.nan)

    rows = []
    for i, ratio in enumerate(config.barriers):
        temp = dU / ratio
        times = passage[which == i]
        escaped = np.isfinite(times)
        n_esc = int(escaped.sum())
        at_risk = times[escaped].sum() + (~escaped).sum() * config.escape_time
        tau = at_risk / max(n_esc, 1)
        exact = mfpt(geo["u"], geo["a"], geo["c"], temp)
        chain = chain_mfpt(geo["du"], lr, temp, geo["a"], geo["c"], lower=-2.0)
        rate = kramers_rate(geo["curv_a"], geo["curv_b"], dU, temp)
        rows.append(
            {
                "barrier_over_T": ratio,
                "T": temp,
                "particles": int(len(times)),
                "escaped": n_esc,
                "tau": tau,
                "tau_se": tau / math.sqrt(max(n_esc, 1)),
                "tau_mfpt": exact,
                "tau_chain": chain,
                "tau_kramers": 1 / rate,
                "kramers_correction": exact * rate - 1,
                "ratio_mfpt": tau / exact,
                "ratio_chain": tau / chain,
                "ratio_kramers": tau * rate,
                "chain_bias": chain / exact - 1,
            }
        )
    inv_t = np.array([1 / r["T"] for r in rows])
    log_tau = np.log([r["tau"] for r in rows])
    weights = np.array([max(r["escaped"], 1) for r in rows], dtype=float)  # var(log tau) = 1/escapes
    slope, slope_se = _weighted_slope(inv_t, log_tau, weights)
    theory_slope, _ = _weighted_slope(inv_t, np.log([r["tau_mfpt"] for r in rows]), weights)
    return {"rows": rows, "slope": slope, "slope_se": slope_se, "slope_mfpt": theory_slope, "steps": total}


def _weighted_slope(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope of y on x (weights = 1/variance) and its standard error."""
    xm = (w * x).sum() / w.sum()
    ym = (w * y).sum() / w.sum()
    sxx = (w * (x - xm) ** 2).sum()
    return float((w * (x - xm) * (y - ym)).sum() / sxx), float(1 / math.sqrt(sxx))


# --- 3. escape with momentum --------------------------------------------------------------------------
def _momentum(config: Config, geo: dict, runs: Runs, tick) -> dict:
    dU = geo["barrier"]
    temp = dU / config.momentum_barrier
    h = config.momentum_h
    lr = h * h
    gammas = np.repeat(np.array(config.frictions, dtype=float), config.momentum_particles)
    beta = 1 - gammas * h
    if beta.min() <= 0:
        raise invalid("frictions", config.frictions, f"gamma < 1/h = {1 / h:g} so beta = 1 - gamma h > 0")
    sigma = np.sqrt(2 * temp * (1 - beta) / lr)  # T = lr s^2 / (2 (1 - beta))
    steps = int(math.ceil(config.momentum_time / h))
    spec = _well(
        config,
        optimizer="momentum",
        hyper={"lr": lr, "momentum": beta.tolist()},
        transforms=[{"kind": "grad_noise", "sigma": sigma.tolist()}],
        starts=[[geo["a"]]],
        steps=steps,
        save="summary",
        events={"target_loss": config.target_energy, "stop_on": ["target"]},
        seed=config.seed + 7,
    )
    traj = runs(spec, tick)
    stop = traj.events["target"].numpy()
    rows = []
    exact_od = mfpt(geo["u"], geo["a"], geo["c"], temp)
    rate_od = kramers_rate(geo["curv_a"], geo["curv_b"], dU, temp)
    for gamma in config.frictions:
        mask = gammas == gamma
        reached = stop[mask]
        hit = reached >= 0
        n_esc = int(hit.sum())
        at_risk = reached[hit].sum() * h + (~hit).sum() * steps * h
        tau = at_risk / max(n_esc, 1)
        rate = kramers_rate_moderate(geo["curv_a"], geo["curv_b"], dU, temp, gamma)
        rows.append(
            {
                "gamma": gamma,
                "beta": 1 - gamma * h,
                "grad_noise": float(sigma[mask][0]),
                "particles": int(mask.sum()),
                "escaped": n_esc,
                "tau": tau,
                "tau_se": tau / math.sqrt(max(n_esc, 1)),
                "tau_kramers_moderate": 1 / rate,
                "ratio_kramers_moderate": tau * rate,
                "tau_smoluchowski": gamma * exact_od,
                "ratio_smoluchowski": tau / (gamma * exact_od),
            }
        )
    return {
        "T": temp,
        "h": h,
        "lr": lr,
        "steps": steps,
        "rows": rows,
        "overdamped_correction": exact_od * rate_od - 1,
    }


# --- run ----------------------------------------------------------------------------------------------
def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    geo = _geometry(config)
    hist_steps = round((config.hist_burn_in + config.hist_window) / config.hist_lr)
    esc_steps = int(math.ceil(config.escape_time / config.escape_lr))
    mom_steps = int(math.ceil(config.momentum_time / config.momentum_h))
    total = hist_steps + esc_steps + mom_steps

    def tick_at(offset: int):
        """progress(offset + k, total) for a run's step k (None without progress)."""
        if progress is None:
            return None
        return lambda k, *_: progress(offset + k, total)

    runs = Runs()
    hist = _stationary(config, geo, runs, tick_at(0))
    esc = _escape(config, geo, runs, tick_at(hist_steps))
    mom = _momentum(config, geo, runs, tick_at(hist_steps + esc_steps))
    if progress is not None:
        progress(total, total)

    checks, numbers, theory = _assess(config, geo, hist, esc, mom)
    checks = {name: bool(ok) for name, ok in checks.items()}
    verdict = legacy_verdict(checks)
    explanation = _explain(config, geo, hist, esc, mom, checks)
    config_dict = {
        **asdict(config),
        "landscape": f"quartic-well dim=1: (x^2 - 1)^2 - {config.tilt:g} x (the seeds' double well, x part)",
        "escape": f"first step with U <= {config.target_energy:g}, i.e. x >= c = {geo['c']:.4f} (stop)",
        "momentum mapping": "h = sqrt(lr), gamma = (1 - beta)/h, T = lr s^2 / (2 (1 - beta)), unit mass",
    }
    figure = _figure(config, geo, hist, esc, mom)
    return legacy_result(
        NAME,
        CLAIM,
        verdict,
        explanation,
        numbers,
        theory,
        config_dict,
        figure,
        checks,
        runs.specs,
    )


def _assess(config: Config, geo: dict, hist: dict, esc: dict, mom: dict) -> tuple[dict, dict, dict]:
    small, large = hist["small"], hist["large"]
    rows = esc["rows"]
    tv_tol, mfpt_tol, slope_tol = config.tv_tolerance, config.mfpt_tolerance, config.slope_tolerance
    od_corr, mom_tol = mom["overdamped_correction"], config.momentum_tolerance
    bias_ok = all(
        abs(h["tv"] - h["tv_expected"]) <= 3 * h["tv_se"] + 0.1 * h["tv_noise_floor"] for h in (small, large)
    )
    checks = {
        f"stationary histogram: TV to exp(-U/T)/Z < {tv_tol:g} at lr = {config.hist_lr:g}": small["tv"]
        < tv_tol,
        "stationary histogram: TV at both lr = the chain's known O(lr) bias + sampling noise (3 SE)": bias_ok,
        f"escape time within {mfpt_tol:.0%} of the exact 1-D mean first-passage time, every barrier/T": all(
            abs(r["ratio_mfpt"] - 1) <= mfpt_tol for r in rows
        ),
        "escape time = the Euler chain's own first-passage time within 3 SE, every barrier/T": all(
            abs(r["tau"] - r["tau_chain"]) <= 3 * r["tau_se"] for r in rows
        ),
        "Kramers' 1/k within its known asymptotic correction (MFPT/Kramers - 1) + the tolerance": all(
            abs(r["ratio_kramers"] - 1) <= r["kramers_correction"] + mfpt_tol for r in rows
        ),
        f"Arrhenius slope of log tau against 1/T within {slope_tol:.0%} of the barrier": (
            abs(esc["slope"] / geo["barrier"] - 1) <= slope_tol
        ),
        f"momentum: escape within moderate-friction Kramers' correction ({od_corr:.0%} + {mom_tol:.0%})": all(
            abs(r["ratio_kramers_moderate"] - 1) <= od_corr + mom_tol for r in mom["rows"]
        ),
    }
    numbers = {
        "barrier dU": geo["barrier"],
        "histogram T": config.hist_temperature,
        "histogram samples (small lr)": small["samples"],
        "TV histogram vs Boltzmann (small lr)": small["tv"],
        "TV standard error (small lr)": small["tv_se"],
        "TV noise floor (small lr)": small["tv_noise_floor"],
        "TV histogram vs Boltzmann (large lr)": large["tv"],
        "TV standard error (large lr)": large["tv_se"],
        "TV histogram vs the Euler chain's stationary law (small lr)": small["tv_vs_chain"],
        "TV histogram vs the Euler chain's stationary law (large lr)": large["tv_vs_chain"],
        "left-well share (small lr)": small["left_share"],
        "left-well share SE (small lr)": small["left_share_se"],
        "escapes": [{k: v for k, v in r.items()} for r in rows],
        "Arrhenius slope": esc["slope"],
        "Arrhenius slope SE": esc["slope_se"],
        "Arrhenius slope / barrier": esc["slope"] / geo["barrier"],
        "momentum escapes": mom["rows"],
    }
    theory = {
        "escape target c": geo["c"],
        "minimum a, barrier top b": [geo["a"], geo["b"]],
        "U''(a), U''(b)": [geo["curv_a"], geo["curv_b"]],
        "TV bias of the Euler chain at small lr (exact)": small["tv_bias"],
        "TV bias of the Euler chain at large lr (exact)": large["tv_bias"],
        "TV expected (bias + noise), small lr": small["tv_expected"],
        "TV expected (bias + noise), large lr": large["tv_expected"],
        "left-well share (Boltzmann)": small["left_share_boltzmann"],
        "Arrhenius slope of the exact MFPTs": esc["slope_mfpt"],
        "momentum T": mom["T"],
        "momentum h, lr": [mom["h"], mom["lr"]],
        "over-damped Kramers correction at the momentum barrier/T": mom["overdamped_correction"],
    }
    return checks, numbers, theory


def _explain(config: Config, geo: dict, hist: dict, esc: dict, mom: dict, checks: dict) -> str:
    small, large = hist["small"], hist["large"]
    lines = [
        f"Stationary histogram at T = {config.hist_temperature:g} (barrier/T = "
        f"{geo['barrier'] / config.hist_temperature:.2f}; left-well share {small['left_share']:.4f} +- "
        f"{small['left_share_se']:.4f} vs Boltzmann {small['left_share_boltzmann']:.4f}): TV to "
        f"exp(-U/T)/Z = {small['tv']:.4f} +- {small['tv_se']:.4f} at lr = {config.hist_lr:g} "
        f"({small['particles']} particles, {small['samples']} samples after a burn-in of "
        f"{config.hist_burn_in:g} time units). Of this the Euler step's own bias is {small['tv_bias']:.4f} "
        f"(exact, from the chain's stationary law) and sampling noise ~{small['tv_noise_floor']:.4f}; "
        f"expected {small['tv_expected']:.4f}. At lr = {config.bias_lr:g} the bias grows to "
        f"{large['tv_bias']:.4f} and the measured TV is {large['tv']:.4f} +- {large['tv_se']:.4f} "
        f"(expected {large['tv_expected']:.4f}): the O(lr) discretisation bias is real and predicted.",
        f"Escape from the local well (dU = {geo['barrier']:.4f}) to U <= {config.target_energy:g} (x >= "
        f"{geo['c']:.3f}) at lr = {config.escape_lr:g}:",
    ]
    for r in esc["rows"]:
        lines.append(
            f"  dU/T = {r['barrier_over_T']:g}: tau = {r['tau']:.2f} +- {r['tau_se']:.2f} "
            f"({r['escaped']}/{r['particles']} escaped); exact MFPT {r['tau_mfpt']:.2f} "
            f"(ratio {r['ratio_mfpt']:.3f}); Euler chain {r['tau_chain']:.2f} (bias {r['chain_bias']:+.2%}); "
            f"Kramers 1/k {r['tau_kramers']:.2f}, measured tau*k = {r['ratio_kramers']:.3f} vs known "
            f"correction {1 + r['kramers_correction']:.3f}."
        )
    lines.append(
        f"Arrhenius slope d log tau / d(1/T) = {esc['slope']:.4f} +- {esc['slope_se']:.4f} vs barrier "
        f"{geo['barrier']:.4f} (ratio {esc['slope'] / geo['barrier']:.3f}; the exact MFPTs give "
        f"{esc['slope_mfpt']:.4f}: the prefactor's T-dependence lowers it slightly)."
    )
    lines.append(
        f"Heavy ball at barrier/T = {config.momentum_barrier:g}, h = sqrt(lr) = {mom['h']:g}: "
        + "; ".join(
            f"gamma = {r['gamma']:g} (beta {r['beta']:.3f}): tau = {r['tau']:.1f} +- {r['tau_se']:.1f}, "
            f"moderate-friction Kramers 1/k = {r['tau_kramers_moderate']:.1f} (tau*k = "
            f"{r['ratio_kramers_moderate']:.3f})"
            for r in mom["rows"]
        )
        + f". The over-damped formula carries +{mom['overdamped_correction']:.0%} at this barrier/T; the "
        "moderate-friction one is asymptotic in the same way."
    )
    lines.append(checks_line(checks))
    return "\n".join(lines)


def _figure(config: Config, geo: dict, hist: dict, esc: dict, mom: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(21, 4.6))
    ax = axes[0]
    edges = hist["edges"]
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = edges[1] - edges[0]
    ax.bar(
        centres,
        hist["small"]["histogram"][:-1] / width,
        width=width,
        color="tab:blue",
        alpha=0.45,
        label=f"Langevin, lr = {config.hist_lr:g}",
    )
    ax.step(
        centres,
        hist["large"]["histogram"][:-1] / width,
        where="mid",
        color="tab:red",
        lw=1,
        label=f"Langevin, lr = {config.bias_lr:g}",
    )
    ax.plot(centres, hist["boltzmann"][:-1] / width, "k-", lw=1.5, label="exp(-U/T)/Z")
    ax.plot(
        centres,
        hist["large"]["chain"][:-1] / width,
        "r:",
        lw=1.2,
        label=f"Euler chain, lr = {config.bias_lr:g}",
    )
    twin = ax.twinx()
    xs = np.linspace(-2, 2, 300)
    twin.plot(xs, geo["u"](xs), color="0.6", lw=0.8)
    twin.set_ylim(-0.5, 3)
    twin.set_ylabel("U(x)", color="0.5")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title(
        f"stationary histogram, T = {config.hist_temperature:g}\nTV = {hist['small']['tv']:.4f} "
        f"(lr {config.hist_lr:g}), {hist['large']['tv']:.4f} (lr {config.bias_lr:g})"
    )
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[1]
    times = hist["times"]
    ax.semilogy(times, hist["small"]["tv_by_frame"], color="tab:blue", lw=1, label=f"lr = {config.hist_lr:g}")
    ax.semilogy(
        times * config.bias_lr / config.hist_lr,
        hist["large"]["tv_by_frame"],
        color="tab:red",
        lw=1,
        label=f"lr = {config.bias_lr:g}",
    )
    ax.axvline(config.hist_burn_in, color="k", ls="--", lw=0.8, label="burn-in ends")
    ax.axhline(config.tv_tolerance, color="0.4", ls=":", lw=0.8, label=f"tolerance {config.tv_tolerance:g}")
    ax.set_xlim(0, times[-1])
    ax.set_xlabel("time t = lr * steps")
    ax.set_ylabel("TV of one frame's histogram")
    ax.set_title("relaxation from a uniform start (one frame each)")
    ax.legend(fontsize=7)

    ax = axes[2]
    rows = esc["rows"]
    inv = np.array([1 / r["T"] for r in rows])
    grid = np.linspace(inv.min() * 0.95, inv.max() * 1.05, 25)
    ax.errorbar(
        inv,
        [r["tau"] for r in rows],
        yerr=[2 * r["tau_se"] for r in rows],
        fmt="o",
        color="tab:blue",
        label=f"Langevin, lr = {config.escape_lr:g} (2 SE)",
    )
    ax.semilogy(
        grid,
        [mfpt(geo["u"], geo["a"], geo["c"], 1 / g, points=4001) for g in grid],
        "k-",
        lw=1.2,
        label="exact MFPT",
    )
    ax.semilogy(
        grid,
        [1 / kramers_rate(geo["curv_a"], geo["curv_b"], geo["barrier"], 1 / g) for g in grid],
        "--",
        color="tab:orange",
        label="Kramers 1/k",
    )
    ax.set_xlabel("1/T")
    ax.set_ylabel("mean escape time")
    ax.set_title(
        f"Arrhenius: slope {esc['slope']:.3f} +- {esc['slope_se']:.3f}, barrier {geo['barrier']:.3f}"
    )
    ax.legend(fontsize=7)

    ax = axes[3]
    ratios = [r["barrier_over_T"] for r in rows]
    ax.errorbar(
        ratios,
        [r["ratio_kramers"] for r in rows],
        yerr=[2 * r["tau_se"] / r["tau_kramers"] for r in rows],
        fmt="o",
        color="tab:blue",
        label="measured tau * k (over-damped)",
    )
    fine = np.linspace(min(ratios) * 0.9, max(ratios) * 1.1, 25)
    corr = [
        mfpt(geo["u"], geo["a"], geo["c"], geo["barrier"] / f, points=4001)
        * kramers_rate(geo["curv_a"], geo["curv_b"], geo["barrier"], geo["barrier"] / f)
        for f in fine
    ]
    ax.plot(fine, corr, "k-", lw=1, label="exact MFPT * k (known correction)")
    ax.plot(
        ratios,
        [r["tau_chain"] / r["tau_kramers"] for r in rows],
        "x",
        color="tab:red",
        label=f"Euler chain MFPT * k, lr = {config.escape_lr:g}",
    )
    shifts = np.linspace(-0.12, 0.12, len(mom["rows"])) if len(mom["rows"]) > 1 else [0.0]
    for shift, r in zip(shifts, mom["rows"]):
        ax.errorbar(
            [config.momentum_barrier + shift],
            [r["ratio_kramers_moderate"]],
            yerr=[2 * r["tau_se"] / r["tau_kramers_moderate"]],
            fmt="s",
            ms=5,
            label=f"heavy ball gamma = {r['gamma']:g}: tau * k_moderate",
        )
    ax.axhline(1, color="0.5", lw=0.7)
    ax.set_xlabel("barrier / T")
    ax.set_ylabel("escape time x Kramers rate")
    ax.set_title("Kramers is asymptotic: the measured correction")
    ax.legend(fontsize=6.5)
    fig.tight_layout()
    return fig
