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
   ``2/L``, ``2/(L + mu)`` and the budget's ``(1 - (1/shrink)^(1/(2 steps)))/mu``; the exact loss
   ``f(x_k)/f(x_0) = sum_i share_i (1 - lr lambda_i)^(2k)`` gives the loss ratio and the step at which
   the loss has shrunk by ``shrink``. The claim is checked at the representatives: the too-small lr
   needs at least ``SLOW`` times the steps of the good one (extrapolated from its measured rate), the
   too-large lr crosses the valley floor (its stiff mode changes sign) on more than half its steps
   while the good one does not zig-zag, and the divergent one grows (rate above 1). The runs are
   deterministic, so every tolerance is a stated relative or absolute one, the same at every size.
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

from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, below, exceeds, number
from descent.landscapes import get_landscape, quadratic_matrix
from descent.optim import RULES
from descent.spec import RunSpec
from descent.theory.quadratic import (
    REGIMES,
    edge_by_roots,
    gd_loss_ratio,
    gd_rate,
    gd_regime,
    gd_regime_bounds,
)

NAME = "learning-rate"
CLAIM = (
    "The learning rate is the stride: too small and convergence is painfully slow; too large and the "
    "descent overshoots the minimum repeatedly, oscillating, or diverges entirely."
)
PROTOCOL = (
    "GD runs on a 2-D quadratic valley (curvatures mu and L = 10 mu) at a sweep of learning rates up to "
    "past the stability edge 2/L and at four representatives (0.02/L, 1/L, 1.9/L, 2.1/L), and each run's "
    "rate, loss, zig-zag and regime are compared with the exact linear recurrence. The stability edges of "
    "GD, the heavy ball and Nesterov are found by bisection on the learning rate and compared with "
    "2/L, 2(1 + beta)/L and 2(1 + beta)/((1 + 2 beta) L)."
)

REPRESENTATIVE = {"too small": 0.02, "good": 1.0, "too large": 1.9, "divergent": 2.1}  # in units of 1/L
LABELS = {"gd": "GD", "momentum": "heavy ball", "nesterov": "Nesterov"}
SLUG = {"too small": "too_small", "good": "good", "too large": "too_large", "divergent": "divergent"}

# Claim thresholds, in the claim's words.
SLOW = 10.0  # "painfully slow": at least ten times the steps the good lr needs
ZIGZAG = 0.5  # "overshoots repeatedly": the iterate crosses the valley floor on more than half its steps
# Theory tolerances: the runs are deterministic, so these are stated once and hold at every size.
RATE_REL = 1e-6  # measured 1 - rate against max|1 - lr lambda| (the fit is exact up to rounding)
LOSS_REL = 1e-6  # the loss ratio against the exact recurrence
REGIME_SHARE = 0.95  # the sweep's measured regimes equal the theory's on more than 95 % of the lrs
EDGE_REL = 0.005  # a bisection edge within 0.5 % of the closed form (the quick bracket is 0.1 % wide)
ROOTS_REL = 1e-9  # the rule's closed-form edge against the edge found from the characteristic roots


@dataclass(frozen=True)
class Config:
    kappa: float = 10.0
    mu: float = 1.0
    angle: float = 0.5
    steps: int = 1000
    shrink: float = 1e12  # "converged": loss down by this factor
    sweep: int = 400
    sweep_range: tuple[float, float] = (1e-3, 2.5)  # in units of 1/L
    momenta: tuple[float, ...] = (0.5, 0.9)
    edge_range: tuple[float, float] = (0.01, 10.0)  # initial bracket (absolute lr)
    edge_points: int = 32
    edge_rounds: int = 3
    edge_steps: int = 600
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(steps=600, sweep=60, edge_points=16, edge_rounds=3, edge_steps=300)


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    landscape = get_landscape("quadratic", kappa=config.kappa, mu=config.mu, angle=config.angle, dim=2)
    eigenvalues, eigenvectors = torch.linalg.eigh(quadratic_matrix(landscape))
    mu, L = float(eigenvalues[0]), float(eigenvalues[-1])
    runs = Runs()
    sweep = _sweep(config, runs, eigenvalues.numpy(), eigenvectors.numpy())
    _tick(progress, 1, 2)
    edges = _edges(config, runs)
    _tick(progress, 2, 2)
    rule_edges = _rule_edges(landscape, edges["edges"])
    config_dict = {
        **asdict(config),
        "landscape": f"quadratic 2-D, eigenvalues {mu:g} and {L:g}, rotated by {config.angle:g} rad",
        "representatives (units of 1/L)": REPRESENTATIVE,
    }
    rows = _regime_rows(config, mu, L, sweep) + _edge_rows(L, edges, rule_edges)
    figures = [_figure(config, mu, L, sweep), _details_figure(config, L, sweep, edges, rule_edges)]
    return Result(NAME, CLAIM, PROTOCOL, rows, config_dict, figures, runs.specs)


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


def steps_to_shrink(lr: float, mu: float, L: float, shares, shrink: float, limit: int = 10**7) -> int | None:
    """The first step k at which the exact loss ratio ``sum_i share_i (1 - lr lambda_i)^(2k)`` is at most
    ``1/shrink`` (None if not within ``limit`` steps or never)."""
    if gd_rate(lr, mu, L) >= 1.0:
        return None
    low, high = 0, 1
    while gd_loss_ratio(lr, [mu, L], list(shares), high) > 1.0 / shrink:
        low, high = high, 2 * high
        if high > limit:
            return None
    while high - low > 1:  # the exact ratio falls monotonically in k below 2/L
        mid = (low + high) // 2
        if gd_loss_ratio(lr, [mu, L], list(shares), mid) <= 1.0 / shrink:
            high = mid
        else:
            low = mid
    return high


# --- 1. the regimes -------------------------------------------------------------------------
def _regime_rows(config: Config, mu: float, L: float, sweep: dict) -> list[Row]:
    rep = sweep["representatives"]
    shares = sweep["shares"]
    small, good, large, div = (rep[name] for name in REGIMES)
    out: list[Row] = []
    # --- the claim, at the representatives ------------------------------------------------------------
    group = "the four regimes (claim)"
    # steps to shrink the loss by `shrink`: the good lr's measured step; the too-small lr does not get there
    # within the budget, so its count is extrapolated from its measured loss ratio at the end of the budget
    # and its measured rate (by then only the soft mode is left: the loss falls by rate^2 per step)
    need_small = small["steps"] + math.log(small["loss_ratio"] * config.shrink) / (
        -2.0 * math.log(small["rate"])
    )
    need_good = good["converged_step"] or math.nan
    slowdown = need_small / need_good
    exact_small = steps_to_shrink(small["lr"], mu, L, shares, config.shrink)
    out.append(
        exceeds(
            "too_small/slowdown",
            f"too small (lr {small['lr']:.3g}): steps to shrink the loss by {config.shrink:g}, over the "
            f"good lr's ({good['lr']:.3g})",
            slowdown,
            SLOW,
            group=group,
            key=True,
            if_pass=f"Too small is painfully slow: at lr {small['lr']:.3g} the loss falls by "
            f"{config.shrink:g} only after about {need_small:.0f} steps (rate {small['rate']:.4f}), "
            f"{slowdown:.0f} times the {need_good:.0f} steps of lr {good['lr']:.3g}.",
            if_fail=f"At lr {small['lr']:.3g} the loss falls by {config.shrink:g} in about {need_small:.0f} "
            f"steps, only {slowdown:.1f} times the {need_good:.0f} steps of lr {good['lr']:.3g}: not "
            "painfully slow.",
        )
    )
    out.append(
        below(
            "good/overshoot",
            f"good (lr {good['lr']:.3g}): share of late steps that reverse the previous one (zig-zag)",
            good["reversals"],
            ZIGZAG,
            group=group,
            if_pass=f"The good lr {good['lr']:.3g} does not zig-zag (reversals on "
            f"{good['reversals']:.0%} of late steps) and shrinks the loss by {config.shrink:g} in "
            f"{need_good:.0f} steps.",
            if_fail=f"The good lr {good['lr']:.3g} zig-zags too (reversals on {good['reversals']:.0%} of "
            "late steps).",
        )
    )
    out.append(
        exceeds(
            "too_large/overshoot",
            f"too large (lr {large['lr']:.3g}): share of steps on which the iterate crosses the valley "
            "floor (the stiff mode changes sign)",
            large["crossings"],
            ZIGZAG,
            group=group,
            key=True,
            if_pass=f"Too large overshoots the minimum repeatedly: at lr {large['lr']:.3g} the iterate "
            f"crosses the valley floor on {large['crossings']:.0%} of its steps, zig-zagging; below 2/L it "
            f"still converges (rate {large['rate']:.4f}).",
            if_fail=f"At lr {large['lr']:.3g} the iterate crosses the valley floor on only "
            f"{large['crossings']:.0%} of its steps: no repeated overshoot.",
        )
    )
    out.append(
        exceeds(
            "divergent/rate",
            f"divergent (lr {div['lr']:.3g}): growth of |x| per step",
            div["rate"],
            1.0,
            group=group,
            key=True,
            if_pass=f"Past the stability edge it diverges: at lr {div['lr']:.3g} |x| grows by a factor "
            f"{div['rate']:.4f} per step until the engine marks the run {div['outcome']} at step "
            f"{div['steps'] + 1}.",
            if_fail=f"At lr {div['lr']:.3g} |x| does not grow (rate {div['rate']:.4f}).",
        )
    )
    # --- theory at the representatives --------------------------------------------------------------
    group = "the representatives (theory: the exact recurrence, rate max|1 - lr lambda|)"
    out.append(
        agrees(
            "shrink_step/too_small/extrapolated",
            f"too small: steps to shrink the loss by {config.shrink:g}, extrapolated past the budget",
            need_small,
            exact_small if exact_small is not None else math.nan,
            absolute=1.0,
            unit="steps",
            group=group,
        )
    )
    for name in REGIMES:
        r, slug = rep[name], SLUG[name]
        where = f"{name} (lr {REPRESENTATIVE[name]:g}/L = {r['lr']:.4g})"
        out.append(
            agrees(
                f"rate/{slug}",
                f"{where}: 1 - rate per step",
                1.0 - r["rate"],
                1.0 - r["rate_theory"],
                rel=RATE_REL,
                group=group,
            )
        )
        out.append(
            agrees(
                f"loss_ratio/{slug}",
                f"{where}: loss ratio after {r['steps']} steps",
                r["loss_ratio"],
                gd_loss_ratio(r["lr"], [mu, L], list(shares), r["steps"]),
                rel=LOSS_REL,
                group=group,
            )
        )
        if name != "divergent":
            out.append(
                agrees(
                    f"loss_increases/{slug}",
                    f"{where}: steps on which the loss increased (below 2/L every mode's energy shrinks)",
                    r["increases"],
                    0.0,
                    absolute=0.0,
                    group=group,
                )
            )
        exact = steps_to_shrink(r["lr"], mu, L, shares, config.shrink)
        if r["converged_step"] is not None or (exact is not None and exact <= r["steps"]):
            out.append(
                agrees(
                    f"shrink_step/{slug}",
                    f"{where}: first step with the loss down by {config.shrink:g}",
                    r["converged_step"] if r["converged_step"] is not None else math.nan,
                    exact if exact is not None else math.nan,
                    absolute=0.0,
                    unit="steps",
                    group=group,
                )
            )
        out.append(
            number(
                f"reversals/{slug}",
                f"{where}: share of late steps reversing the previous one",
                r["reversals"],
                group=group,
            )
        )
    # --- theory over the sweep ----------------------------------------------------------------------
    group = "the sweep (theory: rate max|1 - lr lambda|, boundaries 2/(L + mu) and 2/L)"
    out.append(
        agrees(
            "sweep/rate",
            "sweep: largest |measured rate - theory| / |1 - theory rate|",
            float(np.max(sweep["rate_error"])),
            0.0,
            absolute=RATE_REL,
            group=group,
        )
    )
    agreement = float(np.mean(sweep["regime"] == sweep["regime_theory"]))
    out.append(
        exceeds(
            "sweep/regimes",
            "sweep: share of lrs whose measured regime equals the theory's",
            agreement,
            REGIME_SHARE,
            about="theory",
            group=group,
        )
    )
    bounds = gd_regime_bounds(mu, L, config.steps, config.shrink, shares)
    for (lower, upper), bound in zip(
        zip(REGIMES, REGIMES[1:]), (bounds["small"], bounds["zigzag"], bounds["edge"])
    ):
        index = REGIMES.index(upper)
        order = np.array([REGIMES.index(x) for x in sweep["regime"]])
        below_lrs = sweep["lrs"][order < index]
        above_lrs = sweep["lrs"][order >= index]
        if below_lrs.size and above_lrs.size:
            measured = math.sqrt(float(below_lrs.max()) * float(above_lrs.min()))
            out.append(
                number(
                    f"boundary/{SLUG[lower]}|{SLUG[upper]}",
                    f"sweep: lr where {lower} turns {upper} (geometric middle of the sweep's bracket)",
                    measured,
                    theory=bound,
                    group=group,
                )
            )
    return out


def _sweep(config: Config, runs: Runs, eigenvalues: np.ndarray, eigenvectors: np.ndarray) -> dict:
    mu, L = float(eigenvalues[0]), float(eigenvalues[-1])
    lo, hi = config.sweep_range
    sweep_lrs = np.geomspace(lo / L, hi / L, config.sweep)
    rep_lrs = np.array([REPRESENTATIVE[name] / L for name in REGIMES])
    lrs = np.concatenate([sweep_lrs, rep_lrs])
    n = len(lrs)
    traj = runs(_spec(config, optimizer="gd", hyper={"lr": lrs.tolist()}, steps=config.steps, save="every:1"))
    norm = traj.positions.norm(dim=-1).numpy()  # [T, N]
    signed = traj.positions.numpy() @ eigenvectors  # [T, N, d]: amplitude of each eigen-mode
    modes = np.abs(signed)
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
        # crossings of the valley floor: sign changes of the stiff mode while it is above rounding
        stiff = signed[: end + 1, i, -1]
        live = np.abs(stiff) > 1e-10 * norm[: end + 1, i]
        pairs = live[1:] & live[:-1]
        crossings = float(np.mean((stiff[1:] * stiff[:-1] < 0)[pairs])) if pairs.any() else 0.0
        ratio = float(loss[end, i] / loss[0, i])
        increases = int(np.sum(np.diff(loss[: end + 1, i]) > 0))
        grows = traj.outcomes[i] == "diverged" or norm[end, i] > norm[start, i]
        below_target = np.nonzero(loss[: end + 1, i] <= loss[0, i] / config.shrink)[0]
        if grows:
            regime = "divergent"
        elif reversals > 0.5:
            regime = "too large"
        elif below_target.size:
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
                "crossings": crossings,
                "loss_ratio": ratio,
                "increases": increases,
                "regime": regime,
                "regime_theory": gd_regime(lr, mu, L, config.steps, config.shrink, shares),
                "converged_step": int(below_target[0]) if below_target.size else None,
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
        "regime": np.array([r["regime"] for r in sweep_rows], dtype=object),
        "regime_theory": np.array([r["regime_theory"] for r in sweep_rows], dtype=object),
        "representatives": dict(zip(REGIMES, rows[k:])),
        "traj": traj,
        "rep_index": list(range(k, n)),
        "shares": shares,
    }


# --- 2. stability edges by batched bisection --------------------------------------------------
def _edge_rows(L: float, edges: dict, rule_edges: dict) -> list[Row]:
    out: list[Row] = []
    formulas = {
        "gd": "2/lambda_max",
        "momentum": "2(1 + beta)/lambda_max",
        "nesterov": "2(1 + beta)/((1 + 2 beta) lambda_max)",
    }
    group = "stability edges (theory: the characteristic roots; closed forms of each rule)"
    for (method, beta), measured in edges["edges"].items():
        slug = method + (f"/beta={beta:g}" if method != "gd" else "")
        who = LABELS[method] + (f" beta {beta:g}" if method != "gd" else "")
        roots = edge_by_roots(method, L, beta)
        low, high = edges["brackets"][(method, beta)]
        out.append(
            agrees(
                f"edge/{slug}",
                f"{who}: stability edge by bisection",
                measured,
                roots,
                rel=EDGE_REL,
                group=group,
                key=method == "gd",
                unit="lr",
            )
        )
        out.append(
            agrees(
                f"edge_bracket/{slug}",
                f"{who}: where the edge from the roots lies in the final bisection bracket (0 = its lower "
                "end, 1 = its upper end)",
                (roots - low) / (high - low),
                0.5,
                absolute=0.5,
                group=group,
            )
        )
        out.append(
            agrees(
                f"edge_rule/{slug}",
                f"{who}: the rule's closed-form edge {formulas[method]} against the roots'",
                rule_edges[(method, beta)],
                roots,
                rel=ROOTS_REL,
                group=group,
            )
        )
    out.append(
        number(
            "edge_resolution",
            "stability edges: widest final bracket, relative",
            edges["resolution"],
            group=group,
        )
    )
    return out


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
    brackets = {group: (float(low[g]), float(high[g])) for g, group in enumerate(groups)}
    resolution = float(np.max((high - low) / (high + low)))
    return {"edges": edges, "brackets": brackets, "resolution": resolution}


# --- figures ----------------------------------------------------------------------------------
COLORS = {"too small": "tab:gray", "good": "tab:green", "too large": "tab:orange", "divergent": "tab:red"}


def _figure(config, mu, L, sweep):
    """The card: the loss of the four representatives, and rate and regime over the sweep."""
    fig, axes = subplots(1, 2, height=4.6)
    traj = sweep["traj"]
    steps = traj.steps.numpy()
    ax = axes[0]
    for name, i in zip(REGIMES, sweep["rep_index"]):
        loss = traj.loss[:, i].numpy()
        end = sweep["representatives"][name]["steps"]
        ax.semilogy(
            steps[: end + 1],
            loss[: end + 1] / loss[0],
            color=COLORS[name],
            lw=1.6,
            label=f"{name}: lr {REPRESENTATIVE[name]:g}/L",
        )
    ax.axhline(1.0 / config.shrink, color="k", ls=":", lw=0.8)
    ax.set_xlim(0, min(config.steps, 400))
    ax.set_ylim(1e-30, 1e8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss / initial loss")
    ax.set_title("GD at four learning rates (dotted: the target)", fontsize=11)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)

    ax = axes[1]
    lrL = sweep["lrs"] * L
    for name in REGIMES:
        mask = sweep["regime"] == name
        ax.plot(lrL[mask], sweep["rate"][mask], "o", ms=3.5, color=COLORS[name], label=f"measured: {name}")
    ax.plot(lrL, sweep["rate_theory"], "k-", lw=0.8, label="theory max|1 - lr lambda|")
    for x in (2 * L / (L + mu), 2.0):
        ax.axvline(x, color="k", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(0.0, 1.6)
    ax.set_xlabel("lr x L (dotted: 2L/(L + mu) and the stability edge 2)")
    ax.set_ylabel("rate per step")
    ax.set_title("rate and regime over the sweep", fontsize=11)
    ax.legend(fontsize=9, loc="lower left")
    ax.grid(alpha=0.3)
    return finish(fig)


def _details_figure(config, L, sweep, edges, rule_edges):
    """Details: the first steps at the good and too-large lrs, and the stability edges."""
    fig, axes = subplots(1, 2, height=4.6)
    traj = sweep["traj"]
    ax = axes[0]
    grid = np.linspace(-1.6, 1.6, 100)
    gx, gy = np.meshgrid(grid, grid)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    values = traj.landscape.value(pts).numpy().reshape(gx.shape)
    ax.contour(gx, gy, values, levels=15, colors="k", linewidths=0.4, alpha=0.5)
    for name, i in zip(("too large", "good"), sweep["rep_index"][2:0:-1]):
        path = traj.positions[:40, i, :].numpy()
        ax.plot(path[:, 0], path[:, 1], "-o", ms=3, color=COLORS[name], lw=1.0, label=name)
    ax.set_aspect("equal")
    ax.set_title("first 40 steps: straight (good) vs zig-zag (too large)", fontsize=11)
    ax.legend(fontsize=9)

    ax = axes[1]
    labels, measured, predicted = [], [], []
    for (method, beta), value in edges["edges"].items():
        labels.append(LABELS[method] + (f"\nbeta {beta:g}" if method != "gd" else ""))
        measured.append(value)
        predicted.append(rule_edges[(method, beta)])
    pos = np.arange(len(labels))
    ax.bar(pos - 0.2, measured, 0.4, label="bisection")
    ax.bar(pos + 0.2, predicted, 0.4, label="closed form")
    ax.set_xticks(pos, labels)
    ax.set_ylabel("largest stable lr")
    ax.set_title(f"stability edges (lambda_max = {L:g})", fontsize=11)
    ax.legend(fontsize=9)
    return finish(fig)
