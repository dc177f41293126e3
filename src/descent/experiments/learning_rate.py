"""Learning rate: too small (slow), good, too large (oscillation), divergent; and the stability edge.

Protocol. The landscape is ``quadratic`` (2-D, eigenvalues ``mu`` and ``L = kappa mu``, rotated by
``angle``), started from its default start; eigenvalues come from the exact Hessian.

1. Regimes. One batched GD run holds a sweep of learning rates (log-spaced up to past ``2/L``) plus four
   representatives (``0.02/L``, ``1/L``, ``1.9/L``, ``2.1/L``). Measured per lr: the loss ratio after
   ``steps`` steps, the rate per step fitted from ``|x_k|`` over the second half of the run (or of the run
   up to divergence), and the zig-zag: the share of late steps whose displacement reverses the previous
   one (``u_k . u_(k-1) < 0``). Measured regime: *divergent* if the loss grows or the engine marks the
   particle diverged; *too large* if it converges but zig-zags (reversal share > 1/2); *good* if it
   converges monotonically and shrinks the loss by ``shrink`` within the budget; *too small* otherwise.
   Theory (`descent.theory.quadratic`): rate ``max(|1 - lr mu|, |1 - lr L|)``, boundaries
   ``2/L``, ``2/(L + mu)`` and the budget's ``(1 - (1/shrink)^(1/(2 steps)))/mu``.
2. Stability edges by batched bisection on lr: every round runs a whole grid of lrs per method and
   momentum (one batched simulation per method), calls a lr unstable when the engine marks it diverged
   or ``|x|`` grew from step ``edge_steps/2`` to ``edge_steps``, and narrows each bracket to the cell
   where stability is lost. Compared with each rule's own stability edge (``RULES[name].edge`` at the
   landscape's Hessian: ``2/lambda_max`` for GD, ``2(1 + beta)/lambda_max`` for the heavy ball,
   ``2(1 + beta)/((1 + 2 beta) lambda_max)`` for Nesterov) and, independently, with the edge found from
   the characteristic roots (`descent.theory.quadratic.edge_by_roots`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent.experiments._base import Progress, Result, Runs, legacy_result, legacy_verdict
from descent.landscapes import get_landscape, quadratic_matrix
from descent.optim import RULES
from descent.spec import RunSpec
from descent.theory.quadratic import REGIMES, edge_by_roots, gd_rate, gd_regime, gd_regime_bounds

NAME = "learning-rate"
CLAIM = (
    "The learning rate is the stride: too small and convergence is painfully slow; too large and the "
    "descent overshoots the minimum repeatedly, oscillating, or diverges entirely."
)

REPRESENTATIVE = {"too small": 0.02, "good": 1.0, "too large": 1.9, "divergent": 2.1}  # in units of 1/L
LABELS = {"gd": "GD", "momentum": "heavy ball", "nesterov": "Nesterov"}


@dataclass(frozen=True)
class Config:
    kappa: float = 10.0
    mu: float = 1.0
    angle: float = 0.5
    steps: int = 1000
    shrink: float = 1e12  # "converged": loss down by this factor
    sweep: int = 400
    sweep_range: tuple[float, float] = (1e-3, 2.5)  # in units of 1/L
    rate_tolerance: float = 0.01  # |measured - theory| rate, relative to 1 - rate (or rate - 1)
    regime_agreement: float = 0.95  # share of the sweep whose measured regime equals theory's
    momenta: tuple[float, ...] = (0.5, 0.9)
    edge_range: tuple[float, float] = (0.01, 10.0)  # initial bracket (absolute lr)
    edge_points: int = 32
    edge_rounds: int = 3
    edge_steps: int = 600
    edge_tolerance: float = 0.01
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(steps=600, sweep=60, edge_points=16, edge_rounds=3, edge_steps=300)


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    landscape = get_landscape("quadratic", kappa=config.kappa, mu=config.mu, angle=config.angle, dim=2)
    eigenvalues, eigenvectors = torch.linalg.eigh(quadratic_matrix(landscape))
    mu, L = float(eigenvalues[0]), float(eigenvalues[-1])
    numbers: dict = {"lambda_min (mu)": mu, "lambda_max (L)": L}
    theory: dict = {}
    checks: dict[str, bool] = {}

    runs = Runs()
    sweep = _sweep(config, runs, eigenvalues.numpy(), eigenvectors.numpy())
    _tick(progress, 1, 2)
    edges = _edges(config, runs)
    _tick(progress, 2, 2)
    predicted_edge = _rule_edges(landscape, edges["edges"])

    # 1. the four regimes at their representatives
    bounds = gd_regime_bounds(mu, L, config.steps, config.shrink, sweep["shares"])
    numbers["initial loss shares of the soft and stiff modes"] = list(sweep["shares"])
    theory["regime boundaries (lr): too small | good"] = bounds["small"]
    theory["regime boundaries (lr): good | too large, 2/(L + mu)"] = bounds["zigzag"]
    theory["regime boundaries (lr): too large | divergent, 2/L"] = bounds["edge"]
    rep = sweep["representatives"]
    for name, row in rep.items():
        key = f"{name} (lr = {REPRESENTATIVE[name]:g}/L = {row['lr']:.4g})"
        numbers[f"{key}: loss ratio after {row['steps']} steps"] = row["loss_ratio"]
        numbers[f"{key}: rate per step"] = row["rate"]
        theory[f"{key}: rate per step"] = row["rate_theory"]
        numbers[f"{key}: share of late steps reversing direction"] = row["reversals"]
        numbers[f"{key}: loss never increases"] = row["monotone"]
        numbers[f"{key}: measured regime"] = row["regime"]
        theory[f"{key}: regime"] = row["regime_theory"]
        if row["converged_step"] is not None:
            numbers[f"{key}: steps to shrink the loss by {config.shrink:g}"] = row["converged_step"]
    small, good, large, div = (rep[name] for name in REGIMES)
    checks[
        f"too small: the loss falls monotonically but by less than {config.shrink:g} in {config.steps} steps"
    ] = small["monotone"] and small["loss_ratio"] > 1.0 / config.shrink and small["regime"] == "too small"
    checks[f"good: the loss falls by {config.shrink:g} within the budget, without zig-zag"] = (
        good["regime"] == "good" and good["reversals"] < 0.5
    )
    checks["too large: it converges while the iterate zig-zags across the valley (oscillation)"] = (
        large["regime"] == "too large" and large["reversals"] > 0.9 and large["loss_ratio"] < 1.0
    )
    checks["divergent: the loss grows until the engine marks the run diverged"] = (
        div["regime"] == "divergent" and div["outcome"] == "diverged"
    )
    rate_err = sweep["rate_error"]
    numbers["sweep: max |measured rate - theory| / |1 - theory rate|"] = float(np.max(rate_err))
    checks[
        f"measured rate = max|1 - lr lambda| within {config.rate_tolerance:.0%} of |1 - rate| (whole sweep)"
    ] = float(np.max(rate_err)) <= config.rate_tolerance
    agreement = float(np.mean(sweep["regime"] == sweep["regime_theory"]))
    numbers["sweep: share of lrs whose measured regime equals theory's"] = agreement
    for name in REGIMES:
        lrs = sweep["lrs"][sweep["regime"] == name]
        numbers[f"sweep: measured lr band, {name}"] = (
            [float(lrs.min()), float(lrs.max())] if lrs.size else None
        )
    checks[
        f"measured regimes match the theory boundaries on >= {config.regime_agreement:.0%} of the sweep"
    ] = agreement >= config.regime_agreement

    # 2. stability edges
    worst = 0.0
    for (method, beta), measured in edges["edges"].items():
        predicted = predicted_edge[(method, beta)]
        rel = measured / predicted - 1.0
        worst = max(worst, abs(rel))
        key = f"stability edge, {LABELS[method]}" + (f" beta={beta:g}" if method != "gd" else "")
        numbers[key] = measured
        numbers[f"{key}: relative error"] = rel
        theory[key] = predicted
        theory[f"{key} (from the characteristic roots)"] = edge_by_roots(method, L, beta)
    numbers["stability edges: bisection resolution (relative)"] = edges["resolution"]
    for method, formula in (
        ("gd", "2/lambda_max"),
        ("momentum", "2(1 + beta)/lambda_max"),
        ("nesterov", "2(1 + beta)/((1 + 2 beta) lambda_max)"),
    ):
        ok = all(
            abs(value / predicted_edge[(m, b)] - 1.0) <= config.edge_tolerance
            for (m, b), value in edges["edges"].items()
            if m == method
        )
        checks[
            f"{LABELS[method]}'s stability edge by bisection within {config.edge_tolerance:.0%} of {formula}"
        ] = ok

    verdict = legacy_verdict(checks)
    explanation = _explain(config, mu, L, rep, agreement, edges, worst, checks)
    config_dict = {
        **asdict(config),
        "landscape": f"quadratic 2-D, eigenvalues {mu:g} and {L:g}, rotated by {config.angle:g} rad",
        "representatives (units of 1/L)": REPRESENTATIVE,
    }
    figure = _figure(config, mu, L, sweep, edges, predicted_edge)
    return legacy_result(
        NAME, CLAIM, verdict, explanation, numbers, theory, config_dict, figure, checks, runs.specs
    )


def _tick(progress: Progress | None, k: int, total: int) -> None:
    if progress is not None:
        progress(k, total)


def _spec(config: Config, **fields) -> RunSpec:
    """A run on the quadratic of ``config`` from its default start."""
    params = {"kappa": config.kappa, "mu": config.mu, "angle": config.angle, "dim": 2}
    return RunSpec(landscape="quadratic", landscape_params=params, seed=config.seed, **fields)


def _rule_edges(landscape, groups) -> dict:
    """Each (method, beta)'s stability edge from the rule itself: ``edge(H, state, hp)`` at the
    landscape's Hessian (exact for a quadratic) with the rule's fresh state."""
    minimum = torch.tensor([landscape.minima[0].position], dtype=torch.float64)
    hessian = landscape.hessian(minimum)
    edges = {}
    for method, beta in groups:
        rule = RULES[method]
        hp = rule.resolve({"momentum": beta} if method != "gd" else {})
        edges[(method, beta)] = float(rule.edge(hessian, rule.init(minimum), hp)[0])
    return edges


# --- 1. the regimes -------------------------------------------------------------------------
def _sweep(config: Config, runs: Runs, eigenvalues: np.ndarray, eigenvectors: np.ndarray) -> dict:
    mu, L = float(eigenvalues[0]), float(eigenvalues[-1])
    lo, hi = config.sweep_range
    sweep_lrs = np.geomspace(lo / L, hi / L, config.sweep)
    rep_lrs = np.array([REPRESENTATIVE[name] / L for name in REGIMES])
    lrs = np.concatenate([sweep_lrs, rep_lrs])
    n = len(lrs)
    traj = runs(_spec(config, optimizer="gd", hyper={"lr": lrs.tolist()}, steps=config.steps, save="every:1"))
    norm = traj.positions.norm(dim=-1).numpy()  # [T, N]
    modes = np.abs(traj.positions.numpy() @ eigenvectors)  # [T, N, d]: |amplitude| of each eigen-mode
    start_modes = modes[0, 0]
    shares = tuple(float(v) for v in eigenvalues * start_modes**2 / np.sum(eigenvalues * start_modes**2))
    loss = traj.loss.numpy()
    disp = traj.displacement.numpy()  # [T, N, d]
    stop = traj.stop_step.numpy()
    rows = []
    for i, lr in enumerate(lrs):
        end = int(stop[i]) - 1 if stop[i] > 0 else config.steps  # last step before a freeze
        start = max(end // 2, 1)
        # per eigen-mode decay over the window, for modes above the rounding floor (1e-10 of |x|); the rate
        # is the largest of them (a mode lost in rounding decays faster than the rest)
        alive = (modes[end, i] > 1e-10 * norm[end, i]) & (modes[start, i] > 1e-10 * norm[start, i])
        per_mode = (modes[end, i] / np.maximum(modes[start, i], 1e-300)) ** (1.0 / max(end - start, 1))
        rate = float(np.max(per_mode[alive])) if alive.any() and end > start else math.nan
        window = slice(max(end * 3 // 4, 1), end + 1)
        dots = np.sum(disp[window, i] * disp[max(end * 3 // 4, 1) - 1 : end, i], axis=-1)
        moving = np.abs(dots) > 0
        reversals = float(np.mean(dots[moving] < 0)) if moving.any() else 0.0
        ratio = float(loss[end, i] / loss[0, i])
        monotone = bool(np.all(np.diff(loss[: end + 1, i]) <= 0))
        grows = traj.outcomes[i] == "diverged" or norm[end, i] > norm[start, i]
        below = np.nonzero(loss[: end + 1, i] <= loss[0, i] / config.shrink)[0]
        if grows:
            regime = "divergent"
        elif reversals > 0.5:
            regime = "too large"
        elif below.size:
            regime = "good"
        else:
            regime = "too small"
        theory_rate = gd_rate(lr, mu, L)
        rows.append(
            {
                "lr": float(lr),
                "steps": end,
                "rate": float(rate),
                "rate_theory": theory_rate,
                "rate_error": abs(rate - theory_rate) / abs(1.0 - theory_rate),
                "reversals": reversals,
                "loss_ratio": ratio,
                "monotone": monotone,
                "regime": regime,
                "regime_theory": gd_regime(lr, mu, L, config.steps, config.shrink, shares),
                "converged_step": int(below[0]) if below.size else None,
                "outcome": traj.outcomes[i],
            }
        )
    k = config.sweep
    sweep_rows = rows[:k]
    return {
        "lrs": sweep_lrs,
        "rate": np.array([r["rate"] for r in sweep_rows]),
        "rate_theory": np.array([r["rate_theory"] for r in sweep_rows]),
        "rate_error": np.array([r["rate_error"] for r in sweep_rows]),
        "reversals": np.array([r["reversals"] for r in sweep_rows]),
        "loss_ratio": np.array([r["loss_ratio"] for r in sweep_rows]),
        "regime": np.array([r["regime"] for r in sweep_rows], dtype=object),
        "regime_theory": np.array([r["regime_theory"] for r in sweep_rows], dtype=object),
        "representatives": dict(zip(REGIMES, rows[k:])),
        "traj": traj,
        "rep_index": list(range(k, n)),
        "shares": shares,
    }


# --- 2. stability edges by batched bisection --------------------------------------------------
def _edges(config: Config, runs: Runs) -> dict:
    groups = [("gd", 0.0)] + [(m, b) for m in ("momentum", "nesterov") for b in config.momenta]
    low = np.full(len(groups), config.edge_range[0])
    high = np.full(len(groups), config.edge_range[1])
    k = config.edge_points
    half = config.edge_steps // 2
    for round_ in range(config.edge_rounds):
        if round_ == 0:  # log-spaced over the wide initial bracket, then linear inside the cell
            grid = np.exp(np.linspace(np.log(low), np.log(high), k).T)  # [G, k]
        else:
            grid = np.linspace(low, high, k).T
        for method in ("gd", "momentum", "nesterov"):
            rows = [g for g, (m, _) in enumerate(groups) if m == method]
            lrs = grid[rows].ravel()
            betas = np.repeat([groups[g][1] for g in rows], k)
            hyper = {"lr": lrs.tolist()}
            if method != "gd":
                hyper["momentum"] = betas.tolist()
            # saved: the start, step edge_steps/2 and the last step
            spec = _spec(config, optimizer=method, hyper=hyper, steps=config.edge_steps, save=f"steps:{half}")
            traj = runs(spec)
            norm = traj.positions.norm(dim=-1)
            unstable = (np.array(traj.outcomes) == "diverged") | (norm[-1] > norm[1]).numpy()
            unstable = unstable.reshape(len(rows), k)
            for r, g in enumerate(rows):
                first = np.nonzero(unstable[r])[0]
                j = int(first[0]) if first.size else k - 1
                low[g], high[g] = grid[g, max(j - 1, 0)], grid[g, j]
    edges = {group: float(0.5 * (low[g] + high[g])) for g, group in enumerate(groups)}
    resolution = float(np.max((high - low) / (high + low)))
    return {"edges": edges, "resolution": resolution}


# --- words and figure -------------------------------------------------------------------------
def _explain(config, mu, L, rep, agreement, edges, worst, checks) -> str:
    small, good, large, div = (rep[name] for name in REGIMES)
    parts = [
        f"On a quadratic valley with curvatures {mu:g} and {L:g}, GD for {config.steps} steps: "
        f"too small (lr {small['lr']:.3g}) shrank the loss only to {small['loss_ratio']:.3g} of its start, "
        f"monotonically (rate {small['rate']:.5f}, theory 1 - lr mu = {small['rate_theory']:.5f}); "
        f"good (lr 1/L = {good['lr']:.3g}) shrank it by {config.shrink:g} in {good['converged_step']} steps "
        f"without zig-zag (rate {good['rate']:.4f}, theory {good['rate_theory']:.4f}); "
        f"too large (lr {large['lr']:.3g}) reversed direction on {large['reversals']:.0%} of late steps: it "
        f"overshoots the valley floor every step, yet still converges (rate {large['rate']:.4f}, theory "
        f"|1 - lr L| = {large['rate_theory']:.4f}), so the oscillation is endless only at lr = 2/L exactly; "
        f"divergent (lr {div['lr']:.3g}) grew by {div['rate']:.4f} per step (theory "
        f"{div['rate_theory']:.4f}) until the engine marked it diverged. ",
        f"Over the lr sweep the measured regime equals the theory's on {agreement:.1%} of the rates "
        f"(boundaries {2 / (L + mu):.4g} = 2/(L + mu), where the sign-flipping stiff mode becomes the "
        f"slowest, and {2 / L:.4g} = 2/L). ",
        f"The stability edges found by batched bisection agree with 2/lambda_max, 2(1 + beta)/lambda_max "
        f"and 2(1 + beta)/((1 + 2 beta) lambda_max) within {worst:.2%} (resolution "
        f"{edges['resolution']:.2%}): momentum lets the heavy ball take steps up to 1 + beta times larger, "
        "Nesterov's look-ahead gives part of that back.",
    ]
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        parts.append(" Checks that failed: " + "; ".join(failed) + ".")
    return "".join(parts)


def _figure(config, mu, L, sweep, edges, predicted_edge):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"too small": "tab:gray", "good": "tab:green", "too large": "tab:orange", "divergent": "tab:red"}
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    traj = sweep["traj"]
    steps = traj.steps.numpy()
    ax = axes[0]
    for name, i in zip(REGIMES, sweep["rep_index"]):
        loss = traj.loss[:, i].numpy()
        end = sweep["representatives"][name]["steps"]
        ax.semilogy(steps[: end + 1], loss[: end + 1] / loss[0], color=colors[name], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss / initial loss")
    ax.set_title("the four regimes (GD)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    grid = np.linspace(-1.6, 1.6, 100)
    gx, gy = np.meshgrid(grid, grid)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    values = traj.landscape.value(pts).numpy().reshape(gx.shape)
    ax.contour(gx, gy, values, levels=15, colors="k", linewidths=0.4, alpha=0.5)
    for name, i in zip(("good", "too large"), sweep["rep_index"][1:3]):
        path = traj.positions[:40, i, :].numpy()
        ax.plot(path[:, 0], path[:, 1], "-o", ms=2, color=colors[name], lw=0.8, label=name)
    ax.set_aspect("equal")
    ax.set_title("first 40 steps: straight vs zig-zag", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[2]
    lrL = sweep["lrs"] * L
    for name in REGIMES:
        mask = sweep["regime"] == name
        ax.plot(lrL[mask], sweep["rate"][mask], "o", ms=3, color=colors[name], label=f"measured: {name}")
    ax.plot(lrL, sweep["rate_theory"], "k-", lw=0.8, label="max|1 - lr lambda|")
    for x in (2 * L / (L + mu), 2.0):
        ax.axvline(x, color="k", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(0.0, 1.6)
    ax.set_xlabel("lr x L")
    ax.set_ylabel("rate per step")
    ax.set_title("rate and regime over the sweep", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    ax = axes[3]
    labels, measured, predicted = [], [], []
    for (method, beta), value in edges["edges"].items():
        labels.append(LABELS[method] + (f"\nbeta {beta:g}" if method != "gd" else ""))
        measured.append(value)
        predicted.append(predicted_edge[(method, beta)])
    pos = np.arange(len(labels))
    ax.bar(pos - 0.2, measured, 0.4, label="bisection")
    ax.bar(pos + 0.2, predicted, 0.4, label="closed form")
    ax.set_xticks(pos, labels, fontsize=8)
    ax.set_ylabel("largest stable lr")
    ax.set_title(f"stability edges (lambda_max = {L:g})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
