"""Plateau: momentum speeds the crossing of a long gentle slope, by its terminal velocity.

Protocol. The landscape is ``plateau``: a constant force ``s`` (the slope) on ``0 <= x <= length``, then
a Gaussian well held by an exponential wall. The heavy ball (``momentum``; ``beta = 0`` is GD) starts at
rest at ``x = 0``; all (lr, beta) pairs run as one batched simulation with per-particle hyper-parameters.
The crossing step is the first step with ``x_k >= length``, read from the recorded positions; it is
compared with the exact heavy-ball prediction on a constant force
(`descent.theory.quadratic.heavy_ball_crossing_step`),

    x_k = lr s (k/(1 - beta) - beta (1 - beta^k)/(1 - beta)^2),

whose first term is the terminal velocity ``lr s/(1 - beta)`` (the speed-up ``1/(1 - beta)`` over GD)
and whose second is the transient, a lag of ``beta/(1 - beta)`` steps. The settling step is the
engine's ``outcome_step`` of ``minimum:well``: the first step of the final stretch in which the ball
stays settled (|grad| < ``settle_grad_tol`` and |step| < ``settle_step_tol``: the ``converged`` event's
thresholds; a heavy ball may pass through them at a turning point and leave again, so nothing stops
early and every ball runs the whole budget); the overshoot is how far past the well's minimum the ball
swings, and the returns count how often it rolls back onto the plateau.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from descent.experiments._base import Progress, Result, Runs, verdict_from
from descent.landscapes import get_landscape
from descent.spec import RunSpec
from descent.theory.quadratic import (
    heavy_ball_constant_force_position,
    heavy_ball_crossing_step,
    terminal_speedup,
)

NAME = "plateau-momentum"
CLAIM = (
    "On a plateau plain gradient descent (momentum 0) crawls; with momentum 0.9 the ball speeds up "
    "(about 1/(1 - beta) times faster: the terminal velocity on a constant slope)."
)


@dataclass(frozen=True)
class Config:
    slope: float = 0.05
    length: float = 8.0
    momenta: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99)
    lrs: tuple[float, ...] = (0.05, 0.1, 0.2)
    lr_seed: float = 0.1  # the landscape's default lr, the seed's setting
    tolerance: float = 0.02  # crossing step vs the exact prediction
    terminal_tolerance: float = 0.10  # speed-up vs 1/(1 - beta) where the transient is short
    short_transient: float = 0.10  # "short": the lag beta/(1 - beta) below this share of the crossing
    settle_grad_tol: float = 1e-3  # settled in the well: |grad| below this ...
    settle_step_tol: float = 1e-4  # ... and the last step below this (the converged event's thresholds)
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(lrs=(0.1,))


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    if config.lr_seed not in config.lrs or 0.0 not in config.momenta:
        raise ValueError("Config.lrs must hold lr_seed and Config.momenta must hold 0 (GD), the references")
    landscape = get_landscape("plateau", slope=config.slope, length=config.length)
    force = config.slope
    pairs = [(lr, beta) for lr in config.lrs for beta in config.momenta]
    slowest = heavy_ball_crossing_step(config.length, min(config.lrs), force, 0.0)
    budget = int(1.3 * slowest) + 4000
    spec = RunSpec(
        landscape="plateau",
        landscape_params={"slope": config.slope, "length": config.length},
        optimizer="momentum",
        hyper={"lr": [lr for lr, _ in pairs], "momentum": [beta for _, beta in pairs]},
        steps=budget,
        save="every:1",
        events={"grad_tol": config.settle_grad_tol, "step_tol": config.settle_step_tol},
        seed=config.seed,
    )
    runs = Runs()
    traj = runs(spec, progress)
    x = traj.positions[:, :, 0].numpy()  # [T, N]
    steps = traj.steps.numpy()
    well = landscape.minima[0].position[0]
    rows = {}
    for i, (lr, beta) in enumerate(pairs):
        crossed = np.nonzero(x[:, i] >= config.length)[0]
        cross = int(steps[crossed[0]]) if crossed.size else -1
        after = x[crossed[0] :, i] if crossed.size else x[-1:, i]
        returns = int(np.sum((after[1:] < config.length) & (after[:-1] >= config.length)))
        settled = traj.outcomes[i] == "minimum:well"
        rows[(lr, beta)] = {
            "cross": cross,
            "predicted": heavy_ball_crossing_step(config.length, lr, force, beta),
            "settle": int(traj.outcome_step[i]) if settled else -1,
            "outcome": traj.outcomes[i],
            "overshoot": float(after.max() - well),
            "returns": returns,
            "lag": beta / (1.0 - beta),
        }

    numbers: dict = {}
    theory: dict = {}
    checks: dict[str, bool] = {}
    within, short_ok, captured = [], [], []
    for (lr, beta), row in rows.items():
        key = f"lr={lr:g}, beta={beta:g}"
        gd = rows[(lr, 0.0)]
        rel = row["cross"] / row["predicted"] - 1.0 if row["cross"] > 0 else math.inf
        numbers[f"{key}: crossing step"] = row["cross"]
        theory[f"{key}: crossing step"] = row["predicted"]
        numbers[f"{key}: crossing step, relative error"] = rel
        within.append(abs(rel) <= config.tolerance)
        numbers[f"{key}: settling step in the well"] = row["settle"]
        numbers[f"{key}: overshoot past the well minimum"] = row["overshoot"]
        numbers[f"{key}: returns onto the plateau"] = row["returns"]
        captured.append(row["settle"] > 0)
        if beta > 0:
            speedup = gd["cross"] / row["cross"]
            numbers[f"{key}: crossing speed-up over GD"] = speedup
            theory[f"{key}: crossing speed-up over GD (exact)"] = gd["predicted"] / row["predicted"]
            theory[f"{key}: terminal-velocity speed-up 1/(1 - beta)"] = terminal_speedup(beta)
            numbers[f"{key}: transient lag beta/(1 - beta) as a share of the crossing"] = (
                row["lag"] / row["cross"]
            )
            if row["settle"] > 0 and gd["settle"] > 0:
                numbers[f"{key}: settling speed-up over GD"] = gd["settle"] / row["settle"]
            if row["lag"] < config.short_transient * row["cross"]:
                short_ok.append(abs(speedup * (1.0 - beta) - 1.0) <= config.terminal_tolerance)
    seed = rows[(config.lr_seed, 0.9)] if 0.9 in config.momenta else None
    gd_seed = rows[(config.lr_seed, 0.0)]
    checks[
        f"crossing steps within {config.tolerance:.0%} of the exact heavy-ball prediction (every lr, beta)"
    ] = all(within)
    crossing = [rows[(config.lr_seed, b)]["cross"] for b in sorted(config.momenta)]
    checks["more momentum crosses sooner (crossing step decreasing in beta at the seed's lr)"] = all(
        a > b > 0 for a, b in zip(crossing, crossing[1:])
    )
    if seed is not None:
        checks["momentum 0.9 crosses the plateau faster than GD at the seed's lr"] = (
            0 < seed["cross"] < gd_seed["cross"]
        )
    checks[
        f"speed-up within {config.terminal_tolerance:.0%} of 1/(1 - beta) wherever the transient is short "
        f"(lag < {config.short_transient:.0%} of the crossing)"
    ] = bool(short_ok) and all(short_ok)
    checks["every run ends captured in the well"] = all(captured)
    numbers["steps run (the budget: 1.3 x GD's slowest crossing + 4000)"] = traj.steps_run
    verdict = verdict_from(checks)
    explanation = _explain(config, rows, checks)
    config_dict = {
        **asdict(config),
        "landscape": f"plateau (slope {config.slope:g}, length {config.length:g})",
        "optimizer": "momentum (seeds' form), beta = 0 is GD; one batched run over all (lr, beta)",
        "crossing": "first recorded step with x >= length",
        "settling": "outcome_step of minimum:well: the first step of the final settled stretch",
    }
    return Result(
        NAME,
        CLAIM,
        verdict,
        explanation,
        numbers,
        theory,
        config_dict,
        _figure(config, traj, pairs, rows),
        checks,
        runs.specs,
    )


def _explain(config, rows, checks) -> str:
    lr = config.lr_seed
    gd = rows[(lr, 0.0)]
    worst = max(abs(r["cross"] / r["predicted"] - 1.0) for r in rows.values())
    parts = [
        f"At lr {lr:g} on a slope {config.slope:g} of length {config.length:g}, GD crawls at lr*s = "
        f"{lr * config.slope:g} per step and crossed in {gd['cross']} steps (theory {gd['predicted']}). "
    ]
    for beta in config.momenta:
        if beta == 0:
            continue
        r = rows[(lr, beta)]
        parts.append(
            f"beta {beta:g}: {r['cross']} steps (exact prediction {r['predicted']}), a speed-up of "
            f"{gd['cross'] / r['cross']:.2f} against 1/(1 - beta) = {terminal_speedup(beta):g}; "
        )
    agreement = "equals" if worst == 0 else f"is within {worst:.2%} of"
    parts.append(
        f"at every lr and beta the measured crossing step {agreement} the first k with x_k = lr s "
        "(k/(1 - beta) - beta(1 - beta^k)/(1 - beta)^2) >= length. The terminal velocity lr s/(1 - beta) "
        "explains the speed-up when the plateau is long compared with the transient (a lag of "
        "beta/(1 - beta) steps). "
    )
    if 0.99 in config.momenta:
        r = rows[(lr, 0.99)]
        middle = f" and beta 0.9's {rows[(lr, 0.9)]['settle']}" if 0.9 in config.momenta else ""
        parts.append(
            f"At beta 0.99 the transient dominates: the ball is still accelerating when it reaches the end "
            f"(lag {r['lag']:.0f} steps against a crossing of {r['cross']}), so the speed-up is "
            f"{gd['cross'] / r['cross']:.1f}, not 100. With so little friction it then overshoots the well's "
            f"minimum by {r['overshoot']:.2f}, rolls back onto the plateau {r['returns']} time(s) and "
            f"settles only after {r['settle']} steps, against GD's {gd['settle']}{middle}: faster across, "
            "not faster to rest."
        )
        others = [
            f"{rows[(other, 0.0)]['settle'] / rows[(other, 0.99)]['settle']:.2f} at lr {other:g}"
            for other in config.lrs
            if other != lr and rows[(other, 0.99)]["settle"] > 0 and rows[(other, 0.0)]["settle"] > 0
        ]
        if others:
            parts.append(f" Its settling speed-up over GD is {', '.join(others)}.")
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        parts.append(" Checks that failed: " + "; ".join(failed) + ".")
    return "".join(parts)


def _figure(config, traj, pairs, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lr = config.lr_seed
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(config.momenta)))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    steps = traj.steps.numpy()
    x = traj.positions[:, :, 0].numpy()
    ax = axes[0]
    for color, beta in zip(colors, config.momenta):
        i = pairs.index((lr, beta))
        ax.plot(steps[1:], x[1:, i], color=color, lw=1.3, label=f"beta {beta:g}")
        k = np.arange(1, rows[(lr, beta)]["cross"] + 1)
        ax.plot(
            k, [heavy_ball_constant_force_position(int(j), lr, config.slope, beta) for j in k], "k:", lw=0.9
        )
    ax.axhline(config.length, color="gray", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("x")
    ax.set_title(f"position at lr {lr:g} (dotted: exact constant-force theory)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    speed = traj.displacement[:, :, 0].numpy()
    for color, beta in zip(colors, config.momenta):
        i = pairs.index((lr, beta))
        cross = rows[(lr, beta)]["cross"]
        ax.plot(steps[1 : cross + 1], speed[1 : cross + 1, i], color=color, lw=1.3, label=f"beta {beta:g}")
        ax.axhline(lr * config.slope / (1.0 - beta), color=color, lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("step (until the crossing)")
    ax.set_ylabel("displacement per step")
    ax.set_title("speed on the plateau (dashed: terminal lr s/(1 - beta))", fontsize=10)
    ax.grid(alpha=0.3)

    ax = axes[2]
    betas = [b for b in config.momenta if b > 0]
    pos = np.arange(len(betas))
    gd = rows[(lr, 0.0)]
    measured = [gd["cross"] / rows[(lr, b)]["cross"] for b in betas]
    exact = [gd["predicted"] / rows[(lr, b)]["predicted"] for b in betas]
    settle = [gd["settle"] / max(rows[(lr, b)]["settle"], 1) for b in betas]
    ax.bar(pos - 0.3, measured, 0.2, label="crossing, measured")
    ax.bar(pos - 0.1, exact, 0.2, label="crossing, exact theory")
    ax.bar(pos + 0.1, [terminal_speedup(b) for b in betas], 0.2, label="1/(1 - beta)")
    ax.bar(pos + 0.3, settle, 0.2, label="settling in the well, measured")
    ax.set_xticks(pos, [f"beta {b:g}" for b in betas])
    ax.set_yscale("log")
    ax.set_ylabel("speed-up over GD")
    ax.set_title(f"speed-ups at lr {lr:g}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
