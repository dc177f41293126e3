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
   run (a per-particle lr). The particles are split into independent groups; the spread between the
   groups gives each bin's standard error, the TV's noise floor (the TV an exact sample of that spread
   would show) and, by the jackknife over groups, the TV's own standard error. The claim checks: the TV
   to exp(-U/T)/Z at the small lr equals its noise floor within 3 SE plus the chain's exact TV bias,
   and the share of samples left of the barrier top is Boltzmann's within 3 SE plus the chain's exact
   share bias; the theory checks: the TV at both lr equals its expected value under the chain's exact
   law and the sampling noise, within 3 SE.
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
   ``c``, and with the chain's own MFPT at this lr (exact for the simulated chain: the theory check,
   3 SE). The claim checks: Kramers' (1940) over-damped 1/k within 3 SE plus its known asymptotic correction
   (the chain's MFPT minus 1/k: the finite-barrier correction of the exact integral and the Euler
   step's bias, both exact), and the Arrhenius slope of log tau against 1/T (weighted least squares,
   var(log tau) = 1/escapes) equal to the barrier dU within 3 SE plus the largest deviation of the
   chain MFPTs' local slope from dU over the range (the prefactor's T-dependence: a weighted slope is
   an average of the local slopes).
3. With momentum: the heavy ball ``v <- beta v - lr (g + s z)``, ``w <- w + v`` is the step-h
   discretisation of ``x'' + gamma x' = -U' + noise`` (unit mass) with ``h = sqrt(lr)``,
   ``gamma = (1 - beta)/h`` and temperature ``T = lr s^2 / (2 (1 - beta))`` (the ``grad_noise``
   transform). At fixed h and T, a per-particle beta and s give several frictions in one run; the
   escape times are compared with Kramers' moderate-friction rate. No closed form gives that rate's
   finite-barrier correction at moderate friction; the bias allowed is the over-damped closed form's
   correction at the same barrier/T (exact as gamma -> infinity, where the heavy ball becomes the
   over-damped chain), applied to 1/k.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

from descent._errors import invalid, listed
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, number
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

NAME = "temperature"
PROTOCOL = (
    "Langevin descent w <- w - lr U'(w) + sqrt(2 lr T) z runs thousands of particles on the seeds' tilted "
    "double well: their stationary histogram is compared with exp(-U/T)/Z and with the Euler chain's exact "
    "stationary law, and their escape times from the local minimum at four temperatures with the chain's "
    "exact mean first-passage time, Kramers' rate and the Arrhenius slope. The heavy ball with gradient "
    "noise (temperature lr s^2 / (2 (1 - beta))) escapes at three frictions, compared with Kramers' "
    "moderate-friction rate."
)
CLAIM = (
    "Stochastic gradient descent introduces 'thermal fluctuations': gradient noise is a temperature. "
    "Langevin descent samples the Boltzmann density exp(-U/T)/Z, and the time to escape a local minimum "
    "follows Kramers' law (Arrhenius: log time grows like barrier/T)."
)
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Config:
    """Full size by default; ``quick()`` keeps every step size, temperature and barrier (so every
    shared check states the same criterion) and runs fewer particles for shorter windows."""

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
    groups: int = 20  # independent groups of particles: the histogram's standard errors
    # 2. escape times (over-damped)
    barriers: tuple[float, ...] = (3.0, 4.0, 5.0, 6.0)  # dU / T
    escape_particles: tuple[int, ...] = (4000, 4000, 4000, 5000)
    escape_lr: float = 0.01
    escape_time: float = 260.0  # censoring time (time units)
    target_energy: float = 0.0  # escape: first step with U <= target_energy (past the barrier)
    # 3. escape with momentum
    momentum_barrier: float = 4.0
    frictions: tuple[float, ...] = (1.0, 2.0, 4.0)
    momentum_particles: int = 2500  # per friction
    momentum_h: float = 0.05  # physical time step sqrt(lr)
    momentum_time: float = 320.0
    dtype: str = "float32"
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            hist_particles=2000,
            hist_window=5.0,
            bias_particles=800,
            groups=10,
            escape_particles=(1000, 800, 800, 1000),
            escape_time=100.0,
            frictions=(2.0,),
            momentum_particles=800,
            momentum_time=120.0,
            # Particle i's noise depends only on (seed, i), so at seed 0 the quick sample would be the
            # full sample's first particles; seed 1 draws independent ones. (At seed 0 the first 1000
            # particles at dU/T = 3 escape 3.7 SE early, the full 4000 1.4 SE: a rare draw, not a bias;
            # 16 blocks of 1000 at two other seeds spread with SD ~1 SE around the chain's MFPT.)
            seed=1,
        )

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise invalid("dtype", self.dtype, f"one of: {listed(list(DTYPES))}")
        if len(self.barriers) != len(self.escape_particles) or len(self.barriers) < 2:
            raise invalid("barriers", self.barriers, "two or more, one particle count each")
        if self.groups < 2 or self.hist_particles % self.groups or self.bias_particles % self.groups:
            raise invalid(
                "groups", self.groups, "at least 2, dividing hist_particles and bias_particles (equal groups)"
            )


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


def _tv_jackknife_se(pooled: np.ndarray, per_group: np.ndarray, reference: np.ndarray) -> float:
    """Jackknife standard error of ``TV(pooled, reference)`` over equal-sized independent groups
    (``pooled`` is the mean of the rows of ``per_group``)."""
    g = len(per_group)
    leave_one_out = np.array([_tv((pooled * g - per_group[i]) / (g - 1), reference) for i in range(g)])
    return math.sqrt((g - 1) / g * float(((leave_one_out - leave_one_out.mean()) ** 2).sum()))


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
        se = per_group.std(axis=0, ddof=1) / math.sqrt(config.groups)  # each bin's SE, from the groups
        left_mask = np.append(0.5 * (edges[1:] + edges[:-1]) < geo["b"], False)
        share_groups = per_group[:, left_mask].sum(axis=1)
        out[label] = {
            "lr": step,
            "particles": hi - lo,
            "samples": int(sample.size),
            "histogram": q,
            "chain": chain,
            "tv": _tv(q, p),
            "tv_se": _tv_jackknife_se(q, per_group, p),
            "tv_vs_chain": _tv(q, chain),
            "tv_bias": _tv(chain, p),
            # the TV an exact sample from exp(-U/T)/Z with this spread would show: sum E|e_i| / 2
            "tv_noise_floor": 0.5 * float(np.sqrt(2 / np.pi) * se.sum()),
            # the TV expected under the chain's exact law and the same sampling noise
            "tv_expected": 0.5 * float(_expected_abs(chain - p, se).sum()),
            "left_share": float(q[left_mask].sum()),
            "left_share_se": float(share_groups.std(ddof=1) / math.sqrt(config.groups)),
            "left_share_boltzmann": float(p[left_mask].sum()),
            "left_share_chain": float(chain[left_mask].sum()),
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
        tau, tau_se, n_esc = _censored_mean(times, config.escape_time)
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
                "tau_se": tau_se,
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
    log_chain = np.log([r["tau_chain"] for r in rows])
    chain_slope, _ = _weighted_slope(inv_t, log_chain, weights)
    mfpt_slope, _ = _weighted_slope(inv_t, np.log([r["tau_mfpt"] for r in rows]), weights)
    # A weighted least-squares slope is a weighted average (non-negative weights summing to 1) of the
    # slopes between neighbouring points, so its expectation lies within the largest deviation of those
    # slopes of log(chain MFPT) from the barrier: the Arrhenius check's bias, exact and fixed by the
    # barriers and the lr alone.
    order = np.argsort(inv_t)
    local = np.diff(log_chain[order]) / np.diff(inv_t[order])
    return {
        "rows": rows,
        "slope": slope,
        "slope_se": slope_se,
        "slope_chain": chain_slope,
        "slope_mfpt": mfpt_slope,
        "local_slopes": local,
        "slope_bias": float(np.abs(local - dU).max()),
        "steps": total,
    }


def _censored_mean(times: np.ndarray, horizon: float) -> tuple[float, float, int]:
    """The exponential maximum-likelihood mean with censoring, (time at risk) / (escapes), its
    standard error mean / sqrt(escapes), and the escapes; ``times`` is NaN where censored at ``horizon``."""
    escaped = np.isfinite(times)
    count = int(escaped.sum())
    tau = float(times[escaped].sum() + (~escaped).sum() * horizon) / max(count, 1)
    return tau, tau / math.sqrt(max(count, 1)), count


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
        tau, tau_se, n_esc = _censored_mean(np.where(reached >= 0, reached * h, np.nan), steps * h)
        rate = kramers_rate_moderate(geo["curv_a"], geo["curv_b"], dU, temp, gamma)
        rows.append(
            {
                "gamma": gamma,
                "beta": 1 - gamma * h,
                "grad_noise": float(sigma[mask][0]),
                "particles": int(mask.sum()),
                "escaped": n_esc,
                "tau": tau,
                "tau_se": tau_se,
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

    config_dict = {
        **asdict(config),
        "landscape": f"quartic-well dim=1: (x^2 - 1)^2 - {config.tilt:g} x (the seeds' double well, x part)",
        "escape": f"first step with U <= {config.target_energy:g}, i.e. x >= c = {geo['c']:.4f} (stop)",
        "momentum mapping": "h = sqrt(lr), gamma = (1 - beta)/h, T = lr s^2 / (2 (1 - beta)), unit mass",
    }
    figures = [_figure(config, geo, hist, esc, mom), _relaxation_figure(config, hist)]
    return Result(NAME, CLAIM, PROTOCOL, _rows(config, geo, hist, esc, mom), config_dict, figures, runs.specs)


HIST = "stationary histogram (theory: exp(-U/T)/Z; the Euler chain's exact stationary law)"
ESCAPE = "escape time (theory: the Euler chain's exact mean first-passage time)"
KRAMERS = "escape time (theory: Kramers' over-damped rate, with its exact finite-barrier correction)"
ARRHENIUS = "Arrhenius slope (theory: the barrier dU)"
MOMENTUM = "heavy-ball escape (theory: Kramers' moderate-friction rate)"


def _rows(config: Config, geo: dict, hist: dict, esc: dict, mom: dict) -> list[Row]:
    """Claim checks: the histogram is exp(-U/T)/Z up to the Euler step's exact bias (TV and the
    left-well share), each escape time is Kramers' 1/k up to its known correction, the Arrhenius slope
    is the barrier, and the heavy ball escapes at Kramers' moderate-friction rate. Theory checks: the
    simulation against the Euler chain's exact stationary law and exact first-passage times."""
    temp, dU = config.hist_temperature, geo["barrier"]
    small, large = hist["small"], hist["large"]
    out: list[Row] = [
        number("barrier", "barrier dU = U(b) - U(a)", dU, group=HIST),
        number("escape_target", "escape level's position c (U(c) = target energy)", geo["c"], group=HIST),
        # claim: TV to Boltzmann = what sampling noise alone gives, + the chain's exact O(lr) TV bias
        # (theory.escape.chain_bin_probabilities: the Euler chain's stationary law, exact)
        agrees(
            "histogram/tv_boltzmann",
            f"TV of the histogram (lr {config.hist_lr:g}) to exp(-U/T)/Z, against its noise floor",
            small["tv"],
            small["tv_noise_floor"],
            se=small["tv_se"],
            bias=small["tv_bias"],
            about="claim",
            group=HIST,
            key=True,
            if_pass=f"At T = {temp:g} and lr = {config.hist_lr:g} the stationary histogram "
            f"({small['samples']} samples) is exp(-U/T)/Z: TV {small['tv']:.4f} +- {small['tv_se']:.4f}, "
            f"where sampling noise alone gives {small['tv_noise_floor']:.4f} and the Euler step's exact "
            f"bias adds at most {small['tv_bias']:.4f}.",
            if_fail=f"At T = {temp:g} and lr = {config.hist_lr:g} the stationary histogram is not "
            f"exp(-U/T)/Z: TV {small['tv']:.4f} +- {small['tv_se']:.4f}, beyond the noise floor "
            f"{small['tv_noise_floor']:.4f} plus the Euler step's exact bias {small['tv_bias']:.4f}.",
        ),
        # claim: left-well share = Boltzmann's, + the chain's exact share bias (same closed form)
        agrees(
            "histogram/left_share",
            f"share of samples left of the barrier top (lr {config.hist_lr:g})",
            small["left_share"],
            small["left_share_boltzmann"],
            se=small["left_share_se"],
            bias=abs(small["left_share_chain"] - small["left_share_boltzmann"]),
            about="claim",
            group=HIST,
            if_pass=f"The left well holds {small['left_share']:.4f} +- {small['left_share_se']:.4f} of "
            f"the samples, Boltzmann's {small['left_share_boltzmann']:.4f}.",
            if_fail=f"The left well holds {small['left_share']:.4f} +- {small['left_share_se']:.4f} of "
            f"the samples, not Boltzmann's {small['left_share_boltzmann']:.4f}.",
        ),
    ]
    for h in (small, large):
        out.append(
            agrees(
                f"histogram/tv_chain/lr={h['lr']:g}",
                f"TV of the histogram (lr {h['lr']:g}) to exp(-U/T)/Z, against its expected value under "
                "the Euler chain's exact law and the sampling noise",
                h["tv"],
                h["tv_expected"],
                se=h["tv_se"],
                group=HIST,
                key=h is large,
            )
        )
        out.append(
            number(
                f"histogram/tv_bias/lr={h['lr']:g}",
                f"TV of the Euler chain's exact stationary law (lr {h['lr']:g}) to exp(-U/T)/Z",
                h["tv_bias"],
                group=HIST,
            )
        )

    for r in esc["rows"]:
        ratio = f"{r['barrier_over_T']:g}"
        where = f"at dU/T = {ratio} (T = {r['T']:.4f}; {r['escaped']} of {r['particles']} escaped)"
        out.append(
            agrees(
                f"escape_time/dU/T={ratio}",
                f"mean escape time {where}, against the Euler chain's exact MFPT at lr {config.escape_lr:g}",
                r["tau"],
                r["tau_chain"],
                se=r["tau_se"],
                group=ESCAPE,
                unit="time",
            )
        )
        out.append(
            number(
                f"mfpt/dU/T={ratio}",
                f"exact continuous-time MFPT at dU/T = {ratio} (the chain's: {r['chain_bias']:+.2%})",
                r["tau_mfpt"],
                group=ESCAPE,
                unit="time",
            )
        )
        # claim: Kramers' 1/k; bias = the chain's exact MFPT minus 1/k: the finite-barrier correction
        # of the exact MFPT integral (theory.escape.mfpt) and the Euler step's (theory.escape.chain_mfpt)
        correction = abs(r["tau_chain"] - r["tau_kramers"])
        out.append(
            agrees(
                f"kramers/dU/T={ratio}",
                f"mean escape time {where}, against Kramers' 1/k",
                r["tau"],
                r["tau_kramers"],
                se=r["tau_se"],
                bias=correction,
                about="claim",
                group=KRAMERS,
                unit="time",
                key=r is esc["rows"][-1],
                if_pass=f"At dU/T = {ratio} the escape time {r['tau']:.1f} +- {r['tau_se']:.1f} is "
                f"Kramers' 1/k = {r['tau_kramers']:.1f} times {r['ratio_kramers']:.3f}, the known "
                f"finite-barrier correction being {r['tau_chain'] / r['tau_kramers']:.3f}.",
                if_fail=f"At dU/T = {ratio} the escape time {r['tau']:.1f} +- {r['tau_se']:.1f} is not "
                f"Kramers' 1/k = {r['tau_kramers']:.1f} within its known correction (x "
                f"{r['tau_chain'] / r['tau_kramers']:.3f}).",
            )
        )
    span = f"dU/T {esc['rows'][0]['barrier_over_T']:g} to {esc['rows'][-1]['barrier_over_T']:g}"
    out.append(
        agrees(
            "arrhenius/slope",
            f"Arrhenius slope d log tau / d(1/T) over {span}, against the barrier dU",
            esc["slope"],
            dU,
            se=esc["slope_se"],
            bias=esc["slope_bias"],  # the chain MFPTs' local slopes, exact (see _escape)
            about="claim",
            group=ARRHENIUS,
            key=True,
            if_pass=f"log tau grows like barrier/T: the Arrhenius slope is {esc['slope']:.4f} +- "
            f"{esc['slope_se']:.4f} against the barrier {dU:.4f} (the prefactor's T-dependence moves "
            f"the local slope by up to {esc['slope_bias']:.4f}).",
            if_fail=f"log tau does not grow like barrier/T: the Arrhenius slope is {esc['slope']:.4f} +- "
            f"{esc['slope_se']:.4f} against the barrier {dU:.4f}, beyond the prefactor's "
            f"{esc['slope_bias']:.4f}.",
        )
    )
    out.append(
        agrees(
            "arrhenius/slope_chain",
            f"Arrhenius slope over {span}, against the same fit to the Euler chain's exact MFPTs",
            esc["slope"],
            esc["slope_chain"],
            se=esc["slope_se"],
            group=ARRHENIUS,
        )
    )

    od = mom["overdamped_correction"]
    for r in mom["rows"]:
        gamma = f"{r['gamma']:g}"
        # claim: Kramers' moderate-friction 1/k. No closed form gives its finite-barrier correction at
        # moderate friction; the bias is the over-damped closed form's (theory.escape.mfpt times
        # kramers_rate, minus 1) at the same barrier/T, exact in the limit gamma -> infinity.
        out.append(
            agrees(
                f"momentum/gamma={gamma}",
                f"heavy-ball escape time at friction {gamma} (beta {r['beta']:.3f}, dU/T = "
                f"{config.momentum_barrier:g}), against Kramers' moderate-friction 1/k",
                r["tau"],
                r["tau_kramers_moderate"],
                se=r["tau_se"],
                bias=od * r["tau_kramers_moderate"],
                about="claim",
                group=MOMENTUM,
                unit="time",
                key=r["gamma"] == 2.0,
                if_pass=f"Gradient noise in the heavy ball is a temperature: at friction {gamma} it "
                f"escapes in {r['tau']:.1f} +- {r['tau_se']:.1f}, Kramers' moderate-friction 1/k = "
                f"{r['tau_kramers_moderate']:.1f} times {r['ratio_kramers_moderate']:.3f} (the over-damped "
                f"correction at this barrier/T is {1 + od:.3f}).",
                if_fail=f"At friction {gamma} the heavy ball escapes in {r['tau']:.1f} +- "
                f"{r['tau_se']:.1f}, not Kramers' moderate-friction 1/k = {r['tau_kramers_moderate']:.1f} "
                f"within the over-damped correction ({1 + od:.3f}).",
            )
        )
    return out


def _figure(config: Config, geo: dict, hist: dict, esc: dict, mom: dict):
    fig, axes = subplots(1, 3, height=4.6)
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
        label=f"Langevin, lr {config.hist_lr:g}",
    )
    ax.step(
        centres,
        hist["large"]["histogram"][:-1] / width,
        where="mid",
        color="tab:red",
        lw=1,
        label=f"Langevin, lr {config.bias_lr:g}",
    )
    ax.plot(centres, hist["boltzmann"][:-1] / width, "k-", lw=1.5, label="exp(-U/T)/Z")
    ax.plot(
        centres,
        hist["large"]["chain"][:-1] / width,
        "r:",
        lw=1.2,
        label=f"Euler chain, lr {config.bias_lr:g}",
    )
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title(
        f"stationary histogram, T = {config.hist_temperature:g}\nTV {hist['small']['tv']:.4f} "
        f"(lr {config.hist_lr:g}), {hist['large']['tv']:.4f} (lr {config.bias_lr:g})",
        fontsize=10,
    )
    ax.legend(fontsize=9, loc="upper left")

    ax = axes[1]
    rows = esc["rows"]
    inv = np.array([1 / r["T"] for r in rows])
    grid = np.linspace(inv.min() * 0.95, inv.max() * 1.05, 25)
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
    ax.errorbar(
        inv,
        [r["tau"] for r in rows],
        yerr=[3 * r["tau_se"] for r in rows],
        fmt="o",
        color="tab:blue",
        label=f"Langevin, lr {config.escape_lr:g} (3 SE)",
    )
    ax.set_xlabel("1/T")
    ax.set_ylabel("mean escape time")
    ax.set_title(
        f"Arrhenius: slope {esc['slope']:.3f} +- {esc['slope_se']:.3f}\nbarrier dU = {geo['barrier']:.3f}",
        fontsize=10,
    )
    ax.legend(fontsize=9)

    ax = axes[2]
    ratios = [r["barrier_over_T"] for r in rows]
    ax.errorbar(
        ratios,
        [r["ratio_kramers"] for r in rows],
        yerr=[3 * r["tau_se"] / r["tau_kramers"] for r in rows],
        fmt="o",
        color="tab:blue",
        label="Langevin: tau k (3 SE)",
    )
    fine = np.linspace(min(ratios) * 0.9, max(ratios) * 1.1, 25)
    corr = [
        mfpt(geo["u"], geo["a"], geo["c"], geo["barrier"] / f, points=4001)
        * kramers_rate(geo["curv_a"], geo["curv_b"], geo["barrier"], geo["barrier"] / f)
        for f in fine
    ]
    ax.plot(fine, corr, "k-", lw=1, label="exact MFPT k")
    ax.plot(
        ratios,
        [r["tau_chain"] / r["tau_kramers"] for r in rows],
        "x",
        color="tab:red",
        label="Euler chain MFPT k",
    )
    shifts = np.linspace(-0.12, 0.12, len(mom["rows"])) if len(mom["rows"]) > 1 else [0.0]
    for shift, r in zip(shifts, mom["rows"]):
        ax.errorbar(
            [config.momentum_barrier + shift],
            [r["ratio_kramers_moderate"]],
            yerr=[3 * r["tau_se"] / r["tau_kramers_moderate"]],
            fmt="s",
            ms=5,
            label=f"heavy ball, gamma {r['gamma']:g}",
        )
    ax.axhline(1, color="0.5", lw=0.7)
    ax.set_ylim(0.8, 1.25)  # room below the points for the legend
    ax.set_xlabel("barrier / T")
    ax.set_ylabel("escape time x Kramers rate")
    ax.set_title("Kramers' law is asymptotic:\nthe measured and exact corrections", fontsize=10)
    ax.legend(fontsize=9, ncol=2, loc="lower left")
    return finish(fig)


def _relaxation_figure(config: Config, hist: dict):
    """Each frame's TV against the step (both groups take the same steps; the large lr's time runs
    faster by bias_lr / hist_lr)."""
    fig, ax = subplots(1, 1, height=3.6)
    steps = hist["times"] / config.hist_lr
    ax.semilogy(steps, hist["small"]["tv_by_frame"], color="tab:blue", lw=1, label=f"lr {config.hist_lr:g}")
    ax.semilogy(steps, hist["large"]["tv_by_frame"], color="tab:red", lw=1, label=f"lr {config.bias_lr:g}")
    for h, color in ((hist["small"], "tab:blue"), (hist["large"], "tab:red")):
        ax.axhline(h["tv_bias"], color=color, ls=":", lw=1)
    ax.axvline(config.hist_burn_in / config.hist_lr, color="k", ls="--", lw=0.8, label="burn-in ends")
    ax.set_xlim(0, steps[-1])
    ax.set_xlabel("step (time = lr * step)")
    ax.set_ylabel("TV of one frame's histogram")
    ax.set_title(
        "relaxation from a uniform start: each frame's TV to exp(-U/T)/Z\n"
        "(dotted: the Euler chain's exact bias; one frame's TV also holds its sampling noise)",
        fontsize=10,
    )
    ax.legend(fontsize=9)
    return finish(fig)
