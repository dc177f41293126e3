"""Over-damped: GD is the Euler discretisation of gradient flow; the heavy ball discretises Newton's
equation with friction. Both are measured as numerical methods: global error at a fixed physical time
against SciPy's ``solve_ivp`` (DOP853, rtol = atol = 1e-13) over a ladder of learning rates, and the
order fitted on log error against log lr.

- GD ``w <- w - lr grad U`` is explicit Euler for ``x' = -grad U`` with time ``t = k lr``: local error
  ``lr^2 x''/2``, global error ``lr E(t)`` with ``E' = -H(x) E - H(x) grad U(x) / 2``, ``E(0) = 0``
  (the linearised error equation, integrated alongside the flow), so order 1 in lr.
- Heavy ball ``v <- beta v - lr g``, ``w <- w + v`` under the standard mapping (a unit mass, the
  learning rate as the squared time step; Qian (1999), "On the momentum term in gradient descent
  learning algorithms", derives it to first order in h): time step ``h = sqrt(lr)``,
  ``gamma = (1 - beta)/h``, so ``beta = 1 - gamma sqrt(lr)`` at fixed gamma, compared with
  ``x'' + gamma x' = -grad U``, ``x(0) = x0``, ``x'(0) = 0``. In positions the update is
  ``(x_{k+1} - 2 x_k + x_{k-1})/h^2 + gamma (x_k - x_{k-1})/h = -grad U(x_k)``: the second difference
  is centred (O(h^2)) but the friction is a backward difference (O(h)), and the zero initial velocity
  makes the first step ``lr g`` where a consistent start moves ``lr g / 2`` (an O(h) velocity error).
  Each alone gives a global error O(h) = O(sqrt(lr)): order 1/2 in lr.
- The same iterates are a *centred* (second-order) scheme for a slightly different mapping:
  with ``a = (1 - beta)/(1 + beta)``, ``h^2 = lr (1 + a)`` and ``gamma = 2a/h``, i.e. at fixed gamma
  ``beta = (1 - gamma h/2)/(1 + gamma h/2)``, ``lr = h^2/(1 + gamma h/2)``. With that mapping *and* a
  half-size first step (a ``warmup`` schedule of 2 steps: factors 1/2, 1, 1, ...) the error is O(h^2)
  = O(lr): order 1 in lr. The two single fixes are run too, to show each O(h) source on its own.

- Inertia: the heavy ball is not the over-damped flow. Read as GD, its effective learning rate is
  ``lr/(1 - beta) = h/gamma``, so after ``K`` steps the over-damped limit ``gamma x' = -grad U``
  (gradient flow at time ``t/gamma``) would sit at ``x_flow(t/gamma)``; at ``gamma = 1`` the heavy
  ball's iterates stay far from that point and close to Newton's ``x(t)``: the ratio of the two
  distances measures the inertia momentum brings back.

- The over-damped limit: at friction ``gamma`` the heavy ball with a fixed ``beta`` and ``h = (1 - beta)/
  gamma`` (``lr = h^2``) moves, read as GD, with the effective learning rate ``lr/(1 - beta) = h/gamma``;
  run for ``K = gamma^2 t/(1 - beta)`` steps it reaches Newton's time ``gamma t``, i.e. the over-damped
  time ``t``. Newton's ``x(gamma t)`` differs from gradient flow's ``x(t)`` by O(1/gamma^2), and the
  fixed-beta heavy ball (its velocity relaxing by beta per step) is a first-order scheme for gradient
  flow with time step ``h/gamma = (1 - beta)/gamma^2``, so the distance to gradient flow vanishes like
  the effective lr: order 1 (order 2 in 1/gamma).

All rungs of a ladder (and all starts) run as one spec with per-particle lr and beta lists; each
particle's frame at its own step count ``K = t / time_step`` is read from the frames saved at exactly
those step counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, exceeds, number
from descent.landscapes import get_landscape
from descent.optim import Warmup, schedule_to_dict
from descent.spec import RunSpec
from descent.theory.flows import damped_newton, flow_path, gradient_flow

NAME = "overdamped"
CLAIM = (
    "Gradient descent simulates an over-damped dynamical system: parameters flow along the negative "
    "gradient with the learning rate as the time step; momentum reintroduces inertia with friction "
    "(the heavy ball is a particle obeying Newton's law with friction)."
)
VARIANTS = {
    "standard": "h = sqrt(lr), gamma = (1 - beta)/h, first step lr*g (engine default)",
    "centred mapping": "h^2 = lr (1 + a), gamma = 2a/h, a = (1 - beta)/(1 + beta); first step lr*g",
    "half first step": "h = sqrt(lr), gamma = (1 - beta)/h; first step lr*g/2 (warmup of 2 steps)",
    "centred + half first step": "centred mapping and a half first step: a second-order scheme",
}
EXPECTED_ORDER = {
    "standard": 0.5,
    "centred mapping": 0.5,
    "half first step": 0.5,
    "centred + half first step": 1.0,
}
RTOL = 1e-13
PROTOCOL = (
    "GD and the heavy ball run on the double well from three starts over ladders of learning rates, each "
    "to a fixed physical time (GD: t = steps x lr; heavy ball: t = steps x sqrt(lr), friction gamma = "
    "(1 - beta)/sqrt(lr)), and at growing friction gamma. Their distances to gradient flow and to "
    "Newton's equation with friction (SciPy's DOP853 to 1e-13) give the order of convergence in lr, the "
    "heavy ball's inertia, and its over-damped limit."
)
# The runs are deterministic: orders and constants are checked with absolute or relative tolerances,
# the same at every size.
ORDER_ABS = 0.1  # a fitted order of convergence within 0.1 of theory (1/2 and 1 are 0.5 apart)
CONSTANT_REL = 0.05  # GD's error within 5 % of lr |E(t)| (the next term is O(lr^2))
DIRECTION_COSINE = 0.99  # ... and pointing along E(t)
INERTIA_RATIO = 10.0  # the heavy ball ends >= 10 times closer to Newton's x(t) than to the over-damped flow


@dataclass(frozen=True)
class Config:
    landscape: str = "double-well"
    starts: tuple[tuple[float, float], ...] = ((-1.7, 0.5), (0.4, 1.2), (1.9, -1.0))
    gd_time: float = 0.5
    gd_steps: tuple[int, ...] = (25, 50, 100, 200, 400, 800, 1600, 3200)  # lr = gd_time / K
    friction: float = 1.0
    hb_time: float = 4.0
    hb_steps: tuple[int, ...] = (40, 80, 160, 320, 640, 1280, 2560, 5120)  # h = hb_time / K
    fit_rungs: int = 5  # the order is fitted over the smallest-lr rungs
    # the over-damped limit: frictions gamma with h = (1 - od_momentum)/gamma, run to t = gamma * gd_time
    od_frictions: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0, 64.0)
    od_momentum: float = 0.5

    @classmethod
    def quick(cls) -> Config:
        return cls(
            gd_steps=(25, 50, 100, 200, 400, 800),
            hb_steps=(40, 80, 160, 320, 640, 1280),
            fit_rungs=4,
            od_frictions=(4.0, 8.0, 16.0, 32.0),
        )


def _numpy_field(landscape):
    """The vector field of the reference ODEs as numpy functions of one point: grad U, the objective's
    own gradient (handed to solve_ivp as the field, not derived here), and H v with H the objective's
    Hessian."""
    field = landscape.gradient  # the objective's grad U, the right-hand side of the reference ODEs

    def point(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float64).reshape(1, -1)

    def grad(x: np.ndarray) -> np.ndarray:
        return field(point(x))[0].numpy()

    def hvp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return landscape.hessian(point(x))[0].numpy() @ v

    return grad, hvp


def _fit_order(lr: np.ndarray, err: np.ndarray, rungs: int) -> tuple[float, float]:
    """Least-squares slope of log err on log lr over the ``rungs`` smallest lr, and its standard error."""
    x, y = np.log(lr[-rungs:]), np.log(err[-rungs:])
    coef, cov = np.polyfit(x, y, 1, cov=True) if rungs > 2 else (np.polyfit(x, y, 1), np.zeros((2, 2)))
    return float(coef[0]), float(math.sqrt(max(cov[0, 0], 0.0)))


def _ladder(
    config: Config, runs: Runs, optimizer: str, hyper: dict, counts: np.ndarray, schedule=None, tick=None
) -> np.ndarray:
    """Positions [rungs, starts, d] of each (rung, start) particle at its own step count: one run with
    per-particle hyper-parameters (``hyper``: a list per rung, repeated for each start), saving the
    frames at the rungs' step counts."""
    n = len(config.starts)
    spec = RunSpec(
        landscape=config.landscape,
        optimizer=optimizer,
        hyper={key: np.repeat(values, n).tolist() for key, values in hyper.items()},
        schedule=schedule,
        starts=[list(s) for s in config.starts] * len(counts),
        steps=int(counts.max()),
        save="steps:" + ",".join(str(int(k)) for k in counts),
    )
    traj = runs(spec, tick)
    frame = {int(k): i for i, k in enumerate(traj.steps.tolist())}
    positions = traj.positions.numpy()
    return np.stack([positions[frame[int(k)], j * n : (j + 1) * n] for j, k in enumerate(counts)])


def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    landscape = get_landscape(config.landscape)
    grad, hvp = _numpy_field(landscape)
    starts = np.array(config.starts, dtype=float)
    gd_k = np.array(config.gd_steps)
    hb_k = np.array(config.hb_steps)
    # the over-damped ladder: K = gamma^2 gd_time/(1 - beta) steps of effective lr lr/(1 - beta) = h/gamma
    od_gamma = np.array(config.od_frictions, dtype=float)
    od_h = (1.0 - config.od_momentum) / od_gamma
    od_k = np.rint(od_gamma * config.gd_time / od_h).astype(int)
    total = int(gd_k.max() + len(VARIANTS) * hb_k.max() + od_k.max())
    offset = [0]

    def tick(k: int, _t: int) -> None:
        if progress is not None:
            progress(offset[0] + k, total)

    runs = Runs()
    # --- GD against gradient flow -----------------------------------------------------------------------
    gd_lr = config.gd_time / gd_k
    flows = [gradient_flow(grad, hvp, s, config.gd_time, rtol=RTOL) for s in starts]
    exact = np.stack([f[0] for f in flows])
    coef = np.stack([f[1] for f in flows])  # E(t) per start
    gd_x = _ladder(config, runs, "gd", {"lr": gd_lr}, gd_k, tick=tick)
    offset[0] += int(gd_k.max())
    gd_err = np.sqrt(((gd_x - exact) ** 2).sum(-1).mean(-1))  # RMS over starts
    gd_pred = np.sqrt((coef**2).sum(-1).mean()) * gd_lr  # lr |E(t)|
    gd_order, gd_order_se = _fit_order(gd_lr, gd_err, config.fit_rungs)
    # the signed error per start against lr E(t), at the smallest lr
    gd_const_ratio = float(np.linalg.norm(gd_x[-1] - exact) / np.linalg.norm(gd_lr[-1] * coef))
    gd_direction = float(
        ((gd_x[-1] - exact) * (gd_lr[-1] * coef)).sum()
        / (np.linalg.norm(gd_x[-1] - exact) * np.linalg.norm(gd_lr[-1] * coef))
    )

    # --- heavy ball against Newton's equation ---------------------------------------------------------
    gamma = config.friction
    newton = np.stack([damped_newton(grad, s, config.hb_time, gamma, rtol=RTOL) for s in starts])
    h = config.hb_time / hb_k
    hb = {}
    for name in VARIANTS:
        if name in ("standard", "half first step"):
            lr, beta = h**2, 1 - gamma * h
        else:
            a = gamma * h / 2
            lr, beta = h**2 / (1 + a), (1 - a) / (1 + a)
        schedule = schedule_to_dict(Warmup(steps=2)) if "half" in name else None
        x = _ladder(config, runs, "momentum", {"lr": lr, "momentum": beta}, hb_k, schedule, tick)
        offset[0] += int(hb_k.max())
        err = np.sqrt(((x - newton) ** 2).sum(-1).mean(-1))
        order, order_se = _fit_order(lr, err, config.fit_rungs)
        order_h, _ = _fit_order(h, err, config.fit_rungs)
        hb[name] = {
            "lr": lr,
            "beta": beta,
            "error": err,
            "order_lr": order,
            "order_lr_se": order_se,
            "order_h": order_h,
            "x": x,
            "local_orders_lr": np.diff(np.log(err)) / np.diff(np.log(lr)),
        }
    # --- the over-damped limit: heavy ball at growing friction against gradient flow at t/gamma ----------
    od_x = _ladder(
        config,
        runs,
        "momentum",
        {"lr": od_h**2, "momentum": np.full(len(od_k), config.od_momentum)},
        od_k,
        tick=tick,
    )
    od_err = np.sqrt(((od_x - exact) ** 2).sum(-1).mean(-1))  # against gradient flow at gd_time
    od_lr_eff = od_h**2 / (1.0 - config.od_momentum)
    od_order, _ = _fit_order(od_lr_eff, od_err, min(config.fit_rungs, len(od_k)))
    od = {"gamma": od_gamma, "lr_eff": od_lr_eff, "error": od_err, "order": od_order, "steps": od_k}
    if progress is not None:
        progress(total, total)

    # the over-damped limit of the heavy ball: gradient flow at time t/gamma (effective lr = h/gamma)
    # (its end point only: a distance of order 1 is compared, rtol 1e-10 is ample)
    overdamped_limit = np.stack([flow_path(grad, s, config.hb_time / gamma, 2)[:, -1] for s in starts])
    doc = hb["standard"]
    hb_x = doc.pop("x")[-1]  # the standard heavy ball at the smallest lr
    for r in hb.values():
        r.pop("x", None)
    to_flow = float(np.sqrt(((hb_x - overdamped_limit) ** 2).sum(-1).mean()))
    to_newton = float(doc["error"][-1])
    gd = {
        "lr": gd_lr,
        "error": gd_err,
        "predicted": gd_pred,
        "order": gd_order,
        "ratio": gd_const_ratio,
        "direction": gd_direction,
    }
    inertia = {"to_flow": to_flow, "to_newton": to_newton}
    config_dict = {
        **asdict(config),
        "ode": f"solve_ivp DOP853, rtol = atol = {RTOL:g}",
        "error": "RMS over starts of |w_K - x(t)| at t = K * time step",
        "variants": VARIANTS,
    }
    return Result(
        NAME,
        CLAIM,
        PROTOCOL,
        _rows(config, gd, hb, inertia, od),
        config_dict,
        [_figure(config, gd, hb, od)],
        runs.specs,
    )


def _rows(config: Config, gd: dict, hb: dict, inertia: dict, od: dict) -> list[Row]:
    doc = hb["standard"]
    out: list[Row] = []
    # --- the claim ------------------------------------------------------------------------------------
    out.append(
        agrees(
            "gd/order",
            "GD -> gradient flow x' = -grad U (time = steps x lr): order of the error in lr",
            gd["order"],
            1.0,
            absolute=ORDER_ABS,
            about="claim",
            group="GD as gradient flow (claim: the learning rate is the time step)",
            key=True,
            if_pass=f"GD follows gradient flow with the learning rate as its time step: at t = "
            f"{config.gd_time:g} its error vanishes like lr^{gd['order']:.3f} (explicit Euler: lr^1).",
            if_fail=f"GD's error against gradient flow at t = {config.gd_time:g} vanishes like "
            f"lr^{gd['order']:.3f}, not like lr as explicit Euler with time step lr would.",
        )
    )
    out.append(
        exceeds(
            "heavy_ball/converges",
            "heavy ball -> Newton with friction x'' + gamma x' = -grad U (h = sqrt(lr)): order of the "
            "error in lr",
            doc["order_lr"],
            0.0,
            margin=ORDER_ABS,
            group="the heavy ball as Newton's law with friction (claim)",
            key=True,
            if_pass=f"The heavy ball is a particle under Newton's law with friction gamma = "
            f"{config.friction:g}: with h = sqrt(lr) and beta = 1 - gamma h its error against "
            f"x'' + gamma x' = -grad U at t = {config.hb_time:g} vanishes like lr^{doc['order_lr']:.3f}.",
            if_fail=f"The heavy ball's error against x'' + gamma x' = -grad U does not vanish with lr "
            f"(order {doc['order_lr']:.3f}).",
        )
    )
    ratio = inertia["to_flow"] / inertia["to_newton"]
    out.append(
        exceeds(
            "heavy_ball/inertia",
            "heavy ball at the smallest lr: distance to the over-damped flow x(t/gamma) over the "
            "distance to Newton's x(t)",
            ratio,
            INERTIA_RATIO,
            group="the heavy ball as Newton's law with friction (claim)",
            key=True,
            if_pass=f"Momentum brings inertia back: at gamma = {config.friction:g} the heavy ball ends "
            f"{inertia['to_flow']:.3g} from the over-damped flow and {inertia['to_newton']:.2g} from "
            f"Newton's equation ({ratio:.3g} times closer).",
            if_fail=f"The heavy ball ends {inertia['to_flow']:.3g} from the over-damped flow and "
            f"{inertia['to_newton']:.2g} from Newton's equation: not clearly closer to the dynamics "
            "with inertia.",
        )
    )
    group = "the over-damped limit (claim: GD's gradient flow is the heavy ball at high friction)"
    out.append(
        exceeds(
            "overdamped/converges",
            f"heavy ball as friction gamma grows (beta {config.od_momentum:g}, h = (1 - beta)/gamma): order "
            f"in its effective lr h/gamma of its distance to gradient flow at t/gamma = {config.gd_time:g}",
            od["order"],
            0.0,
            margin=ORDER_ABS,
            group=group,
            key=True,
            if_pass=f"GD's dynamics is the over-damped limit of the heavy ball: as the friction grows from "
            f"{od['gamma'][0]:g} to {od['gamma'][-1]:g} the heavy ball's distance to gradient flow at time "
            f"t/gamma = {config.gd_time:g} falls from {od['error'][0]:.2g} to {od['error'][-1]:.2g} "
            f"(order {od['order']:.3f} in the effective lr h/gamma).",
            if_fail=f"As the friction grows from {od['gamma'][0]:g} to {od['gamma'][-1]:g} the heavy ball "
            f"does not approach gradient flow (distance {od['error'][0]:.2g} -> {od['error'][-1]:.2g}, order "
            f"{od['order']:.3f}).",
        )
    )
    out.append(
        agrees(
            "overdamped/order",
            "heavy ball at growing friction: order of its distance to gradient flow in the effective lr",
            od["order"],
            1.0,
            absolute=ORDER_ABS,
            group=group,
        )
    )
    out += _series(
        [f"overdamped/distance/gamma={g:g}" for g in od["gamma"]],
        [
            f"heavy ball at friction {g:g} ({k} steps): RMS distance to gradient flow"
            for g, k in zip(od["gamma"], od["steps"])
        ],
        od["error"],
        None,
        group,
    )
    # --- theory: GD's error constant ------------------------------------------------------------------
    group = "GD's error (theory: lr E(t), the Euler error equation)"
    out.append(
        agrees(
            "gd/error_constant",
            "GD at the smallest lr: |error| over lr |E(t)|",
            gd["ratio"],
            1.0,
            rel=CONSTANT_REL,
            group=group,
        )
    )
    out.append(
        exceeds(
            "gd/error_direction",
            "GD at the smallest lr: cosine between the error and E(t)",
            gd["direction"],
            DIRECTION_COSINE,
            about="theory",
            group=group,
        )
    )
    out += _series(
        [f"gd/error/lr={lr:.4g}" for lr in gd["lr"]],
        [f"GD at lr {lr:.4g}: RMS error at t = {config.gd_time:g}" for lr in gd["lr"]],
        gd["error"],
        gd["predicted"],
        group,
    )
    # --- theory: the heavy ball's order under each mapping -------------------------------------------
    group = "heavy ball's order in lr (theory: 1/2 from each O(h) source, 1 without both)"
    for name, r in hb.items():
        slug = name.replace(" + ", "+").replace(" ", "_")
        out.append(
            agrees(
                f"heavy_ball/order/{slug}",
                f"heavy ball, {name}: order of the error in lr",
                r["order_lr"],
                EXPECTED_ORDER[name],
                absolute=ORDER_ABS,
                group=group,
                key=name == "centred + half first step",
            )
        )
        out.append(
            number(
                f"heavy_ball/order_h/{slug}",
                f"heavy ball, {name}: order of the error in h",
                r["order_h"],
                group=group,
            )
        )
        out.append(
            number(
                f"heavy_ball/error/{slug}",
                f"heavy ball, {name}: RMS error at t = {config.hb_time:g}, smallest lr {r['lr'][-1]:.3g}",
                r["error"][-1],
                group=group,
            )
        )
    out.append(
        number(
            "heavy_ball/to_flow",
            f"heavy ball, standard mapping, smallest lr: RMS distance to gradient flow at t/gamma = "
            f"{config.hb_time / config.friction:g}",
            inertia["to_flow"],
            group="the heavy ball as Newton's law with friction (claim)",
        )
    )
    return out


def _series(ids, labels, values, theory, group) -> list[Row]:
    """One number row per rung of a ladder (with its theory value where there is one)."""
    theory = [None] * len(ids) if theory is None else theory
    return [number(i, label, v, theory=t, group=group) for i, label, v, t in zip(ids, labels, values, theory)]


def _figure(config, gd, hb, od):
    from descent.plots.static import draw_landscape

    fig, axes = subplots(1, 3, height=4.6)
    landscape = get_landscape(config.landscape)
    grad, _ = _numpy_field(landscape)
    ax = axes[0]
    draw_landscape(ax, landscape)
    for s in config.starts:
        s = np.array(s, dtype=float)
        newton = flow_path(grad, s, config.hb_time, 400, gamma=config.friction)
        ax.plot(newton[0], newton[1], "w-", lw=1.2)
        flow = flow_path(grad, s, config.gd_time, 100)
        ax.plot(flow[0], flow[1], "r-", lw=1.5)
        ax.plot(*s, "wo", ms=5)
    ax.set_title(
        f"gradient flow to t = {config.gd_time:g} (red),\nNewton, gamma = {config.friction:g}, "
        f"to t = {config.hb_time:g} (white)",
        fontsize=11,
    )

    ax = axes[1]
    ax.loglog(gd["lr"], gd["error"], "o-", color="tab:blue", label=f"GD (order {gd['order']:.2f})")
    ax.loglog(gd["lr"], gd["predicted"], "k--", lw=0.8, label="lr |E(t)|, Euler error equation")
    ax.loglog(
        od["lr_eff"],
        od["error"],
        "s-",
        ms=4,
        color="tab:purple",
        label=f"heavy ball, gamma {od['gamma'][0]:g} to {od['gamma'][-1]:g} ({od['order']:.2f})",
    )
    ax.set_xlabel("learning rate (heavy ball: effective lr h/gamma)")
    ax.set_ylabel(f"RMS distance at t = {config.gd_time:g}")
    ax.set_title("vs gradient flow: distance ~ lr", fontsize=11)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3, which="both")

    ax = axes[2]
    colors = {
        "standard": "tab:red",
        "centred mapping": "tab:orange",
        "half first step": "tab:purple",
        "centred + half first step": "tab:green",
    }
    for name, r in hb.items():
        ax.loglog(r["lr"], r["error"], "o-", ms=4, color=colors[name], label=f"{name} ({r['order_lr']:.2f})")
    lr = hb["standard"]["lr"]
    ref = hb["standard"]["error"][-1]
    ax.loglog(lr, ref * np.sqrt(lr / lr[-1]), ":", color="0.4", lw=0.8, label="~ sqrt(lr)")
    ref = hb["centred + half first step"]["error"][-1]
    ax.loglog(lr, ref * lr / lr[-1], "--", color="0.4", lw=0.8, label="~ lr")
    ax.set_xlabel("learning rate lr (h = sqrt(lr))")
    ax.set_ylabel(f"RMS error at t = {config.hb_time:g}")
    ax.set_title(f"heavy ball vs x'' + {config.friction:g} x' = -grad U", fontsize=11)
    ax.legend(fontsize=9, title="mapping (order in lr)", title_fontsize=9, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    return finish(fig)
