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

from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, exceeds, number
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

# On the plateau the well's Gaussian tail adds a force of at most depth (6 width)/width^2 exp(-18)
# ~ 2e-7, under 1e-5 of the slope: the tolerance of the velocity check.
WELL_TAIL = 1e-5
PROTOCOL = (
    "Balls start at rest at the left end of a plateau (a constant slope s followed by a well) and run "
    "the seeds' momentum rule for every pair of learning rate and beta in one batched run (beta 0 is GD). "
    "The first step past the plateau's end is compared with the exact heavy ball on a constant force, "
    "x_k = lr s (k/(1 - beta) - beta (1 - beta^k)/(1 - beta)^2)."
)


@dataclass(frozen=True)
class Config:
    slope: float = 0.05
    length: float = 8.0
    momenta: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99)
    lrs: tuple[float, ...] = (0.05, 0.1, 0.2)
    lr_seed: float = 0.1  # the landscape's default lr, the seed's setting
    speedup_tolerance: float = 0.10  # the seeds' "about 1/(1 - beta) times faster"
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
            "velocity": float(x[crossed[0], i] - x[crossed[0] - 1, i]) if crossed.size else math.nan,
            "predicted_velocity": lr * force * (1.0 - beta**cross) / (1.0 - beta),
        }

    return Result(
        NAME,
        CLAIM,
        PROTOCOL,
        _rows(config, rows),
        {
            **asdict(config),
            "landscape": f"plateau (slope {config.slope:g}, length {config.length:g})",
            "optimizer": "momentum (seeds' form), beta = 0 is GD; one batched run over all (lr, beta)",
            "steps": traj.steps_run,
        },
        [_figure(config, traj, pairs, rows)],
        runs.specs,
    )


def _rows(config: Config, rows: dict) -> list[Row]:
    """Theory checks: every crossing step and the velocity at the crossing against the exact heavy
    ball on a constant force. Claim checks at the seed's lr: momentum 0.9 crosses faster than GD, and
    each beta's speed-up is within ``speedup_tolerance`` of 1/(1 - beta)."""
    lr = config.lr_seed
    gd = rows[(lr, 0.0)]
    out: list[Row] = []
    for beta in config.momenta:
        if beta == 0:
            continue
        r = rows[(lr, beta)]
        speedup, terminal = gd["cross"] / r["cross"], terminal_speedup(beta)
        out.append(
            agrees(
                f"speedup/beta={beta:g}",
                f"crossing speed-up of beta {beta:g} over GD at lr {lr:g}",
                speedup,
                terminal,
                rel=config.speedup_tolerance,
                about="claim",
                group="speed-up over GD (theory: the terminal-velocity ratio 1/(1 - beta))",
                key=beta == 0.9,
                if_pass=f"beta {beta:g} crossed {speedup:.2f} times faster than GD, as 1/(1 - beta) = "
                f"{terminal:g} says.",
                if_fail=f"beta {beta:g} crossed only {speedup:.2f} times faster than GD, not 1/(1 - beta) = "
                f"{terminal:g}: the transient (a lag of {r['lag']:.0f} steps against a crossing of "
                f"{r['cross']}) dominates.",
            )
        )
        out.append(
            number(
                f"speedup_exact/beta={beta:g}",
                f"crossing speed-up of beta {beta:g} over GD, exact recurrence",
                gd["predicted"] / r["predicted"],
                group="speed-up over GD (theory: the terminal-velocity ratio 1/(1 - beta))",
            )
        )
    if 0.9 in config.momenta:
        seed = rows[(lr, 0.9)]
        out.append(
            exceeds(
                "faster/beta=0.9",
                f"momentum 0.9 crosses faster than GD at lr {lr:g} (speed-up over 1)",
                gd["cross"] / seed["cross"],
                1.0,
                key=True,
                if_pass=f"With momentum 0.9 the ball crossed in {seed['cross']} steps where GD crawled "
                f"{gd['cross']}.",
                if_fail=f"Momentum 0.9 took {seed['cross']} steps against GD's {gd['cross']}.",
            )
        )
    for (lr_, beta), r in rows.items():
        where = f"lr {lr_:g}, beta {beta:g}"
        out.append(
            agrees(
                f"cross/lr={lr_:g}/beta={beta:g}",
                f"crossing step at {where}",
                r["cross"],
                r["predicted"],
                absolute=1,
                group="crossing step (theory: first k with x_k >= length, exact heavy ball)",
                key=(lr_, beta) == (lr, 0.0),
                unit="steps",
            )
        )
        out.append(
            agrees(
                f"velocity/lr={lr_:g}/beta={beta:g}",
                f"displacement of the crossing step at {where}",
                r["velocity"],
                r["predicted_velocity"],
                rel=WELL_TAIL,
                group="velocity at the crossing (theory: lr s (1 - beta^k)/(1 - beta))",
            )
        )
    for (lr_, beta), r in rows.items():
        where = f"lr {lr_:g}, beta {beta:g}"
        group = "after the plateau: in the well"
        out.append(
            number(
                f"settle/lr={lr_:g}/beta={beta:g}",
                f"settling step at {where}",
                r["settle"],
                unit="steps",
                group=group,
            )
        )
        out.append(
            number(
                f"overshoot/lr={lr_:g}/beta={beta:g}",
                f"overshoot past the well's minimum at {where}",
                r["overshoot"],
                group=group,
            )
        )
        out.append(
            number(
                f"returns/lr={lr_:g}/beta={beta:g}",
                f"returns onto the plateau at {where}",
                r["returns"],
                group=group,
            )
        )
        if beta > 0 and r["settle"] > 0 and rows[(lr_, 0.0)]["settle"] > 0:
            out.append(
                number(
                    f"settle_speedup/lr={lr_:g}/beta={beta:g}",
                    f"settling speed-up over GD at {where}",
                    rows[(lr_, 0.0)]["settle"] / r["settle"],
                    group=group,
                    key=(lr_, beta) == (lr, 0.99),
                )
            )
    return out


def _figure(config, traj, pairs, rows):
    import matplotlib.pyplot as plt

    lr = config.lr_seed
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(config.momenta)))
    fig, axes = subplots(1, 3, height=4.4)
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
    return finish(fig)
