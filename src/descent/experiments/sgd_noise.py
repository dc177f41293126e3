"""SGD noise: mini-batch gradient noise measured on a real empirical risk, its temperature, and where
noisy descent ends up when a sharp and a flat minimum have equal depth.

1. The noise. The objective is ``descent.objectives.logistic_risk()``, an `EmpiricalRisk`: logistic
   regression with two weights on scikit-learn's breast-cancer data (N = 569, standardised mean radius
   and mean texture). At the fitted weights w* the per-example gradients (the landscape package's
   closed form) give the per-example covariance C. For each batch size B, many mini-batches are drawn
   by the engine's own sampler (``descent.dynamics.batches.draw_indices``: the indices a run would use,
   with and without replacement), and the variance of their mean gradient along each eigenvector of C
   (standard errors from blocks of draws) is compared with ``lambda/B`` and
   ``lambda/B * (N - B)/(N - 1)`` (sampling theory: the covariance of a mean of B draws).
2. Its temperature. Mini-batch SGD from w*, one `RunSpec` on the risk holding every batch size and
   sampling mode (per-particle ``batch_size`` and ``batch_mode``): the engine draws each particle's
   batches. The stationary covariance S of the iterates (the saved frames) gives the equipartition
   temperature ``tr(H S)/d`` (the mean excess loss is ``d T/2``), compared with ``lr s^2/(2B)`` [times
   ``(N - B)/(N - 1)``], ``s^2 = tr(C)/d``; that formula is the small-lr limit, and the exact discrete
   Lyapunov solution of linearised SGD, ``S = (I - lr H) S (I - lr H) + lr^2 C_B``, gives both the
   simulation's reference and the formula's finite-step bias. The scalar formula takes one ``s^2`` for
   every direction, which holds when C is isotropic; here C's eigenvalues differ about sevenfold and
   C ~ H, so the per-direction temperatures ``h_i S_ii`` (in the Hessian's eigenbasis) differ: the noise
   is a temperature *matrix*, ``lr C_B / 2``. "Acts as a temperature" (one temperature in every
   direction, equipartition) is checked directly.
3. Sharp or flat. On ``sharp-flat`` (1-D: ``U = H (s(x)^2 - 1)^2``, ``s = (e^{cx} - 1)/c``; two minima of
   depth 0, curvatures in ratio ((1 + c)/(1 - c))^2 = 9, starts uniform between them), gradient descent
   with noise of variance ``sigma^2/B`` runs for the same physical time ``t = steps * lr`` on a grid of
   (lr, B), one run per lr and noise model. Two noise models: isotropic (the ``grad_noise`` transform
   with ``sigma/sqrt(B)``, a pure temperature ``T = lr sigma^2/(2B)``) and SGD-like (the objective
   ``sharp_flat_risk``: a synthetic data set whose per-example losses ``U + xi_i s(x)`` average to U,
   mini-batches of B examples drawn by the engine; their gradient noise ``xi_B s'(x)`` has variance
   proportional to the curvature at the minima, as measured C ~ H on the real risk, and equal to the
   isotropic one at the barrier top). The share ending in the flat basin (x < 0, the barrier top) is
   compared with the exact solution of the 1-D Fokker-Planck (Smoluchowski) equation with the local
   temperature ``T(x) = lr Var(noise)(x)/2`` (Risken, "The Fokker-Planck Equation", 1989), and with the
   two-state picture: the Boltzmann (stationary) share and the Kramers (1940) mean-first-passage rates.
   Plain GD (no noise) ends in the flat basin from the starts left of the barrier: the basin share
   ``-x_flat/(x_sharp - x_flat)``, the bound noise must beat to "find the flatter minimum"; and if the
   noise acts as the temperature ``lr sigma^2/(2B)``, cells of equal lr/B end alike.

The runs on objectives with data pass the objective, built once, to `run_spec` with their spec
(``sharp-flat-risk``, from `descent.objectives.perturbed`, is not in the landscape registry).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent.dynamics.batches import draw_indices
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, exceeds, number, share_se
from descent.landscapes import get_landscape
from descent.landscapes.thermal import logistic_per_example_gradients, sharp_flat_points
from descent.objectives import EmpiricalRisk, logistic_risk
from descent.objectives.perturbed import sharp_flat_risk
from descent.spec import RunSpec
from descent.theory.escape import (
    mfpt_local,
    smoluchowski_propagate,
    splitting_probability,
    stationary_share,
)
from descent.theory.noise import (
    equipartition_temperature,
    minibatch_covariance,
    sgd_stationary_covariance,
    sgd_temperature,
    without_replacement_factor,
)

NAME = "sgd-noise"
CLAIM = (
    "Mini-batch SGD's gradient noise acts as a temperature, lr * sigma^2 / (2B), and these thermal "
    "fluctuations help it jump out of sharp minima and find flatter, more robust ones."
)
PROTOCOL = (
    "On a logistic regression of the breast-cancer data, mini-batches drawn by the engine give the "
    "gradient noise's covariance per batch size, and mini-batch SGD started at the fitted weights gives "
    "its stationary temperature, compared with lr s^2/(2B) and the exact linearised (Lyapunov) solution. "
    "On a landscape with a sharp and a flat minimum of equal depth, noisy gradient descent (isotropic "
    "noise, or SGD-like mini-batch noise) runs from starts between the minima for the same time at each "
    "(lr, B); the share ending in the flat basin is compared with noiseless GD and with Fokker-Planck."
)


@dataclass(frozen=True)
class Config:
    # 1. noise covariance at the fitted weights
    batches: tuple[int, ...] = (1, 4, 16, 64, 256, 512)
    draws: int = 40000
    blocks: int = 20
    # 2. SGD temperature: one run with every batch size
    sgd_lr: float = 1.0
    # lr = 1: at B = 16 the stationary T is already ~3 % above the linear theory (non-quadratic loss on
    # the scale of the fluctuations), ~10 % at B = 4, ~2 % at B = 32; ~1 % from B = 64 on
    sgd_with: tuple[int, ...] = (64, 128, 512)
    sgd_without: tuple[int, ...] = (256, 512)
    sgd_particles: int = 200  # per (batch, mode)
    sgd_groups: int = 20  # groups of particles behind the temperature's standard error
    sgd_burn_in: int = 300
    sgd_frames: int = 40
    sgd_frame_every: int = 30
    # 3. sharp or flat
    height: float = 0.25
    skew: float = 0.5
    sigma: float = 2.5
    run_time: float = 100.0
    lrs: tuple[float, ...] = (0.01, 0.02, 0.04)
    flat_batches: tuple[int, ...] = (1, 2, 4, 8)
    flat_particles: int = 500  # per (lr, B, noise model)
    data_size: int = 512  # synthetic examples behind the SGD-like noise
    fp_cells: int = 800  # grid of the Fokker-Planck prediction
    curve_points: int = 13
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            batches=(1, 16, 256),
            draws=8000,
            sgd_with=(64, 256),
            sgd_without=(256,),
            sgd_particles=120,
            sgd_burn_in=200,
            sgd_frames=20,
            sgd_frame_every=25,
            lrs=(0.02, 0.04),
            flat_batches=(1, 2, 4),
            flat_particles=300,
            fp_cells=500,
            curve_points=7,
        )


# --- 1. noise covariance ------------------------------------------------------------------------
MODES = {True: "replacement", False: "without"}  # replacement? -> the engine's batch_mode
MODE_WORDS = {True: "with", False: "without"}


def per_example_gradients(risk: EmpiricalRisk, w: torch.Tensor) -> torch.Tensor:
    """Every example's gradient of the logistic loss at ``w`` ``[2]``: ``[n, 2]`` (closed form, from the
    landscape package)."""
    return logistic_per_example_gradients(w, risk.features, risk.targets, risk.l2)


def batch_gradients(
    per_example: torch.Tensor, batch: int, replacement: bool, draws: int, seed: int, first: int = 0
) -> torch.Tensor:
    """The mean gradient of ``draws`` mini-batches of ``batch`` examples, ``[draws, 2]``: the batches
    the engine draws (``draw_indices``, step 0) for particles ``first .. first + draws - 1``."""
    n = per_example.shape[0]
    particles = torch.arange(first, first + draws, dtype=torch.int64)
    indices = draw_indices(seed, MODES[replacement], batch, n, particles, 0)  # [draws, batch]
    return per_example[indices].mean(dim=1)


def _mean_se_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means of ``values`` ``[groups, k]`` and their standard errors (independent groups)."""
    return values.mean(0), values.std(0, ddof=1) / math.sqrt(values.shape[0])


def _noise(config: Config, risk: EmpiricalRisk, w_star: torch.Tensor) -> dict:
    """Per (B, mode): the batch-mean gradient's variance along C's flat and sharp eigenvectors, times
    B/lambda (1 with replacement, (N - B)/(N - 1) without, by sampling theory), SEs from blocks."""
    grads = per_example_gradients(risk, w_star)  # [n, 2]
    n = grads.shape[0]
    mean = grads.mean(0)
    centred = grads - mean
    cov = (centred.T @ centred / n).numpy()
    eig, vec = np.linalg.eigh(cov)  # ascending: flat, sharp
    rows = []
    per_block = config.draws // config.blocks
    for index, (batch, replacement) in enumerate((b, m) for b in config.batches for m in (True, False)):
        if batch > n:
            continue
        relative = []  # [blocks, 2]: variance along each eigenvector x B / eigenvalue
        for block in range(config.blocks):
            first = block * per_block
            draws = batch_gradients(grads, batch, replacement, per_block, config.seed + index, first)
            along = (draws - mean).numpy() @ vec  # [draws, 2] in C's eigenbasis
            relative.append((along**2).mean(0) * batch / eig)
        value, se = _mean_se_rows(np.array(relative))
        factor = 1.0 if replacement else without_replacement_factor(n, batch)
        rows.append(
            {"batch": batch, "replacement": replacement, "relative": value, "se": se, "factor": factor}
        )
    return {"C": cov, "eig_C": eig, "anisotropy": float(eig[-1] / eig[0]), "rows": rows, "n": n}


# --- 2. the temperature of mini-batch SGD, one run with every batch size ---------------------------------
def _sgd(config: Config, risk: EmpiricalRisk, w_star, hessian, noise, runs: Runs, tick) -> dict:
    cells = [(b, True) for b in config.sgd_with] + [(b, False) for b in config.sgd_without]
    per = config.sgd_particles
    steps = config.sgd_burn_in + config.sgd_frames * config.sgd_frame_every
    spec = RunSpec(
        landscape="logistic-risk",
        optimizer="gd",
        hyper={"lr": config.sgd_lr},
        starts=[w_star.tolist()],
        steps=steps,
        save=f"every:{config.sgd_frame_every}",
        batch_size=[b for b, _ in cells for _ in range(per)],
        batch_mode=[MODES[m] for _, m in cells for _ in range(per)],
        dtype="float32",
        seed=config.seed + 12,
    )
    traj = runs(spec, tick, objective=risk)
    frames = traj.steps.numpy() > config.sgd_burn_in
    positions = traj.positions[frames].double().numpy()  # [F, particles, 2]
    evals, evecs = np.linalg.eigh(hessian)  # ascending: flat, sharp
    n = noise["n"]
    s2 = float(np.trace(noise["C"]) / 2)
    rows = []
    for k, (b, mode) in enumerate(cells):
        sample = positions[:, k * per : (k + 1) * per]  # [F, per, 2]
        centre = sample.reshape(-1, 2).mean(0)  # one stationary mean: a group's own would drop its spread
        per_group = []  # [groups, 3]: T, T along H's flat direction, T along its sharp one
        for g in np.array_split(np.arange(per), config.sgd_groups):
            part = sample[:, g].reshape(-1, 2) - centre
            part_cov = part.T @ part / len(part)
            along = evals * np.diag(evecs.T @ part_cov @ evecs)
            per_group.append([equipartition_temperature(hessian, part_cov), *along])
        per_group = np.array(per_group)
        (temp, flat_t, sharp_t), (temp_se, _, _) = _mean_se_rows(per_group)
        ratio, ratio_se = _ratio_se(per_group[:, 2], per_group[:, 1])
        hot, hot_se = _ratio_se(per_group[:, 2], per_group[:, 0])
        exact = sgd_stationary_covariance(
            hessian, minibatch_covariance(noise["C"], b, n, mode), config.sgd_lr
        )
        exact_along = evals * np.diag(evecs.T @ exact @ evecs)
        rows.append(
            {
                "batch": int(b),
                "replacement": bool(mode),
                "T": float(temp),
                "T_se": float(temp_se),
                "T_lyapunov": equipartition_temperature(hessian, exact),
                "T_formula": sgd_temperature(config.sgd_lr, s2, b, n=n, replacement=mode),
                "T_flat": float(flat_t),
                "T_sharp": float(sharp_t),
                "ratio": ratio,
                "ratio_se": ratio_se,
                "sharp_over_mean": hot,
                "sharp_over_mean_se": hot_se,
                "T_flat_lyapunov": float(exact_along[0]),
                "T_sharp_lyapunov": float(exact_along[1]),
            }
        )
    first = positions[:, :per].reshape(-1, 2)
    b0, mode0 = cells[0]
    cloud_cov = sgd_stationary_covariance(
        hessian, minibatch_covariance(noise["C"], b0, n, mode0), config.sgd_lr
    )
    return {
        "rows": rows,
        "hessian_eigenvalues": evals,
        "s2": s2,
        "cloud": first[:: max(1, len(first) // 600)],
        "cloud_batch": int(b0),
        "cloud_cov": cloud_cov,
    }


def _ratio_se(top: np.ndarray, bottom: np.ndarray) -> tuple[float, float]:
    """mean(top)/mean(bottom) over independent groups, and its delta-method standard error."""
    n = len(top)
    a, b = float(top.mean()), float(bottom.mean())
    ratio = a / b
    cov = np.cov(np.stack([top, bottom]))
    var = ratio**2 * (cov[0, 0] / a**2 + cov[1, 1] / b**2 - 2 * cov[0, 1] / (a * b)) / n
    return ratio, float(math.sqrt(max(var, 0.0)))


# --- 3. sharp or flat ------------------------------------------------------------------------------
def _sharp_flat_functions(config: Config):
    c, height = config.skew, config.height

    def s(x):
        return np.expm1(c * x) / c if c else np.asarray(x, dtype=float)

    def ds(x):
        return np.exp(c * np.asarray(x, dtype=float)) if c else np.ones_like(np.asarray(x, dtype=float))

    def gradient(x):
        return 4 * height * s(x) * (s(x) ** 2 - 1) * ds(x)

    return s, ds, gradient


def _share_theory(config: Config, geo: dict, lr_over_b: float, model: str) -> dict:
    """Predicted flat share after ``run_time`` for the noise level lr/B: the exact Smoluchowski
    evolution where it is numerically safe, else (cold: barrier/T > 40) the two-state formula."""
    _, ds, gradient = _sharp_flat_functions(config)
    t0 = lr_over_b * config.sigma**2 / 2  # temperature at the barrier top
    temp = t0 if model == "isotropic" else (lambda x: t0 * ds(x) ** 2)
    lo, hi = geo["lower"], geo["upper"]
    flat, sharp = geo["flat"], geo["sharp"]
    equilibrium = stationary_share(gradient, temp, 0.0, lo, hi)
    starts = np.linspace(flat, sharp, 2001)
    p0 = float(splitting_probability(gradient, temp, starts, flat, sharp).mean())
    tau_sf = mfpt_local(gradient, temp, sharp, flat, lower=hi)
    tau_fs = mfpt_local(gradient, temp, flat, sharp, lower=lo)
    rate = 1 / tau_sf + 1 / tau_fs
    two_state = equilibrium + (p0 - equilibrium) * math.exp(-rate * config.run_time)
    share, method = two_state, "two-state"
    if config.height / t0 <= 40:
        edges, probs = smoluchowski_propagate(
            gradient,
            temp,
            lambda x: ((x >= flat) & (x <= sharp)).astype(float),
            [config.run_time],
            lo,
            hi,
            config.fp_cells,
        )
        if abs(probs.sum() - 1) < 1e-6:
            centres = 0.5 * (edges[1:] + edges[:-1])
            share, method = float(probs[0, centres < 0].sum()), "Smoluchowski"
    return {
        "share": share,
        "method": method,
        "equilibrium": equilibrium,
        "initial": p0,
        "tau_sharp_to_flat": tau_sf,
        "tau_flat_to_sharp": tau_fs,
        "two_state": two_state,
        "T_barrier": t0,
    }


def _flat(config: Config, runs: Runs, tick) -> dict:
    landscape = get_landscape("sharp-flat", height=config.height, skew=config.skew, dim=1)
    geo = sharp_flat_points(config.height, config.skew)
    geo["lower"], geo["upper"] = landscape.bounds[0]
    models = ("isotropic", "SGD-like")
    cells = [(m, lr, b) for m in models for lr in config.lrs for b in config.flat_batches]
    per = config.flat_particles
    batches = np.repeat(config.flat_batches, per)  # the batch size of each particle of a run
    flat, sharp = geo["flat"], geo["sharp"]
    generator = torch.Generator().manual_seed(config.seed + 21)
    risk_params = {
        "height": config.height,
        "skew": config.skew,
        "sigma": config.sigma,
        "size": config.data_size,
        "seed": config.seed + 22,
    }
    risk = sharp_flat_risk(**risk_params)
    total = len(models) * sum(int(round(config.run_time / lr)) for lr in config.lrs)
    done = 0
    final: dict[tuple, np.ndarray] = {}
    for index, lr in enumerate(config.lrs):
        steps = int(round(config.run_time / lr))  # the same physical time t = steps * lr for every lr
        for model in models:
            u = torch.rand(len(batches), generator=generator, dtype=torch.float64)
            starts = (flat + (sharp - flat) * u).unsqueeze(1).tolist()  # uniform between the minima
            common = {
                "optimizer": "gd",
                "hyper": {"lr": lr},
                "starts": starts,
                "steps": steps,
                "save": "summary",
                "dtype": "float32",
                "seed": config.seed + 23 + 2 * index + models.index(model),
            }
            if model == "isotropic":  # Gaussian gradient noise of variance sigma^2 / B
                params = {"height": config.height, "skew": config.skew, "dim": 1}
                noise = [{"kind": "grad_noise", "sigma": (config.sigma / np.sqrt(batches)).tolist()}]
                spec = RunSpec(landscape="sharp-flat", landscape_params=params, transforms=noise, **common)
                objective = None
            else:  # mini-batches of B examples of the synthetic data set, drawn by the engine
                spec = RunSpec(
                    landscape="sharp-flat-risk",
                    landscape_params=risk_params,
                    batch_size=batches.tolist(),
                    batch_mode="replacement",
                    **common,
                )
                objective = risk
            progress = None if tick is None else (lambda k, _t, o=done: tick(o + k, total))
            traj = runs(spec, progress, objective=objective)
            x = traj.final_position[:, 0].double().numpy()
            for j, b in enumerate(config.flat_batches):
                final[(model, lr, b)] = x[j * per : (j + 1) * per]
            done += steps

    out_cells = []
    theory_cache: dict = {}
    for model, step, b in cells:
        part = final[(model, step, b)]
        key = (model, round(step / b, 12))
        if key not in theory_cache:
            theory_cache[key] = _share_theory(config, geo, step / b, model)
        th = theory_cache[key]
        flat_count = int((part < 0).sum())
        share, se = share_se(flat_count, len(part))
        out_cells.append(
            {
                "model": model,
                "lr": step,
                "batch": b,
                "lr_over_B": step / b,
                "share": share,
                "share_se": se,
                "theory": th["share"],
                "theory_method": th["method"],
                "equilibrium": th["equilibrium"],
            }
        )
    grid = sorted({c["lr_over_B"] for c in out_cells})
    fine = np.exp(np.linspace(np.log(grid[0]), np.log(grid[-1]), config.curve_points))
    curves = {m: [(float(v), _share_theory(config, geo, float(v), m)) for v in fine] for m in models}
    gd_share = -flat / (sharp - flat)  # noiseless GD: the starts left of the barrier top (x = 0)
    return {"cells": out_cells, "curves": curves, "geo": geo, "gd_share": gd_share, "models": models}


# --- run ---------------------------------------------------------------------------------------------
def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    risk = logistic_risk()
    w_star = torch.tensor(risk.point("fit").position, dtype=torch.float64)
    hessian = risk.hessian(w_star.unsqueeze(0))[0].numpy()
    sgd_steps = config.sgd_burn_in + config.sgd_frames * config.sgd_frame_every
    flat_steps = 2 * sum(int(round(config.run_time / lr)) for lr in config.lrs)
    total = 1 + sgd_steps + flat_steps
    runs = Runs()

    noise = _noise(config, risk, w_star)
    if progress is not None:
        progress(1, total)
    tick = None if progress is None else (lambda k, _t: progress(1 + k, total))
    sgd = _sgd(config, risk, w_star, hessian, noise, runs, tick)
    tick = None if progress is None else (lambda k, _t: progress(1 + sgd_steps + k, total))
    flat = _flat(config, runs, tick)
    if progress is not None:
        progress(total, total)

    config_dict = {
        **asdict(config),
        "risk": "logistic regression, weights (mean radius, mean texture), no intercept, N = 569 tumours",
        "flat basin": "x < 0 (the barrier top) at time run_time",
        "SGD-like noise": "sharp_flat_risk: per-example losses U(x) + xi_i s(x), xi of variance sigma^2",
    }
    figures = [
        _card_figure(config, sgd, flat, hessian, noise),
        _detail_figure(config, risk, noise, sgd, flat),
    ]
    return Result(
        NAME, CLAIM, PROTOCOL, _rows(config, noise, sgd, flat, hessian), config_dict, figures, runs.specs
    )


# --- rows ----------------------------------------------------------------------------------------------
G_C = "gradient noise at the fitted weights (the scalar formula assumes an isotropic C)"
G_N = "mini-batch noise along C's eigenvectors, x B/lambda (theory: 1, x (N - B)/(N - 1) without replacement)"
G_T = "SGD's temperature tr(H S)/d (claim: lr s^2/(2B); theory: linearised SGD's exact Lyapunov solution)"
G_D = "temperature per Hessian direction (a temperature: the same in each; theory: Lyapunov solution)"
G_S = "flat share on sharp-flat, per (lr, B) (theory: Fokker-Planck)"
G_F = "does noise find the flat minimum? (bound: noiseless GD's basin share)"
G_L = "lr/B is the control: equal lr/B, largest over smallest lr (a temperature lr sigma^2/(2B): 1)"
MODEL_IDS = {"isotropic": "isotropic", "SGD-like": "sgd-like"}


def _cell(batch: int, replacement: bool) -> str:
    return f"B={batch}/{MODE_WORDS[replacement]}"


def _rows(config: Config, noise: dict, sgd: dict, flat: dict, hessian: np.ndarray) -> list[Row]:
    out = _noise_rows(noise, sgd)
    out += _temperature_rows(config, sgd)
    out += _flat_rows(config, flat)
    return out


def _noise_rows(noise: dict, sgd: dict) -> list[Row]:
    c_eig, h_eig = noise["eig_C"], sgd["hessian_eigenvalues"]
    out = [
        number(
            "C/eig_flat", "smaller eigenvalue of the per-example gradient covariance C", c_eig[0], group=G_C
        ),
        number("C/eig_sharp", "larger eigenvalue of C", c_eig[1], group=G_C),
        number(
            "C/anisotropy",
            "eigenvalue ratio of C (the scalar formula assumes 1: one s^2 for every direction)",
            noise["anisotropy"],
            group=G_C,
        ),
        number("C/s2", "s^2 = tr(C)/d, the scalar formula's noise variance", sgd["s2"], group=G_C),
        number("H/eig_flat", "smaller Hessian eigenvalue at w*", h_eig[0], group=G_C),
        number("H/eig_sharp", "larger Hessian eigenvalue at w*", h_eig[1], group=G_C),
    ]
    for r in noise["rows"]:
        for k, direction in enumerate(("flat", "sharp")):
            out.append(
                agrees(
                    f"noise/{_cell(r['batch'], r['replacement'])}/{direction}",
                    f"batch-gradient variance along C's {direction} eigenvector x B/lambda, B = {r['batch']} "
                    f"{MODE_WORDS[r['replacement']]} replacement",
                    r["relative"][k],
                    r["factor"],
                    se=r["se"][k],
                    group=G_N,
                )
            )
    return out


def _temperature_rows(config: Config, sgd: dict) -> list[Row]:
    out: list[Row] = []
    rows = sgd["rows"]
    for i, r in enumerate(rows):
        cell, where = _cell(r["batch"], r["replacement"]), f"B = {r['batch']} {MODE_WORDS[r['replacement']]}"
        # bias: the formula is the small-lr limit; linearised SGD's exact discrete Lyapunov solution
        # (a closed form) says how far it lies from the stationary temperature at this lr
        bias = abs(r["T_lyapunov"] - r["T_formula"])
        out.append(
            agrees(
                f"temperature/{cell}",
                f"SGD's temperature vs lr s^2/(2B), {where} replacement",
                r["T"],
                r["T_formula"],
                se=r["T_se"],
                bias=bias,
                about="claim",
                group=G_T,
                key=i == 0,
                if_pass=f"At {where} replacement SGD's temperature {r['T']:.3g} +- {r['T_se']:.1g} is "
                f"lr s^2/(2B) = {r['T_formula']:.3g} up to the formula's finite-step bias {bias:.2g}.",
                if_fail=f"At {where} replacement SGD's temperature {r['T']:.3g} +- {r['T_se']:.1g} is not "
                f"lr s^2/(2B) = {r['T_formula']:.3g}, even allowing the finite-step bias {bias:.2g}.",
            )
        )
        out.append(
            agrees(
                f"lyapunov/{cell}",
                f"SGD's temperature vs the Lyapunov solution, {where} replacement",
                r["T"],
                r["T_lyapunov"],
                se=r["T_se"],
                group=G_T,
            )
        )
    for r in rows:
        cell, where = _cell(r["batch"], r["replacement"]), f"B = {r['batch']} {MODE_WORDS[r['replacement']]}"
        out.append(
            number(
                f"direction_ratio/{cell}",
                f"temperature along H's sharp direction / along its flat one, {where} replacement",
                r["ratio"],
                se=r["ratio_se"],
                theory=r["T_sharp_lyapunov"] / r["T_flat_lyapunov"],
                group=G_D,
            )
        )
        for direction in ("flat", "sharp"):
            out.append(
                number(
                    f"T_{direction}/{cell}",
                    f"temperature along H's {direction} direction, {where} replacement",
                    r[f"T_{direction}"],
                    theory=r[f"T_{direction}_lyapunov"],
                    group=G_D,
                )
            )
    # C_B = C/B [x (N - B)/(N - 1)] only rescales S, so the Lyapunov ratio is one number for every cell:
    # one check of the mean over the (independent) cells
    ratios = np.array([r["ratio"] for r in rows])
    out.append(
        agrees(
            "direction_ratio",
            "temperature along H's sharp direction / along its flat one, mean over the batch sizes",
            ratios.mean(),
            float(np.mean([r["T_sharp_lyapunov"] / r["T_flat_lyapunov"] for r in rows])),
            se=math.sqrt(sum(r["ratio_se"] ** 2 for r in rows)) / len(rows),
            group=G_D,
        )
    )
    first = rows[0]
    where = f"B = {first['batch']} {MODE_WORDS[first['replacement']]} replacement"
    hot, hot_se = first["sharp_over_mean"], first["sharp_over_mean_se"]
    out.append(
        agrees(
            f"equipartition/{_cell(first['batch'], first['replacement'])}",
            f"one temperature in every direction: H's sharp direction's temperature / tr(H S)/d, {where}",
            hot,
            1.0,
            se=hot_se,
            about="claim",
            group=G_D,
            key=True,
            if_pass=f"The noise acts as one temperature: along H's sharp direction the temperature is "
            f"{hot:.2f} +- {hot_se:.2f} times the mean one, consistent with 1.",
            if_fail=f"The noise is not one temperature but a matrix, lr C_B/2: at {where} the sharp "
            f"direction runs {hot:.2f} +- {hot_se:.2f} times hotter than the mean temperature tr(H S)/d "
            f"and {first['ratio']:.1f} times hotter than the flat one (Lyapunov: "
            f"{first['T_sharp_lyapunov'] / first['T_flat_lyapunov']:.1f}; C's eigenvalues differ as the "
            "Hessian's do), so lr s^2/(2B) is the temperature only as a mean over directions.",
        )
    )
    return out


def _flat_rows(config: Config, flat: dict) -> list[Row]:
    cells, gd = flat["cells"], flat["gd_share"]
    geo = flat["geo"]
    width = math.sqrt(geo["curv_sharp"] / geo["curv_flat"])
    out = [
        number("gd_share", "noiseless GD's flat share: the basin share of the starts", gd, group=G_F),
        number(
            "harmonic_share",
            "Boltzmann flat share in the harmonic limit, width ratio w/(w + 1)",
            width / (width + 1),
            group=G_F,
        ),
    ]
    top_level = max(c["lr_over_B"] for c in cells)
    for model in flat["models"]:
        mid = MODEL_IDS[model]
        part = [c for c in cells if c["model"] == model]
        for c in part:
            out.append(
                agrees(
                    f"share/{mid}/lr={c['lr']:g}/B={c['batch']}",
                    f"flat share, {model} noise, lr {c['lr']:g}, B = {c['batch']} ({c['theory_method']})",
                    c["share"],
                    c["theory"],
                    se=c["share_se"],
                    group=G_S,
                )
            )
        top = max((c for c in part if c["lr_over_B"] == top_level), key=lambda c: c["lr"])
        out.append(
            agrees(
                f"stationary/{mid}",
                f"flat share at the largest lr/B vs the stationary (Boltzmann) share, {model} noise",
                top["share"],
                top["equilibrium"],
                se=top["share_se"],
                group=G_S,
            )
        )
        out.append(
            exceeds(
                f"flat/{mid}",
                f"{model} noise at lr/B = {top_level:g} ends in the flat basin more often than noiseless GD",
                top["share"],
                gd,
                se=top["share_se"],
                group=G_F,
                key=True,
                if_pass=f"With {model} noise at lr/B = {top_level:g}, {top['share']:.3f} of the runs end "
                f"in the flat minimum against noiseless GD's {gd:.3f} (its stationary share: "
                f"{top['equilibrium']:.3f}).",
                if_fail=f"With {model} noise at lr/B = {top_level:g}, only {top['share']:.3f} +- "
                f"{top['share_se']:.3f} of the runs end in the flat minimum against noiseless GD's {gd:.3f}.",
            )
        )
        for level in sorted({c["lr_over_B"] for c in part}):
            same = sorted((c for c in part if abs(c["lr_over_B"] - level) < 1e-12), key=lambda c: c["lr"])
            if len(same) < 2:
                continue
            low, high = same[0], same[-1]
            ratio = high["share"] / low["share"]
            se = ratio * math.hypot(high["share_se"] / high["share"], low["share_se"] / low["share"])
            pair = f"lr {high['lr']:g} (B = {high['batch']}) over lr {low['lr']:g} (B = {low['batch']})"
            out.append(
                agrees(
                    f"control/{mid}/lr_over_B={level:g}",
                    f"flat share at equal lr/B = {level:g}, {model} noise, {pair}",
                    ratio,
                    1.0,
                    se=se,
                    about="claim",
                    group=G_L,
                    if_pass=f"At lr/B = {level:g} ({model}) the flat shares of {pair} agree "
                    f"(ratio {ratio:.3f} +- {se:.3f}).",
                    if_fail=f"At lr/B = {level:g} ({model}) the flat shares of {pair} differ "
                    f"(ratio {ratio:.3f} +- {se:.3f}): lr/B alone does not set the outcome.",
                )
            )
    return out


# --- figures -------------------------------------------------------------------------------------------
COLORS = {"isotropic": "tab:blue", "SGD-like": "tab:red"}


def _log_ticks(ax, values) -> None:
    """A log x axis labelled at ``values`` only."""
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _label(ax, xlabel: str, ylabel: str, title: str, legend: str, ncol: int = 1) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=9, loc=legend, ncol=ncol)
    ax.grid(alpha=0.3)


def _card_figure(config, sgd, flat, hessian, noise):
    fig, axes = subplots(1, 2, height=4.8)
    ax = axes[0]
    bs = np.geomspace(
        min(config.sgd_with + config.sgd_without) / 2, max(config.sgd_with + config.sgd_without) * 1.5, 40
    )
    evals, evecs = np.linalg.eigh(hessian)
    lines = {"mean": [], "flat": [], "sharp": []}
    for b in bs:
        exact = sgd_stationary_covariance(hessian, noise["C"] / b, config.sgd_lr)
        along = evals * np.diag(evecs.T @ exact @ evecs)
        lines["mean"].append(equipartition_temperature(hessian, exact))
        lines["flat"].append(along[0])
        lines["sharp"].append(along[1])
    ax.plot(bs, config.sgd_lr * sgd["s2"] / (2 * bs), "k--", lw=1, label="lr s^2/(2B) (with replacement)")
    styles = {
        "mean": ("k", "mean, tr(H S)/d"),
        "sharp": ("tab:red", "H's sharp direction"),
        "flat": ("tab:blue", "H's flat direction"),
    }
    for what, (color, text) in styles.items():
        ax.plot(bs, lines[what], "-", color=color, lw=1, alpha=0.7)
        key = {"mean": "T", "flat": "T_flat", "sharp": "T_sharp"}[what]
        for mode, marker in ((True, "o"), (False, "s")):
            rows = [r for r in sgd["rows"] if r["replacement"] == mode]
            label = text if mode else ("squares: without replacement" if what == "mean" else None)
            ax.plot(
                [r["batch"] for r in rows],
                [r[key] for r in rows],
                marker,
                color=color,
                mfc=color if mode else "none",
                ms=6,
                label=label,
            )
    ax.set_yscale("log")
    _log_ticks(ax, sorted(set(config.sgd_with + config.sgd_without)))
    _label(
        ax,
        "batch size B",
        "stationary temperature",
        f"SGD at lr {config.sgd_lr:g}: a temperature on average, not per direction\n"
        "lines: exact linearised SGD (Lyapunov)",
        "lower left",
    )

    ax = axes[1]
    markers = dict(zip(config.lrs, ("o", "s", "^", "D", "v")))
    for model in flat["models"]:
        for step in config.lrs:
            part = [c for c in flat["cells"] if c["model"] == model and c["lr"] == step]
            ax.errorbar(
                [c["lr_over_B"] for c in part],
                [c["share"] for c in part],
                yerr=[2 * c["share_se"] for c in part],
                fmt=markers[step],
                color=COLORS[model],
                ms=5,
                alpha=0.8,
                label=f"{model}, lr {step:g}",
            )
        curve = flat["curves"][model]
        ax.plot([v for v, _ in curve], [th["share"] for _, th in curve], "-", color=COLORS[model], lw=1)
        ax.plot([v for v, _ in curve], [th["equilibrium"] for _, th in curve], ":", color=COLORS[model], lw=1)
    ax.axhline(flat["gd_share"], color="0.4", lw=0.8, ls="--", label="GD, no noise")
    _log_ticks(ax, sorted({c["lr_over_B"] for c in flat["cells"]}))
    ax.set_ylim(0.5, 1.02)
    _label(
        ax,
        "lr / B",
        "share ending in the flat basin",
        f"sharp vs flat minimum of equal depth (t = {config.run_time:g})\n"
        "lines: Fokker-Planck; dotted: stationary share",
        "upper left",
        ncol=2,
    )
    return finish(fig)


def _detail_figure(config, landscape, noise, sgd, flat):
    from descent.plots.static import draw_landscape

    fig, axes = subplots(1, 3, height=4.4)
    ax = axes[0]
    w_star = np.array(landscape.point("fit").position)
    span = 6 * math.sqrt(np.linalg.eigvalsh(sgd["cloud_cov"]).max())
    box = ((w_star[0] - span, w_star[0] + span), (w_star[1] - span, w_star[1] + span))
    draw_landscape(ax, landscape, resolution=120, bounds=box)
    ax.set_aspect("equal")
    ax.plot(sgd["cloud"][:, 0], sgd["cloud"][:, 1], ".", color="w", ms=2, alpha=0.6)
    t = np.linspace(0, 2 * np.pi, 200)
    for cov, color, label in (
        (sgd["cloud_cov"], "orange", "2 sd, Lyapunov"),
        (noise["C"] * sgd["cloud_cov"].trace() / noise["C"].trace(), "red", "C (same trace)"),
    ):
        ev, vec = np.linalg.eigh(cov)
        ell = vec @ (2 * np.sqrt(ev)[:, None] * np.stack([np.cos(t), np.sin(t)]))
        ax.plot(w_star[0] + ell[0], w_star[1] + ell[1], color=color, lw=1.4, label=label)
    ax.legend(fontsize=9, loc="upper left")
    ax.set_title(f"SGD's stationary cloud, B = {sgd['cloud_batch']}")
    ax.set_xlabel("w1 (mean radius)")
    ax.set_ylabel("w2 (mean texture)")

    ax = axes[1]
    for k, (direction, color) in enumerate((("flat", "tab:blue"), ("sharp", "tab:red"))):
        for mode, marker in ((True, "o"), (False, "s")):
            rows = [r for r in noise["rows"] if r["replacement"] == mode]
            ax.errorbar(
                [r["batch"] for r in rows],
                [r["relative"][k] for r in rows],
                yerr=[2 * r["se"][k] for r in rows],
                fmt=marker,
                color=color,
                mfc=color if mode else "none",
                ms=5,
                label=f"C's {direction} axis, {MODE_WORDS[mode]}",
            )
    bs = np.unique(np.geomspace(1, noise["n"], 60).astype(int))
    ax.plot(bs, np.ones_like(bs, dtype=float), "k-", lw=0.8)
    ax.plot(bs, (noise["n"] - bs) / (noise["n"] - 1), "k--", lw=0.8, label="(N - B)/(N - 1)")
    ax.set_xscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("variance x B / eigenvalue of C")
    ax.set_title("mini-batch noise = C/B")
    ax.legend(fontsize=9, loc="lower left")

    ax = axes[2]
    xs = np.linspace(flat["geo"]["flat"] - 1.2, flat["geo"]["sharp"] + 0.45, 300)
    sf = get_landscape("sharp-flat", height=config.height, skew=config.skew, dim=1)
    ax.plot(xs, sf.value(torch.tensor(xs[:, None])).numpy(), "k-", label="U(x)")
    _, ds, _ = _sharp_flat_functions(config)
    ax.set_xlabel("x")
    ax.set_ylabel("U(x)")
    twin = ax.twinx()
    twin.plot(xs, ds(xs) ** 2, color=COLORS["SGD-like"], lw=1, ls="--", label="SGD-like")
    twin.axhline(1.0, color=COLORS["isotropic"], lw=1, ls=":", label="isotropic")
    twin.set_ylabel("noise variance / at the barrier")
    twin.legend(fontsize=9, loc="upper center")
    ax.set_title(f"sharp-flat: curvature {flat['geo']['curv_flat']:.2f} vs {flat['geo']['curv_sharp']:.2f}")
    return finish(fig)
