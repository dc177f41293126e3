"""SGD noise: mini-batch gradient noise measured on a real empirical risk, its temperature, and where
noisy descent ends up when a sharp and a flat minimum have equal depth.

1. The noise. The objective is ``descent.objectives.logistic_risk()``, an `EmpiricalRisk`: logistic
   regression with two weights on scikit-learn's breast-cancer data (N = 569, standardised mean radius
   and mean texture). At the fitted weights w* the per-example gradients (the landscape package's
   closed form) give the per-example covariance C. For each batch size B, many mini-batches are drawn
   by the engine's own sampler (``descent.dynamics.batches.draw_indices``: the indices a run would use,
   with and without replacement), the covariance of their mean gradient is measured (a 2 x 2 matrix,
   standard errors from blocks of draws) and compared with ``C/B`` and ``C/B * (N - B)/(N - 1)``.
2. Its temperature. Mini-batch SGD from w*, one `RunSpec` on the risk holding every batch size and
   sampling mode (per-particle ``batch_size`` and ``batch_mode``): the engine draws each particle's
   batches. The stationary covariance S of the iterates (the saved frames) gives the equipartition
   temperature ``tr(H S)/d`` (the mean excess loss is ``d T/2``), compared with ``lr s^2/(2B)`` [times
   ``(N - B)/(N - 1)``], ``s^2 = tr(C)/d``, and with the exact discrete Lyapunov solution of linearised
   SGD. Because C is far from isotropic the per-direction temperatures (in the Hessian's eigenbasis)
   differ: the noise is a temperature *matrix*, ``lr C_B / 2``, not one number.
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
   temperature ``T(x) = lr Var(noise)(x)/2``, and explained by the two-state picture: the Boltzmann
   (stationary) share and the Kramers/MFPT rates.

The runs on objectives with data pass the objective, built once, to `run_spec` with their spec
(``sharp-flat-risk``, from `descent.objectives.perturbed`, is not in the landscape registry).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent.dynamics.batches import draw_indices
from descent.experiments._base import Progress, Result, Runs, checks_line, legacy_result, legacy_verdict
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

torch.set_num_threads(1)

NAME = "sgd-noise"
CLAIM = (
    "Mini-batch SGD's gradient noise acts as a temperature, lr * sigma^2 / (2B), and these thermal "
    "fluctuations help it jump out of sharp minima and find flatter, more robust ones."
)


@dataclass(frozen=True)
class Config:
    # 1. noise covariance at the fitted weights
    batches: tuple[int, ...] = (1, 4, 16, 64, 256, 512)
    draws: int = 40000
    blocks: int = 20
    isotropy_tolerance: float = 2.0  # C is "near isotropic" when its eigenvalue ratio is below this
    # 2. SGD temperature: one run with every batch size
    sgd_lr: float = 1.0
    # lr = 1: at B = 16 the stationary T is already ~3 % above the linear theory (non-quadratic loss on
    # the scale of the fluctuations), ~10 % at B = 4, ~2 % at B = 32; ~1 % from B = 64 on
    sgd_with: tuple[int, ...] = (64, 128, 512)
    sgd_without: tuple[int, ...] = (256, 512)
    sgd_particles: int = 200  # per (batch, mode)
    sgd_burn_in: int = 300
    sgd_frames: int = 40
    sgd_frame_every: int = 30
    temperature_tolerance: float = 0.1  # formula lr s^2/(2B) vs measured (its O(lr h) bias is ~4 %)
    nonlinear_allowance: float = 0.03
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
            temperature_tolerance=0.15,
            lrs=(0.02, 0.04),
            flat_batches=(1, 2, 4),
            flat_particles=300,
            fp_cells=500,
            curve_points=7,
        )


# --- 1. noise covariance ------------------------------------------------------------------------
MODES = {True: "replacement", False: "without"}  # replacement? -> the engine's batch_mode


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


def _noise(config: Config, risk: EmpiricalRisk, w_star: torch.Tensor) -> dict:
    grads = per_example_gradients(risk, w_star)  # [n, 2]
    n = grads.shape[0]
    mean = grads.mean(0)
    centred = grads - mean
    cov = (centred.T @ centred / n).numpy()
    rows = []
    per_block = config.draws // config.blocks
    for index, (batch, replacement) in enumerate((b, m) for b in config.batches for m in (True, False)):
        if batch > n:
            continue
        block_cov = []
        for block in range(config.blocks):
            first = block * per_block
            draws = batch_gradients(grads, batch, replacement, per_block, config.seed + index, first)
            noise = draws - mean  # [draws, 2]
            block_cov.append((noise.T @ noise / per_block).numpy())
        block_cov = np.stack(block_cov)
        measured = block_cov.mean(0)
        theory = minibatch_covariance(cov, batch, n, replacement)
        traces = np.trace(block_cov, axis1=1, axis2=2)
        ratio = float(np.trace(measured) / np.trace(theory))
        ratio_se = float(traces.std(ddof=1) / math.sqrt(config.blocks) / np.trace(theory))
        rows.append(
            {
                "batch": batch,
                "replacement": replacement,
                "measured": measured,
                "theory": theory,
                "trace_ratio": ratio,
                "trace_ratio_se": ratio_se,
                "matrix_error": float(np.linalg.norm(measured - theory) / np.linalg.norm(theory)),
                "factor": 1.0 if replacement else without_replacement_factor(n, batch),
                "measured_factor": ratio * (1.0 if replacement else without_replacement_factor(n, batch)),
            }
        )
    eig = np.linalg.eigvalsh(cov)
    return {
        "C": cov,
        "eig_C": eig,
        "anisotropy": float(eig[-1] / eig[0]),
        "rows": rows,
        "n": n,
        "mean_gradient_norm": float(mean.norm()),
    }


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
    evals, evecs = np.linalg.eigh(hessian)
    n = noise["n"]
    s2 = float(np.trace(noise["C"]) / 2)
    rows = []
    for k, (b, mode) in enumerate(cells):
        sample = positions[:, k * per : (k + 1) * per]  # [F, per, 2]
        groups = np.array_split(np.arange(per), 20)
        temps = []
        for g in groups:
            part = sample[:, g].reshape(-1, 2)
            temps.append(equipartition_temperature(hessian, np.cov(part.T)))
        flat = sample.reshape(-1, 2)
        cov = np.cov(flat.T)
        c_b = minibatch_covariance(noise["C"], b, n, mode)
        exact = sgd_stationary_covariance(hessian, c_b, config.sgd_lr)
        formula = sgd_temperature(config.sgd_lr, s2, b, n=n, replacement=mode)
        measured = equipartition_temperature(hessian, cov)
        rotated = evecs.T @ cov @ evecs
        rotated_exact = evecs.T @ exact @ evecs
        rows.append(
            {
                "batch": int(b),
                "replacement": bool(mode),
                "T": measured,
                "T_se": float(np.std(temps, ddof=1) / math.sqrt(len(temps))),
                "T_lyapunov": equipartition_temperature(hessian, exact),
                "T_formula": formula,
                "ratio_formula": measured / formula,
                "ratio_lyapunov": measured / equipartition_temperature(hessian, exact),
                "T_directions": (evals * np.diag(rotated)).tolist(),
                "T_directions_lyapunov": (evals * np.diag(rotated_exact)).tolist(),
                "mean_offset": (flat.mean(0) - w_star.numpy()).tolist(),
                "samples": int(flat.shape[0]),
            }
        )
    first = positions[:, :per].reshape(-1, 2)
    cloud = first[:: max(1, len(first) // 600)]
    b0, mode0 = cells[0]
    cloud_cov = sgd_stationary_covariance(
        hessian, minibatch_covariance(noise["C"], b0, n, mode0), config.sgd_lr
    )
    return {
        "rows": rows,
        "hessian_eigenvalues": evals,
        "lr": config.sgd_lr,
        "s2": s2,
        "cloud": cloud,
        "cloud_batch": int(b0),
        "cloud_cov": cloud_cov,
    }


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
        share = float((part < 0).mean())
        out_cells.append(
            {
                "model": model,
                "lr": step,
                "batch": b,
                "lr_over_B": step / b,
                "T_barrier": th["T_barrier"],
                "steps": int(round(config.run_time / step)),
                "share": share,
                "share_se": math.sqrt(max(share * (1 - share), 1 / per) / per),
                "theory": th["share"],
                "theory_se": math.sqrt(max(th["share"] * (1 - th["share"]), 1 / per) / per),
                "theory_method": th["method"],
                "equilibrium": th["equilibrium"],
                "initial": th["initial"],
                "tau_sharp_to_flat": th["tau_sharp_to_flat"],
                "tau_flat_to_sharp": th["tau_flat_to_sharp"],
            }
        )
    grid = sorted({c["lr_over_B"] for c in out_cells})
    fine = np.exp(np.linspace(np.log(grid[0]), np.log(grid[-1]), config.curve_points))
    curves = {m: [(float(v), _share_theory(config, geo, float(v), m)) for v in fine] for m in models}
    gd_share = float((np.linspace(flat, sharp, 100001) < 0).mean())
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
    sgd = _sgd(
        config,
        risk,
        w_star,
        hessian,
        noise,
        runs,
        None if progress is None else (lambda k, _t: progress(1 + k, total)),
    )
    flat = _flat(
        config, runs, None if progress is None else (lambda k, _t: progress(1 + sgd_steps + k, total))
    )
    if progress is not None:
        progress(total, total)

    checks, numbers, theory = _assess(config, noise, sgd, flat, hessian)
    checks = {name: bool(ok) for name, ok in checks.items()}
    verdict = legacy_verdict(checks)
    explanation = _explain(config, noise, sgd, flat, hessian, checks)
    config_dict = {
        **asdict(config),
        "risk": "logistic regression, weights (mean radius, mean texture), no intercept, N = 569 tumours",
        "flat basin": "x < 0 (the barrier top) at time run_time",
        "SGD-like noise": "sharp_flat_risk: per-example losses U(x) + xi_i s(x), xi of variance sigma^2",
    }
    figure = _figure(config, risk, noise, sgd, flat, hessian)
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


def _grows(cells: list[dict]) -> tuple[float, float]:
    """Mean share over the cells at the two largest lr/B levels minus that at the two smallest, with SE."""
    levels = sorted({c["lr_over_B"] for c in cells})
    top = [c for c in cells if c["lr_over_B"] in levels[-2:]]
    low = [c for c in cells if c["lr_over_B"] in levels[:2]]

    def mean(group):
        return np.mean([c["share"] for c in group]), math.sqrt(sum(c["share_se"] ** 2 for c in group)) / len(
            group
        )

    (a, sa), (b, sb) = mean(top), mean(low)
    return float(a - b), float(math.hypot(sa, sb))


def _assess(config, noise, sgd, flat, hessian):
    rows = noise["rows"]
    cells = flat["cells"]
    collapse = []
    for model in flat["models"]:
        for level in sorted({c["lr_over_B"] for c in cells}):
            same = [c for c in cells if c["model"] == model and abs(c["lr_over_B"] - level) < 1e-12]
            for i in range(len(same)):
                for j in range(i + 1, len(same)):
                    diff = same[i]["share"] - same[j]["share"]
                    se = math.hypot(same[i]["theory_se"], same[j]["theory_se"])
                    collapse.append(abs(diff) / se)
    growth = {m: _grows([c for c in cells if c["model"] == m]) for m in flat["models"]}
    iso = [c for c in cells if c["model"] == "isotropic"]
    top_iso = max(iso, key=lambda c: (c["lr_over_B"], c["lr"]))
    tol_iso, tol_nl, tol_t = (
        config.isotropy_tolerance,
        config.nonlinear_allowance,
        config.temperature_tolerance,
    )
    with_ok = all(abs(r["trace_ratio"] - 1) <= 3 * r["trace_ratio_se"] for r in rows if r["replacement"])
    without_ok = all(
        abs(r["trace_ratio"] - 1) <= 3 * r["trace_ratio_se"] for r in rows if not r["replacement"]
    )
    lyapunov_ok = all(
        abs(r["ratio_lyapunov"] - 1) <= 3 * r["T_se"] / r["T_lyapunov"] + tol_nl for r in sgd["rows"]
    )
    formula_ok = all(abs(r["ratio_formula"] - 1) <= tol_t for r in sgd["rows"])
    grows_ok = all(d > 3 * se for d, se in growth.values())
    theory_ok = all(abs(c["share"] - c["theory"]) <= 3.5 * c["theory_se"] + 1e-9 for c in cells)
    saturates_ok = abs(top_iso["share"] - top_iso["equilibrium"]) <= 3.5 * top_iso["theory_se"]
    checks = {
        "mini-batch noise covariance = C/B with replacement (trace within 3 SE, every B)": with_ok,
        "without replacement it is C/B * (N - B)/(N - 1) (trace within 3 SE, every B)": without_ok,
        f"the noise is near isotropic: one scalar temperature (eigenvalue ratio of C < {tol_iso:g})": (
            noise["anisotropy"] < tol_iso
        ),
        f"SGD's temperature tr(H S)/d = linearised (Lyapunov) theory within 3 SE + {tol_nl:.0%}": lyapunov_ok,
        f"SGD's temperature = lr s^2/(2B) [x (N - B)/(N - 1)] within {tol_t:.0%}": formula_ok,
        "the flat share grows with lr/B (top two levels minus bottom two > 3 SE), both models": grows_ok,
        "the flat share matches the Fokker-Planck prediction within 3.5 SE, every (lr, B, model)": theory_ok,
        "equal lr/B gives the same share (pairs within 3.5 SE): lr/B is the control": all(
            z <= 3.5 for z in collapse
        ),
        "isotropic noise stops at the Boltzmann share set by the widths (largest lr/B, 3.5 SE)": saturates_ok,
    }
    numbers = {
        "per-example covariance C at w*": noise["C"],
        "eigenvalues of C": noise["eig_C"],
        "anisotropy of C (eigenvalue ratio)": noise["anisotropy"],
        "Hessian eigenvalues at w*": sgd["hessian_eigenvalues"],
        "noise covariance per batch": [{k: v for k, v in r.items()} for r in rows],
        "SGD temperature per batch": sgd["rows"],
        "flat share per cell": cells,
        "flat share growth (top - bottom lr/B), isotropic": growth["isotropic"],
        "flat share growth (top - bottom lr/B), SGD-like": growth["SGD-like"],
        "largest |z| between cells of equal lr/B": max(collapse) if collapse else 0.0,
    }
    theory = {
        "C/B and (N - B)/(N - 1)": "theory.noise.minibatch_covariance",
        "SGD temperature": "lr s^2 / (2B), s^2 = tr(C)/d = " + f"{sgd['s2']:.5f}",
        "GD (no noise) flat share = basin-of-attraction share of the starts": flat["gd_share"],
        "sharp-flat geometry": {k: v for k, v in flat["geo"].items()},
        "Hessian at w*": hessian,
    }
    return checks, numbers, theory


def _explain(config, noise, sgd, flat, hessian, checks) -> str:
    c_eig = noise["eig_C"]
    h_eig = sgd["hessian_eigenvalues"]
    lines = [
        f"Logistic risk (breast cancer, N = {noise['n']}) at w*: the per-example gradient covariance C has "
        f"eigenvalues {c_eig[0]:.4f}, {c_eig[1]:.4f} (ratio {noise['anisotropy']:.1f}: far from isotropic), "
        f"the Hessian {h_eig[0]:.4f}, {h_eig[1]:.4f}: C ~ H (Fisher-like), so the noise is strongest along "
        "the sharpest direction.",
        "Mini-batch noise covariance, trace measured / theory: "
        + "; ".join(
            f"B = {r['batch']} {'with' if r['replacement'] else 'without'}: {r['trace_ratio']:.3f} +- "
            f"{r['trace_ratio_se']:.3f}"
            for r in noise["rows"]
        )
        + ". Without replacement the variance carries (N - B)/(N - 1) ("
        + ", ".join(f"{r['factor']:.3f} at B = {r['batch']}" for r in noise["rows"] if not r["replacement"])
        + ").",
        f"SGD at lr = {config.sgd_lr:g}, stationary equipartition temperature tr(H S)/2 vs lr s^2/(2B): "
        + "; ".join(
            f"B = {r['batch']} {'w' if r['replacement'] else 'w/o'}: {r['T']:.3g} +- {r['T_se']:.2g} "
            f"(formula {r['T_formula']:.3g}, ratio {r['ratio_formula']:.3f}; Lyapunov "
            f"{r['ratio_lyapunov']:.3f})"
            for r in sgd["rows"]
        )
        + ". The formula's excess is the finite-step factor 1/(1 - lr h/2). Per Hessian direction the "
        "temperatures differ: "
        + ", ".join(
            f"B = {r['batch']}: {r['T_directions'][0]:.3g} (flat) vs {r['T_directions'][1]:.3g} (sharp)"
            for r in sgd["rows"][:2]
        )
        + ": the noise is a temperature matrix lr C/(2B), one scalar only on average.",
    ]
    cells = flat["cells"]
    geo = flat["geo"]
    for model in flat["models"]:
        part = sorted([c for c in cells if c["model"] == model], key=lambda c: (c["lr_over_B"], c["lr"]))
        lines.append(
            f"Sharp-flat ({model} noise, equal depth, curvature {geo['curv_flat']:.2f} vs "
            f"{geo['curv_sharp']:.2f}, t = {config.run_time:g}): flat share by lr/B: "
            + ", ".join(
                f"{c['lr_over_B']:.4g} (lr {c['lr']:g}): {c['share']:.3f} +- {c['share_se']:.3f} "
                f"[theory {c['theory']:.3f}]"
                for c in part
            )
        )
    iso_eq = np.mean([c["equilibrium"] for c in cells if c["model"] == "isotropic"])
    sgd_eq = min(c["equilibrium"] for c in cells if c["model"] == "SGD-like")
    width = math.sqrt(geo["curv_sharp"] / geo["curv_flat"])
    lines.append(
        f"Reading: plain GD already ends in the flat basin {flat['gd_share']:.3f} of the time (its basin of "
        "attraction is wider: a volume effect). Isotropic noise, a pure temperature, raises the share only "
        f"to the Boltzmann share ~{iso_eq:.2f}, set by the width ratio {width:.0f}:1 (entropy; "
        f"{width / (width + 1):.2f} in the harmonic limit): more noise does not push it further, and with "
        "equal widths it would stay at 1/2. Noise whose variance follows the curvature (as SGD's does, "
        "C ~ H) makes the sharp basin hotter, escapes from it far faster and the stationary share is "
        f">= {sgd_eq:.3f}. So 'noise finds flatter minima' holds in direction, growing with lr/B, but how "
        "far depends on the basin widths and on the noise's shape, not on a temperature alone."
    )
    lines.append(checks_line(checks))
    return "\n".join(lines)


def _figure(config, landscape, noise, sgd, flat, hessian):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from descent.plots.static import draw_landscape

    fig, axes = plt.subplots(1, 4, figsize=(22, 4.8))
    ax = axes[0]
    w_star = np.array(landscape.point("fit").position)
    span = 6 * math.sqrt(np.linalg.eigvalsh(sgd["cloud_cov"]).max())
    box = ((w_star[0] - span, w_star[0] + span), (w_star[1] - span, w_star[1] + span))
    draw_landscape(ax, landscape, resolution=120, bounds=box)
    ax.set_aspect("equal")
    ax.plot(
        sgd["cloud"][:, 0],
        sgd["cloud"][:, 1],
        ".",
        color="w",
        ms=2,
        alpha=0.6,
        label=f"SGD iterates, B = {sgd['cloud_batch']}",
    )
    t = np.linspace(0, 2 * np.pi, 200)
    for cov, color, label in (
        (sgd["cloud_cov"], "orange", "2 sd of the Lyapunov covariance"),
        (
            noise["C"] * sgd["cloud_cov"].trace() / noise["C"].trace(),
            "red",
            "noise covariance C (same trace)",
        ),
    ):
        ev, vec = np.linalg.eigh(cov)
        ell = vec @ (2 * np.sqrt(ev)[:, None] * np.stack([np.cos(t), np.sin(t)]))
        ax.plot(w_star[0] + ell[0], w_star[1] + ell[1], color=color, lw=1.4, label=label)
    ax.legend(fontsize=6.5, loc="upper left")
    ax.set_title("logistic risk (breast cancer) near its minimum:\nSGD's stationary cloud")
    ax.set_xlabel("w1 (mean radius)")
    ax.set_ylabel("w2 (mean texture)")

    ax = axes[1]
    for mode, marker in ((True, "o"), (False, "s")):
        rows = [r for r in noise["rows"] if r["replacement"] == mode]
        ax.errorbar(
            [r["batch"] for r in rows],
            [r["trace_ratio"] * r["factor"] for r in rows],
            yerr=[2 * r["trace_ratio_se"] * r["factor"] for r in rows],
            fmt=marker,
            ms=5,
            label=f"measured tr Cov x B / tr C, {'with' if mode else 'without'} replacement",
        )
    bs = np.unique(np.geomspace(1, noise["n"], 60).astype(int))
    ax.plot(bs, np.ones_like(bs, dtype=float), "k-", lw=0.8, label="1 (with replacement)")
    ax.plot(bs, (noise["n"] - bs) / (noise["n"] - 1), "k--", lw=0.8, label="(N - B)/(N - 1)")
    rows = sgd["rows"]
    ax.plot(
        [r["batch"] for r in rows],
        [r["T"] / (config.sgd_lr * sgd["s2"] / (2 * r["batch"])) for r in rows],
        "x",
        color="tab:red",
        ms=7,
        label="SGD temperature / (lr s^2 / 2B)",
    )
    ax.set_xscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("relative noise variance")
    ax.set_title("mini-batch noise ~ C/B, x (N-B)/(N-1) without replacement")
    ax.legend(fontsize=6.5)

    ax = axes[2]
    xs = np.linspace(flat["geo"]["flat"] - 1.2, flat["geo"]["sharp"] + 0.45, 300)
    sf = get_landscape("sharp-flat", height=config.height, skew=config.skew, dim=1)
    u = sf.value(torch.tensor(xs[:, None])).numpy()
    ax.plot(xs, u, "k-")
    _, ds, _ = _sharp_flat_functions(config)
    ax.set_xlabel("x")
    ax.set_ylabel("U(x)")
    twin = ax.twinx()
    twin.plot(xs, ds(xs) ** 2, color="tab:red", lw=1, ls="--", label="SGD-like noise variance / barrier's")
    twin.axhline(1.0, color="tab:blue", lw=1, ls=":", label="isotropic noise variance / barrier's")
    twin.set_ylabel("relative noise variance")
    twin.legend(fontsize=7, loc="upper center")
    ax.set_title(
        f"sharp-flat: equal depth, curvature {flat['geo']['curv_flat']:.2f} (flat) vs "
        f"{flat['geo']['curv_sharp']:.2f} (sharp)"
    )

    ax = axes[3]
    colors = {"isotropic": "tab:blue", "SGD-like": "tab:red"}
    markers = dict(zip(config.lrs, ("o", "s", "^", "D", "v")))
    for model in flat["models"]:
        for step in config.lrs:
            part = [c for c in flat["cells"] if c["model"] == model and c["lr"] == step]
            ax.errorbar(
                [c["lr_over_B"] for c in part],
                [c["share"] for c in part],
                yerr=[2 * c["share_se"] for c in part],
                fmt=markers[step],
                color=colors[model],
                ms=5,
                alpha=0.8,
                label=f"{model}, lr = {step:g}",
            )
        curve = flat["curves"][model]
        ax.plot([v for v, _ in curve], [th["share"] for _, th in curve], "-", color=colors[model], lw=1)
        ax.plot([v for v, _ in curve], [th["equilibrium"] for _, th in curve], ":", color=colors[model], lw=1)
    ax.axhline(flat["gd_share"], color="0.4", lw=0.8, ls="--", label="GD (no noise): basin volume")
    ax.set_xscale("log")
    levels = sorted({c["lr_over_B"] for c in flat["cells"]})
    ax.set_xticks(levels, [f"{v:g}" for v in levels], fontsize=7)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(0.45, 1.02)
    ax.set_xlabel("lr / B")
    ax.set_ylabel("share ending in the flat basin")
    ax.set_title(
        f"where does noisy GD end? (t = {config.run_time:g})\nlines: Fokker-Planck; dotted: stationary"
    )
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig
