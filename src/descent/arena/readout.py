"""What the Arena reads off a run, all from the engine: the Hessian at the ball (`Landscape.hessian`),
the stability edge (`descent.optim.stability_edge`), the update decomposed by replaying the rule's own
``update`` on the recorded positions, outcomes and basins (`descent.dynamics.Classifier`), and the
Boltzmann density exp(-U/T) of the landscape on a grid.

Nothing here steps a ball: positions come from `run_spec`'s trajectory.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from descent.dynamics import Classifier, Trajectory
from descent.landscapes import Landscape
from descent.optim import stability_edge
from descent.plots.static import landscape_grid

EDGE_RULES = ("gd", "momentum", "nesterov", "langevin")


# --- theory at the ball ------------------------------------------------------------------------------
def hessian_eigenvalues(landscape: Landscape, points: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (ascending) of the Hessian at each of ``points`` ``[M, d] -> [M, d]``; NaN where the
    Hessian is not finite (e.g. a diverged ball)."""
    points = points.to(torch.float64)
    finite = torch.isfinite(points).all(dim=1)
    safe = torch.where(finite.unsqueeze(1), points, torch.zeros_like(points))
    hess = landscape.hessian(safe)
    ok = finite & torch.isfinite(hess).flatten(1).all(dim=1)
    hess = torch.where(ok.view(-1, 1, 1), hess, torch.zeros_like(hess))
    eig = torch.linalg.eigvalsh(0.5 * (hess + hess.transpose(1, 2)))
    return torch.where(ok.unsqueeze(1), eig, torch.full_like(eig, math.nan))


def edge_for(rule: str, lambda_max: float, momentum: float) -> float | None:
    """The local stability edge of ``rule`` (None for rules without a closed-form edge)."""
    if rule not in EDGE_RULES or not math.isfinite(lambda_max):
        return None
    return stability_edge("gd" if rule == "langevin" else rule, lambda_max, momentum)


def edge_formula(rule: str) -> str:
    return {
        "gd": "2/λmax",
        "langevin": "2/λmax",
        "momentum": "2(1+β)/λmax",
        "nesterov": "2(1+β)/((1+2β)λmax)",
    }.get(rule, "")


def ball_theory(landscape: Landscape, rule: str, hyper: dict[str, float], positions: torch.Tensor) -> dict:
    """Per frame, for positions ``[T, d]``: Hessian eigenvalues, condition number, saddle flag and the
    local stability edge against the learning rate."""
    eig = hessian_eigenvalues(landscape, positions)
    lam_min, lam_max = eig[:, 0], eig[:, -1]
    momentum = float(hyper.get("momentum", 0.0))
    lr = float(hyper.get("lr", landscape.default_lr))
    edges = [edge_for(rule, float(v), momentum) for v in lam_max.tolist()]
    return {
        "rule": rule,
        "lr": lr,
        "formula": edge_formula(rule),
        "lamMin": _clean(lam_min.tolist()),
        "lamMax": _clean(lam_max.tolist()),
        "edge": None if rule not in EDGE_RULES else [_finite_or_none(e) for e in edges],
    }


def typed_theory(theory: dict) -> dict:
    """`ball_theory` with its per-frame arrays as float32 typed-array specs (NaN for "none")."""
    import base64

    import numpy as np

    def pack(values: list | None) -> dict | None:
        if values is None:
            return None
        array = np.array([math.nan if v is None else v for v in values], dtype=np.float32)
        return {"dtype": "f4", "bdata": base64.b64encode(array.tobytes()).decode("ascii")}

    return {
        **theory,
        "lamMin": pack(theory["lamMin"]),
        "lamMax": pack(theory["lamMax"]),
        "edge": pack(theory["edge"]),
    }


# --- the update, decomposed ---------------------------------------------------------------------------
def decompose(trajectory: Trajectory, particle: int = 0) -> dict[str, Any]:
    """For each recorded frame k of one particle: the force step ``-lr*grad U(w_k)``, the coast
    ``u(0, s_k)`` (what the rule does with no force: the inertia), the actual update ``u(g_k, s_k)`` and,
    for adaptive rules, the per-coordinate scale ``u / (-lr*g)``; the rule's state ``s_k`` is rebuilt by
    replaying the rule's ``update`` on the recorded positions (exact when every step is recorded and
    there is no gradient noise). Otherwise only the force and the recorded displacement are given.
    """
    optimizer = trajectory.optimizer
    landscape = trajectory.landscape
    x = trajectory.positions[:, particle, :].to(torch.float64)  # [T, d]
    steps = trajectory.steps.tolist()
    lr = torch.as_tensor([float(optimizer.lr_at(max(k, 0))) for k in steps], dtype=torch.float64)
    grads = landscape.gradient(torch.nan_to_num(x))
    force = -lr.unsqueeze(1) * grads
    noisy = _nonzero(optimizer.grad_noise)
    exact = not noisy and steps == list(range(len(steps)))
    out: dict[str, Any] = {
        "rule": optimizer.name,
        "physics": optimizer.rule.physics,
        "exact": exact,
        "force": force,
    }
    if not exact:
        nxt = torch.cat([x[1:] - x[:-1], torch.zeros_like(x[:1])])
        out["update"] = nxt
        return out
    rule = optimizer.rule
    state = optimizer.init(x[:1])
    coasts, updates = [], []
    zero = torch.zeros_like(x[:1])
    for k in range(x.shape[0]):
        point = x[k : k + 1]
        hp = optimizer.hp_at(k)
        g = optimizer.process_gradient(grads[k : k + 1], point, None)
        coast, _ = rule.update(zero, state, point, hp, None)
        update, state = rule.update(g, state, point, hp, None)
        coasts.append(coast)
        updates.append(update)
    out["coast"] = torch.cat(coasts)
    out["update"] = torch.cat(updates)
    if rule.physics == "adaptive":
        denom = force
        ratio = torch.where(
            denom.abs() > 1e-300,
            out["update"] / torch.where(denom == 0, 1.0, denom),
            torch.full_like(denom, math.nan),
        )
        out["scale"] = ratio
    if rule.name == "nesterov":
        out["lookahead"] = x + out["coast"]
    return out


def arrow_kinds(optimizer) -> list[str]:
    """Which arrows the decomposition draws for this optimizer: the force step and the update always,
    the coast where the rule carries inertia, the look-ahead point for Nesterov."""
    kinds = ["force", "update"]
    name = optimizer.name
    inertia = name in ("momentum", "nesterov", "adam", "adamw", "amsgrad") or (
        name == "rmsprop" and _nonzero(optimizer.hp.get("momentum", 0.0))
    )
    if inertia:
        kinds.insert(1, "coast")
    if name == "nesterov":
        kinds.append("lookahead")
    return kinds


# --- noise, temperature, Boltzmann ---------------------------------------------------------------------
def temperature(rule: str, hyper: dict[str, float], grad_noise: float) -> float | None:
    """The temperature of a noisy run: Langevin's T; gradient noise of std sigma per coordinate is
    `descent.theory.noise.sgd_temperature` (lr sigma^2/2 for GD, lr sigma^2/(2(1 - beta)) for the heavy
    ball); None where no formula is known (Nesterov, adaptive rules)."""
    from descent.theory.noise import sgd_temperature

    lr = float(hyper.get("lr", math.nan))
    if rule == "langevin":
        return float(hyper.get("temperature", 0.0)) or None
    if grad_noise <= 0 or not math.isfinite(lr) or rule not in ("gd", "momentum"):
        return None
    beta = float(hyper.get("momentum", 0.9)) if rule == "momentum" else 0.0
    return sgd_temperature(lr, grad_noise**2, momentum=beta)


def boltzmann(landscape: Landscape, temp: float, resolution: int = 160) -> dict[str, Any] | None:
    """The Boltzmann density exp(-U/T)/Z over the box: its marginal in x (density per unit x) and the
    probability of the global minimum's basin (grid points whose nearest known minimum is global)."""
    if not temp or temp <= 0 or not landscape.bounded_below:
        return None
    xs, ys, values = landscape_grid(landscape, resolution)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    u = np.where(finite, values, np.inf)
    weight = np.exp(-(u - u[finite].min()) / temp)
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    z = weight.sum() * dx * dy
    marginal = weight.sum(axis=0) * dy / z
    share = None
    if landscape.global_minima:
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        points = torch.tensor(np.stack([gx.ravel(), gy.ravel()], axis=1))
        nearest = Classifier(landscape).nearest_minimum(points)
        global_ids = {p.id for p in landscape.global_minima}
        in_global = np.array([m in global_ids for m in nearest]).reshape(weight.shape)
        share = float((weight * in_global).sum() / weight.sum())
    return {"x": xs.tolist(), "density": marginal.tolist(), "globalShare": share, "temperature": temp}


def global_basin_share(landscape: Landscape, positions: torch.Tensor) -> list[float] | None:
    """Per frame, the share of balls (positions ``[T, N, d]``) whose nearest known minimum is global."""
    if not landscape.global_minima:
        return None
    t, n, d = positions.shape
    nearest = Classifier(landscape).nearest_minimum(positions.reshape(-1, d).to(torch.float64))
    global_ids = {p.id for p in landscape.global_minima}
    flags = torch.tensor([m in global_ids for m in nearest], dtype=torch.float64).reshape(t, n)
    return flags.mean(dim=1).tolist()


# --- outcomes ------------------------------------------------------------------------------------------
def describe_outcome(
    landscape: Landscape, outcome: str, step: int, steps_run: int, nearest: str | None = None
) -> str:
    """'minimum:left (local) at step 50', 'diverged at step 37', 'still moving after 2000 steps'."""
    kind, _, point_id = outcome.partition(":")
    if kind == "minimum":
        level = "global" if landscape.point(point_id).kind == "global_min" else "local"
        return f"{outcome} ({level}) at step {step}"
    if kind == "saddle":
        return f"{outcome} (stalled at a saddle) at step {step}"
    if outcome == "diverged":
        return f"diverged at step {step}"
    if outcome == "escaped":
        return f"escaped at step {step} (left the box; the landscape is unbounded below)"
    if outcome == "stationary":
        return f"stationary at step {step} (no known critical point near)"
    near = f" (nearest minimum: {nearest})" if nearest else ""
    return f"still moving after {steps_run} steps{near}"


def steps_to_target(trajectory: Trajectory, target: float | None, particle: int = 0) -> int | None:
    """The first recorded step at which the particle's loss is at or below ``target``."""
    if target is None:
        return None
    hit = torch.nonzero(trajectory.loss[:, particle] <= target)
    return int(trajectory.steps[hit[0, 0]]) if hit.numel() else None


def auto_target(landscape: Landscape) -> float | None:
    """Default race target: within 1e-3 of the global minimum's value (when it is known)."""
    values = [p.value for p in landscape.global_minima if p.value is not None]
    return float(min(values)) + 1e-3 if values else None


# --- helpers ------------------------------------------------------------------------------------------
def _nonzero(value: object) -> bool:
    if isinstance(value, torch.Tensor):
        return bool((value != 0).any())
    return bool(value)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _clean(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]
